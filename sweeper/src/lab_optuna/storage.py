"""Optuna storages from URLs, with one-line errors naming the setting and the fix.

``null`` is an in-memory study; ``sqlite:///path`` a file (its folder created, a 60 s busy
timeout so local workers can share it); ``postgresql://…`` for many workers and machines.
"""

from __future__ import annotations

import random
import time
import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import RDBStorage

from .schema import StorageSchemaError, check_schema
from .urls import StorageError, check_url, redact

_CACHE: dict[tuple, RDBStorage] = {}


def make_storage(
    url: str | None,
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
    stale_callback: Any = None,
) -> RDBStorage | None:
    """An ``RDBStorage`` for ``url`` (None → None: the caller keeps an in-memory study).

    One per process and setting. Raises ``StorageError`` (one line) for an unparsable URL,
    a missing driver, an unreachable server or a database written by an older Optuna.
    """
    if not url:
        return None
    url = str(url)
    key = (url, heartbeat_interval, grace_period, stale_callback is not None)
    if key not in _CACHE:
        check_url(url)
        engine_kwargs: dict[str, Any] = {}
        if url.startswith("sqlite:///"):
            Path(url[len("sqlite:///") :]).expanduser().parent.mkdir(parents=True, exist_ok=True)
            engine_kwargs = {"connect_args": {"timeout": 60}}
        elif not url.startswith("sqlite"):
            engine_kwargs = {"pool_pre_ping": True}
        _CACHE[key] = _connect(url, engine_kwargs, heartbeat_interval, grace_period, stale_callback)
    return _CACHE[key]


def _connect(
    url: str, engine_kwargs: dict, heartbeat_interval, grace_period, stale_callback
) -> RDBStorage:
    """``RDBStorage``, retried: workers starting together on a new database race to create
    its tables ("table studies already exists"); the loser just connects again."""
    from sqlalchemy.exc import OperationalError, SQLAlchemyError

    try:
        check_schema(url)
    except OperationalError as e:
        raise StorageError(_unreachable(url, e)) from None
    except StorageSchemaError as e:
        raise StorageError(f"hydra.sweeper.storage={redact(url)}: {e}") from None
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
    cause = getattr(e, "orig", None) or e
    first = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    return f"hydra.sweeper.storage={redact(url)}: cannot connect ({first})"
