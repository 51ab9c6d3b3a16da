"""Heartbeats: how the study tells a live trial from one whose job died.

The job beats for its trial from the training process (``job_heartbeat``); before the job
runs (queued on a cluster) the sweeper beats for it (``queued_heartbeat``). A trial silent
for ``grace_period`` is stale: ``fail_stale`` fails it (its params re-queued by
``retry.RetryStale``). Database storages keep Optuna's beats, journal files the job's own
(``journal.py``); an in-memory study or ``heartbeat_interval: null`` keeps none. For one
grace period after a storage outage nothing is failed: no job could beat meanwhile.
"""

from __future__ import annotations

import contextlib
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import optuna

from . import user_attrs
from .journal import fail_stale_beats
from .resilient import ResilientStorage

warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")


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
    storage: Any, trials: Callable[[], Iterable[optuna.Trial]], interval: int | None
) -> contextlib.AbstractContextManager:
    """Beat for launched ``trials()`` whose job has not started yet (queued on a cluster):
    once the job runs (it sets the ``host`` attribute), it beats itself."""
    if not interval or not beats(storage):
        return contextlib.nullcontext()
    ids: dict[int, int] = {}  # trial number → storage id, looked up once

    def beat() -> None:
        for trial in list(trials()):
            if trial.number not in ids:
                ids[trial.number] = trial_id(storage, trial)
            if user_attrs.HOST not in storage.get_trial(ids[trial.number]).user_attrs:
                storage.record_heartbeat(ids[trial.number])

    return repeating(interval, beat, "queued-heartbeat")


def first_beat(storage: Any, trial: optuna.Trial) -> None:
    """Beat once for a new trial: a job killed before it beats goes stale too."""
    if beats(storage):
        with contextlib.suppress(Exception):
            storage.record_heartbeat(trial_id(storage, trial))


def trial_id(storage: Any, trial: optuna.Trial) -> int:
    study_id = storage.get_study_id_from_name(trial.study.study_name)
    return storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)


def fail_stale(study: optuna.Study, storage: Any) -> None:
    """Fail the trials of dead jobs (their re-queue: ``RetryStale``) before a new trial."""
    if not beats(storage) or _just_recovered(storage):
        return
    if not storage.is_database:
        storage.retrier.call(
            fail_stale_beats, study, storage, storage.grace_period, storage.stale_callback
        )
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        # Optuna's own check, on the database itself (its heartbeat API is the RDBStorage's)
        storage.retrier.call(_fail_stale_in_database, study.study_name, storage.inner)


def _fail_stale_in_database(study_name: str, database: Any) -> None:
    optuna.storages.fail_stale_trials(optuna.load_study(study_name=study_name, storage=database))


def _just_recovered(storage: ResilientStorage) -> bool:
    """True within one grace period of the end of a storage outage."""
    back = storage.retrier.recovered_at
    return back is not None and time.monotonic() - back < (storage.grace_period or 0)
