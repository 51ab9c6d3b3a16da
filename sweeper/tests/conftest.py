"""The sweeper's own test suite: a toy Hydra app of a user's own (``toy_app/sphere.py``) run as
real subprocesses, and throw-away servers (``pg_server.py``: PostgreSQL; ``slurm_cluster.py``:
a single-node SLURM cluster with accounting). Needs no torch and nothing of the lab.

The default run keeps to the fast tests; ``--all`` runs every test (``tiers.py``).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

# tiers: the default run and --all; fixtures slurm_cluster, slurm_env, postgres_url
pytest_plugins = ("tiers", "slurm_cluster", "pg_server")

HERE = Path(__file__).resolve().parent
TOY_APP = HERE / "toy_app" / "sphere.py"


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``predicate`` every 0.2 s; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def default_sigint() -> None:
    """``preexec_fn`` of a subprocess that must get Ctrl-C even if pytest ignores SIGINT."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
