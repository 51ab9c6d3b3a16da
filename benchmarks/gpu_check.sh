#!/usr/bin/env bash
# One-shot check on a CUDA machine: the CUDA tests, then the CUDA epoch benchmark.
#
#   bash benchmarks/gpu_prepare.sh                  # first, where pip works: .whl/ and data/
#   OUT=/path/to/out FASHION_MNIST_ROOT=$PWD/data bash benchmarks/gpu_check.sh
#
# FASHION_MNIST_ROOT  folder holding FashionMNIST/raw/ (the four uncompressed IDX files),
#                     provided by the caller; the benchmark needs it (nothing is downloaded),
#                     the tests do not (they write their own tiny dataset).
# OUT                 where the logs and epoch_speed_cuda.json go (default: ./gpu_check_out).
# .whl/               optional: wheels of the Python packages the machine lacks (hydra-core,
#                     omegaconf, ...; gpu_prepare.sh builds them), installed with --no-deps
#                     into /tmp/site. Checked on a CPU copy of the GPU image's package set:
#                     with them, the whole test suite passes (but the SLURM launcher test).
# PYTHON              interpreter to use (default: python3; torch must already be there).
#
# Fail-safe: every step runs even if an earlier one failed; the exit status is the
# benchmark's. Outputs: env.txt, pip.log, pytest_cuda.log, epoch_speed_cuda.{log,json}.
set -x
cd "$(dirname "$0")/.." || exit 2
OUT="${OUT:-$PWD/gpu_check_out}"
PY="${PYTHON:-python3}"
mkdir -p "$OUT"
if compgen -G ".whl/*.whl" >/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl >"$OUT/pip.log" 2>&1 \
    || echo "pip install failed: see $OUT/pip.log"
fi
export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
export MPLBACKEND=Agg
echo "FASHION_MNIST_ROOT=${FASHION_MNIST_ROOT:-<unset>}" >"$OUT/env.txt"
nvidia-smi >>"$OUT/env.txt" 2>&1
"$PY" -c "import torch, sys; print(sys.version); print(torch.__version__, torch.version.cuda, \
torch.cuda.is_available() and torch.cuda.get_device_name())" >>"$OUT/env.txt" 2>&1
timeout 300 "$PY" -m pytest -m cuda tests/ -v -rs -p no:cacheprovider \
  >"$OUT/pytest_cuda.log" 2>&1
echo "pytest exit status: $?" >>"$OUT/pytest_cuda.log"
timeout 420 "$PY" benchmarks/epoch_speed.py --device cuda --epochs 5 \
  --json "$OUT/epoch_speed_cuda.json" >"$OUT/epoch_speed_cuda.log" 2>&1
status=$?
tail -n 25 "$OUT/pytest_cuda.log" "$OUT/epoch_speed_cuda.log"
exit $status
