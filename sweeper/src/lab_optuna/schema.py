"""Is an Optuna RDB storage at the schema this Optuna writes? One line when it is not.

A database written by optuna 2.10 (the project's previous stack) must be upgraded once with
``optuna storage upgrade --storage URL`` before current Optuna or optuna-dashboard can use it;
the upgrade is one-way (optuna 2.10 cannot open the file afterwards). :func:`check_schema`
tells, before anything writes to the database, with a message naming that command.
"""

from __future__ import annotations

import logging
from pathlib import Path

import optuna
import sqlalchemy
from optuna.storages import RDBStorage

from lab_optuna._storage.urls import redact

# alembic logs "setup plugin ..." at INFO when imported: quiet before the import, which now
# comes at the sweeper's start (before its console is set up), not at the first storage call
logging.getLogger("alembic").setLevel(logging.WARNING)
from alembic.migration import MigrationContext  # noqa: E402


class StorageSchemaError(RuntimeError):
    """The storage's schema is not the one this Optuna uses; the message is one line."""


def upgrade_command(url: str) -> str:
    """The shell command that upgrades ``url``'s schema (password redacted)."""
    quoted = "'" + redact(url).replace("'", "'\"'\"'") + "'"
    return f"optuna storage upgrade --storage {quoted}"


def _sqlite_file(url: sqlalchemy.engine.URL) -> Path | None:
    """The file of a file-backed SQLite URL, else None."""
    if not url.get_backend_name() == "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database).expanduser()


def check_schema(url: str) -> None:
    """Raise :class:`StorageSchemaError` if the Optuna storage at ``url`` has an old schema
    (or one of a newer Optuna); return quietly for a current, empty or not yet created one,
    or one whose tables another worker is creating.

    Reads only: a missing SQLite file is not created and an empty database gets no tables.
    An SQLite file with tables but none of Optuna's is refused (a PostgreSQL or MySQL
    database may hold other applications' tables beside Optuna's).
    Connection and driver errors (SQLAlchemy's, ``ImportError``) are left to the caller.
    """
    parsed = sqlalchemy.engine.make_url(url)
    file = _sqlite_file(parsed)
    if file is not None and (not file.is_file() or file.stat().st_size == 0):
        return  # Optuna will create it at the current schema
    # SQLite: wait for a busy file (workers writing) as the sweeper's storage does
    engine_kwargs = {"connect_args": {"timeout": 60}} if file is not None else {}
    engine = sqlalchemy.create_engine(parsed, **engine_kwargs)
    try:
        with engine.connect() as connection:
            tables = set(sqlalchemy.inspect(connection).get_table_names())
            if "studies" not in tables and tables and file is not None:
                shown = ", ".join(sorted(tables)[:5]) + (", …" if len(tables) > 5 else "")
                raise StorageSchemaError(
                    f"{file} is a database of something else (tables: {shown}), not an "
                    "Optuna storage; name a new file or an Optuna database"
                )
            if "studies" not in tables:
                return  # no Optuna tables yet
            revision = MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
    if revision is None or "version_info" not in tables:
        # Tables without a schema version: another worker is creating them right now (Optuna
        # stamps the version after creating the tables). Optuna's own check covers the rest.
        return
    where = f"Optuna storage {redact(url)}"
    fix = f"run once: {upgrade_command(url)} (one-way: Optuna < 3 cannot open it afterwards)"
    # Both tables exist, so this neither creates tables nor stamps a version: it only reads.
    storage = RDBStorage(
        parsed.render_as_string(hide_password=False),
        engine_kwargs=engine_kwargs,
        skip_compatibility_check=True,
        skip_table_creation=True,
    )
    try:
        current, head = storage.get_current_version(), storage.get_head_version()
        known = storage.get_all_versions()
    finally:
        storage.remove_session()
        storage.engine.dispose()
    if current == head:
        return
    if current in known:
        raise StorageSchemaError(
            f"{where} has the schema {current} of an older Optuna (optuna "
            f"{optuna.__version__} needs {head}); {fix}"
        )
    raise StorageSchemaError(
        f"{where} has the schema {current} of a newer Optuna than {optuna.__version__}; "
        f"upgrade Optuna: pip install -U optuna"
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m lab_optuna.schema URL``: exit 0 if the schema is current, else 2 and one line."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m lab_optuna.schema STORAGE_URL", file=sys.stderr)
        return 2
    try:
        check_schema(args[0])
    except StorageSchemaError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
