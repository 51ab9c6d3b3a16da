"""Two workers on one study in a real, throw-away PostgreSQL server on a loopback port."""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from conftest import REPO_ROOT
from test_sweeper import env_for, sweep_cmd

pytestmark = pytest.mark.postgres


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found if isinstance(found, str) else (found[-1] if found else None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url():
    """Start ``postgres`` in a temp dir (as the postgres/nobody user when we are root)."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    pytest.importorskip("psycopg2", reason="psycopg2 is not installed (extra 'postgres')")
    prefix: list[str] = []
    home = Path(tempfile.mkdtemp(prefix="lab-pg-", dir="/tmp"))
    if os.geteuid() == 0:  # initdb refuses to run as root
        user = next((u for u in ("postgres", "nobody") if _has_user(u)), None)
        if user is None or not shutil.which("runuser"):
            pytest.skip("running as root without a postgres/nobody user to start PostgreSQL")
        shutil.chown(home, user)
        prefix = ["runuser", "-u", user, "--"]
    data, port = home / "data", _free_port()
    subprocess.run([*prefix, initdb, "-D", str(data), "-U", "lab", "--auth=trust", "-E", "UTF8"],
                   check=True, capture_output=True)  # fmt: skip
    opts = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={home}"
    subprocess.run([*prefix, pg_ctl, "-D", str(data), "-o", opts, "-l", str(home / "log"),
                    "-w", "start"], check=True, capture_output=True)  # fmt: skip
    try:
        yield f"postgresql://lab@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)  # fmt: skip
        shutil.rmtree(home, ignore_errors=True)


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def test_two_workers_share_one_postgres_study(tmp_path, postgres_url, tiny_data_root):
    cmds = [sweep_cmd("phase1", tmp_path / "w", postgres_url, "hydra.sweeper.n_trials=3")
            for _ in range(2)]  # fmt: skip
    procs = [subprocess.Popen(c, cwd=REPO_ROOT, env=env_for(tiny_data_root),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for c in cmds]  # fmt: skip
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs[0][-2000:] + outs[1][-2000:]
    ran = [set(re.findall(r"optuna_trial.number=(\d+)", out)) for out in outs]
    assert len(ran[0]) == len(ran[1]) == 3 and not ran[0] & ran[1]  # each its own trials
    trials = optuna.load_study(study_name="phase1", storage=postgres_url).trials
    assert sorted(t.number for t in trials) == list(range(6))  # total = sum of both workers
    assert all(t.state == TrialState.COMPLETE for t in trials)
    dirs = sorted(p.name for p in (tmp_path / "w").glob("trial_*"))
    assert dirs == sorted(f"trial_{i}" for i in range(6))  # no job dir shared or overwritten
