"""The sweeper's own test suite: a toy Hydra app of a user's own (``toy_app/sphere.py``) run as
real subprocesses, and throw-away servers (``pg_server.py``: PostgreSQL; ``slurm_cluster.py``:
a single-node SLURM cluster with accounting). Needs no torch and nothing of the lab.

The default run keeps to the fast tests; ``--all`` runs every test (``tiers.py``).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

# tiers: the default run and --all; fixtures slurm_cluster, slurm_env, multinode_cluster,
# postgres_url
pytest_plugins = ("tiers", "slurm_cluster", "slurm_multinode", "pg_server")

HERE = Path(__file__).resolve().parent
TOY_APP = HERE / "toy_app" / "sphere.py"


def sweep(
    tmp: Path, *overrides: str, timeout: int = 180, check: bool = True
) -> subprocess.CompletedProcess:
    """Run the toy app's sweep in ``tmp`` (a subprocess, as a user runs it); its outputs go to
    ``tmp/out``; ``check``: fail the test on a non-zero exit, with the output's tail."""
    cmd = [sys.executable, str(TOY_APP), "-m", f"hydra.sweep.dir={tmp / 'out'}", *overrides]
    proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=timeout)
    if check:
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


def results(tmp: Path) -> dict:
    """The sweep's ``optimization_results.yaml``."""
    import yaml

    return yaml.safe_load((tmp / "out" / "optimization_results.yaml").read_text())


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``predicate`` every 0.2 s; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def wait_while_running(
    predicate: Callable[[], bool], timeout: float, what: str, proc: subprocess.Popen
) -> None:
    """Poll ``predicate`` every 0.3 s; fail naming ``what`` if ``proc`` exits first or after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f"the sweep exited ({proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.3)


def default_sigint() -> None:
    """``preexec_fn`` of a subprocess that must get Ctrl-C even if pytest ignores SIGINT."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
