"""A throw-away single-node SLURM cluster, with job accounting, for the tests.

The session-scoped fixture ``slurm_cluster`` starts, as root, in a temp dir under ``/tmp``:
``munged`` (own key and socket), a MariaDB server (throw-away datadir, unix socket only, no
TCP), ``slurmdbd``, ``slurmctld`` and one ``slurmd`` (node ``lab1``), all on loopback ports
chosen free, and waits until the node is ``idle``. It stops them by PID at the end of the
session (jobs still queued are cancelled first; leftover job processes of this cluster are
killed by PID). Tests are skipped with the reason when it cannot run: not root, or a binary
missing (``.ci/run`` installs ``slurm-wlm``, ``munge``, ``slurmdbd``, ``mariadb-server``).
A daemon that fails to start fails the test with the tail of its log.

The cluster, as configured (``SlurmCluster.CONF_DEFAULTS``):

* one partition (``.partition``, ``lab``, the default) with one node of ``.cpus`` (8) CPUs
  whatever the machine has (``SlurmdParameters=config_overrides``), scheduling by CPU only
  (``CR_CPU``: ``--mem`` is checked against ``RealMemory`` 16000 MB but not consumed),
  ``MaxTime=INFINITE``;
* one fake GPU (``Gres=gpu:1``, device file ``/dev/null``) split into ``.gpu_shards`` (4)
  shards (``GresTypes=gpu,shard``): ``--gres=shard:1`` jobs share it, 4 at a time, each with
  ``CUDA_VISIBLE_DEVICES=0`` and ``SLURM_SHARDS_ON_NODE=1``; ``--gpus-per-node=1`` takes it
  whole. There is no CUDA device behind it (torch sees none), so it tests the scheduling
  only; ``gpus_per_node=0`` asks for none;
* ``ProctrackType=proctrack/linuxproc``, ``TaskPlugin=task/none`` (no cgroups),
  ``JobAcctGatherType=jobacct_gather/linux``,
  ``AccountingStorageType=accounting_storage/slurmdbd``: ``sacct`` works, as submitit needs;
* ``AuthInfo=...,cred_expire=30``: a requeued job (``scontrol requeue``, submitit's requeue at
  a time limit) may start again 30 s later (SLURM's default, and real clusters': 120 s);
* ``KillWait=5``: ``scancel`` sends SIGTERM, then SIGKILL 5 s later (real clusters: ~30 s);
  slurmctld checks time limits every 30 s: ``sbatch --time=1`` of ``sleep 600`` was TIMEOUT
  after 87 s (batch step CANCELLED, ``0:15``).

Measured on it, for the sweeper tests to build on:

* accounting lags: a job can be done for submitit (its result file is there) a moment before
  ``sacct`` lists it; poll with ``wait_for``. ``scancel`` → CANCELLED in sacct within ~0.3 s.
* submitit polls ``sacct`` 2, 4, 8, 16, … s after its last submission, and for a job that
  wrote no result (cancelled, killed) waits another 15 s (``job._results_timeout_s``) before
  ``job.result()`` raises ``UncompletedJobError`` naming the state (``CANCELLED by 0``).
* a time limit reaches a submitit job as its warning signal, before SLURM's TIMEOUT:
  hydra-submitit-launcher submits ``--signal=USR2@<signal_delay_s>`` (120), which slurmctld
  may send up to 60 s early (``man sbatch``). With ``timeout_min=1`` it came ~27 s in, with
  ``signal_delay_s`` 120 and 10 alike; submitit's handler calls the launcher's checkpoint,
  does not requeue (``max_num_timeout`` 0) and exits: sacct says COMPLETED, and the result
  raises ``UncompletedJobError: Job not requeued because: timed-out too many times.``.
* when one job of a batch fails, the basic sweeper's multirun raises at once and leaves the
  batch's other jobs running (``cluster.reset()`` cleans up).

API (all commands reach this cluster through ``SLURM_CONF``):

* ``cluster.env`` — a full environment (``os.environ`` as at the cluster's start +
  ``SLURM_CONF``) for ``subprocess``; ``sbatch`` passes it on to the jobs;
  ``cluster.extra_env`` only the added variables (e.g. ``run_train_subprocess(env=...)``);
  the function fixture ``slurm_env`` sets them in ``os.environ`` for in-process code.
* ``cluster.partition``, ``cluster.node``, ``cluster.cpus``, ``cluster.gpu_shards``,
  ``cluster.root`` (temp dir; ``sbatch`` output goes to ``root/jobs``).
* ``cluster.run(cmd, check=True, timeout=60)`` → ``CompletedProcess`` (text); ``cmd`` a list
  or a shell string.
* ``cluster.sbatch(*args, wrap=None)`` → job id (``sbatch --parsable``).
* ``cluster.jobs()`` → ``[{"job_id", "name", "state", "reason", "time", "nodes"}]``
  (``squeue``; states are long names: PENDING, RUNNING, COMPLETING, …).
* ``cluster.cancel(job_id, signal=None)`` (``scancel``).
* ``cluster.sacct(job_id)`` → rows ``{"JobID", "JobName", "State", "ExitCode", "Elapsed",
  "Timelimit"}``, the allocation first, then its steps (``.batch``, ``.0``, …);
  ``cluster.state(job_id)`` → the allocation's state (``CANCELLED by 0`` → ``CANCELLED``).
* ``cluster.wait_for(job_id, states, timeout=60)`` → the state once it is one of ``states``
  (sacct), else ``TimeoutError`` with the daemons' log tails.
* ``cluster.wait_running(job_id)``, ``cluster.wait_idle()`` (no job left, node idle),
  ``cluster.reset()`` (cancel every pending/running job, then ``wait_idle``): call it in a
  test's ``finally`` so the next test finds the node free.
* ``cluster.active_jobs()`` — ``jobs()`` that are pending, running, completing or suspended.
* ``cluster.log_tail(n=40)`` — the last lines of every daemon's log (for assert messages).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import ClassVar

import pytest

DAEMONS = ("munged", "mariadbd", "mariadb-install-db", "slurmdbd", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "sacct", "sacctmgr", "scancel", "scontrol", "sinfo", "srun")
SACCT_FIELDS = ("JobID", "JobName", "State", "ExitCode", "Elapsed", "Timelimit")
ACTIVE_STATES = frozenset({"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED"})
FINAL_STATES = frozenset(
    {
        "COMPLETED",
        "CANCELLED",
        "FAILED",
        "TIMEOUT",
        "OUT_OF_MEMORY",
        "NODE_FAIL",
        "PREEMPTED",
        "BOOT_FAIL",
        "DEADLINE",
    }
)


def _which(name: str) -> str | None:
    """``name`` on PATH or in the sbin dirs (root's PATH may lack them)."""
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin:/usr/local/sbin"
    return shutil.which(name, path=path)


def _free_ports(n: int) -> list[int]:
    """``n`` distinct loopback TCP ports free right now."""
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def missing_requirements() -> str | None:
    """Why the cluster cannot start here, or None."""
    if os.geteuid() != 0:
        return "the SLURM test cluster runs its daemons as root (not root here)"
    missing = [name for name in (*DAEMONS, "munge", *CLIENTS) if _which(name) is None]
    if missing:
        return (
            f"SLURM test cluster: {', '.join(missing)} not installed "
            "(apt-get install slurm-wlm munge slurmdbd mariadb-server; .ci/run does it)"
        )
    return None


class SlurmClusterError(RuntimeError):
    """A daemon of the test cluster did not come up."""


class SlurmCluster:
    """One slurmctld + one slurmd (+ slurmdbd, MariaDB, munged) under ``root``."""

    CLUSTER_NAME: ClassVar[str] = "lab"
    CONF_DEFAULTS: ClassVar[dict[str, str]] = {
        "ProctrackType": "proctrack/linuxproc",
        "TaskPlugin": "task/none",
        "JobAcctGatherType": "jobacct_gather/linux",
        "JobAcctGatherFrequency": "30",
        "AccountingStorageType": "accounting_storage/slurmdbd",
        "JobCompType": "jobcomp/none",
        "SchedulerType": "sched/backfill",
        "SelectType": "select/cons_tres",
        "SelectTypeParameters": "CR_CPU",
        "SlurmdParameters": "config_overrides",
        "ReturnToService": "2",
        "MpiDefault": "none",
        "SwitchType": "switch/none",
        "KillWait": "5",
        "MinJobAge": "300",
        "InactiveLimit": "0",
        "Waittime": "0",
        "SlurmctldDebug": "info",
        "SlurmdDebug": "info",
        "CommunicationParameters": "NoInAddrAny,NoCtldInAddrAny",  # bind to 127.0.0.1
    }

    def __init__(
        self,
        root: Path,
        cpus: int = 8,
        partition: str = "lab",
        node: str = "lab1",
        gpu_shards: int = 4,
        fake_gpu: str = "/dev/null",
    ):
        self.root = root
        self.cpus = cpus
        self.gpu_shards = gpu_shards
        self.fake_gpu = fake_gpu
        self.partition = partition
        self.node = node
        self.conf = root / "etc" / "slurm.conf"
        self.munge_socket = root / "munge" / "munge.socket"
        self.mysql_socket = root / "mysql" / "mysqld.sock"
        self.extra_env: dict[str, str] = {"SLURM_CONF": str(self.conf)}
        self.env: dict[str, str] = {**os.environ, **self.extra_env}
        self._procs: list[tuple[str, subprocess.Popen]] = []
        self._logs: dict[str, Path] = {}

    # ------------------------------------------------------------------ start / stop

    def start(self) -> None:
        """Write the configs and start every daemon; return once the node is idle."""
        self.root.chmod(0o755)  # munged wants its socket reachable by everyone
        for sub in ("etc", "munge", "mysql", "state", "spool", "log", "jobs"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        ctld_port, slurmd_port, dbd_port = _free_ports(3)
        self._start_munged()
        self._start_mariadb()
        self._write_configs(ctld_port, slurmd_port, dbd_port)
        self._start_slurmdbd(dbd_port)
        self.run(["sacctmgr", "-i", "add", "cluster", self.CLUSTER_NAME], timeout=60)
        ctld = self._spawn("slurmctld", [_which("slurmctld"), "-D", "-i", "-f", str(self.conf)])
        self._wait(
            lambda: self.run(["scontrol", "ping"], check=False).stdout.count("UP") > 0,
            "slurmctld answering scontrol ping",
            30,
            ctld,
        )
        slurmd = self._spawn(
            "slurmd", [_which("slurmd"), "-D", "-N", self.node, "-f", str(self.conf)]
        )
        self._wait(lambda: self.node_state() == "idle", f"node {self.node} idle", 60, slurmd)

    def stop(self) -> None:
        """Cancel what is left, stop the daemons (reverse order) and their job processes."""
        alive = {name for name, p in self._procs if p.poll() is None}
        if {"slurmctld", "slurmd"} <= alive:
            try:
                if self.active_jobs():
                    self.run(["scancel", "--full", "--partition", self.partition], check=False)
                    self._wait(lambda: not self.active_jobs(), "jobs gone", 30)
            except (SlurmClusterError, subprocess.SubprocessError, OSError):
                pass
        for _name, proc in reversed(self._procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        self._kill_leftovers()

    def _kill_leftovers(self) -> None:
        """SIGKILL, by PID, processes still carrying this cluster's SLURM_CONF (slurmstepd
        and job processes outlive slurmd); never this process."""
        marker = f"SLURM_CONF={self.conf}".encode()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                environ = (entry / "environ").read_bytes()
            except OSError:
                continue
            if marker in environ.split(b"\0"):
                try:
                    os.kill(int(entry.name), signal.SIGKILL)
                except OSError:
                    pass

    def _spawn(
        self,
        name: str,
        cmd: Sequence[str | None],
        env: dict[str, str] | None = None,
        log: Path | None = None,
    ) -> subprocess.Popen:
        """Start ``cmd`` in the foreground mode of the daemon; its output goes to its log."""
        log = log or self.root / "log" / f"{name}.log"
        self._logs.setdefault(name, log)
        out = (self.root / "log" / f"{name}.out").open("ab")
        proc = subprocess.Popen(
            [str(c) for c in cmd],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env or self.env,
            cwd=self.root,
            start_new_session=True,
        )
        out.close()
        self._procs.append((name, proc))
        return proc

    def _wait(self, ready, what: str, timeout: float, proc: subprocess.Popen | None = None):
        """Poll ``ready()`` every 0.2 s; raise with the log tails if ``proc`` dies or time ends."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if ready():
                    return
            except (SlurmClusterError, subprocess.SubprocessError, OSError):
                pass
            if proc is not None and proc.poll() is not None:
                raise SlurmClusterError(
                    f"{what}: the daemon exited ({proc.returncode})\n" + self.log_tail()
                )
            time.sleep(0.2)
        raise SlurmClusterError(
            f"timed out after {timeout:.0f} s waiting for {what}\n" + self.log_tail()
        )

    def _start_munged(self) -> None:
        key = self.root / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        d = self.root / "munge"
        proc = self._spawn(
            "munged",
            [
                _which("munged"),
                "-F",
                "--force",
                f"--socket={self.munge_socket}",
                f"--key-file={key}",
                f"--pid-file={d / 'munged.pid'}",
                f"--seed-file={d / 'munged.seed'}",  # logs to stderr (munged.out) with -F
            ],
        )
        self._wait(self.munge_socket.exists, "munged socket", 15, proc)

    def _start_mariadb(self) -> None:
        data = self.root / "mysql" / "data"
        log = self.root / "log" / "mariadb.log"
        self._logs["mariadb"] = log
        install = subprocess.run(
            [
                _which("mariadb-install-db"),
                "--no-defaults",
                f"--datadir={data}",
                "--user=root",
                "--auth-root-authentication-method=socket",
                "--skip-test-db",
                "--skip-name-resolve",
            ],
            capture_output=True,
            text=True,
            cwd=self.root,
            timeout=120,
        )
        if install.returncode != 0:
            raise SlurmClusterError(f"mariadb-install-db failed:\n{install.stdout}{install.stderr}")
        proc = self._spawn(
            "mariadbd",
            [
                _which("mariadbd"),
                "--no-defaults",
                f"--datadir={data}",
                "--user=root",
                f"--socket={self.mysql_socket}",
                "--skip-networking",
                f"--log-error={log}",
                f"--pid-file={self.root / 'mysql' / 'mariadbd.pid'}",
                "--skip-log-bin",
                "--innodb-buffer-pool-size=64M",
                "--innodb-lock-wait-timeout=900",
                "--innodb-flush-log-at-trx-commit=0",
                "--innodb-doublewrite=0",
                "--skip-name-resolve",
            ],
            log=log,
        )
        self._wait(self.mysql_socket.exists, "MariaDB socket", 60, proc)

    def _write_configs(self, ctld_port: int, slurmd_port: int, dbd_port: int) -> None:
        host = socket.gethostname().split(".")[0]
        r = self.root
        # cred_expire: how long a requeued job waits before it may start again (SLURM's
        # default 120 s; real clusters keep it): 30 s keeps the requeue tests short
        auth = f"AuthType=auth/munge\nAuthInfo=socket={self.munge_socket},cred_expire=30\n"
        settings = {
            "ClusterName": self.CLUSTER_NAME,
            "SlurmctldHost": f"{host}(127.0.0.1)",
            "SlurmctldPort": str(ctld_port),
            "SlurmdPort": str(slurmd_port),
            "SlurmUser": "root",
            "SlurmdUser": "root",
            "CredType": "cred/munge",
            "StateSaveLocation": str(r / "state"),
            "SlurmdSpoolDir": str(r / "spool"),
            "SlurmctldPidFile": str(r / "state" / "slurmctld.pid"),
            "SlurmdPidFile": str(r / "spool" / "slurmd.pid"),
            "SlurmctldLogFile": str(r / "log" / "slurmctld.log"),
            "SlurmdLogFile": str(r / "log" / "slurmd.log"),
            "PlugStackConfig": str(r / "etc" / "plugstack.conf"),
            "AccountingStorageHost": "127.0.0.1",
            "AccountingStoragePort": str(dbd_port),
            # slurm.conf's AuthInfo is not used towards slurmdbd: its munge socket goes here
            "AccountingStoragePass": str(self.munge_socket),
            **self.CONF_DEFAULTS,
        }
        lines = [auth.rstrip()] + [f"{k}={v}" for k, v in settings.items()]
        gres = ""
        if self.gpu_shards:
            lines.append("GresTypes=gpu,shard")
            gres = f" Gres=gpu:1,shard:{self.gpu_shards}"
            (r / "etc" / "gres.conf").write_text(
                f"NodeName={self.node} Name=gpu File={self.fake_gpu}\n"
                f"NodeName={self.node} Name=shard Count={self.gpu_shards}\n"
            )
        lines.append(
            f"NodeName={self.node} NodeHostname={host} NodeAddr=127.0.0.1 "
            f"CPUs={self.cpus} RealMemory=16000{gres} State=UNKNOWN"
        )
        lines.append(
            f"PartitionName={self.partition} Nodes={self.node} Default=YES "
            "MaxTime=INFINITE State=UP"
        )
        self.conf.write_text("\n".join(lines) + "\n")
        (r / "etc" / "plugstack.conf").write_text("")
        dbd = self.conf.with_name("slurmdbd.conf")
        dbd_settings = {
            "DbdHost": host,
            "DbdAddr": "127.0.0.1",
            "DbdPort": str(dbd_port),
            "SlurmUser": "root",
            "PidFile": str(r / "state" / "slurmdbd.pid"),
            "LogFile": str(r / "log" / "slurmdbd.log"),
            "CommunicationParameters": "NoInAddrAny",
            "DebugLevel": "info",
            "StorageType": "accounting_storage/mysql",
            "StorageHost": "localhost",  # the unix socket in MYSQL_UNIX_PORT
            "StorageUser": "root",
            "StorageLoc": "slurm_acct_db",
        }
        dbd.write_text(auth + "".join(f"{k}={v}\n" for k, v in dbd_settings.items()))
        dbd.chmod(0o600)  # slurmdbd refuses a config others can read

    def _start_slurmdbd(self, port: int) -> None:
        env = {**self.env, "MYSQL_UNIX_PORT": str(self.mysql_socket)}
        proc = self._spawn(
            "slurmdbd", [_which("slurmdbd"), "-D"], env=env, log=self.root / "log" / "slurmdbd.log"
        )

        def listening() -> bool:
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0

        self._wait(listening, "slurmdbd listening", 90, proc)

    # ------------------------------------------------------------------ client helpers

    def run(
        self, cmd: Sequence[str] | str, check: bool = True, timeout: float = 60, **kw
    ) -> subprocess.CompletedProcess:
        """Run ``cmd`` (list, or a shell string) against this cluster; text output."""
        proc = subprocess.run(
            cmd,
            shell=isinstance(cmd, str),
            env=self.env,
            text=True,
            capture_output=True,
            timeout=timeout,
            **kw,
        )
        if check and proc.returncode != 0:
            raise SlurmClusterError(
                f"{cmd!r} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}"
            )
        return proc

    def sbatch(self, *args: str, wrap: str | None = None) -> str:
        """Submit (``sbatch --parsable [args] [--wrap=...]``); return the job id. The output
        goes to ``<root>/jobs/slurm-<id>.out`` unless ``args`` choose."""
        out = (
            []
            if any(a.startswith(("-o", "--output")) for a in args)
            else [f"--output={self.root / 'jobs' / 'slurm-%j.out'}"]
        )
        cmd = ["sbatch", "--parsable", *out, *args] + ([f"--wrap={wrap}"] if wrap else [])
        return self.run(cmd).stdout.strip().split(";")[0]

    def jobs(self) -> list[dict[str, str]]:
        """Jobs slurmctld knows and has not purged from ``squeue`` (every state)."""
        out = self.run(["squeue", "-h", "--states=all", "-o", "%i|%j|%T|%r|%M|%N"]).stdout
        keys = ("job_id", "name", "state", "reason", "time", "nodes")
        return [dict(zip(keys, line.split("|"))) for line in out.splitlines() if line.strip()]

    def active_jobs(self) -> list[dict[str, str]]:
        """``jobs()`` that are pending, running, completing or suspended."""
        return [j for j in self.jobs() if j["state"] in ACTIVE_STATES]

    def cancel(self, job_id: str, signal: str | None = None) -> None:
        """``scancel job_id`` (``--signal=...`` too when given)."""
        self.run(["scancel", *([f"--signal={signal}"] if signal else []), str(job_id)])

    def sacct(self, job_id: str) -> list[dict[str, str]]:
        """The accounting rows of ``job_id``: the allocation, then its steps."""
        out = self.run(
            ["sacct", "-n", "-P", "-j", str(job_id), "-o", ",".join(SACCT_FIELDS)]
        ).stdout
        return [dict(zip(SACCT_FIELDS, line.split("|"))) for line in out.splitlines() if line]

    def state(self, job_id: str) -> str | None:
        """The allocation's state in accounting (first word: ``CANCELLED by 0`` → CANCELLED)."""
        rows = [r for r in self.sacct(job_id) if r["JobID"] == str(job_id)]
        return rows[0]["State"].split()[0] if rows else None

    def wait_for(
        self, job_id: str, states: Sequence[str] | str = FINAL_STATES, timeout: float = 60
    ) -> str:
        """Poll sacct until ``job_id``'s state is one of ``states``; return it."""
        wanted = {states} if isinstance(states, str) else set(states)
        seen: list[str | None] = [None]

        def reached() -> bool:
            seen[0] = self.state(job_id)
            return seen[0] in wanted

        try:
            self._wait(reached, f"job {job_id} in {sorted(wanted)}", timeout)
        except SlurmClusterError as exc:
            raise TimeoutError(f"job {job_id} still {seen[0]}: {exc}") from None
        return seen[0]  # type: ignore[return-value]

    def wait_running(self, job_id: str, timeout: float = 60) -> str:
        return self.wait_for(job_id, "RUNNING", timeout)

    def node_state(self) -> str:
        """``sinfo``'s state of the node (idle, mixed, allocated, down*, drained, …)."""
        return self.run(["sinfo", "-h", "-n", self.node, "-o", "%T"]).stdout.strip()

    def wait_idle(self, timeout: float = 60) -> None:
        """Until no job is pending or running and the node is idle."""
        self._wait(
            lambda: not self.active_jobs() and self.node_state() == "idle", "cluster idle", timeout
        )

    def reset(self, timeout: float = 60) -> None:
        """Cancel every pending or running job and wait until the node is idle again."""
        if self.active_jobs():
            self.run(["scancel", "--partition", self.partition])
        self.wait_idle(timeout)

    def log_tail(self, n: int = 40) -> str:
        """The last ``n`` lines of each daemon's log and console output."""
        parts = []
        for path in sorted({*self._logs.values(), *(self.root / "log").glob("*.out")}):
            try:
                lines = path.read_text(errors="replace").splitlines()[-n:]
            except OSError:
                continue
            if lines:
                parts.append(f"--- {path.name}\n" + "\n".join(lines))
        return "\n".join(parts)


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[SlurmCluster]:
    """A running single-node cluster with accounting (see the module docstring)."""
    reason = missing_requirements()
    if reason:
        pytest.skip(reason)
    cluster = SlurmCluster(Path(tempfile.mkdtemp(prefix="lab-slurm-", dir="/tmp")))
    try:
        try:
            cluster.start()
        except SlurmClusterError as exc:
            pytest.fail(f"the SLURM test cluster did not start: {exc}", pytrace=False)
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(cluster.root, ignore_errors=True)


@pytest.fixture
def slurm_env(monkeypatch, slurm_cluster: SlurmCluster) -> SlurmCluster:
    """``slurm_cluster`` with its variables also in this process's ``os.environ``."""
    for key, value in slurm_cluster.extra_env.items():
        monkeypatch.setenv(key, value)
    return slurm_cluster
