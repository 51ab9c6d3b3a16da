"""Optuna storages from URLs: SQLite under multirun/ by default, PostgreSQL for many workers."""

from __future__ import annotations

import random
import time
from pathlib import Path

import optuna
from optuna.storages import RDBStorage

_CACHE: dict[tuple, RDBStorage] = {}


def make_storage(
    url: str | None, heartbeat_interval: int | None = None, grace_period: int | None = None
) -> RDBStorage | None:
    """An ``RDBStorage`` for ``url`` (None → in-memory), one per process and setting.

    SQLite gets a 60 s busy timeout so a few local workers can share one file; its folder is
    created if needed. Heartbeats let a restarted sweep fail the trials of a killed worker.
    """
    if not url:
        return None
    key = (url, heartbeat_interval, grace_period)
    if key not in _CACHE:
        engine_kwargs: dict = {}
        if url.startswith("sqlite:///"):
            Path(url[len("sqlite:///") :]).expanduser().parent.mkdir(parents=True, exist_ok=True)
            engine_kwargs = {"connect_args": {"timeout": 60}}
        elif url.startswith("postgresql"):
            engine_kwargs = {"pool_pre_ping": True}
        _CACHE[key] = _connect(url, engine_kwargs, heartbeat_interval, grace_period)
    return _CACHE[key]


def _connect(url: str, engine_kwargs: dict, heartbeat_interval, grace_period) -> RDBStorage:
    """``RDBStorage``, retried: workers starting together on a new database race to create
    its tables ("table studies already exists"); the loser just connects again."""
    from sqlalchemy.exc import SQLAlchemyError

    for attempt in range(5):
        try:
            return RDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=heartbeat_interval,
                grace_period=grace_period,
            )
        except SQLAlchemyError:
            if attempt == 4:
                raise
            time.sleep(0.5 + random.random())
    raise AssertionError("unreachable")


def redact(url: str | None) -> str:
    """The URL without its password, for logs and files."""
    if not url or "@" not in url or "://" not in url:
        return str(url)
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


def load_study(url: str, study_name: str) -> optuna.Study:
    return optuna.load_study(study_name=study_name, storage=make_storage(url))
