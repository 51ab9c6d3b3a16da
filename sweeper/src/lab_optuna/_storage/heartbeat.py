"""Heartbeats: how the study tells a live trial from one whose job died.

The job beats for its trial from the training process (``job_heartbeat``); before the job
runs (queued on a cluster) the sweeper beats for it (``queued_heartbeat``). A trial silent
for ``grace_period`` is stale: ``fail_stale`` fails it (continued by
``retry.RetryStale``). Database storages keep Optuna's beats, journal files the job's own
(``_storage/journal.py``); an in-memory study or ``heartbeat_interval: null`` keeps none. For one
grace period after a storage outage nothing is failed: no job could beat meanwhile.

A trial asked by a sweeper that died before the trial's first beat (while its sampler picked
the params, say) never beats at all, so no beat can go stale: each sweeper marks the trials it
asks (``first_beat``: the beat, then the ``sweeper`` attribute), and ``fail_stale`` also
fails a RUNNING trial with neither mark nor beat that started more than ``grace_period`` ago
(``fail_unmarked``), for databases and journal files alike. Nothing is left RUNNING.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import optuna
from optuna.trial import TrialState

from lab_optuna import names
from lab_optuna._storage.journal import fail_stale_beats
from lab_optuna._storage.resilient import ResilientStorage

log = logging.getLogger(__name__)
warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")

#: ``fail_reason`` of a trial whose sweeper died between its ``ask`` and its first beat.
NO_FIRST_BEAT = "stale: its sweeper died before the trial's first heartbeat"
#: User attributes that say a trial's sweeper lived past its ask (its mark, the job's host,
#: a journal beat): a trial with none of them is judged by its age (``fail_unmarked``).
_ALIVE_ONCE = (names.SWEEPER, names.HOST, names.BEAT)


def beats(storage: Any) -> bool:
    """True for a storage that keeps heartbeats (heartbeat_interval set)."""
    return isinstance(storage, ResilientStorage) and bool(storage.get_heartbeat_interval())


@contextlib.contextmanager
def repeating(interval: float, beat: Callable[[], None], name: str) -> Iterator[None]:
    """Run ``beat`` now and every ``interval`` seconds in a daemon thread while the block
    runs; an error in ``beat`` (a lost connection) never reaches the block."""
    stop = threading.Event()

    def loop() -> None:
        while True:
            with contextlib.suppress(Exception):
                beat()
            if stop.wait(interval):
                return

    thread = threading.Thread(target=loop, name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


def job_heartbeat(storage: Any, trial_id: int) -> contextlib.AbstractContextManager:
    """Beat for the trial from this (training) process: if it dies, the trial goes stale."""
    if trial_id < 0 or not beats(storage):
        return contextlib.nullcontext()
    return repeating(
        storage.get_heartbeat_interval(),
        lambda: storage.record_heartbeat(trial_id),
        "trial-heartbeat",
    )


def queued_heartbeat(
    storage: Any,
    trials: Callable[[], Iterable[optuna.Trial]],
    interval: int | None,
    queued_again: Callable[[list[int]], set[int]] | None = None,
) -> contextlib.AbstractContextManager:
    """Beat for launched ``trials()`` whose job is not running: not started yet (queued on a
    cluster; once the job runs it sets the ``host`` attribute and beats itself), or back in
    the cluster's queue (``queued_again(numbers)``: a job requeued after a time limit, a
    preemption or ``scontrol requeue``, which will run the same trial again)."""
    if not interval or not beats(storage):
        return contextlib.nullcontext()
    ids: dict[int, int] = {}  # trial number → storage id, looked up once

    def beat() -> None:
        started = []
        for trial in list(trials()):
            if trial.number not in ids:
                ids[trial.number] = trial_id(storage, trial)
            if names.HOST not in storage.get_trial(ids[trial.number]).user_attrs:
                storage.record_heartbeat(ids[trial.number])
            else:
                started.append(trial.number)
        for number in queued_again(started) if queued_again and started else ():
            storage.record_heartbeat(ids[number])

    return repeating(interval, beat, "queued-heartbeat")


def first_beat(storage: Any, trial: optuna.Trial) -> bool:
    """Beat once for a new trial, then mark it as this sweeper's (``sweeper``: host:pid):
    a job killed before it beats goes stale, and so does a trial whose sweeper died before
    this (``fail_unmarked``). In this order, a trial never is marked without a beat.
    False if the trial was finished meanwhile (failed as stale by another worker)."""
    if not isinstance(storage, ResilientStorage):
        return True  # in memory: nobody else sees the trial
    try:
        tid = trial_id(storage, trial)
        if beats(storage):
            storage.record_heartbeat(tid)
        storage.set_trial_user_attr(tid, names.SWEEPER, sweeper_id())
    except optuna.exceptions.UpdateFinishedTrialError:
        return False
    except Exception:  # noqa: BLE001 - a storage error: its stale check may fail it later
        log.warning("trial %d: could not mark it as this sweeper's", trial.number)
    return True


def sweeper_id() -> str:
    """``host:pid`` of this process, the ``sweeper`` mark of the trials it asks."""
    return f"{socket.gethostname()}:{os.getpid()}"


def trial_id(storage: Any, trial: optuna.Trial) -> int:
    study_id = storage.get_study_id_from_name(trial.study.study_name)
    return storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)


def fail_stale(study: optuna.Study, storage: Any) -> None:
    """Fail the trials of dead jobs and dead sweepers (their continuation: ``RetryStale``)
    before a new trial."""
    if not beats(storage) or _just_recovered(storage):
        return
    storage.retrier.call(fail_unmarked, study, storage, grace_period(storage))
    if not storage.is_database:
        storage.retrier.call(
            fail_stale_beats, study, storage, storage.grace_period, storage.stale_callback
        )
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        # Optuna's own check, on the database itself (its heartbeat API is the RDBStorage's)
        storage.retrier.call(_fail_stale_in_database, study.study_name, storage.inner)


def grace_period(storage: ResilientStorage) -> float:
    """Seconds of silence after which a trial is stale (Optuna's default for a database:
    twice the heartbeat interval)."""
    return float(storage.grace_period or 2 * storage.get_heartbeat_interval())


def fail_unmarked(study: optuna.Study, storage: Any, grace: float) -> list[int]:
    """Fail the RUNNING trials that no sweeper marked and no job beat for (their sweeper
    died right after ``ask``) once they started more than ``grace`` seconds ago, with the
    reason ``NO_FIRST_BEAT``, and hand each to the storage's stale callback (a trial with no
    params yet is not re-queued). Of two workers, one fails a trial. ``datetime_start`` is the
    local time of the process that created the trial (a database) or of this one (a journal
    file, kept in UTC): the machines' clocks and time zones must agree within ``grace``.
    Returns the numbers of the trials failed here."""
    now = datetime.datetime.now()
    study_id = None
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        start = trial.datetime_start
        if start is None or any(k in trial.user_attrs for k in _ALIVE_ONCE):
            continue
        age = (datetime.datetime.now(start.tzinfo) if start.tzinfo else now) - start
        if age.total_seconds() <= grace:
            continue
        if study_id is None:
            study_id = storage.get_study_id_from_name(study.study_name)
        tid = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        try:  # the reason first: a finished trial takes no attribute
            storage.set_trial_user_attr(tid, names.FAIL_REASON, NO_FIRST_BEAT)
            if not storage.set_trial_state_values(tid, state=TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another worker failed it first
        log.warning("trial %d: %s; marked FAIL", trial.number, NO_FIRST_BEAT)
        failed.append(trial.number)
        if storage.stale_callback is not None:
            storage.stale_callback(study, storage.get_trial(tid))
    return failed


def _fail_stale_in_database(study_name: str, database: Any) -> None:
    optuna.storages.fail_stale_trials(optuna.load_study(study_name=study_name, storage=database))


def _just_recovered(storage: ResilientStorage) -> bool:
    """True within one grace period of the end of a storage outage."""
    back = storage.retrier.recovered_at
    return back is not None and time.monotonic() - back < (storage.grace_period or 0)
