"""A file-based storage for clusters with a shared filesystem but no database server:
Optuna's ``JournalStorage`` on a ``JournalFileBackend``, as ``journal:///path/study.log``.

The path after ``journal:///`` is read as SQLite's is after ``sqlite:///``: relative to the
working directory, absolute with a fourth slash (``journal:////shared/sweeps/study.log``).
Optuna's heartbeats are for database storages only, so a journal study keeps its own: the
job (and, while it is queued, the sweeper) writes the time of each beat to the trial's
``heartbeat_at`` user attribute; :func:`fail_stale_beats` fails RUNNING trials whose last
beat is older than ``grace_period`` (the machines' clocks must agree within that).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from lab_optuna import names
from lab_optuna._storage.urls import StorageError

SCHEME = "journal://"
PREFIX = "journal:///"


def is_journal(url: Any) -> bool:
    """True for a ``journal:///...`` storage setting."""
    return str(url).startswith(SCHEME)


def journal_path(url: str) -> Path:
    """The file of ``journal:///path`` (StorageError for another form)."""
    if not url.startswith(PREFIX) or len(url) == len(PREFIX):
        raise StorageError(
            f"hydra.sweeper.storage={url}: write a journal file as journal:///relative/"
            "study.log or journal:////absolute/study.log"
        )
    return Path(url[len(PREFIX) :]).expanduser()


def check_writable(url: str, file: Path, kind: str) -> None:
    """One line (StorageError) unless ``file``'s folder can be created and ``file`` written."""
    where = f"hydra.sweeper.storage={url}"
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StorageError(
            f"{where}: cannot create the folder {file.parent} ({e.strerror or e}); "
            f"choose a writable path for the {kind}"
        ) from None
    if file.is_dir():
        raise StorageError(f"{where}: {file} is a folder; name a file for the {kind}")
    target = file if file.exists() else file.parent
    if not os.access(target, os.W_OK):
        raise StorageError(
            f"{where}: {target} is not writable; choose a writable path for the {kind}"
        )


def open_journal(url: str) -> optuna.storages.JournalStorage:
    """``JournalStorage`` on the file of ``url``, created if new; one line for a path that
    cannot be written or a file that is no Optuna journal."""
    file = journal_path(url)
    check_writable(url, file, "journal file")
    if file.is_file() and file.stat().st_size:
        with file.open("rb") as f:
            first = f.readline(1 << 20)
        try:
            if "op_code" not in json.loads(first):
                raise ValueError
        except (ValueError, TypeError, UnicodeDecodeError):
            raise StorageError(
                f"hydra.sweeper.storage={url}: {file} is not an Optuna journal file; "
                "name a new file or the journal of a study"
            ) from None
    from optuna.storages.journal import JournalFileBackend

    return optuna.storages.JournalStorage(JournalFileBackend(str(file)))


def record_beat(storage: optuna.storages.BaseStorage, trial_id: int) -> None:
    """One beat for the trial: the time now in its ``heartbeat_at`` user attribute."""
    storage.set_trial_user_attr(trial_id, names.BEAT, time.time())


def fail_stale_beats(
    study: optuna.Study,
    storage: optuna.storages.BaseStorage,
    grace_period: float,
    callback: Callable[[optuna.Study, FrozenTrial], None] | None,
) -> list[int]:
    """Fail the RUNNING trials whose last beat is older than ``grace_period`` and hand each
    to ``callback`` (the continuation), as Optuna's ``fail_stale_trials`` does for databases.
    Of two workers failing one trial, one wins (the journal refuses the second update).
    Returns the numbers of the trials failed here."""
    now = time.time()
    study_id = storage.get_study_id_from_name(study.study_name)
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        beat = trial.user_attrs.get(names.BEAT)
        if beat is None or now - float(beat) <= grace_period:
            continue
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        try:
            if not storage.set_trial_state_values(trial_id, state=TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another worker failed it first
        failed.append(trial.number)
        if callback is not None:
            callback(study, storage.get_trial(trial_id))
    return failed
