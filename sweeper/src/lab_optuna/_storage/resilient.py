"""Storage that survives a database blinking: transient errors are retried with backoff.

A connection refused or dropped, a server starting up or shutting down, SQLite's "database is
locked": :class:`ResilientStorage` (an Optuna ``BaseStorage`` delegating each method to the
real storage) retries the call for up to ``storage_retry_s`` seconds, logging one line when it
starts waiting and one when the storage is back. After that it raises :class:`StorageGone`
(one line naming the storage, password redacted), and every later call fails at once.
Permanent errors (a bad query, a finished trial, a missing study) pass through untouched.
"""

from __future__ import annotations

import abc
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from optuna.storages import BaseStorage, RDBStorage

from lab_optuna._storage.journal import record_beat
from lab_optuna._storage.urls import StorageError, redact

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Default of ``hydra.sweeper.storage_retry_s``.
DEFAULT_RETRY_S = 120.0

#: Messages of errors a later attempt may not meet (lower case).
TRANSIENT = (
    "connection refused",
    "could not connect",
    "connection to server",
    "server closed the connection",
    "terminating connection",
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "the database system is not yet accepting connections",
    "database is locked",
    "connection reset",
    "connection timed out",
    "no connection to the server",
    "connection is closed",
    "connection already closed",
    "ssl connection has been closed",
    "consuming input failed",
    "lost connection",
    "server has gone away",
    "can't connect to mysql server",
    "broken pipe",
)
#: Of those, the ones a server that answers but is not ready gives (waited for at the start).
NOT_READY = (
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "the database system is not yet accepting connections",
    "database is locked",
)


class StorageGone(StorageError):
    """The storage stayed unreachable for ``storage_retry_s``; the message is one line."""


def _chain(error: BaseException) -> list[BaseException]:
    """``error`` and its causes (``__cause__``, ``__context__``, SQLAlchemy's ``orig``)."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [error]
    while todo:
        e = todo.pop()
        if e is None or any(e is s for s in seen):
            continue
        seen.append(e)
        context = None if e.__suppress_context__ else e.__context__
        todo += [e.__cause__, context, getattr(e, "orig", None)]
    return seen


def is_transient(error: BaseException, kinds: tuple[str, ...] = TRANSIENT) -> bool:
    """True when ``error`` (an Optuna ``StorageInternalError``, a SQLAlchemy or a driver
    error) says the connection failed or the server is not ready: a retry may succeed."""
    from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError

    if isinstance(error, StorageGone):
        return False  # given up already: no second wait
    for e in _chain(error):
        if isinstance(e, DisconnectionError) and kinds is TRANSIENT:
            return True
        if isinstance(e, DBAPIError) and e.connection_invalidated and kinds is TRANSIENT:
            return True
        connection_error = isinstance(e, (OperationalError, InterfaceError)) or type(
            e
        ).__name__ in ("OperationalError", "InterfaceError")
        if connection_error or isinstance(e, (ConnectionError, TimeoutError)):
            text = str(e).lower()
            if any(k in text for k in kinds):
                return True
    return False


def first_line(error: BaseException) -> str:
    """The first line of what the driver said (the DB-API error inside SQLAlchemy's), else
    of the first error in the chain that says something."""
    chain = _chain(error)
    drivers = [e.orig for e in chain if isinstance(getattr(e, "orig", None), BaseException)]
    for e in drivers + chain:
        text = str(e).strip()
        if any(c.isalpha() for c in text):
            return text.splitlines()[0]
    return type(error).__name__


class Retrier:
    """Retries calls to one storage while its errors are transient, for ``retry_s`` seconds
    of outage; shared by the threads of a process (one "waiting" and one "back" line)."""

    def __init__(self, url: str, retry_s: float = DEFAULT_RETRY_S) -> None:
        self.where = redact(url)
        self.retry_s = float(retry_s)
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self.gone: str | None = None  # the StorageGone message, once given up
        self.recovered_at: float | None = None  # time.monotonic() when the last outage ended

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        delay = 0.25
        while True:
            if self.gone is not None:
                raise StorageGone(self.gone)
            try:
                result = fn(*args, **kwargs)
            except Exception as e:
                if not is_transient(e):
                    raise
                self._failed(e)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            self.back()
            return result

    def waiting(self, error: BaseException) -> None:
        """Note a transient ``error``: the first of an outage logs one line."""
        with self._lock:
            if self._down_since is None:
                self._down_since = time.monotonic()
                log.warning(
                    "storage %s unreachable (%s); retrying for up to %g s "
                    "(hydra.sweeper.storage_retry_s)",
                    self.where,
                    first_line(error),
                    self.retry_s,
                )

    def back(self) -> None:
        """Note a call that succeeded: the first after an outage logs one line."""
        if self._down_since is None:
            return
        with self._lock:
            if self._down_since is not None:
                seconds = time.monotonic() - self._down_since
                log.warning("storage %s is back after %.1f s", self.where, seconds)
                self._down_since = None
                self.recovered_at = time.monotonic()

    def _failed(self, error: BaseException) -> None:
        self.waiting(error)
        with self._lock:
            down = self._down_since
            if down is not None and time.monotonic() - down >= self.retry_s and not self.gone:
                self.gone = (
                    f"hydra.sweeper.storage={self.where}: unreachable for {self.retry_s:g} s "
                    f"({first_line(error)}); the sweep stops (raise "
                    "hydra.sweeper.storage_retry_s to wait longer)"
                )
        if self.gone is not None:
            raise StorageGone(self.gone) from None


def _delegate(name: str) -> Callable[..., Any]:
    def method(self: ResilientStorage, *args: Any, **kwargs: Any) -> Any:
        return self._call(name, *args, **kwargs)

    method.__name__ = name
    method.__doc__ = f"``{name}`` of the real storage, retried."
    return method


#: The ``BaseStorage`` methods delegated with retry.
DELEGATED = (
    "create_new_study",
    "delete_study",
    "set_study_user_attr",
    "set_study_system_attr",
    "get_study_id_from_name",
    "get_study_name_from_id",
    "get_study_directions",
    "get_study_user_attrs",
    "get_study_system_attrs",
    "get_all_studies",
    "create_new_trial",
    "set_trial_param",
    "get_trial_id_from_study_id_trial_number",
    "get_trial_number_from_id",
    "get_trial_param",
    "set_trial_state_values",
    "set_trial_intermediate_value",
    "set_trial_user_attr",
    "set_trial_system_attr",
    "get_trial",
    "get_all_trials",
    "get_n_trials",
    "get_best_trial",
    "get_trial_params",
    "get_trial_user_attrs",
    "get_trial_system_attrs",
    "check_trial_is_updatable",
)


def _delegating(cls: type) -> type:
    """Give ``cls`` a retried delegate for each of :data:`DELEGATED`."""
    for name in DELEGATED:
        setattr(cls, name, _delegate(name))
    return abc.update_abstractmethods(cls)


@_delegating
class ResilientStorage(BaseStorage):
    """An Optuna storage whose every call is retried through ``retrier``; ``inner`` is the
    real one (``RDBStorage``, ``JournalStorage``). It carries the sweep's heartbeat
    settings: a database keeps Optuna's heartbeats, a journal the job's own
    (``journal.py``)."""

    def __init__(
        self,
        inner: BaseStorage,
        retrier: Retrier,
        heartbeat_interval: int | None = None,
        grace_period: int | None = None,
        stale_callback: Callable[..., None] | None = None,
    ) -> None:
        self.inner = inner
        self.retrier = retrier
        self.heartbeat_interval = heartbeat_interval
        self.grace_period = grace_period
        self.stale_callback = stale_callback

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self.retrier.call(getattr(self.inner, name), *args, **kwargs)

    @property
    def is_database(self) -> bool:
        return isinstance(self.inner, RDBStorage)

    def record_heartbeat(self, trial_id: int) -> None:
        """One beat for the trial (Optuna's for a database, the job's own for a journal)."""
        if self.is_database:
            self._call("record_heartbeat", trial_id)
        else:
            self.retrier.call(record_beat, self.inner, trial_id)

    def get_heartbeat_interval(self) -> int | None:
        if self.is_database:
            return self.inner.get_heartbeat_interval()
        return self.heartbeat_interval if self.grace_period else None

    def remove_session(self) -> None:
        remove = getattr(self.inner, "remove_session", None)
        if remove:
            remove()
