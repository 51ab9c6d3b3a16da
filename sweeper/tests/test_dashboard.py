"""optuna-dashboard (current release) on a study written by current Optuna, over real HTTP;
``check_schema`` on a database written by optuna 2.10 (tests/data/optuna210.db)."""

from __future__ import annotations

import contextlib
import json
import shlex
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from lab_optuna._storage.urls import redact
from lab_optuna.schema import StorageSchemaError, check_schema, upgrade_command

REPO = Path(__file__).resolve().parents[1]
OLD_DB = REPO / "tests" / "data" / "optuna210.db"
BIN = Path(sys.executable).parent
# (state, value) per trial; every trial reports intermediate values before its end
PLAN = [
    (TrialState.COMPLETE, 0.81),
    (TrialState.PRUNED, None),
    (TrialState.COMPLETE, 0.88),
    (TrialState.FAIL, None),
    (TrialState.COMPLETE, 0.85),
    (TrialState.PRUNED, None),
]
DASHBOARD_STATE = {
    TrialState.COMPLETE: "Complete",
    TrialState.PRUNED: "Pruned",
    TrialState.FAIL: "Fail",
}


def make_study(url: str) -> optuna.Study:
    """A maximised study following PLAN, plus a second, empty study."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name="phase1",
        storage=url,
        direction="maximize",
        sampler=optuna.samplers.RandomSampler(seed=0),
    )
    for state, value in PLAN:
        trial = study.ask()
        trial.suggest_float("optimizer.lr", 1e-4, 0.3, log=True)
        trial.suggest_categorical("optimizer", ["sgd", "adam", "adamw"])
        for epoch in (1, 2, 3):
            trial.report(0.5 + 0.1 * epoch, epoch)
        study.tell(trial, value, state=state)
    optuna.create_study(study_name="phase2", storage=url, direction="maximize")
    return study


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200, url
        return json.loads(response.read())


@contextlib.contextmanager
def serve_dashboard(url: str, log_path: Path, *extra: str) -> Iterator[str]:
    """The real optuna-dashboard on ``url`` at a free local port, until the block ends (stopped
    by its PID): its base URL, once it answers. ``extra``: more options (``--artifact-dir``)."""
    exe = BIN / "optuna-dashboard"
    assert exe.is_file(), f"{exe} missing: pip install './sweeper[dashboard]'"
    port = free_port()
    log = log_path.open("w")
    proc = subprocess.Popen(
        [str(exe), url, "--host", "127.0.0.1", "--port", str(port), "--server", "wsgiref", *extra],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"optuna-dashboard exited with {proc.returncode}: "
                    f"{log_path.read_text()[-2000:]}"
                )
            try:
                get_json(f"{base}/api/meta")
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    pytest.fail("optuna-dashboard did not answer within 60 s")
                time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[tuple[str, optuna.Study]]:
    """The real optuna-dashboard server on a free local port: ``(base URL, study)``."""
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = make_study(url)
    with serve_dashboard(url, tmp_path / "dashboard.log") as base:
        yield base, study


@pytest.mark.dashboard
def test_dashboard_serves_studies_and_trials(dashboard: tuple[str, optuna.Study]) -> None:
    base, study = dashboard
    summaries = get_json(f"{base}/api/studies")["study_summaries"]
    assert sorted(s["study_name"] for s in summaries) == ["phase1", "phase2"]
    mine = next(s for s in summaries if s["study_name"] == "phase1")
    assert mine["directions"] == ["maximize"]

    detail = get_json(f"{base}/api/studies/{mine['study_id']}")
    trials = detail["trials"]
    expected = study.get_trials(deepcopy=False)
    assert len(trials) == len(expected) == len(PLAN)
    assert Counter(t["state"] for t in trials) == Counter(
        DASHBOARD_STATE[t.state] for t in expected
    )
    assert Counter(t["state"] for t in trials) == {"Complete": 3, "Pruned": 2, "Fail": 1}
    for served, trial in zip(sorted(trials, key=lambda t: t["number"]), expected, strict=True):
        assert served["number"] == trial.number
        assert served["state"] == DASHBOARD_STATE[trial.state]
        params = {p["name"]: p["param_external_value"] for p in served["params"]}
        assert params == {k: str(v) for k, v in trial.params.items()}
        steps = {v["step"]: v["value"] for v in served["intermediate_values"]}
        assert steps == pytest.approx(trial.intermediate_values)
        if trial.state == TrialState.COMPLETE:
            assert served["values"] == pytest.approx([trial.value])
    assert [t["number"] for t in detail["best_trials"]] == [study.best_trial.number]
    assert detail["has_intermediate_values"] is True


# --------------------------------------------------------------------------- check_schema


def test_check_schema_names_the_upgrade_then_passes(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    shutil.copyfile(OLD_DB, db)
    url = f"sqlite:///{db}"
    before = db.read_bytes()
    with pytest.raises(StorageSchemaError) as err:
        check_schema(url)
    message = str(err.value)
    assert "\n" not in message
    assert f"optuna storage upgrade --storage '{url}'" in message
    assert db.read_bytes() == before  # the check only reads
    # the command it names, run as written, makes the file usable by current Optuna
    command = message.split("run once: ", 1)[1].split(" (one-way", 1)[0]
    args = shlex.split(command)
    proc = subprocess.run(
        [str(BIN / args[0]), *args[1:]], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    check_schema(url)
    study = optuna.load_study(study_name="phase1", storage=url)
    states = [t.state for t in study.trials]
    assert states == [TrialState.COMPLETE, TrialState.PRUNED, TrialState.COMPLETE, TrialState.FAIL]
    assert study.trials[1].intermediate_values == pytest.approx({1: 0.61, 2: 0.71})


def test_check_schema_cli_is_one_line(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    shutil.copyfile(OLD_DB, db)
    proc = subprocess.run(
        [sys.executable, "-m", "lab_optuna.schema", f"sqlite:///{db}"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in proc.stderr
    assert "optuna storage upgrade --storage" in lines[0]


def test_check_schema_accepts_new_and_current_databases(tmp_path: Path) -> None:
    missing = tmp_path / "sub" / "none.db"
    check_schema(f"sqlite:///{missing}")
    assert not missing.exists()  # not created by the check
    empty = tmp_path / "empty.db"
    empty.touch()
    check_schema(f"sqlite:///{empty}")
    check_schema("sqlite:///:memory:")
    url = f"sqlite:///{tmp_path / 'current.db'}"
    optuna.create_study(study_name="s", storage=url)
    check_schema(url)
    # a worker's view while another creates the tables (not yet stamped with a version)
    racing = tmp_path / "racing.db"
    with sqlite3.connect(racing) as db:
        db.execute("CREATE TABLE studies (study_id INTEGER PRIMARY KEY, study_name TEXT)")
    check_schema(f"sqlite:///{racing}")


def test_redacted_upgrade_command() -> None:
    url = "postgresql+psycopg2://lab:s3cret@db.example:5432/optuna"
    assert "s3cret" not in redact(url) and "lab:***@db.example" in redact(url)
    assert upgrade_command(url) == (
        "optuna storage upgrade --storage 'postgresql+psycopg2://lab:***@db.example:5432/optuna'"
    )
