"""Optuna storages from URLs, with one-line errors naming the setting and the fix.

``null`` is an in-memory study; ``sqlite:///path`` a file (its folder created, a 60 s busy
timeout so local workers can share it); ``postgresql://…`` for many workers and machines;
``journal:///path`` a journal file (``journal.py``) for shared filesystems without a
server.
Every storage comes wrapped in ``resilient.ResilientStorage``: transient errors (a database
restarting) are retried for ``storage_retry_s``.
"""

from __future__ import annotations

import random
import time
import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import RDBStorage

from lab_optuna._storage.journal import check_writable, is_journal, open_journal
from lab_optuna._storage.resilient import (
    DEFAULT_RETRY_S,
    NOT_READY,
    ResilientStorage,
    Retrier,
    first_line,
    is_transient,
)
from lab_optuna._storage.urls import StorageError, check_url, redact
from lab_optuna.schema import StorageSchemaError, check_schema

_CACHE: dict[tuple, ResilientStorage] = {}
#: Seconds a refused connection is retried at the start (a server restarting has no port open).
REFUSED_AT_START_S = 5.0
#: One retrier per storage and setting: one "waiting" and one "back" line per process.
_RETRIERS: dict[tuple[str, float], Retrier] = {}


def make_storage(
    url: str | None,
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
    stale_callback: Any = None,
    retry_s: float | None = None,
) -> ResilientStorage | None:
    """The storage at ``url`` (None → None: the caller keeps an in-memory study), its calls
    retried through a storage outage of up to ``retry_s`` seconds.

    One per process and setting. Raises ``StorageError`` (one line) for an unparsable URL,
    a missing driver, an unreachable server, a path that cannot be written, a file that is
    no database (or of something else) and a database written by an older Optuna.
    """
    if not url:
        return None
    url = str(url)
    retry_s = DEFAULT_RETRY_S if retry_s is None else float(retry_s)
    key = (url, heartbeat_interval, grace_period, stale_callback is not None, retry_s)
    if key not in _CACHE:
        retrier = _RETRIERS.setdefault((url, retry_s), Retrier(url, retry_s))
        if is_journal(url):
            inner: Any = retrier.call(open_journal, url)
        else:
            check_url(url)
            engine_kwargs: dict[str, Any] = {}
            if url.startswith("sqlite:///"):
                check_writable(url, Path(url[len("sqlite:///") :]).expanduser(), "database")
                engine_kwargs = {"connect_args": {"timeout": 60}}
            elif not url.startswith("sqlite"):
                engine_kwargs = {"pool_pre_ping": True}  # a restart between calls costs nothing
            inner = _connect(
                url, engine_kwargs, heartbeat_interval, grace_period, stale_callback, retrier
            )
        _CACHE[key] = ResilientStorage(
            inner, retrier, heartbeat_interval, grace_period, stale_callback
        )
    return _CACHE[key]


def _connect(
    url: str, engine_kwargs: dict, heartbeat_interval, grace_period, stale_callback, retrier
) -> RDBStorage:
    """``RDBStorage``, retried: workers starting together on a new database race to create
    its tables ("table studies already exists"); the loser just connects again. A server
    that answers but is not ready (starting up, shutting down, a locked SQLite file) is
    waited for, as long as ``retrier`` waits; a refused or lost connection only for
    ``REFUSED_AT_START_S`` (the gap of a restart; a wrong host or port is one line then, not
    after ``storage_retry_s``)."""
    from sqlalchemy.exc import DatabaseError, OperationalError, SQLAlchemyError

    start = time.monotonic()
    while True:
        try:
            check_schema(url)
            break
        except OperationalError as e:
            waited = time.monotonic() - start
            if not (
                is_transient(e, NOT_READY)
                and waited < retrier.retry_s
                or is_transient(e)
                and waited < min(retrier.retry_s, REFUSED_AT_START_S)
            ):
                raise StorageError(_unreachable(url, e)) from None
            retrier.waiting(e)
            time.sleep(0.5)
        except StorageSchemaError as e:
            raise StorageError(f"hydra.sweeper.storage={redact(url)}: {e}") from None
        except DatabaseError as e:  # e.g. SQLite's "file is not a database"
            raise StorageError(
                f"hydra.sweeper.storage={redact(url)}: not a database "
                f"({first_line(e)}); name a new file or an Optuna database"
            ) from None
    retrier.back()
    for attempt in range(5):
        try:
            with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return RDBStorage(
                    url,
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=heartbeat_interval,
                    grace_period=grace_period,
                    heartbeat_stale_trial_callback=stale_callback,
                )
        except OperationalError as e:
            if attempt == 4 or "already exists" not in str(e):
                raise StorageError(_unreachable(url, e)) from None
        except RuntimeError as e:  # optuna's "the schema is outdated" check
            message = f"hydra.sweeper.storage={redact(url)}: {e}".splitlines()[0]
            raise StorageError(message) from None
        except SQLAlchemyError:
            if attempt == 4:
                raise
        time.sleep(0.5 + random.random())
    raise AssertionError("unreachable")


def _unreachable(url: str, e: Exception) -> str:
    return f"hydra.sweeper.storage={redact(url)}: cannot connect ({first_line(e)})"
