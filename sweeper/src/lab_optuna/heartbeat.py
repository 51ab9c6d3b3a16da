"""Heartbeats: how the study tells a live trial from one whose job died.

The job beats for its trial from the training process (``job_heartbeat``); before the job
runs (queued on a cluster) the sweeper beats for it (``queued_heartbeat``). A trial silent
for ``grace_period`` is stale: ``fail_stale`` fails it (its params re-queued by
``retry.RetryStale``). Only database storages with ``heartbeat_interval`` set keep beats.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import optuna

from . import user_attrs

warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")


def beats(storage: Any) -> bool:
    """True for a storage that keeps heartbeats (a database with heartbeat_interval set)."""
    from optuna.storages import RDBStorage

    return isinstance(storage, RDBStorage) and bool(storage.get_heartbeat_interval())


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
    if storage is None or isinstance(storage, optuna.storages.InMemoryStorage):
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
