"""Nothing is left RUNNING, whenever the sweeper dies (issue 25, item 4).

The toy app's sweeper is killed (SIGKILL: no handler runs) again and again: the instant a trial
turns RUNNING in the study — right after ``study.ask()``, before the trial's first heartbeat —
and at random moments (starting up, in a job, between trials). Then one more sweep runs to the
end, after the grace period: no trial may be RUNNING, and every trial that was COMPLETE is still
COMPLETE with its value. For a SQLite database (Optuna's heartbeats) and a journal file (the
sweeper's own beats) alike.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

from conftest import TOY_APP
from lab_optuna import names
from lab_optuna._loop.continuation import RetryStale
from lab_optuna._storage.connect import make_storage
from lab_optuna._storage.heartbeat import NO_FIRST_BEAT, fail_unmarked, first_beat, sweeper_id

optuna.logging.set_verbosity(optuna.logging.WARNING)
GRACE = 2
BEATS = ("hydra.sweeper.heartbeat_interval=1", f"hydra.sweeper.grace_period={GRACE}")


class Study:
    """The study as the test sees it: its trials, and the trials that just turned RUNNING,
    read straight from the file (a poll of about a millisecond)."""

    def __init__(self, kind: str, tmp: Path) -> None:
        self.kind = kind
        self.file = tmp / ("optuna.db" if kind == "sqlite" else "study.log")
        self.url = f"{kind}:///{self.file}"
        self.seen: set[int] = set()  # trials seen RUNNING (or created) so far
        self._offset = 0  # journal: bytes read
        self._created = 0  # journal: trials created so far (their ids: 0, 1, ...)
        self._db: sqlite3.Connection | None = None

    def trials(self) -> list[FrozenTrial]:
        if not self.file.exists():
            return []
        storage = (
            self.url
            if self.kind == "sqlite"
            else JournalStorage(JournalFileBackend(str(self.file)))
        )
        try:
            return optuna.load_study(study_name="sphere", storage=storage).get_trials()
        except KeyError:
            return []

    def complete(self) -> dict[int, float]:
        return {t.number: t.value for t in self.trials() if t.state == TrialState.COMPLETE}

    def new_running(self) -> list[int]:
        """Numbers of the trials that turned RUNNING since the last call."""
        if not self.file.exists():
            return []
        now = self._running_db() if self.kind == "sqlite" else self._running_journal()
        new = sorted(set(now) - self.seen)
        self.seen |= set(now)
        return new

    def _running_db(self) -> list[int]:
        try:
            if self._db is None:
                self._db = sqlite3.connect(self.file, timeout=5, isolation_level=None)
            rows = self._db.execute("SELECT number FROM trials WHERE state = 'RUNNING'")
            return [n for (n,) in rows]
        except sqlite3.OperationalError:  # no tables yet
            return []

    def _running_journal(self) -> list[int]:
        with self.file.open("rb") as f:
            f.seek(self._offset)
            chunk = f.read()
        end = chunk.rfind(b"\n") + 1  # whole lines only
        self._offset += end
        running = []
        for line in chunk[:end].splitlines():
            op = json.loads(line)
            if op["op_code"] == 4:  # CREATE_TRIAL: RUNNING unless a template (enqueued)
                if op.get("state", TrialState.RUNNING.value) == TrialState.RUNNING.value:
                    running.append(self._created)
                self._created += 1
            elif op["op_code"] == 6 and op["state"] == TrialState.RUNNING.value:  # popped
                running.append(op["trial_id"])
        return running  # trial ids: one study, so its numbers

    def never_beat(self, trial: FrozenTrial) -> bool:
        """True for a trial with neither mark nor beat (killed before ``first_beat``)."""
        if {names.SWEEPER, names.BEAT} & set(trial.user_attrs):
            return False
        if self.kind == "journal":
            return True
        with sqlite3.connect(self.file, timeout=5) as db:
            (beats,) = db.execute(
                "SELECT count(*) FROM trial_heartbeats JOIN trials USING (trial_id) "
                "WHERE number = ?",
                (trial.number,),
            ).fetchone()
        return beats == 0

    def after_kill(self) -> None:
        """A journal's lock file left by the killed sweeper is removed, as Optuna itself does
        after its 30 s lock grace (the test does not wait that long)."""
        if self.kind == "journal":
            lock = Path(f"{self.file}.lock")
            if os.path.lexists(lock):
                lock.unlink()

    def close(self) -> None:
        if self._db is not None:
            self._db.close()


def _sweeper(tmp: Path, study: Study, *overrides: str) -> subprocess.Popen:
    cmd = [
        sys.executable,
        str(TOY_APP),
        "-m",
        f"hydra.sweep.dir={tmp / 'out'}",
        f"hydra.sweeper.storage={study.url}",
        *BEATS,
        *overrides,
    ]
    return subprocess.Popen(
        cmd, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )


def kill_after_ask(tmp: Path, study: Study, nth: int) -> int:
    """Start a sweep and SIGKILL it the instant its ``nth`` trial turns RUNNING (asked, not
    yet marked); the number of that trial."""
    study.new_running()  # what is RUNNING now is not this sweep's
    proc = _sweeper(tmp, study, "hydra.sweeper.n_trials=100", "sleep=0.1")
    try:
        asked = 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            new = study.new_running()
            asked += len(new)
            if asked >= nth:
                proc.kill()
                return new[-1]
            time.sleep(0.0005)
        raise AssertionError(f"the sweep never asked {nth} trials (exit {proc.poll()})")
    finally:
        proc.kill()
        proc.wait()
        study.after_kill()


def kill_at_random(tmp: Path, study: Study, seconds: float) -> None:
    """Start a sweep and SIGKILL it ``seconds`` later, wherever it is."""
    proc = _sweeper(tmp, study, "hydra.sweeper.n_trials=100", "sleep=0.3")
    time.sleep(seconds)
    proc.kill()
    proc.wait()
    study.after_kill()
    study.new_running()


def check_kills(tmp: Path, kind: str, after_ask: list[int], at_random: int) -> None:
    """Kill the sweeper ``len(after_ask)`` times right after an ask (of its n-th trial) and
    ``at_random`` times at random moments, in a shuffled order; then sweep to the end and
    check."""
    study = Study(kind, tmp)
    rng = random.Random(25)
    complete: dict[int, float] = {}
    asked_then_killed = []
    schedule = ["ask"] * len(after_ask) + ["random"] * at_random
    rng.shuffle(schedule)
    nths = iter(after_ask)
    try:
        for what in schedule:
            if what == "ask":
                asked_then_killed.append(kill_after_ask(tmp, study, next(nths)))
            else:
                kill_at_random(tmp, study, rng.uniform(0.5, 4.0))
            now = study.complete()
            assert complete.items() <= now.items(), f"a finished trial was lost ({schedule})"
            complete = now
    finally:
        study.close()
    trials = study.trials()
    # the kills hit the window this is about: trials asked, neither beaten nor marked
    unmarked = [n for n in asked_then_killed if study.never_beat(trials[n])]
    print(f"{kind}: {schedule}; killed after ask: {asked_then_killed}, unmarked: {unmarked}")
    assert unmarked, f"no kill landed between ask and mark: {asked_then_killed}"
    time.sleep(GRACE + 1)  # every killed trial is past its grace period now
    last = _sweeper(tmp, study, "hydra.sweeper.n_trials=3")
    assert last.wait(timeout=120) == 0
    trials = study.trials()
    print(*(f"{t.number} {t.state.name} {t.user_attrs.get('fail_reason', '')}" for t in trials))
    running = [t.number for t in trials if t.state == TrialState.RUNNING]
    assert not running, f"trials {running} were left RUNNING ({schedule}, unmarked {unmarked})"
    final = {t.number: t.value for t in trials if t.state == TrialState.COMPLETE}
    assert complete.items() <= final.items(), "a finished trial was lost"
    assert len(final) >= len(complete) + 3
    for n in unmarked:
        assert trials[n].state == TrialState.FAIL
        assert trials[n].user_attrs[names.FAIL_REASON] == NO_FIRST_BEAT


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_no_trial_is_left_running_whenever_the_sweeper_is_killed(tmp_path, kind):
    """3 kills right after an ask (of the sweep's 1st, 2nd, 3rd trial) and 2 at random."""
    check_kills(tmp_path, kind, after_ask=[1, 3, 2], at_random=2)


@pytest.mark.slow  # about 40 s a storage: make test-all
@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_many_kills_leave_no_trial_running(tmp_path, kind):
    """8 kills right after an ask and 6 at random moments."""
    check_kills(tmp_path, kind, after_ask=[1, 2, 3, 1, 4, 2, 1, 5], at_random=6)


def test_an_unmarked_trial_is_failed_once_past_its_grace_period(tmp_path):
    """A RUNNING trial with neither mark nor beat (its sweeper died right after the ask, or
    a sweeper without marks asked it) is failed once older than the grace period, with its
    reason, and its params (if it has any) are re-queued; a marked one is left alone, and none
    is failed before the grace period."""
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    storage = make_storage(url, 1, GRACE, RetryStale(max_retry=3))
    study = optuna.create_study(study_name="sphere", storage=storage)
    study.enqueue_trial({"x": 1.5})
    orphan = study.ask()
    orphan.suggest_float("x", -5.5, 5.5, step=0.5)
    marked = study.ask()
    assert first_beat(storage, marked)
    young = study.ask()
    assert fail_unmarked(study, storage, grace=3600) == []
    time.sleep(0.1)
    assert fail_unmarked(study, storage, grace=0.05) == [orphan.number, young.number]
    trials = study.get_trials()
    assert [t.state for t in trials[:3]] == [TrialState.FAIL, TrialState.RUNNING, TrialState.FAIL]
    assert trials[orphan.number].user_attrs[names.FAIL_REASON] == NO_FIRST_BEAT
    assert trials[marked.number].user_attrs[names.SWEEPER] == sweeper_id()
    (retry,) = trials[3:]  # the orphan's params again; the young trial had none
    assert retry.state == TrialState.WAITING and retry.user_attrs[names.RETRY_OF] == 0
    assert names.SWEEPER not in retry.user_attrs
    assert fail_unmarked(study, storage, grace=0.05) == []  # done once
