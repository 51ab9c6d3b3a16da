"""The report on real (tiny) sweeps: an Optuna phase and a plain Hydra grid."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys

import optuna
import pandas as pd
import pytest
from matplotlib.image import imread

from analysis.importances import read_importances
from conftest import REPO_ROOT
from test_sweeper import ALL_IMPORTANCES, env_for, run_sweep

# Real sweeps and their reports (~60 s): make test-all. make test reports on a real tiny sweep
# through the documented commands (test_docs_commands.py) and on built trees (tests/analysis).
pytestmark = pytest.mark.slow


def analyse(*dirs, cwd=REPO_ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "analysis", *map(str, dirs)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def phase1(tmp_path_factory, tiny_data_factory):
    """A real 3-trial phase-1 sweep (2 epochs, tiny data) and its report: (dir, url, data)."""
    tmp = tmp_path_factory.mktemp("phase1_flat")
    url, sweep, data = f"sqlite:///{tmp / 'optuna.db'}", tmp / "phase1_flat", tiny_data_factory()
    proc = run_sweep("phase1_flat", sweep, url, data, "hydra.sweeper.n_trials=3", ALL_IMPORTANCES)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rep = analyse(sweep)
    assert rep.returncode == 0, rep.stderr
    return sweep, url, data


def test_report_on_optuna_phase_reproduces_best_trial(phase1, tmp_path):
    sweep, url, tiny_data_root = phase1
    trials = pd.read_csv(sweep / "trials.csv")
    study = optuna.load_study(study_name="phase1_flat", storage=url)
    assert len(trials) == 3 and set(trials["trial"]) == {0, 1, 2}
    best = trials.loc[trials["best_val_acc"].idxmax()]
    assert best["trial"] == study.best_trial.number
    assert best["best_val_acc"] == pytest.approx(study.best_value)
    report = (sweep / "report.md").read_text()
    assert "phase1_flat" in report and (sweep / "epochs.csv").stat().st_size > 0
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


def test_report_shows_the_search_views_of_a_real_sweep(phase1):
    """Optuna's history, slices, parallel coordinates and contour of the two most important
    parameters (on the stored study), and our timeline: valid PNGs of a reasonable size, each
    referenced by the report under its sentence."""
    sweep, _, _ = phase1
    report = (sweep / "report.md").read_text()
    section = report.split("## Search views", 1)[1].split("\n## ", 1)[0]
    sentences = {
        "history.png": "Optimisation history (Optuna's)",
        "slices.png": "Slices (Optuna's)",
        "parallel.png": "Parallel coordinates (Optuna's): each line is one complete trial",
        "contour.png": "Contour (Optuna's) of the objective over the two most important",
        "timeline.png": "Timeline: one row per slot",
    }
    for name, sentence in sentences.items():
        image = imread(sweep / name)
        height, width = image.shape[:2]
        assert 400 <= width <= 2000 and 150 <= height <= 1200, (name, image.shape)
        assert image[..., :3].std() > 0.05  # not a blank canvas
        paragraphs = section.split("\n\n")
        at = next(i for i, text in enumerate(paragraphs) if f"]({name})" in text)
        assert paragraphs[at - 1].startswith(sentence), (name, paragraphs[at - 1])
    top = read_importances(sweep / "importances.csv")[0]["param"].iloc[0]  # the sweeper's
    assert f"parameters (`{top}`, `" in section
    utilisation = re.search(
        r"Slot utilisation: \*\*([0-9.]+)\*\* = busy ([0-9.]+) trial-s / "
        r"\(1 row\(s\) x ([0-9.]+) s span\)",
        section,
    )
    assert utilisation, section
    value, busy, span = map(float, utilisation.groups())
    # busy and span are printed to 0.1 s, the ratio to 0.01: allow for the three roundings
    slack = 0.005 + 0.05 * (busy + span) / span**2
    assert 0 < busy <= span and value == pytest.approx(busy / span, abs=slack)


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
