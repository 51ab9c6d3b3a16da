"""Jobs really scheduled by a throw-away single-node SLURM cluster (``slurm_cluster.py``):
plain ``sbatch``, Hydra multiruns of a toy app through hydra-submitit-launcher (basic
sweeper), runs sharing one GPU through ``--gres=shard:1``, and ``scancel`` seen as CANCELLED
by sacct, submitit and Hydra: what the lab_optuna sweeper builds on."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from slurm_cluster import SlurmCluster

pytestmark = pytest.mark.slurm

TOY_APP = '''\
"""Toy Hydra app: records where it ran, sleeps ``sleep`` s, returns 10 * x."""
import json, os, time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig


@hydra.main(version_base="1.3", config_path=".", config_name="toy")
def main(cfg) -> int:
    out = Path(HydraConfig.get().runtime.output_dir)
    env = {k: os.environ.get(k) for k in
           ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURMD_NODENAME",
            "SLURM_JOB_PARTITION", "SLURM_CPUS_PER_TASK", "CUDA_VISIBLE_DEVICES",
            "SLURM_SHARDS_ON_NODE")}
    (out / "started.json").write_text(json.dumps(env))
    time.sleep(cfg.sleep)
    (out / "result.json").write_text(json.dumps({"x": cfg.x, **env}))
    return 10 * cfg.x


if __name__ == "__main__":
    main()
'''

# hydra-submitit-launcher's SLURM launcher sized for the test node.
LAUNCHER = (
    "hydra/launcher=submitit_slurm",
    "hydra.launcher.partition=lab",
    "hydra.launcher.gpus_per_node=0",
    "hydra.launcher.cpus_per_task=1",
    "hydra.launcher.mem_gb=1",
    "hydra.launcher.timeout_min=5",
)
# One GPU shard per run, as in the README's recipe: gpus_per_node must be null, not 0.
SHARD = ("hydra.launcher.gres=shard:1", "hydra.launcher.gpus_per_node=null")
SACCT_WARNING = "Bypassing sacct error"  # what submitit logs per poll when sacct fails


def _toy_app(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "toy.yaml").write_text("x: 0\nsleep: 0\n")
    app = directory / "toy_app.py"
    app.write_text(TOY_APP)
    return app


def _toy_cmd(app: Path, sweep_dir: Path, *overrides: str) -> list[str]:
    """``python toy_app.py -m LAUNCHER... overrides...`` (``overrides`` win)."""
    return [sys.executable, str(app), "-m", *LAUNCHER, f"hydra.sweep.dir={sweep_dir}", *overrides]


def _submitit_job_ids(sweep_dir: Path) -> list[str]:
    """The SLURM job ids of the runs (folders ``.submitit/<array>_<task>``; ``<array>`` holds
    the batch's submission)."""
    runs = (sweep_dir / ".submitit").iterdir()
    return sorted(p.name for p in runs if p.is_dir() and "_" in p.name)


def _wait_for_file(path: Path, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the sweep exited ({proc.returncode}) before {path} appeared")
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} did not appear within {timeout:.0f} s")
        time.sleep(0.2)


def test_sbatch_job_runs_and_is_accounted(slurm_cluster: SlurmCluster, tmp_path: Path):
    marker = tmp_path / "ran"
    job = slurm_cluster.sbatch(
        "--job-name=probe", "-c", "1", wrap=f"echo $SLURM_JOB_ID $SLURMD_NODENAME > {marker}"
    )
    assert slurm_cluster.wait_for(job, timeout=60) == "COMPLETED", slurm_cluster.log_tail()
    assert marker.read_text().split() == [job, slurm_cluster.node]
    rows = {r["JobID"]: r for r in slurm_cluster.sacct(job)}
    assert rows[job]["ExitCode"] == "0:0" and rows[f"{job}.batch"]["State"] == "COMPLETED"
    assert any(j["job_id"] == job and j["state"] == "COMPLETED" for j in slurm_cluster.jobs())


def test_hydra_multirun_through_slurm_launcher(slurm_cluster: SlurmCluster, tmp_path: Path):
    """``app.py -m x=1,2 hydra/launcher=slurm``: two SLURM jobs run the app and the sweep ends."""
    app, sweep = _toy_app(tmp_path / "app"), tmp_path / "sweep"
    start = time.monotonic()
    proc = subprocess.run(
        _toy_cmd(app, sweep, "x=1,2"),
        env=slurm_cluster.env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output + slurm_cluster.log_tail()
    results = [json.loads((sweep / str(i) / "result.json").read_text()) for i in (0, 1)]
    assert [r["x"] for r in results] == [1, 2]
    assert {r["SLURMD_NODENAME"] for r in results} == {slurm_cluster.node}
    assert {r["SLURM_JOB_PARTITION"] for r in results} == {slurm_cluster.partition}
    assert len({r["SLURM_JOB_ID"] for r in results}) == 2  # one job per run (an array)
    job_ids = _submitit_job_ids(sweep)
    assert job_ids == sorted(
        f"{r['SLURM_ARRAY_JOB_ID']}_{r['SLURM_ARRAY_TASK_ID']}" for r in results
    )
    assert [slurm_cluster.wait_for(j, timeout=30) for j in job_ids] == ["COMPLETED"] * 2
    assert SACCT_WARNING not in output  # accounting works: no warning per poll
    assert time.monotonic() - start < 120


def test_gpu_shards_let_trials_share_one_gpu(slurm_cluster: SlurmCluster, tmp_path: Path):
    """``gres=shard:1 gpus_per_node=null``: as many runs as the GPU has shards share it at
    once (same ``CUDA_VISIBLE_DEVICES``); the next waits for a shard (reason ``Resources``)."""
    n = slurm_cluster.gpu_shards
    assert slurm_cluster.cpus > n  # so that the shards, not the CPUs, are what runs out
    slurm_cluster.wait_idle()  # every shard free
    app, sweep = _toy_app(tmp_path / "app"), tmp_path / "sweep"
    xs = ",".join(str(i) for i in range(n + 1))
    cmd = _toy_cmd(app, sweep, f"x={xs}", "sleep=600", *SHARD)
    proc = subprocess.Popen(
        cmd,
        env=slurm_cluster.env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            started = [json.loads(p.read_text()) for p in sweep.glob("*/started.json")]
            states = sorted((j["state"], j["reason"]) for j in slurm_cluster.active_jobs())
            if len(started) >= n or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        time.sleep(3)  # the scheduler had its chance to start one more
        states = sorted((j["state"], j["reason"]) for j in slurm_cluster.active_jobs())
        started = [json.loads(p.read_text()) for p in sweep.glob("*/started.json")]
    finally:
        proc.kill()
        proc.wait()
        slurm_cluster.reset()
    assert states == [("PENDING", "Resources")] + [("RUNNING", "None")] * n, states
    assert len(started) == n
    assert {(s["CUDA_VISIBLE_DEVICES"], s["SLURM_SHARDS_ON_NODE"]) for s in started} == {("0", "1")}


def test_gpus_per_node_zero_hides_the_shard(slurm_cluster: SlurmCluster, tmp_path: Path):
    """``gres=shard:1`` with ``gpus_per_node=0`` (not null): sbatch gets ``--gpus-per-node=0``
    and submitit's ``srun`` step then has no GPU (no ``CUDA_VISIBLE_DEVICES``; with
    ``ConstrainDevices`` it could not open one): the README's recipe says null."""
    app, sweep = _toy_app(tmp_path / "app"), tmp_path / "sweep"
    cmd = _toy_cmd(app, sweep, "x=1", "hydra.launcher.gres=shard:1")  # LAUNCHER's 0 stays
    proc = subprocess.run(
        cmd, env=slurm_cluster.env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads((sweep / "0" / "result.json").read_text())
    assert result["CUDA_VISIBLE_DEVICES"] is None and result["SLURM_SHARDS_ON_NODE"] is None


def test_scancel_is_cancelled_in_sacct_and_submitit(slurm_env: SlurmCluster, tmp_path: Path):
    """A running submitit job killed with ``scancel``: sacct and submitit say CANCELLED and
    its result raises instead of waiting."""
    submitit = pytest.importorskip("submitit")
    executor = submitit.AutoExecutor(folder=tmp_path / "submitit", cluster="slurm")
    executor.update_parameters(
        slurm_partition=slurm_env.partition, timeout_min=5, cpus_per_task=1, mem_gb=1
    )
    job = executor.submit(time.sleep, 600)
    slurm_env.wait_running(job.job_id, timeout=60)
    slurm_env.cancel(job.job_id)
    assert slurm_env.wait_for(job.job_id, timeout=60) == "CANCELLED"
    assert job.watcher.get_state(job.job_id, mode="force").startswith("CANCELLED")
    assert job.done()
    job._results_timeout_s = 1  # submitit waits 15 s (slow NFS) for a result that never comes
    with pytest.raises(submitit.core.utils.UncompletedJobError, match="CANCELLED"):
        job.result()
    slurm_env.wait_idle(timeout=30)  # the node is free again (COMPLETING can linger a moment)


def test_scancel_ends_a_hydra_multirun(slurm_cluster: SlurmCluster, tmp_path: Path):
    """``scancel`` of one job of a basic-sweeper multirun: the sweep exits non-zero naming the
    CANCELLED state instead of hanging; hydra-submitit-launcher leaves the batch's other job
    running (what a sweeper built on it has to clean up)."""
    app, sweep = _toy_app(tmp_path / "app"), tmp_path / "sweep"
    cmd = _toy_cmd(app, sweep, "x=1,2", "sleep=600")
    log_path = tmp_path / "sweep.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            cmd, env=slurm_cluster.env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            for i in (0, 1):
                _wait_for_file(sweep / str(i) / "started.json", 90, proc)
            started = json.loads((sweep / "0" / "started.json").read_text())
            array = started["SLURM_ARRAY_JOB_ID"]
            slurm_cluster.cancel(f"{array}_0")
            assert slurm_cluster.wait_for(f"{array}_0", timeout=60) == "CANCELLED"
            proc.wait(timeout=120)
            others = {j["job_id"]: j["state"] for j in slurm_cluster.active_jobs()}
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            slurm_cluster.reset()
    output = log_path.read_text()
    assert proc.returncode != 0, output
    assert "CANCELLED" in output and SACCT_WARNING not in output, output
    assert others.get(f"{array}_1") == "RUNNING", others
    assert others.get(f"{array}_0") in (None, "COMPLETING"), others
