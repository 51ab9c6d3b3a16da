#!/usr/bin/env bash
# Prepare, on a machine with pip access, what benchmarks/gpu_check.sh needs on a GPU machine
# that has PyTorch, numpy, pandas, matplotlib, scikit-learn, PyYAML and tqdm but cannot
# install anything:
#
#   bash benchmarks/gpu_prepare.sh            # -> .whl/ (wheels) and data/ (the IDX files)
#
# .whl/  wheels, without their dependencies, of the packages the GPU image lacks (Hydra,
#        OmegaConf, ANTLR runtime, Optuna, SQLAlchemy 2, Alembic, Mako, colorlog, greenlet,
#        cmaes, submitit and hydra-submitit-launcher for the slot sweeps), for CPython
#        $PY_VERSION on x86-64 Linux (the versions of this checkout's .venv when it has
#        them), and a wheel of the sweeper itself (./sweeper, pure Python).
# data/  a copy of $FASHION_MNIST_ROOT/FashionMNIST/raw (the four uncompressed IDX files).
#
# Both folders are git-ignored; together about 60 MB. Then, on the GPU machine, carrying
# both (the run tool's `carry: [".whl", "data"]`):
#
#   FASHION_MNIST_ROOT=$PWD/data OUT=$OUT bash benchmarks/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY_VERSION="${PY_VERSION:-3.12}"              # the GPU image's python3
PIP="${PIP:-python3 -m pip}"
VENV_PY=.venv/bin/python

# name==version for each package: the version installed in .venv, else this default
declare -A DEFAULT=(
  [hydra-core]=1.3.2 [omegaconf]=2.3.0 [antlr4-python3-runtime]=4.9.3 [optuna]=5.0.0
  [SQLAlchemy]=2.0.36 [alembic]=1.13.3 [Mako]=1.3.5 [colorlog]=6.8.2 [greenlet]=3.1.1
  [cmaes]=0.10.0 [submitit]=1.5.2 [hydra-submitit-launcher]=1.2.0
)
pin() {
  local v=""
  if [ -x "$VENV_PY" ]; then
    v=$("$VENV_PY" -c "import importlib.metadata as m, sys
try: print(m.version(sys.argv[1]))
except m.PackageNotFoundError: pass" "$1")
  fi
  echo "$1==${v:-${DEFAULT[$1]}}"
}

rm -rf .whl && mkdir -p .whl
platforms=()
for n in 28 27 24 17 5; do platforms+=(--platform "manylinux_2_${n}_x86_64"); done
platforms+=(--platform manylinux2014_x86_64 --platform manylinux1_x86_64)
for name in hydra-core omegaconf optuna SQLAlchemy alembic Mako colorlog cmaes greenlet submitit \
            hydra-submitit-launcher; do
  $PIP download -q --no-deps --only-binary=:all: --python-version "$PY_VERSION" \
    --implementation cp "${platforms[@]}" -d .whl "$(pin "$name")"
done
# the ANTLR 4.9 runtime is published as a source archive only: build its (pure) wheel here
$PIP wheel -q --no-deps -w .whl "$(pin antlr4-python3-runtime)"
$PIP wheel -q --no-deps -w .whl ./sweeper  # lab-optuna-sweeper (the plugin and lab_optuna)
ls -1 .whl

root="${FASHION_MNIST_ROOT:-../shared/data}"
rm -rf data/FashionMNIST/raw && mkdir -p data/FashionMNIST/raw
cp "$root"/FashionMNIST/raw/*-ubyte data/FashionMNIST/raw/
chmod u+w data/FashionMNIST/raw/*
du -sh .whl data
