"""Bring the bot's database to the newest schema: alembic `upgrade head`, at every start-up.

Run by `ConversationStore` before anything else touches the database, on SQLite and on
PostgreSQL alike. Workers starting together take turns: on PostgreSQL an advisory lock held
for the migration's transaction, on SQLite the database's write lock (`BEGIN IMMEDIATE`).
A database made before migrations existed is taken as it is (the baseline creates only the
tables it lacks) and keeps every row.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine import Connection
    from sqlalchemy.engine import Engine as SqlEngine

SCRIPTS = Path(__file__).resolve().parent / "migrations"
# Any constant: the key of the advisory lock that serialises migrations on PostgreSQL.
_PG_MIGRATION_LOCK = 0x56_53_53_49_44  # "VSSID"


def alembic_config(connection: Connection | None = None) -> Config:
    # alembic is imported only when a database is not at the newest revision (see `upgrade`):
    # importing it was a fifth of a terminal chat's cold start.
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    config.attributes["connection"] = connection
    return config


@cache
def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def _sqlite_transactions(engine: SqlEngine) -> None:
    """Let SQLAlchemy, not the sqlite3 module, begin transactions: DDL included, write lock taken first."""
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA journal_mode=WAL")
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def upgrade(engine: SqlEngine) -> None:
    """Migrate `engine`'s database to the newest revision (nothing to do when it is there)."""
    if engine.dialect.name == "sqlite" and sqlite_at_head(engine.url.database):
        return
    if engine.dialect.name != "sqlite":
        _upgrade(engine)
        return
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    # Its own engine: the transaction hooks stay off the caller's connections.
    own = create_engine(engine.url, connect_args={"timeout": 30}, poolclass=NullPool)
    _sqlite_transactions(own)
    try:
        _upgrade(own)
    finally:
        own.dispose()


_REVISION = re.compile(r"^(down_revision|revision)\s*=\s*(?:['\"]([^'\"]+)['\"]|None)", re.M)


@cache
def head_from_files() -> str | None:
    """The newest revision read from the scripts' `revision =` lines, without alembic (which
    `head_revision` asks); None when the scripts do not form one simple chain."""
    revisions, parents = set(), set()
    for script in (SCRIPTS / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"):
        found = dict((name, value) for name, value in _REVISION.findall(script.read_text(encoding="utf-8")))
        if not found.get("revision"):
            return None
        revisions.add(found["revision"])
        parents.add(found.get("down_revision") or None)
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def sqlite_at_head(database: str | None) -> bool:
    """A plain read of the SQLite file's alembic_version: at the newest revision, nothing to do
    (the common start-up), without importing alembic or taking the write lock."""
    head = head_from_files()
    if not database or database == ":memory:" or head is None or not Path(database).is_file():
        return False
    try:
        with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)) as db:
            rows = db.execute("SELECT version_num FROM alembic_version").fetchall()
    except sqlite3.Error:
        return False
    return rows == [(head,)]


def _upgrade(engine: SqlEngine) -> None:
    from alembic import command
    from sqlalchemy import inspect

    from bot.schema import METADATA

    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})")
        current = current_revision(connection)
        if current == head_revision():
            return
        if current is None and not inspect(connection).get_table_names():
            # An empty database: the models' tables at once, marked as the newest revision
            # (alembic's way to build from scratch; a test keeps the two paths equal).
            METADATA.create_all(connection)
            command.stamp(alembic_config(connection), "head")
            return
        command.upgrade(alembic_config(connection), "head")


def new_revision(message: str) -> Path:
    """Write the next migration for what changed in `bot/schema.py` (autogenerated against a
    scratch database at the newest revision); review and edit it before committing."""
    import tempfile

    from alembic import command
    from sqlalchemy import create_engine

    numbers = [int(p.name[:4]) for p in (SCRIPTS / "versions").glob("[0-9][0-9][0-9][0-9]_*.py")]
    rev_id = f"{max(numbers, default=0) + 1:04d}"
    with tempfile.TemporaryDirectory() as scratch:
        engine = create_engine(f"sqlite:///{scratch}/scratch.sqlite3")
        with engine.begin() as connection:
            config = alembic_config(connection)
            config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
            command.upgrade(config, "head")
            script = command.revision(config, message=message, autogenerate=True, rev_id=rev_id)
        engine.dispose()
    assert script is not None and not isinstance(script, list)
    return Path(script.path)


if __name__ == "__main__":  # python -m bot.migrate "what changed"
    import sys

    print(new_revision(" ".join(sys.argv[1:]) or "schema change"))
