"""The sweeper's own test suite: a toy Hydra app of a user's own (``toy_app/sphere.py``) run as
real subprocesses, and throw-away servers (``pg_server.py``: PostgreSQL; ``slurm_cluster.py``:
a single-node SLURM cluster with accounting). Needs no torch and nothing of the lab.

``--run-slow`` also runs ``@pytest.mark.slow`` tests (skipped otherwise).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

pytest_plugins = ("slurm_cluster", "pg_server")  # fixtures slurm_cluster, slurm_env, postgres_url

HERE = Path(__file__).resolve().parent
TOY_APP = HERE / "toy_app" / "sphere.py"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-slow", action="store_true", default=False, help="also run @pytest.mark.slow tests"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip_slow = pytest.mark.skip(reason="slow test: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


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
