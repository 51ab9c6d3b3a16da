"""A throw-away SLURM cluster of several nodes on one machine, each node behind its own
network address, for the tests (fixture ``multinode_cluster``, module scope).

What ``slurm_cluster.py`` starts (munged, MariaDB, slurmdbd, slurmctld, by PID in a temp dir
under ``/tmp``), with three compute nodes instead of one:

* a private link the fixture creates: a bridge on the host with the address ``10.77.X.1/24``
  (X: the first 10.77.X.0/24 that no interface of this machine uses) and, per node, a network
  namespace with a veth pair into the bridge and the address ``10.77.X.(10+i)``. Only these
  addresses are used: slurmctld listens on the host's address on the link (not loopback),
  each node's ``NodeAddr`` is its namespace's address;
* each node's ``slurmd -N <node>`` runs inside its namespace (``nsenter --net``) and its own
  UTS namespace whose hostname is the node's name: a job on ``node2`` sees ``node2`` as its
  host (the sweeper's user attribute ``host``), reaches the host only at ``.host_addr`` (a
  server for the jobs listens there, never on 127.0.0.1, which is the namespace's own);
* per node spool, pid file and log (``SlurmdSpoolDir=<root>/spool/%n``, ``log/slurmd-%n.log``);
  munge is shared (its socket is a file: every namespace reaches it), so is the filesystem
  (``.root``: a journal storage or the checkpoints there are seen by every node);
* the partition schedules the least loaded node first (``LLN=YES``): three jobs of one CPU on
  three idle nodes run on three nodes; ``.cpus`` CPUs per node (default 2);
* ``AuthInfo=...,cred_expire=30``: a job requeued after its node failed may start again 30 s
  later (SLURM's default, and real clusters': 120 s).

Teardown (also after a failed test or a failed start) by PID and by name: jobs cancelled, the
daemons stopped in reverse order, every process left in a node's namespace killed, the
namespaces, veth pairs and the bridge deleted. Names carry the pytest process's PID in hex
(``labmn-<pid>-node1``, bridge ``lmb<pid>``): a later start deletes those a killed session
left behind. Skipped with the reason when not root, a binary is missing or a namespace cannot
be created.

API beyond ``SlurmCluster``'s: ``.nodes`` (names), ``.addr[node]``, ``.host_addr``,
``.netns[node]``, ``node_state(node)``, ``node_pids(node)`` (every process in its namespace),
``lose_node(node)`` (what a node's crash leaves: its slurmd, job steps and every process of
its namespace SIGKILLed, then ``scontrol update state=down reason=lost``), ``restore_node(node)``
(slurmd started again, ``state=resume``, until the node is idle), ``nodes_of(job_id)``
(sacct's NodeList of the allocation), ``in_netns(node, cmd)``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from slurm_cluster import SlurmCluster, SlurmClusterError, _free_ports, _which, missing_requirements

NETNS_PREFIX = "labmn"
NET_TOOLS = ("ip", "nsenter", "unshare", "hostname", "mount")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([_which("ip") or "ip", *args], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise SlurmClusterError(f"ip {' '.join(args)}: {proc.stderr.strip()}")
    return proc


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _kill_pids(pids: Sequence[int]) -> None:
    for pid in pids:
        if pid != os.getpid():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def netns_pids(name: str) -> list[int]:
    """Every process in the network namespace ``name`` (``ip netns pids``)."""
    out = _ip("netns", "pids", name, check=False).stdout
    return [int(p) for p in out.split() if p.isdigit()]


def delete_network(tag: str) -> None:
    """Kill what runs in the namespaces named with ``tag`` and delete them, their veth ends
    and the bridge ``lmb<tag>`` (each only if present)."""
    names = [n for n in _netns_list() if n.startswith(f"{NETNS_PREFIX}-{tag}-")]
    for name in names:
        for _ in range(50):
            pids = netns_pids(name)
            if not pids:
                break
            _kill_pids(pids)
            time.sleep(0.1)
        _ip("netns", "del", name, check=False)  # its veth end goes with it, and the pair
    links = _ip("-o", "link", "show", check=False).stdout
    for link in re.findall(r"^\d+: ([^:@\s]+)", links, flags=re.M):
        if link == f"lmb{tag}" or link.startswith(f"lmv{tag}h"):
            _ip("link", "del", link, check=False)


def _netns_list() -> list[str]:
    out = _ip("netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def delete_stale_networks() -> None:
    """Delete the namespaces and links of earlier sessions whose pytest process is gone."""
    for name in _netns_list():
        m = re.fullmatch(rf"{NETNS_PREFIX}-([0-9a-f]+)-\w+", name)
        if m and not _alive(int(m.group(1), 16)):
            delete_network(m.group(1))


def _free_subnet() -> int:
    """The first X in 1..254 such that no interface here has an address in 10.77.X.0/24."""
    used = set(re.findall(r"inet 10\.77\.(\d+)\.", _ip("-o", "-4", "addr", check=False).stdout))
    for x in range(1, 255):
        if str(x) not in used:
            return x
    raise SlurmClusterError("no free 10.77.X.0/24 subnet")


def missing_multinode_requirements() -> str | None:
    """Why the multi-node cluster cannot start here, or None."""
    reason = missing_requirements()
    if reason:
        return reason
    missing = [name for name in NET_TOOLS if _which(name) is None]
    if missing:
        return (
            f"multi-node SLURM cluster: {', '.join(missing)} not installed "
            "(apt-get install iproute2 util-linux mount)"
        )
    return None


class MultiNodeCluster(SlurmCluster):
    """slurmctld (+ slurmdbd, MariaDB, munged) on the host, one slurmd per node in its own
    network namespace on a private link (see the module docstring)."""

    def __init__(self, root: Path, n_nodes: int = 3, cpus: int = 2, partition: str = "lab"):
        nodes = [f"node{i}" for i in range(1, n_nodes + 1)]
        super().__init__(root, cpus=cpus, partition=partition, node=nodes[0], gpu_shards=0)
        self.nodes = nodes
        self.tag = f"{os.getpid():x}"
        self.netns = {n: f"{NETNS_PREFIX}-{self.tag}-{n}" for n in nodes}
        self.bridge = f"lmb{self.tag}"
        self.ctld_name = "labctl"  # the controller's hostname (its own UTS namespace)
        self.subnet: int | None = None
        self.host_addr = ""
        self.addr: dict[str, str] = {}
        self.slurmd: dict[str, subprocess.Popen] = {}

    # ------------------------------------------------------------------ network

    def create_network(self) -> None:
        """The bridge with the host's address and one namespace + veth pair per node."""
        delete_stale_networks()
        self.subnet = _free_subnet()
        net = f"10.77.{self.subnet}"
        self.host_addr = f"{net}.1"
        self.addr = {n: f"{net}.{10 + i}" for i, n in enumerate(self.nodes, start=1)}
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.host_addr}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for i, node in enumerate(self.nodes, start=1):
            ns, host_end, node_end = self.netns[node], f"lmv{self.tag}h{i}", f"lmv{self.tag}n{i}"
            _ip("netns", "add", ns)
            _ip("link", "add", host_end, "type", "veth", "peer", "name", node_end)
            _ip("link", "set", node_end, "netns", ns)
            _ip("link", "set", host_end, "master", self.bridge)
            _ip("link", "set", host_end, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "addr", "add", f"{self.addr[node]}/24", "dev", node_end)
            _ip("-n", ns, "link", "set", node_end, "up")

    def in_netns(self, node: str, cmd: Sequence[str]) -> list[str]:
        """``cmd`` run inside ``node``'s network namespace, with its hostname and the
        cluster's hosts file."""
        # nsenter, not ``ip netns exec``: that remounts /sys, and slurmd needs the cgroup
        # filesystem under it
        netns = f"--net=/run/netns/{self.netns[node]}"
        return [_which("nsenter") or "nsenter", netns, *self._as_host(node, cmd)]

    def _as_host(self, name: str, cmd: Sequence[str]) -> list[str]:
        """``cmd`` in its own UTS and mount namespaces: hostname ``name``, ``/etc/hosts`` the
        cluster's (``<root>/etc/hosts``: the controller and the nodes at their link
        addresses), so that a daemon binds to the address its name resolves to."""
        script = 'mount --bind "$1" /etc/hosts && hostname "$0" && shift && exec "$@"'
        return [
            _which("unshare") or "unshare",
            "--uts",
            "--mount",
            "sh",
            "-c",
            script,
            name,
            str(self.root / "etc" / "hosts"),
            *[str(c) for c in cmd],
        ]

    def node_pids(self, node: str) -> list[int]:
        """Every process in ``node``'s namespace: its slurmd, slurmstepds, the jobs."""
        return netns_pids(self.netns[node])

    # ------------------------------------------------------------------ start / stop

    def start(self) -> None:
        self.root.chmod(0o755)
        for sub in ("etc", "munge", "mysql", "state", "spool", "log", "jobs"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        for node in self.nodes:
            (self.root / "spool" / node).mkdir(exist_ok=True)
        self.create_network()
        ctld_port, slurmd_port, dbd_port = _free_ports(3)
        self._start_munged()
        self._start_mariadb()
        self._write_configs(ctld_port, slurmd_port, dbd_port)
        self._start_slurmdbd(dbd_port)
        self.run(["sacctmgr", "-i", "add", "cluster", self.CLUSTER_NAME], timeout=60)
        ctld = self._spawn(
            "slurmctld",
            self._as_host(self.ctld_name, [_which("slurmctld"), "-D", "-i", "-f", str(self.conf)]),
        )
        self._wait(
            lambda: self.run(["scontrol", "ping"], check=False).stdout.count("UP") > 0,
            "slurmctld answering scontrol ping",
            30,
            ctld,
        )
        for node in self.nodes:
            self._start_slurmd(node)
        for node in self.nodes:
            self._wait(
                lambda n=node: self.node_state(n) == "idle",
                f"node {node} idle",
                60,
                self.slurmd[node],
            )

    def _start_slurmd(self, node: str) -> subprocess.Popen:
        cmd = self.in_netns(node, [_which("slurmd"), "-D", "-N", node, "-f", str(self.conf)])
        proc = self._spawn(f"slurmd-{node}", cmd, log=self.root / "log" / f"slurmd-{node}.log")
        self.slurmd[node] = proc
        return proc

    def stop(self) -> None:
        ctld = [p for name, p in self._procs if name == "slurmctld" and p.poll() is None]
        try:
            if ctld and self.active_jobs():
                self.run(["scancel", "--full", "--partition", self.partition], check=False)
                self._wait(lambda: not self.active_jobs(), "jobs gone", 30)
        except (SlurmClusterError, subprocess.SubprocessError, OSError):
            pass
        try:
            super().stop()
        finally:
            for node in self.nodes:
                _kill_pids(self.node_pids(node))
            delete_network(self.tag)

    def _write_configs(self, ctld_port: int, slurmd_port: int, dbd_port: int) -> None:
        """``SlurmCluster``'s configs, with slurm.conf's controller on the link, one line per
        node at its namespace's address, per-node spool/pid/log files."""
        super()._write_configs(ctld_port, slurmd_port, dbd_port)
        r = self.root
        hosts = [f"{self.host_addr} {self.ctld_name}", "127.0.0.1 localhost"]
        hosts += [f"{self.addr[n]} {n}" for n in self.nodes]
        (r / "etc" / "hosts").write_text("\n".join(hosts) + "\n")
        changed = {
            "AuthInfo": f"socket={self.munge_socket},cred_expire=30",
            "SlurmctldHost": f"{self.ctld_name}({self.host_addr})",
            "SlurmdSpoolDir": str(r / "spool" / "%n"),
            "SlurmdPidFile": str(r / "spool" / "%n" / "slurmd.pid"),
            "SlurmdLogFile": str(r / "log" / "slurmd-%n.log"),
        }
        lines = []
        for line in self.conf.read_text().splitlines():
            key = line.split("=", 1)[0]
            if key in ("NodeName", "PartitionName"):
                continue
            lines.append(f"{key}={changed.pop(key)}" if key in changed else line)
        lines += [f"{k}={v}" for k, v in changed.items()]
        for node in self.nodes:
            lines.append(
                f"NodeName={node} NodeHostname={node} NodeAddr={self.addr[node]} "
                f"CPUs={self.cpus} RealMemory=16000 State=UNKNOWN"
            )
        lines.append(
            f"PartitionName={self.partition} Nodes={','.join(self.nodes)} Default=YES "
            "MaxTime=INFINITE State=UP LLN=YES"
        )
        self.conf.write_text("\n".join(lines) + "\n")

    # ------------------------------------------------------------------ nodes

    def node_state(self, node: str | None = None) -> str:
        """``sinfo``'s state of ``node`` (default: the first), e.g. idle, mixed, down*."""
        return self.run(["sinfo", "-h", "-n", node or self.node, "-o", "%T"]).stdout.strip()

    def wait_idle(self, timeout: float = 60) -> None:
        """Until no job is pending or running and every node is idle (or down: a node this
        test lost stays down until ``restore_node``)."""

        def idle() -> bool:
            states = [self.node_state(n) for n in self.nodes]
            return not self.active_jobs() and all(
                s == "idle" or "down" in s or "drain" in s for s in states
            )

        self._wait(idle, "cluster idle", timeout)

    def nodes_of(self, job_id: str) -> str:
        """The node(s) the allocation ran on last (sacct's NodeList)."""
        out = self.run(["sacct", "-n", "-P", "-X", "-j", str(job_id), "-o", "NodeList"]).stdout
        lines = [line.strip() for line in out.splitlines() if line.strip()]
        return lines[-1] if lines else ""

    def lose_node(self, node: str) -> None:
        """What a crashed node leaves: its slurmd, its job steps and every process of its
        namespace SIGKILLed (until none is left), then the node marked down as slurmctld
        would after ``SlurmdTimeout`` (``state=down reason=lost``)."""
        proc = self.slurmd.get(node)
        if proc is not None and proc.poll() is None:
            proc.kill()
        deadline = time.monotonic() + 30
        while pids := self.node_pids(node):
            if time.monotonic() > deadline:
                raise SlurmClusterError(f"processes of {node} survive SIGKILL: {pids}")
            _kill_pids(pids)
            time.sleep(0.1)
        if proc is not None:
            proc.wait(10)
        self.run(["scontrol", "update", f"nodename={node}", "state=down", "reason=lost"])

    def restore_node(self, node: str, timeout: float = 60) -> None:
        """The node back: its slurmd started again, ``state=resume`` once it has registered,
        until it is idle (or running jobs)."""
        proc = self._start_slurmd(node)
        responding = lambda: not self.node_state(node).endswith("*")  # noqa: E731
        self._wait(responding, f"{node} registered", timeout, proc)
        if "down" in self.node_state(node) or "drain" in self.node_state(node):
            self.run(["scontrol", "update", f"nodename={node}", "state=resume"])
        self._wait(
            lambda: self.node_state(node) in ("idle", "mixed", "allocated"),
            f"node {node} up",
            timeout,
            proc,
        )


@pytest.fixture(scope="module")
def multinode_cluster() -> Iterator[MultiNodeCluster]:
    """A running three-node cluster, one network namespace per node (module docstring)."""
    reason = missing_multinode_requirements()
    if reason:
        pytest.skip(reason)
    cluster = MultiNodeCluster(Path(tempfile.mkdtemp(prefix="lab-slurm-mn-", dir="/tmp")))
    try:
        try:
            cluster.create_network()
        except SlurmClusterError as exc:
            pytest.skip(f"cannot create network namespaces here: {exc}")
        finally:
            delete_network(cluster.tag)
        try:
            cluster.start()
        except SlurmClusterError as exc:
            pytest.fail(f"the multi-node SLURM test cluster did not start: {exc}", pytrace=False)
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(cluster.root, ignore_errors=True)
