"""The lab_optuna sweeper on a SLURM cluster of three nodes, each behind its own network
address (``slurm_multinode.py``): the nodes are separate machines on a link, a sweep spreads
over them with its study in PostgreSQL on the host's link address or in a journal file on the
shared filesystem, and a node lost mid-sweep: its trials continue on the others from their
last checkpoint, and the node, back, takes work again."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from conftest import TOY_APP as APP
from conftest import wait_while_running
from lab_optuna._storage.connect import make_storage
from pg_server import throwaway_postgres
from slurm_multinode import MultiNodeCluster

pytestmark = pytest.mark.multinode
LAUNCHER = (
    "hydra/launcher=submitit_slurm",
    "hydra.launcher.partition=lab",
    "hydra.launcher.cpus_per_task=1",
    "hydra.launcher.mem_gb=1",
    "hydra.launcher.timeout_min=10",
)
BEATS = ("hydra.sweeper.heartbeat_interval=1", "hydra.sweeper.grace_period=10")
optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(scope="module")
def link_postgres(multinode_cluster: MultiNodeCluster):
    """PostgreSQL listening on the host's address on the cluster's link (not loopback), trusting
    the nodes' network: the only address a job on a node can reach it at."""
    subnet = multinode_cluster.host_addr.rsplit(".", 1)[0] + ".0/24"
    with throwaway_postgres(listen=multinode_cluster.host_addr, allow=subnet) as server:
        yield server


def cmd(tmp: Path, storage: str, *overrides: str) -> list[str]:
    return [
        sys.executable,
        str(APP),
        "-m",
        f"hydra.sweep.dir={tmp / 'out'}",
        f"hydra.sweeper.storage={storage}",
        *LAUNCHER,
        *BEATS,
        *overrides,
    ]


def trials(storage: str, study: str = "sphere") -> list[optuna.trial.FrozenTrial]:
    try:
        return optuna.load_study(study_name=study, storage=make_storage(storage)).trials
    except KeyError:
        return []


def node_of(trial: optuna.trial.FrozenTrial) -> str | None:
    """The node a trial's (last) job ran on: its ``host`` user attribute is ``<node>:<pid>``."""
    host = trial.user_attrs.get("host")
    return host.split(":")[0] if host else None


def job_ids(tmp: Path) -> set[str]:
    """The SLURM jobs of a sweep (every trial's trial.json)."""
    return {json.loads(p.read_text())["job_id"] for p in (tmp / "out").glob("*/trial.json")} - {
        None
    }


def test_the_nodes_are_machines_on_a_private_link(multinode_cluster: MultiNodeCluster):
    """slurmctld listens on the host's link address only; a job on each node sees the node's
    name as its hostname and its own address, and reaches the controller's address."""
    c = multinode_cluster
    conf = dict(line.split("=", 1) for line in c.conf.read_text().splitlines() if "=" in line)
    port = int(conf["SlurmctldPort"])
    with socket.socket() as s:
        assert s.connect_ex((c.host_addr, port)) == 0
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0  # not on loopback
    probe = (
        "hostname; ip -4 -o addr show scope global | awk '{print $4}'; "
        f"python3 -c 'import socket; socket.create_connection((\"{c.host_addr}\", {port}), 5)'"
        " && echo reached"
    )
    try:
        ids = {n: c.sbatch(f"--nodelist={n}", "--cpus-per-task=1", wrap=probe) for n in c.nodes}
        for node, job in ids.items():
            assert c.wait_for(job, timeout=60) == "COMPLETED", c.log_tail()
            out = (c.root / "jobs" / f"slurm-{job}.out").read_text().split()
            assert out == [node, f"{c.addr[node]}/24", "reached"], out
            assert c.nodes_of(job) == node
    finally:
        c.reset()


@pytest.mark.parametrize("storage", ["postgres", "journal"])
def test_a_sweep_spreads_over_the_nodes(
    multinode_cluster: MultiNodeCluster, link_postgres, tmp_path, storage
):
    """Three jobs at a time on three idle nodes: the trials run on several nodes (sacct and
    the trials' ``host`` agree), every trial finishes, nothing is left RUNNING or queued."""
    c = multinode_cluster
    url = (
        link_postgres.url  # the link address, not loopback
        if storage == "postgres"
        else f"journal:///{c.root / 'shared' / f'{tmp_path.name}.journal'}"
    )
    study = f"spread_{storage}_{tmp_path.name[-8:]}"
    (c.root / "shared").mkdir(exist_ok=True)
    try:
        proc = subprocess.run(
            cmd(
                tmp_path,
                url,
                f"hydra.sweeper.study_name={study}",
                "hydra.sweeper.n_trials=6",
                "hydra.sweeper.n_jobs=3",
                "steps=3",
                "step_sleep=1",
            ),
            env=c.env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        c.reset()
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:] + c.log_tail()
    if storage == "postgres":
        assert c.host_addr in url and "127.0.0.1" not in url
    found = trials(url, study)
    assert len(found) == 6 and {t.state for t in found} == {TrialState.COMPLETE}
    hosts = {node_of(t) for t in found}
    assert hosts <= set(c.nodes) and len(hosts) >= 2, hosts
    jobs = job_ids(tmp_path)
    assert len(jobs) == 6
    ran_on = {j: c.nodes_of(j) for j in jobs}
    assert set(ran_on.values()) <= set(c.nodes) and len(set(ran_on.values())) >= 2, ran_on
    for t in found:  # sacct and the trial say the same node
        record = json.loads((tmp_path / "out" / str(t.number) / "trial.json").read_text())
        assert ran_on[record["job_id"]] == node_of(t)
    assert not c.active_jobs()


STEPS = 12


def test_a_lost_node_s_trials_continue_on_the_others(
    multinode_cluster: MultiNodeCluster, link_postgres, tmp_path
):
    """A node disappears while three resumable trials run (its slurmd, job steps and every
    process of its namespace SIGKILLed, the node marked down): its trial continues on another
    node from its last checkpoint (not from step 0), the sweep finishes its budget, no
    finished trial is lost, none is left RUNNING; the node, back, takes work again."""
    c = multinode_cluster
    url, study = link_postgres.url, f"lost_{tmp_path.name[-8:]}"
    n_trials = 5
    log = (tmp_path / "sweep.log").open("w")
    proc = subprocess.Popen(
        cmd(
            tmp_path,
            url,
            f"hydra.sweeper.study_name={study}",
            f"hydra.sweeper.n_trials={n_trials}",
            "hydra.sweeper.n_jobs=3",
            "checkpoint=true",
            f"steps={STEPS}",
            "step_sleep=1",
        ),
        env=c.env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    victim: dict = {}

    def one_well_under_way() -> bool:
        for t in trials(url, study):
            if t.state == TrialState.RUNNING and node_of(t) and len(t.intermediate_values) >= 3:
                victim.update(number=t.number, node=node_of(t))
                return True
        return False

    try:
        wait_while_running(one_well_under_way, 180, "a trial 3 steps in", proc)
        node = victim["node"]
        c.lose_node(node)
        lost_at = len(trials(url, study)[victim["number"]].intermediate_values)
        finished_before = {
            t.number: t.value for t in trials(url, study) if t.state == TrialState.COMPLETE
        }
        assert not c.node_pids(node)
        assert proc.wait(timeout=400) == 0, (tmp_path / "sweep.log").read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
        c.reset(timeout=120)
    found = trials(url, study)
    by_number = {t.number: t for t in found}
    sweep_log = (tmp_path / "sweep.log").read_text()
    assert not [t.number for t in found if t.state == TrialState.RUNNING]
    for number, value in finished_before.items():  # no finished trial lost
        assert by_number[number].state == TrialState.COMPLETE and by_number[number].value == value
    complete = [t for t in found if t.state == TrialState.COMPLETE]
    assert len(complete) == n_trials, [(t.number, t.state, t.user_attrs) for t in found]
    # the lost trial, continued: the same trial (its job requeued by SLURM) or a continuation
    # (retry_of) in a new job, on another node, from its checkpoint
    lineage = [
        t
        for t in found
        if t.number == victim["number"] or t.user_attrs.get("retry_of") == victim["number"]
    ]
    last = lineage[-1]
    detail = (victim, lost_at, [(t.number, t.state, t.user_attrs) for t in lineage])
    assert last.state == TrialState.COMPLETE, detail
    assert node_of(last) != node, detail
    assert last.user_attrs.get("resumed_at", 0) >= max(lost_at - 1, 1), detail + (
        sweep_log[-2000:],
    )
    assert sorted(last.intermediate_values) == list(range(STEPS)), detail
    # the node comes back and takes work again
    c.restore_node(node)
    again = subprocess.run(
        cmd(
            tmp_path,
            url,
            f"hydra.sweeper.study_name={study}",
            "hydra.sweeper.n_trials=3",
            "hydra.sweeper.n_jobs=3",
            "steps=2",
            "step_sleep=1",
        ),
        env=c.env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    c.reset()
    assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    new = [t for t in trials(url, study) if t.number not in by_number]
    assert len(new) == 3 and {t.state for t in new} == {TrialState.COMPLETE}
    assert node in {node_of(t) for t in new}, [node_of(t) for t in new]


def test_the_database_restarted_while_jobs_on_several_nodes_write(
    multinode_cluster: MultiNodeCluster, link_postgres, tmp_path
):
    """``pg_ctl restart`` (3 s down) while trials on several nodes report a step a second
    and beat: the jobs (on at least two nodes) and the sweeper wait for the server and go on;
    every trial COMPLETE with its whole curve, none RUNNING."""
    c = multinode_cluster
    url, study = link_postgres.url, f"blink_{tmp_path.name[-8:]}"
    log = (tmp_path / "sweep.log").open("w")
    proc = subprocess.Popen(
        cmd(
            tmp_path,
            url,
            f"hydra.sweeper.study_name={study}",
            "hydra.sweeper.n_trials=6",
            "hydra.sweeper.n_jobs=3",
            "steps=8",
            "step_sleep=1",
        ),
        env=c.env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    writing: set = set()

    def several_nodes_writing() -> bool:
        try:
            running = [
                t
                for t in trials(url, study)
                if t.state == TrialState.RUNNING and node_of(t) and t.intermediate_values
            ]
        except Exception:  # noqa: BLE001 - the study not created yet
            return False
        writing.clear()
        writing.update(node_of(t) for t in running)
        return len(writing) >= 2

    try:
        wait_while_running(several_nodes_writing, 120, "trials on two nodes reporting", proc)
        link_postgres.restart(down_s=3)
        assert proc.wait(timeout=300) == 0, (tmp_path / "sweep.log").read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
        c.reset()
    found = trials(url, study)
    detail = [(t.number, t.state, node_of(t), t.user_attrs.get("fail_reason")) for t in found]
    assert len(found) == 6 and {t.state for t in found} == {TrialState.COMPLETE}, detail
    assert all(sorted(t.intermediate_values) == list(range(8)) for t in found), detail
    waited = {  # jobs that met the outage, waited and went on (their own log says so)
        node_of(t)
        for t in found
        if "is back after" in (tmp_path / "out" / str(t.number) / "sphere.log").read_text()
    }
    assert len(waited) >= 2, (writing, waited)
