"""A throw-away PostgreSQL server on a loopback port (fixtures ``postgres_url`` and
``postgres_server``, which can restart it; module scope). ``throwaway_postgres(listen=...,
allow=...)`` starts one on another address of this machine (e.g. the host's address on the
multi-node cluster's link), trusting the clients of the network ``allow``.

Skips with a reason when the server binaries or psycopg are missing. Also used by the lab's
tests (its conftest puts this folder on ``sys.path``).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found if isinstance(found, str) else (found[-1] if found else None)


def _free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class PgServer:
    """A running throw-away server: its ``url``; ``stop``, ``start`` and ``restart`` it (as
    a managed database's maintenance does) with ``pg_ctl``."""

    def __init__(
        self, prefix: list[str], pg_ctl: str, home: Path, port: int, listen: str = "127.0.0.1"
    ) -> None:
        self.prefix, self.pg_ctl, self.home, self.port = prefix, pg_ctl, home, port
        self.listen = listen
        self.url = f"postgresql://lab@{listen}:{port}/postgres"

    def _ctl(self, *args: str, check: bool = True) -> None:
        data = str(self.home / "data")
        subprocess.run(
            [*self.prefix, self.pg_ctl, "-D", data, *args], check=check, capture_output=True
        )

    def start(self) -> None:
        opts = f"-c listen_addresses={self.listen} -p {self.port}"
        opts += f" -c unix_socket_directories={self.home}"
        self._ctl("-o", opts, "-l", str(self.home / "log"), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._ctl("-m", mode, "-w", "stop", check=mode != "immediate")

    def restart(self, down_s: float = 0.0) -> None:
        """``pg_ctl restart -m fast``: every connection is dropped, the server comes back
        (after ``down_s`` seconds down, as a failover or a maintenance window takes)."""
        self.stop()
        time.sleep(down_s)
        self.start()


@contextmanager
def throwaway_postgres(listen: str = "127.0.0.1", allow: str | None = None) -> Iterator[PgServer]:
    """Start ``postgres`` in a temp dir (as the postgres/nobody user when we are root),
    listening on ``listen`` only; ``allow``: a network (CIDR) whose clients it trusts besides
    loopback. Skips the test when it cannot; stopped and deleted at the end."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    pytest.importorskip("psycopg", reason="psycopg is not installed (extra 'postgres')")
    prefix: list[str] = []
    home = Path(tempfile.mkdtemp(prefix="lab-pg-", dir="/tmp"))
    if os.geteuid() == 0:  # initdb refuses to run as root
        user = next((u for u in ("postgres", "nobody") if _has_user(u)), None)
        if user is None or not shutil.which("runuser"):
            pytest.skip("running as root without a postgres/nobody user to start PostgreSQL")
        shutil.chown(home, user)
        prefix = ["runuser", "-u", user, "--"]
    subprocess.run(
        [*prefix, initdb, "-D", str(home / "data"), "-U", "lab", "--auth=trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
    )
    if allow:
        with (home / "data" / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {allow} trust\n")
    server = PgServer(prefix, pg_ctl, home, _free_port(listen), listen)
    server.start()
    try:
        yield server
    finally:
        server.stop("immediate")
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres_server():
    """A throw-away server on a loopback port (``throwaway_postgres``)."""
    with throwaway_postgres() as server:
        yield server


@pytest.fixture(scope="module")
def postgres_url(postgres_server: PgServer) -> str:
    """The URL of the module's throw-away server (``postgres_server``)."""
    return postgres_server.url


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False
