"""The lab on a real (single-node) SLURM cluster (``sweeper/tests/slurm_cluster.py``):
``train.py`` with the basic sweeper, and phase 1 through the lab_optuna sweeper with
``hydra/launcher=slurm`` (``conf/hydra/launcher/slurm.yaml``) and PostgreSQL storage."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from conftest import REPO_ROOT
from slurm_cluster import SlurmCluster

pytestmark = pytest.mark.slurm
# hydra/launcher=slurm (the lab's conf/hydra/launcher/slurm.yaml) sized for the test node.
LAUNCHER = (
    "hydra/launcher=slurm",
    "hydra.launcher.partition=lab",
    "hydra.launcher.gpus_per_node=0",
    "hydra.launcher.cpus_per_task=1",
    "hydra.launcher.mem_gb=1",
    "hydra.launcher.timeout_min=5",
)
SACCT_WARNING = "Bypassing sacct error"  # what submitit logs per poll when sacct fails


def _submitit_job_ids(sweep_dir: Path) -> list[str]:
    runs = (sweep_dir / ".submitit").iterdir()
    return sorted(p.name for p in runs if p.is_dir() and "_" in p.name)


def test_train_py_multirun_on_the_cluster(
    slurm_cluster: SlurmCluster, tmp_path: Path, tiny_data_root: Path
):
    """The project's ``train.py`` (basic sweeper) trains one epoch per SLURM job."""
    sweep = tmp_path / "sweep"
    env = {**slurm_cluster.env, "FASHION_MNIST_ROOT": str(tiny_data_root)}
    cmd = [
        sys.executable,
        str(REPO_ROOT / "train.py"),
        "-m",
        "seed=1,2",
        "trainer.epochs=1",
        "data.batch_size=64",
        *LAUNCHER,
        f"hydra.sweep.dir={sweep}",
    ]
    proc = subprocess.run(cmd, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output + slurm_cluster.log_tail()
    for i in (0, 1):
        summary = json.loads((sweep / str(i) / "summary.json").read_text())
        assert summary["status"] == "completed" and summary["epochs_run"] == 1
    job_ids = _submitit_job_ids(sweep)
    assert [slurm_cluster.wait_for(j, timeout=30) for j in job_ids] == ["COMPLETED"] * 2
    assert SACCT_WARNING not in output


def test_phase1_through_the_slurm_launcher(
    slurm_cluster: SlurmCluster, tmp_path, postgres_url, tiny_data_root
):
    """The lab's phase 1 through ``hydra/launcher=slurm`` (conf/hydra/launcher/slurm.yaml)
    with PostgreSQL storage: every trial COMPLETE or PRUNED, the same ``trial_<N>/`` folders
    and outputs as a local sweep, each trial its own SLURM job."""
    cmd = [
        sys.executable,
        str(REPO_ROOT / "train.py"),
        "-m",
        "hparams_search=phase1_flat",
        *LAUNCHER,
        f"hydra.sweep.dir={tmp_path / 'phase1'}",
        f"hydra.sweeper.storage={postgres_url}",
        "hydra.sweeper.study_name=phase1_slurm",
        "hydra.sweeper.n_trials=3",
        "hydra.sweeper.n_jobs=2",
        "trainer.epochs=2",
        "data.holdout_size=128",
    ]
    env = {**slurm_cluster.env, "FASHION_MNIST_ROOT": str(tiny_data_root)}
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:] + slurm_cluster.log_tail()
    study = optuna.load_study(study_name="phase1_slurm", storage=postgres_url)
    assert [t.number for t in study.trials] == [0, 1, 2]
    assert {t.state for t in study.trials} <= {TrialState.COMPLETE, TrialState.PRUNED}
    jobs = set()
    for t in study.trials:
        job = tmp_path / "phase1" / f"trial_{t.number}"
        for name in ("metrics.csv", "summary.json", "trial.json", "train.log"):
            assert (job / name).is_file(), job / name
        jobs.add(json.loads((job / "trial.json").read_text())["job_id"])
    assert len(jobs) == 3 and None not in jobs
    for name in ("optimization_results.yaml", "study_trials.csv", "importances.csv"):
        assert (tmp_path / "phase1" / name).is_file(), name
