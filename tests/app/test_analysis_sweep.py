"""The report on real (tiny) sweeps: an Optuna phase and a plain Hydra grid."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys

import optuna
import pandas as pd
import pytest

from conftest import REPO_ROOT
from test_sweeper import env_for, run_sweep


def analyse(*dirs, cwd=REPO_ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "analysis", *map(str, dirs)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_report_on_optuna_phase_reproduces_best_trial(tmp_path, tiny_data_root):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    sweep = tmp_path / "phase1"
    proc = run_sweep("phase1", sweep, url, tiny_data_root, "hydra.sweeper.n_trials=3")
    assert proc.returncode == 0, proc.stderr[-3000:]
    rep = analyse(sweep)
    assert rep.returncode == 0, rep.stderr
    trials = pd.read_csv(sweep / "trials.csv")
    study = optuna.load_study(study_name="phase1", storage=url)
    assert len(trials) == 3 and set(trials["trial"]) == {0, 1, 2}
    best = trials.loc[trials["best_val_acc"].idxmax()]
    assert best["trial"] == study.best_trial.number
    assert best["best_val_acc"] == pytest.approx(study.best_value)
    report = (sweep / "report.md").read_text()
    assert "phase1" in report and (sweep / "epochs.csv").stat().st_size > 0
    # the suggested command line re-trains the best trial to the same accuracy
    command = next(line for line in report.splitlines() if line.startswith("python train.py"))
    args = shlex.split(command)[2:]
    assert "hydra.mode=RUN" in args
    rerun = subprocess.run(
        [sys.executable, "train.py", *args, f"hydra.run.dir={tmp_path / 're'}"],
        cwd=REPO_ROOT,
        env=env_for(tiny_data_root),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    summary = json.loads((tmp_path / "re" / "summary.json").read_text())
    assert summary["best_val_acc"] == pytest.approx(study.best_value)


def test_report_on_plain_grid_compares_choices(tmp_path, tiny_data_root):
    grid = tmp_path / "grid"
    cmd = [
        sys.executable,
        "train.py",
        "-m",
        "regularizer=none,l2",
        "trainer.epochs=2",
        "trainer.progress_bar=false",
        f"hydra.sweep.dir={grid}",
    ]
    proc = subprocess.run(
        cmd, cwd=REPO_ROOT, env=env_for(tiny_data_root), capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rep = analyse(grid)
    assert rep.returncode == 0, rep.stderr
    trials = pd.read_csv(grid / "trials.csv")
    assert sorted(trials["regularizer"]) == ["l2", "none"]
    report = (grid / "report.md").read_text()
    assert "regularizer" in report
    for reg in ("none", "l2"):
        acc = trials.loc[trials["regularizer"] == reg, "best_val_acc"].iloc[0]
        assert f"{acc:.4f}" in report
