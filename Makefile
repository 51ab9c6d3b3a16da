# The two commands of the README: `make train` and `make test`.
# Both create .venv on first use and install the project into it (editable, with dev extras).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The sweeper alone, installed as a user installs it (no torch, no lab): make test-sweeper.
SWEEPER_VENV ?= .venv-sweeper
SWEEPER_SRC := $(shell find sweeper/src -type f -not -name '*.pyc' 2>/dev/null)
ARGS ?=
N ?= 2
THREADS ?= 1
PORT ?= 8080
DB ?= multirun/optuna.db
LAB_WORKERS ?= $(shell $(PYTHON) -c 'import os; print((os.cpu_count() or 1) + 1)')

.PHONY: help install train test test-all test-sweeper lint bench workers dashboard clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# The sweeper (./sweeper, its own distribution) goes in first, editable; then the lab on it.
# compat: Hydra finds plugins by walking the hydra_plugins namespace on sys.path.
$(BIN)/.installed: pyproject.toml sweeper/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e './sweeper[all]' --config-settings editable_mode=compat
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

install: $(BIN)/.installed  ## create .venv and install the project

train: install  ## train the sheet's baseline (ARGS="experiment=ex4_early_stopping" etc.)
	$(BIN)/python train.py $(ARGS)

# The two suites side by side (pytest-xdist): the lab's in the console with one worker more than
# the cores (its suite is the larger: both then end together), the sweeper's on every core into
# a log printed after it. loadscope: a test module on one worker, so a module's shared sweep (a
# module-scoped fixture) runs once. test-all stays serial (its servers start once per session).
test: install  ## the fast tests of the lab and the sweeper, side by side on every core
	@log=$$(mktemp); \
	(cd sweeper && ../$(BIN)/python -m pytest -q -n auto $(ARGS)) > $$log 2>&1 & sweeper=$$!; \
	$(BIN)/python -m pytest -q -n $(LAB_WORKERS) --dist loadscope $(ARGS); lab=$$?; \
	wait $$sweeper; rc=$$?; echo "--- the sweeper's suite (sweeper/tests):"; cat $$log; rm -f $$log; \
	test $$lab -eq 0 && test $$rc -eq 0

# test-all: the lab's suite in .venv, then the sweeper's in its own torch-free venv.
test-all: install  ## everything: + PostgreSQL, SLURM, dashboard, real data, long training
	$(BIN)/python -m pytest -q --all $(ARGS)
	$(MAKE) test-sweeper ARGS="--all $(ARGS)"

$(SWEEPER_VENV)/.installed: sweeper/pyproject.toml $(SWEEPER_SRC)
	test -x $(SWEEPER_VENV)/bin/python || $(PYTHON) -m venv $(SWEEPER_VENV)
	$(SWEEPER_VENV)/bin/python -m pip install -q --upgrade pip
	$(SWEEPER_VENV)/bin/python -m pip install -q --force-reinstall --no-deps ./sweeper
	$(SWEEPER_VENV)/bin/python -m pip install -q './sweeper[dev]'
	@! $(SWEEPER_VENV)/bin/python -c 'import torch' 2>/dev/null || \
	  { echo "error: torch is installed in $(SWEEPER_VENV): the sweeper must not need it" >&2; exit 1; }
	touch $@

test-sweeper: $(SWEEPER_VENV)/.installed  ## the sweeper's own suite, installed alone (no torch)
	cd sweeper && ../$(SWEEPER_VENV)/bin/python -m pytest -q $(ARGS)

lint: install  ## ruff: lint and format check (ruff format . formats)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: install  ## epoch-speed benchmark against the sheet's pipeline (CPU)
	$(BIN)/python benchmarks/epoch_speed.py $(ARGS)

workers: install  ## N workers on one study: make workers N=4 ARGS="hparams_search=phase1"
	@mkdir -p multirun; for i in $$(seq 1 $(N)); do \
	  $(BIN)/python train.py -m $(ARGS) trainer.num_threads=$(THREADS) > multirun/worker_$$i.log 2>&1 & \
	done; echo "started $(N) workers (logs: multirun/worker_*.log)"; wait

dashboard: install  ## optuna-dashboard on multirun/optuna.db, trial files from multirun/artifacts, at http://127.0.0.1:8080 (PORT=8081, DB=path)
	@test -f $(DB) || { echo "error: no $(DB) yet: run a sweep first (python train.py -m hparams_search=phase1)" >&2; exit 2; }
	@$(BIN)/python -m lab_optuna.schema 'sqlite:///$(DB)'
	$(BIN)/optuna-dashboard 'sqlite:///$(DB)' --artifact-dir '$(dir $(DB))artifacts' --host 127.0.0.1 --port $(PORT)

clean:  ## remove outputs/ and test caches (sweeps and studies in multirun/ are kept)
	rm -rf outputs .pytest_cache
