"""Journal storage (``journal:///path``, Optuna's JournalStorage on a file) for clusters with a
shared filesystem but no database server: sweeps, resume, pinning, two workers, and a killed
worker's trial reclaimed through the job's own heartbeats."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from conftest import TOY_APP as APP
from conftest import default_sigint, wait_for
from lab_optuna._storage.connect import make_storage
from lab_optuna._storage.urls import StorageError, redact

optuna.logging.set_verbosity(optuna.logging.WARNING)
BEATS = ("hydra.sweeper.heartbeat_interval=1", "hydra.sweeper.grace_period=2")


def _cmd(tmp: Path, out: str, url: str, *overrides: str) -> list[str]:
    return [
        sys.executable,
        str(APP),
        "-m",
        f"hydra.sweep.dir={tmp / out}",
        f"hydra.sweeper.storage={url}",
        *overrides,
    ]


def sweep(tmp: Path, url: str, *overrides: str, out: str = "out") -> str:
    proc = subprocess.run(
        _cmd(tmp, out, url, *overrides), cwd=tmp, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def trials(log: Path, name: str = "sphere") -> list[optuna.trial.FrozenTrial]:
    if not log.is_file():
        return []
    storage = JournalStorage(JournalFileBackend(str(log)))
    try:
        return optuna.load_study(study_name=name, storage=storage).trials
    except KeyError:
        return []


@pytest.fixture
def journal(tmp_path) -> tuple[str, Path]:
    log = tmp_path / "shared" / "study.log"
    return f"journal:///{log}", log


def test_the_url_form(tmp_path):
    log = tmp_path / "a" / "b.log"
    storage = make_storage(f"journal:///{log}")
    assert isinstance(storage.inner, JournalStorage) and log.parent.is_dir()
    assert redact(f"journal:///{log}") == f"journal:///{log}"


@pytest.mark.parametrize("url", ["journal://study.log", "journal:///"])
def test_a_journal_url_of_another_form_is_one_line(url):
    with pytest.raises(StorageError, match=r"write a journal file as journal:///relative/"):
        make_storage(url)


@pytest.mark.slow  # several sweeps: make test-all
def test_sweep_resume_and_pin_from_a_journal_study(tmp_path, journal):
    url, log = journal
    base = ("hydra.sweeper.n_trials=3", "hydra.sweeper.params=null", "y=0")
    sweep(tmp_path, url, *base, "hydra.sweeper.study_name=a", "x=interval(-1,1)")
    first = [t.params for t in trials(log, "a")]
    sweep(tmp_path, url, *base, "hydra.sweeper.study_name=a", "x=interval(-1,1)")
    a = trials(log, "a")
    assert [t.number for t in a] == list(range(6))
    assert all(t.state == TrialState.COMPLETE for t in a)
    assert all(t.params not in first for t in a[3:]), "the resumed sweep replayed"
    best_x = min(a, key=lambda t: t.value).params["x"]
    sweep(
        tmp_path,
        url,
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.params=null",
        "hydra.sweeper.study_name=b",
        "hydra.sweeper.pin_from=a",
        "y=interval(-1,1)",
        out="b",
    )
    b = trials(log, "b")
    assert len(b) == 2 and all(float(t.user_attrs["x"]) == best_x for t in b)
    assert (tmp_path / "b" / "pinned.yaml").is_file()


@pytest.mark.slow  # several sweeps: make test-all
def test_two_workers_share_a_journal_and_reclaim_a_killed_workers_trial(tmp_path, journal):
    """Worker A is killed during its trial; workers B and C, sweeping at once, share the
    journal: one of them fails A's trial (its beats stopped) and runs its params again."""
    url, log = journal
    a = subprocess.Popen(
        _cmd(tmp_path, "a", url, "hydra.sweeper.n_trials=1", "sleep=60", *BEATS),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=default_sigint,
    )
    try:
        wait_for(lambda: [t.state for t in trials(log)] == [TrialState.RUNNING], 60, "A's trial")
        wait_for(lambda: "heartbeat_at" in trials(log)[0].user_attrs, 30, "A's job beating")
        time.sleep(1.0)
    finally:
        a.kill()
        a.communicate()
    workers = [
        subprocess.Popen(
            _cmd(tmp_path, f"w{i}", url, "hydra.sweeper.n_trials=2", "sleep=choice(3)", *BEATS),
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]
    outs = [w.communicate(timeout=300)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outs[0][-2000:] + outs[1][-2000:]
    found = trials(log)
    killed, rest = found[0], found[1:]
    assert killed.state == TrialState.FAIL
    assert len(rest) == 4 and all(t.state == TrialState.COMPLETE for t in rest)
    (retry,) = [t for t in rest if t.user_attrs.get("retry_of") == 0]
    assert (retry.params["x"], retry.params["y"]) == (killed.params["x"], killed.params["y"])
    assert "stale" in retry.user_attrs["retry_reason"]
    assert (
        sum("continued by a new trial" in out for out in outs) == 1
    )  # one worker reclaimed it, once
