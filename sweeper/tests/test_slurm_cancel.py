"""Ctrl-C or SIGTERM to a sweep on SLURM cancels its jobs, running and queued (``_loop/slurm.py``):
on the test cluster (``slurm_cluster.py``), the toy app's long trials are left neither
running nor queued, and their trials are FAIL."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from conftest import TOY_APP as APP
from conftest import default_sigint
from slurm_cluster import SlurmCluster

pytestmark = pytest.mark.slurm
LAUNCHER = (  # as test_slurm_sweeps.py's; cpus_per_task set by each case
    "hydra/launcher=submitit_slurm",
    "hydra.launcher.partition=lab",
    "hydra.launcher.mem_gb=1",
    "hydra.launcher.timeout_min=5",
)


def _wait(predicate, timeout: float, what: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(
                f"the sweep exited ({proc.returncode}) before {what}: " + log.read_text()[-3000:]
            )
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}: " + log.read_text()[-3000:])
        time.sleep(0.3)


@pytest.mark.parametrize(
    "signum, cpus, running",
    [
        (signal.SIGTERM, 1, 2),  # both jobs run
        (signal.SIGINT, 8, 1),  # one job takes the node: the other stays queued
    ],
    ids=["sigterm-running", "sigint-one-queued"],
)
def test_interrupted_sweep_cancels_its_slurm_jobs(
    slurm_cluster: SlurmCluster, tmp_path, signum, cpus, running
):
    db = f"sqlite:///{tmp_path / 'optuna.db'}"
    log = tmp_path / "sweep.log"
    before = {j["job_id"] for j in slurm_cluster.active_jobs()}
    proc = subprocess.Popen(
        [
            sys.executable,
            str(APP),
            "-m",
            f"hydra.sweep.dir={tmp_path / 'out'}",
            f"hydra.sweeper.storage={db}",
            *LAUNCHER,
            f"hydra.launcher.cpus_per_task={cpus}",
            "hydra.sweeper.n_trials=2",
            "hydra.sweeper.n_jobs=2",
            "sleep=600",
            "y=0",
            "x=interval(-5,5)",
        ],
        env=slurm_cluster.env,
        cwd=tmp_path,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        preexec_fn=default_sigint,
    )
    try:

        def ours() -> list[dict]:
            return [j for j in slurm_cluster.active_jobs() if j["job_id"] not in before]

        def started() -> list[Path]:
            return [p for p in (tmp_path / "out").glob("*/trial.json") if p.exists()]

        _wait(lambda: len(ours()) == 2, 120, "both jobs to be submitted", proc, log)
        _wait(lambda: len(started()) == running, 120, f"{running} job(s) to start", proc, log)
        states = sorted(j["state"] for j in ours())
        assert states.count("RUNNING") == running, states
        signalled = time.monotonic()
        proc.send_signal(signum)
        assert proc.wait(timeout=60) == 128 + signum, log.read_text()[-3000:]
        exited = time.monotonic() - signalled
        while ours() and time.monotonic() < signalled + 30:
            time.sleep(0.2)
        gone = time.monotonic() - signalled
        assert ours() == [], (ours(), log.read_text()[-3000:])
        print(f"{signum.name}: sweeper exited after {exited:.1f} s, jobs gone after {gone:.1f} s")
    finally:
        if proc.poll() is None:
            proc.kill()
        slurm_cluster.reset()
    out = log.read_text()
    assert "cancelled 2 SLURM job(s) of this sweep" in out, out[-3000:]
    trials = optuna.load_study(study_name="sphere", storage=db).trials
    # both interrupted trials FAIL, each with its continuation queued for the next run
    assert [t.state for t in trials] == [TrialState.FAIL] * 2 + [TrialState.WAITING] * 2
    assert sorted(t.user_attrs["retry_of"] for t in trials[2:]) == [0, 1]
    jobs = {json.loads(p.read_text())["job_id"] for p in (tmp_path / "out").glob("*/trial.json")}
    assert len(jobs) == running
    assert {slurm_cluster.state(j) for j in jobs} == {"CANCELLED"}
