"""The sweeper as a user installs it: a Hydra app of their own, in a folder outside this
repository, sweeps with TPE, grid and NSGA-II into SQLite; the installed distribution has
no torch and nothing of the lab in its requirements."""

from __future__ import annotations

import shutil
import subprocess
import sys
from importlib.metadata import requires
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from conftest import TOY_APP


@pytest.fixture
def app(tmp_path_factory) -> Path:
    """The toy app copied into a fresh folder (no conftest, no repository around it)."""
    where = tmp_path_factory.mktemp("users_app") / "app"
    shutil.copytree(TOY_APP.parent, where, ignore=shutil.ignore_patterns("__pycache__"))
    return where / TOY_APP.name


def test_requirements_name_no_torch_and_no_lab() -> None:
    names = [
        r.split(";")[0].split("[")[0].split("=")[0].split(">")[0].split("<")[0].strip()
        for r in requires("lab-optuna-sweeper") or []
    ]
    assert "optuna" in names and "hydra-core" in names
    assert not {"torch", "torchvision", "lenet-lab"} & {n.lower() for n in names}, names


@pytest.mark.parametrize(
    "sampler, extra",
    [
        ("tpe", ()),
        pytest.param("grid", (), marks=pytest.mark.slow),
        pytest.param(
            "nsgaii",
            ("objectives=2", "hydra.sweeper.direction=[minimize,minimize]"),
            marks=pytest.mark.slow,
        ),
    ],
)
def test_an_app_outside_the_repository_sweeps_into_sqlite(app, tmp_path, sampler, extra):
    db = f"sqlite:///{tmp_path / 'studies.db'}"
    cmd = [
        sys.executable,
        str(app),
        "-m",
        f"hydra/sweeper/sampler={sampler}",
        f"hydra.sweeper.storage={db}",
        "hydra.sweeper.n_trials=4",
        "x=choice(-1,0,1)",
        "y=choice(0,2)",
        f"hydra.sweep.dir={tmp_path / 'out'}",
        *extra,
    ]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    study = optuna.load_study(study_name="sphere", storage=db)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 4
    results = yaml.safe_load((tmp_path / "out" / "optimization_results.yaml").read_text())
    if sampler == "nsgaii":
        assert results["solutions"] and all(len(s["values"]) == 2 for s in results["solutions"])
    else:
        assert results["best_value"] == min(t.value for t in study.trials)
    if sampler == "grid":  # 4 distinct points of the 3 x 2 grid
        assert len({(t.params["x"], t.params["y"]) for t in study.trials}) == 4
