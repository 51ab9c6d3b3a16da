"""benchmarks/levers.py and benchmarks/pruners.py in smoke mode on tiny data: they run the
real training and searches and write every figure docs/search.md quotes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import ENV_ROOT, REPO_ROOT

pytestmark = pytest.mark.slow  # real runs and searches: make test-all


def run(script: str, *args: str, data) -> subprocess.CompletedProcess:
    env = {**os.environ, ENV_ROOT: str(data)}
    cmd = [sys.executable, str(REPO_ROOT / "benchmarks" / script), *args]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


def test_levers_script_pairs_the_variants_by_seed(tmp_path, tiny_data_factory):
    out = tmp_path / "levers.json"
    run(
        "levers.py",
        *("--seeds", "1", "2", "--epochs", "2", "--out", str(out), "--work", str(tmp_path)),
        *("--augmentations", "shift", "--extra", "data.holdout_size=128"),
        data=tiny_data_factory(),
    )
    result = json.loads(out.read_text())
    variants = result["variants"]
    assert set(variants) == {f"{a}+{v}" for a in ("hflip", "shift") for v in ("none", "ema", "swa")}
    assert variants["hflip+none"]["gain_per_seed"] == [0.0, 0.0]  # the baseline itself
    for run_ in result["runs"]:
        assert run_["epochs"] == 2 and all(len(c) == 2 for c in run_["val_acc"].values())
        swa = run_["val_acc"]["swa"]  # start 0.75 of 2 epochs: epoch 1 is the plain weights
        assert swa[0] == run_["val_acc"]["none"][0]


def test_pruners_script_runs_each_pruner_on_the_budget(tmp_path, tiny_data_factory):
    out = tmp_path / "pruners.json"
    run(
        "pruners.py",
        *("--budget", "6", "--seeds", "1", "--out", str(tmp_path / "work"), "--json", str(out)),
        *("--extra", "data.holdout_size=128", "data.train_size=null", "data.val_size=null"),
        "trainer.epochs=3",
        data=tiny_data_factory(),
    )
    result = json.loads(out.read_text())
    assert [r["pruner"] for r in result["runs"]] == ["hyperband", "halving", "median"]
    for r in result["runs"]:
        assert r["complete"] + r["pruned"] >= 1 and r["epochs_trained"] >= 1
        assert r["wall_s"] < 6 + 60  # ended on time (a trial finishes, then no new one)
