"""The lab_optuna sweeper on a real (single-node) SLURM cluster (``slurm_cluster.py``),
through hydra-submitit-launcher: a sweep of the toy app with PostgreSQL storage as on a real
cluster, pruning across jobs, a ``scancel``led job, a trial three times its job's time limit
(continued across jobs, or across requeues of one job) and a job requeued while it runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from conftest import TOY_APP as APP
from conftest import wait_while_running
from lab_optuna._loop.verdicts import STALE
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
        wait_while_running(started.exists, 120, "trial 0's job to start", proc)
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


#: A resumable trial three times as long as a 1-minute time limit (SLURM sends the time
#: limit's warning signal 27-57 s into a job: ``slurm_cluster.py``).
LONG_TRIAL = ("checkpoint=true", "steps=36", "step_sleep=5", "x=3.0", "y=0")
BEATS = ("hydra.sweeper.heartbeat_interval=2", "hydra.sweeper.grace_period=20")


@pytest.mark.parametrize(
    "max_num_timeout",
    [0, pytest.param(10, id="requeued-by-submitit")],
    ids=lambda n: f"max_num_timeout={n}",
)
def test_a_trial_three_times_its_time_limit_finishes(
    slurm_cluster: SlurmCluster, tmp_path, max_num_timeout
):
    """max_num_timeout=0: each time limit ends the job; the sweeper continues the trial in a
    new attempt, from its checkpoint. 10: submitit requeues the same job, which runs the same
    trial again; the sweeper keeps it alive (beats) while the job waits in the queue. Either
    way the trial finishes with the uninterrupted result and one unbroken curve."""
    db = f"sqlite:///{tmp_path / 'optuna.db'}"
    try:
        proc = subprocess.run(
            cmd(
                tmp_path,
                db,
                "hydra.sweeper.n_trials=1",
                "hydra.sweeper.n_jobs=1",
                "hydra.launcher.timeout_min=1",
                "hydra.launcher.signal_delay_s=10",
                f"hydra.launcher.max_num_timeout={max_num_timeout}",
                *BEATS,
                *LONG_TRIAL,
            ),
            env=slurm_cluster.env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=900,
        )
    finally:
        slurm_cluster.reset()
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    found = trials(db)
    last = found[-1]
    assert last.state == TrialState.COMPLETE and last.value == 9.0  # x=3, y=0: uninterrupted
    assert sorted(last.intermediate_values) == list(range(36))
    assert last.user_attrs["resumed_at"] > 0  # the last job continued from a checkpoint
    assert not [t for t in found if t.state == TrialState.RUNNING]
    if max_num_timeout == 0:  # one trial per job: the first ends at its time limit
        assert len(found) >= 3, [(t.state, t.user_attrs) for t in found]
        # the time limit as the job's end, or its silence once killed (Optuna's stale check
        # on the database, which records no fail_reason): whichever the sweeper saw first
        reason = found[0].user_attrs.get("fail_reason") or found[1].user_attrs["retry_reason"]
        assert reason.startswith("time limit") or reason == STALE, reason
        assert all(t.user_attrs.get("retry_of") == 0 for t in found[1:])
        steps = [t.user_attrs["continued_from_step"] for t in found[1:]]
        assert steps == sorted(steps) and len(set(steps)) == len(steps)  # progress each time
    else:  # the same trial all along, never failed as stale while its job waited
        assert len(found) == 1, [(t.state, t.user_attrs) for t in found]


def test_a_requeued_job_resumes_its_trial(slurm_cluster: SlurmCluster, tmp_path):
    """``scontrol requeue`` of a running trial's job (what a preemption does): the job is
    killed and queued again; its trial is not failed as stale while it waits, and when the job
    runs again it continues the same trial from its checkpoint."""
    db = f"sqlite:///{tmp_path / 'optuna.db'}"
    log = (tmp_path / "sweep.log").open("w")
    proc = subprocess.Popen(
        cmd(
            tmp_path,
            db,
            "hydra.sweeper.n_trials=1",
            "hydra.sweeper.n_jobs=1",
            *BEATS,
            "checkpoint=true",
            "steps=16",
            "step_sleep=1",
            "x=3.0",
            "y=0",
        ),
        env=slurm_cluster.env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_while_running(lambda: len(_reported(db)) >= 4, 120, "4 steps reported", proc)
        first = json.loads((tmp_path / "out" / "0" / "trial.json").read_text())
        slurm_cluster.run(["scontrol", "requeue", first["job_id"]])
        assert proc.wait(timeout=400) == 0, (tmp_path / "sweep.log").read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
        slurm_cluster.reset()
    (trial,) = trials(db)
    assert trial.state == TrialState.COMPLETE and trial.value == 9.0
    assert trial.user_attrs["resumed_at"] >= 4 - 1  # at most the step it was in is lost
    assert sorted(trial.intermediate_values) == list(range(16))
    again = json.loads((tmp_path / "out" / "0" / "trial.json").read_text())
    assert again["job_id"] == first["job_id"] and again["host"] != first["host"]  # ran again
    rows = slurm_cluster.sacct(first["job_id"])
    assert any("REQUEUE" in r["State"] for r in rows) or len(rows) > 1, rows


def _reported(storage: str) -> dict:
    found = trials(storage)
    return found[0].intermediate_values if found else {}
