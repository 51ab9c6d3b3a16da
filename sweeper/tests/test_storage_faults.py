"""Storage faults: transient errors are retried (a PostgreSQL restart in the middle of two
workers' sweeps costs nothing), a storage gone for longer stops the sweep in one line, and a
storage that cannot work at all is one line before any trial."""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import pytest
import sqlalchemy
from optuna.trial import TrialState

from conftest import TOY_APP as APP
from conftest import wait_for
from lab_optuna._storage.resilient import NOT_READY, Retrier, StorageGone, is_transient

optuna.logging.set_verbosity(optuna.logging.WARNING)


# ---------------------------------------------------------------- which errors are transient
def _wrapped(driver_error: Exception, kind=sqlalchemy.exc.OperationalError) -> Exception:
    """``driver_error`` as Optuna's RDBStorage raises it: a SQLAlchemy error inside
    ``StorageInternalError``."""
    try:
        try:
            raise kind("SELECT 1", {}, driver_error)
        except sqlalchemy.exc.SQLAlchemyError as e:
            raise optuna.exceptions.StorageInternalError("An exception is raised") from e
    except optuna.exceptions.StorageInternalError as e:
        return e


@pytest.mark.parametrize(
    "error",
    [
        _wrapped(sqlite3.OperationalError("database is locked")),
        _wrapped(Exception("FATAL:  the database system is starting up")),
        _wrapped(Exception("FATAL:  the database system is shutting down")),
        _wrapped(Exception("server closed the connection unexpectedly")),
        _wrapped(Exception("connection to server at 127.0.0.1 failed: Connection refused")),
        _wrapped(Exception("terminating connection due to administrator command")),
        sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("consuming input failed")),
    ],
    ids=["locked", "starting", "shutting", "closed", "refused", "terminating", "bare"],
)
def test_connection_errors_are_transient(error):
    assert is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        _wrapped(sqlite3.IntegrityError("UNIQUE constraint failed"), sqlalchemy.exc.IntegrityError),
        _wrapped(sqlite3.DatabaseError("file is not a database"), sqlalchemy.exc.DatabaseError),
        _wrapped(sqlite3.OperationalError("no such table: trials")),
        optuna.exceptions.UpdateFinishedTrialError("trial 3 has already finished"),
        KeyError("no study"),
        ValueError("connection refused"),  # not a connection error, whatever it says
    ],
    ids=["integrity", "not-a-database", "no-table", "finished", "key", "value"],
)
def test_other_errors_are_not(error):
    assert not is_transient(error)


def test_a_starting_server_is_waited_for_at_the_start_a_refused_one_is_not():
    """The first connection waits only for a server that answers "not ready": a refused
    connection there is a wrong host or port (one line at once)."""
    assert is_transient(_wrapped(Exception("the database system is starting up")), NOT_READY)
    assert is_transient(_wrapped(sqlite3.OperationalError("database is locked")), NOT_READY)
    assert not is_transient(_wrapped(Exception("Connection refused")), NOT_READY)
    assert not is_transient(StorageGone("hydra.sweeper.storage=x: unreachable for 3 s"))


def test_a_real_refused_connection_is_transient():
    pytest.importorskip("psycopg")
    engine = sqlalchemy.create_engine("postgresql+psycopg://u@127.0.0.1:9/db")
    with pytest.raises(sqlalchemy.exc.OperationalError) as info:
        engine.connect()
    assert is_transient(info.value)


def test_the_retrier_waits_logs_twice_and_gives_up_in_one_line(caplog):
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise _wrapped(Exception("the database system is starting up"))
        return "ok"

    retrier = Retrier("postgresql://u:secret@db/x", retry_s=30)
    with caplog.at_level(logging.WARNING, logger="lab_optuna._storage.resilient"):
        assert retrier.call(flaky) == "ok"
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and "unreachable" in lines[0] and "is back after" in lines[1]
    assert "secret" not in " ".join(lines) and "u:***@db/x" in lines[0]
    with pytest.raises(KeyError):  # permanent: at once
        retrier.call(lambda: {}["x"])

    def down() -> None:
        raise _wrapped(Exception("Connection refused"))

    short = Retrier("postgresql://u:secret@db/x", retry_s=0.5)
    t0 = time.monotonic()
    with pytest.raises(StorageGone) as gone:
        short.call(down)
    assert 0.5 <= time.monotonic() - t0 < 5
    message = str(gone.value)
    assert "\n" not in message and "secret" not in message
    assert message.startswith("hydra.sweeper.storage=postgresql://u:***@db/x: unreachable")
    with pytest.raises(StorageGone):  # once gone, every call fails at once
        short.call(lambda: "never")


# ---------------------------------------------------------------- a storage that cannot work
def _sweep(tmp: Path, *overrides: str, timeout: int = 180) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(APP), "-m", f"hydra.sweep.dir={tmp / 'out'}", *overrides]
    return subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=timeout)


def _one_line_error(proc: subprocess.CompletedProcess, message: str, tmp: Path) -> None:
    assert proc.returncode != 0
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert not (tmp / "out" / "0").exists()


@pytest.mark.parametrize("scheme", ["sqlite", "journal"])
def test_a_path_through_a_file_is_one_line(tmp_path, scheme):
    (tmp_path / "file.txt").write_text("a file, not a folder")
    url = f"{scheme}:///{tmp_path}/file.txt/sub/optuna.db"
    proc = _sweep(tmp_path, "hydra.sweeper.n_trials=2", f"hydra.sweeper.storage={url}")
    _one_line_error(proc, f"hydra.sweeper.storage={url}: cannot create the folder", tmp_path)
    assert "choose a writable path" in proc.stderr


def test_a_path_under_proc_is_one_line(tmp_path):
    url = "sqlite:////proc/lab_optuna/optuna.db"
    proc = _sweep(tmp_path, "hydra.sweeper.n_trials=2", f"hydra.sweeper.storage={url}")
    _one_line_error(proc, f"hydra.sweeper.storage={url}: cannot create the folder", tmp_path)


@pytest.mark.parametrize("scheme", ["sqlite", "journal"])
def test_a_file_of_random_bytes_is_one_line(tmp_path, scheme):
    junk = tmp_path / "junk.db"
    junk.write_bytes(bytes(range(256)) * 16)
    url = f"{scheme}:///{junk}"
    proc = _sweep(tmp_path, "hydra.sweeper.n_trials=2", f"hydra.sweeper.storage={url}")
    message = "not a database" if scheme == "sqlite" else "is not an Optuna journal file"
    _one_line_error(proc, f"hydra.sweeper.storage={url}: ", tmp_path)
    assert message in proc.stderr
    assert junk.read_bytes() == bytes(range(256)) * 16  # left as it was


def test_a_database_of_something_else_is_one_line(tmp_path):
    other = tmp_path / "inventory.db"
    with sqlite3.connect(other) as con:
        con.execute("CREATE TABLE parts (id INTEGER PRIMARY KEY, name TEXT)")
    url = f"sqlite:///{other}"
    proc = _sweep(tmp_path, "hydra.sweeper.n_trials=2", f"hydra.sweeper.storage={url}")
    _one_line_error(proc, "is a database of something else (tables: parts)", tmp_path)
    with sqlite3.connect(other) as con:  # no Optuna tables were added to it
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"parts"}


def test_a_bad_storage_retry_is_one_line(tmp_path):
    proc = _sweep(tmp_path, "hydra.sweeper.storage_retry_s=-1")
    _one_line_error(proc, "hydra.sweeper.storage_retry_s=-1: seconds, a number >= 0", tmp_path)


# ---------------------------------------------------------------- a real PostgreSQL restarting
def _worker(tmp: Path, name: str, url: str, *overrides: str) -> subprocess.Popen:
    cmd = [
        sys.executable,
        str(APP),
        "-m",
        f"hydra.sweep.dir={tmp / name}",
        f"hydra.sweeper.storage={url}",
        "hydra.sweeper.study_name=blink",
        *overrides,
    ]
    return subprocess.Popen(
        cmd, cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _states(url: str, name: str = "blink") -> list[TrialState]:
    try:
        return [t.state for t in optuna.load_study(study_name=name, storage=url).trials]
    except Exception:  # noqa: BLE001 - not created yet, or the server is restarting
        return []


@pytest.mark.postgres
def test_two_workers_survive_a_postgres_restart(tmp_path, postgres_server):
    """``pg_ctl restart -m fast`` (3 s down) while two workers run trials of ~1 s: both wait
    for the server, say so in one line each way, and finish with exit 0; every trial
    COMPLETE. (A restart between two calls costs nothing at all: connections are pre-pinged.)"""
    url = postgres_server.url
    optuna.create_study(study_name="blink", storage=url)  # no race to create it
    args = ("hydra.sweeper.n_trials=6", "sleep=1")
    workers = [_worker(tmp_path, f"w{i}", url, *args) for i in range(2)]
    try:
        wait_for(lambda: len(_states(url)) >= 4, 120, "a few trials of both workers")
        postgres_server.restart(down_s=3)  # down long enough for calls to meet it
        outs = [w.communicate(timeout=300)[0] for w in workers]
    finally:
        for w in workers:
            w.kill()
    for w, out in zip(workers, outs):
        assert w.returncode == 0, out[-3000:]
        assert "Traceback" not in out
    both = "\n".join(outs)
    assert "unreachable" in both and "is back after" in both, both[-3000:]
    print(*[ln for ln in both.splitlines() if "storage postgresql" in ln], sep="\n")
    states = _states(url)
    assert len(states) == 12 and set(states) == {TrialState.COMPLETE}, states


@pytest.mark.postgres
def test_a_server_that_stays_down_stops_the_sweep_in_one_line(tmp_path, postgres_server):
    url = postgres_server.url
    secret = url.replace("lab@", "lab:secret@")  # trust auth: the password is not checked
    beats = ("hydra.sweeper.heartbeat_interval=1", "hydra.sweeper.grace_period=2")
    proc = _worker(
        tmp_path, "down", secret, "hydra.sweeper.n_trials=20", "sleep=1",
        "hydra.sweeper.storage_retry_s=3", "hydra.sweeper.study_name=down", *beats,
    )  # fmt: skip
    try:
        wait_for(lambda: len(_states(url, "down")) >= 2, 120, "the sweep running")
        postgres_server.stop()
        t0 = time.monotonic()
        out, _ = proc.communicate(timeout=120)
        waited = time.monotonic() - t0
    finally:
        proc.kill()
        postgres_server.start()
    assert proc.returncode == 1, out[-3000:]
    assert "Traceback" not in out and "secret" not in out
    errors = [ln for ln in out.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, out[-3000:]
    assert "hydra.sweeper.storage=postgresql://lab:***@127.0.0.1" in errors[0]
    assert "unreachable for 3 s" in errors[0]
    assert waited < 60
    print(f"stopped {waited:.1f} s after the server went down: {errors[0]}")
    # the trial it was running is left RUNNING; the next sweep reclaims it as stale
    assert _states(url, "down")[-1] == TrialState.RUNNING
    again = _worker(
        tmp_path, "again", url, "hydra.sweeper.n_trials=2", "hydra.sweeper.study_name=down",
        *beats,
    )  # fmt: skip
    out, _ = again.communicate(timeout=120)
    assert again.returncode == 0 and "continued by a new trial" in out, out[-3000:]
    assert TrialState.RUNNING not in _states(url, "down")


@pytest.mark.postgres
def test_a_worker_started_during_a_restart_waits_for_the_server(tmp_path, postgres_server):
    """The server is down when the worker starts and comes back once the worker is waiting
    (the gap of a restart): the worker waits for it instead of stopping, then sweeps."""
    postgres_server.stop()
    lines: list[str] = []
    try:
        proc = _worker(
            tmp_path, "late", postgres_server.url, "hydra.sweeper.n_trials=2",
            "hydra.sweeper.study_name=late",
        )  # fmt: skip
        reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
        reader.start()
        wait_for(lambda: any("unreachable" in ln for ln in lines), 60, "the worker waiting")
    finally:
        postgres_server.start()
    assert proc.wait(timeout=120) == 0, "".join(lines)[-3000:]
    reader.join(timeout=10)
    out = "".join(lines)
    assert "is back after" in out and "Traceback" not in out
    assert _states(postgres_server.url, "late") == [TrialState.COMPLETE] * 2
