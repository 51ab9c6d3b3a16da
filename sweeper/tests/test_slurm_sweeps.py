"""The lab_optuna sweeper on a real (single-node) SLURM cluster (``slurm_cluster.py``),
through hydra-submitit-launcher: a sweep of the toy app with PostgreSQL storage as on a real
cluster, pruning across jobs, a ``scancel``led job and a job past its time limit."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from conftest import TOY_APP as APP
from slurm_cluster import SlurmCluster

pytestmark = pytest.mark.slurm
LAUNCHER = (
    "hydra/launcher=submitit_slurm",
    "hydra.launcher.partition=lab",
    "hydra.launcher.cpus_per_task=1",
    "hydra.launcher.mem_gb=1",
    "hydra.launcher.timeout_min=5",
)
optuna.logging.set_verbosity(optuna.logging.WARNING)


def cmd(tmp: Path, storage: str, *overrides: str) -> list[str]:
    return [
        sys.executable,
        str(APP),
        "-m",
        f"hydra.sweep.dir={tmp / 'out'}",
        f"hydra.sweeper.storage={storage}",
        *LAUNCHER,
        *overrides,
    ]


def trials(storage: str) -> list[optuna.trial.FrozenTrial]:
    try:
        return optuna.load_study(study_name="sphere", storage=storage).trials
    except KeyError:
        return []


def test_sweep_with_pruning_across_slurm_jobs(slurm_cluster: SlurmCluster, tmp_path, postgres_url):
    proc = subprocess.run(
        cmd(
            tmp_path,
            postgres_url,
            "hydra.sweeper.n_trials=6",
            "hydra.sweeper.n_jobs=2",
            "hydra/sweeper/pruner=median",
            "hydra.sweeper.pruner.n_startup_trials=1",
            "steps=4",
            "x=choice(0,4)",
            "y=0",
        ),
        env=slurm_cluster.env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:] + slurm_cluster.log_tail()
    found = trials(postgres_url)
    assert [t.number for t in found] == list(range(6))
    assert {t.state for t in found} <= {TrialState.COMPLETE, TrialState.PRUNED}
    assert any(t.state == TrialState.PRUNED for t in found), [t.params for t in found]
    jobs = set()
    for t in found:
        record = json.loads((tmp_path / "out" / str(t.number) / "trial.json").read_text())
        assert record["number"] == t.number and record["state"] == t.state.name
        jobs.add(record["job_id"])  # each trial its own SLURM job
    assert len(jobs) == 6 and {slurm_cluster.wait_for(j, timeout=30) for j in jobs} == {"COMPLETED"}
    assert "Bypassing sacct error" not in out


def _wait(predicate, timeout: float, what: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f"the sweep exited ({proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.3)


def test_scancelled_trial_is_failed_with_its_reason_and_requeued(
    slurm_cluster: SlurmCluster, tmp_path
):
    db = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(study_name="sphere", storage=db)
    study.enqueue_trial({"x": 3.0})
    log = (tmp_path / "sweep.log").open("w")
    proc = subprocess.Popen(
        cmd(
            tmp_path,
            db,
            "hydra.sweeper.n_trials=2",
            "hydra.sweeper.n_jobs=1",
            "sleep_first_attempt=600",
            "y=0",
            "x=interval(-5,5)",
        ),
        env=slurm_cluster.env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        started = tmp_path / "out" / "0" / "trial.json"
        _wait(started.exists, 120, "trial 0's job to start", proc)
        record = json.loads(started.read_text())
        job = record["job_id"]
        slurm_cluster.cancel(job)
        assert proc.wait(timeout=240) == 0, (tmp_path / "sweep.log").read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
        slurm_cluster.reset()
    found = trials(db)
    killed = found[0]
    assert killed.state == TrialState.FAIL
    assert killed.user_attrs["fail_reason"].startswith("cancelled"), killed.user_attrs
    retry = found[1]  # the sweep went on with the re-queued params (a retry runs quickly)
    assert retry.user_attrs.get("retry_of") == 0 and retry.user_attrs["retries"] == 1
    assert retry.state == TrialState.COMPLETE and retry.params == killed.params


def test_trial_past_its_time_limit_is_failed_naming_it(slurm_cluster: SlurmCluster, tmp_path):
    db = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(study_name="sphere", storage=db)
    study.enqueue_trial({"x": 3.0, "sleep_first_attempt": 300})
    study.enqueue_trial({"x": 1.0, "sleep_first_attempt": 0})
    try:
        proc = subprocess.run(
            cmd(
                tmp_path,
                db,
                "hydra.sweeper.n_trials=2",
                "hydra.sweeper.n_jobs=1",
                "hydra.launcher.timeout_min=1",
                "sleep_first_attempt=choice(0,300)",
                "y=0",
                "x=interval(-5,5)",
                "hydra.sweeper.max_failure_rate=1.0",
            ),
            env=slurm_cluster.env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        slurm_cluster.reset()
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    first, second = trials(db)[:2]
    assert first.state == TrialState.FAIL
    assert first.user_attrs["fail_reason"].startswith("time limit"), first.user_attrs
    assert "timeout_min" in first.user_attrs["fail_reason"]
    assert not [t for t in trials(db) if t.user_attrs.get("retry_of") == 0]  # not re-run
    assert second.state == TrialState.COMPLETE
