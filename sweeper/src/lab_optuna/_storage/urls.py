"""Database URLs: redacted for logs and files, checked (parsable, driver installed) in one
line naming the setting and the fix. Nothing here connects to a database."""

from __future__ import annotations

from typing import Any

#: Python driver modules → the pip requirement that provides them.
_DRIVERS = {
    "psycopg": "the `postgres` extra: pip install 'lab-optuna-sweeper[postgres]' (psycopg 3)",
    "psycopg2": "psycopg2-binary (pip install psycopg2-binary), or use postgresql:// (psycopg 3)",
    "MySQLdb": "mysqlclient (pip install mysqlclient), or use mysql+pymysql:// with pymysql",
    "pymysql": "pymysql: pip install pymysql",
}


class StorageError(RuntimeError):
    """A storage URL that cannot be used; the message is one line with the fix."""


def redact(url: Any) -> str:
    """The URL with its password replaced by ``***`` (SQLAlchemy's own rendering), for logs,
    files and errors; text that is no URL comes back as it is."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(str(url)).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return str(url)


def check_url(url: str) -> None:
    """Raise StorageError for a URL SQLAlchemy cannot parse or whose driver is missing."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    where = f"hydra.sweeper.storage={redact(url)}"
    try:
        dialect = make_url(url).get_dialect()
    except ArgumentError:
        example = (
            "sqlite:///multirun/optuna.db, postgresql://user:pass@host/db "
            "or journal:///multirun/optuna.log"
        )
        raise StorageError(f"{where}: not a database URL (expected e.g. {example})") from None
    except NoSuchModuleError:
        raise StorageError(
            f"{where}: unknown database type {url.split(':', 1)[0]!r} "
            "(use sqlite, postgresql or mysql)"
        ) from None
    try:
        dialect.import_dbapi()
    except ImportError as e:
        module = (getattr(e, "name", None) or str(e)).split(".")[0]
        fix = _DRIVERS.get(module, f"the {module!r} Python package")
        raise StorageError(
            f"{where}: its driver {module!r} is not installed; install {fix}"
        ) from None
