"""`vssid-bot keys rotate`: a new data key, and everything sealed re-sealed under it.

Run it with the bot stopped. Order, so that a crash at any point leaves everything
readable: the new key is written first in `data.key` with the old ones after it; then every
sealed value is re-sealed (conversation states, notices, the stub's names, phones, SMS and
declarations with their phone hashes, the outboxes, stored photos and PDFs); only then are
the old keys dropped. With VSSID_DATA_KEY the new key is printed for the operator to put in
its place (the old one stays in data.key until then, so nothing is locked out).
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy import Table, select, update
from sqlalchemy.orm.attributes import flag_modified
from sqlmodel import Session

from bot.config import Settings, load_settings
from bot.crypto import Keyring, key_file, new_key, write_key_file

keys_app = typer.Typer(help="Manage the data key that seals personal data at rest.", no_args_is_help=True)

DataDirOption = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Data directory (default: VSSID_DATA_DIR or ./vssid-data)."),
]

OUTBOX_FILES = {"telegram-outbox.sqlite3": ("outbox",), "zalo-outbox.sqlite3": ("outbox", "offered")}
_OUTBOX_COLUMNS = {"outbox": ("id", "spec"), "offered": ("user_id", "buttons")}


@keys_app.command("rotate")
def rotate(data_dir: DataDirOption = None) -> None:
    """Make a new data key and re-seal every sealed value and file under it (bot stopped)."""
    settings = load_settings(data_dir=data_dir)
    old = settings.keyring()
    old_texts = key_file(settings.data_dir).read_text(encoding="utf-8").split()
    if settings.data_key and settings.data_key.strip() not in old_texts:
        old_texts.insert(0, settings.data_key.strip())
    fresh = new_key()
    write_key_file(settings.data_dir, [fresh, *old_texts])  # a crash from here on loses nothing
    keyring = Keyring.from_texts([fresh, *old_texts])
    counts = reseal_everything(settings, keyring)
    if settings.data_key:
        typer.echo(
            "VSSID_DATA_KEY is set: put this new key in its place, then restart "
            f"(the old key stays in {key_file(settings.data_dir)} meanwhile):\n{fresh}"
        )
    else:
        write_key_file(settings.data_dir, [fresh])
    summary = ", ".join(f"{n} {what}" for what, n in counts.items())
    typer.echo(f"Data key rotated (old keys: {old.key_count}); re-sealed {summary}.")


def reseal_everything(settings: Settings, keyring: Keyring) -> dict[str, int]:
    counts = {
        "conversation states, notices, tickets and schools": _reseal_bot_database(settings, keyring),
        "stub backend rows": _reseal_stub(settings, keyring),
        "outbox rows": sum(
            _reseal_outbox(settings.data_dir / name, tables, keyring) for name, tables in OUTBOX_FILES.items()
        ),
        "files": _reseal_files(settings, keyring),
    }
    return counts


def _table(model: Any) -> Table:
    """A table model's Table (sqlmodel's metaclass adds `__table__` where type checkers cannot see it)."""
    table: Table = model.__table__
    return table


def _reseal_bot_database(settings: Settings, keyring: Keyring) -> int:
    from bot import migrate
    from bot.schema import ConversationRow, OfferedButtons, OutboxItem
    from bot.storage import make_engine

    url = settings.sqlalchemy_url
    if url.startswith("sqlite") and not Path(url.removeprefix("sqlite:///")).exists():
        return 0
    engine = make_engine(url, keyring)  # Sealed columns: opened with any key, sealed with the new one
    migrate.upgrade(engine)  # the sealed columns are TEXT from 0007 on
    done = 0
    try:
        with engine.begin() as connection:
            for table, key, column in (
                (_table(ConversationRow), "id", "state"),
                (_table(OutboxItem), "id", "payload"),
                (_table(OfferedButtons), "conversation_id", "buttons"),
            ):
                for row_key, value in connection.execute(select(table.c[key], table.c[column])).all():
                    if value is None or keyring.is_current(value):
                        continue
                    sealed = keyring.seal_text(keyring.open_text(value))
                    connection.execute(update(table).where(table.c[key] == row_key).values({column: sealed}))
                    done += 1
            done += _reseal_sealed_columns(connection)
    finally:
        engine.dispose()
    return done


def _reseal_sealed_columns(connection: Any) -> int:
    """The hotline's and schools' `Sealed` columns: read (opened with any key) and written back
    (sealed with the new one) through the engine's keyring."""
    from bot.schema import METADATA
    from bot.sealing import sealed_columns

    done = 0
    for table in METADATA.sorted_tables:
        columns = sealed_columns(table)
        if not columns:
            continue
        keys = list(table.primary_key.columns)
        for row in connection.execute(select(*keys, *(table.c[c] for c in columns))).all():
            where = [k == row._mapping[k.name] for k in keys]
            connection.execute(update(table).where(*where).values({c: row._mapping[c] for c in columns}))
            done += 1
    return done


def _reseal_stub(settings: Settings, keyring: Keyring) -> int:
    from bot.backend.store import (
        AccountRow,
        DeclarationRow,
        EventRow,
        OtpRow,
        SmsRow,
        account_key,
        create_tables,
        make_engine,
        use_keyring,
    )
    from bot.sealing import sealed_columns

    if not Path(settings.backend_store_url.removeprefix("sqlite:///")).exists():
        return 0
    engine = make_engine(settings.backend_store_url)
    use_keyring(engine, keyring)  # reads open under any key, writes seal under the new one
    create_tables(engine)  # a store from before sealed codes is brought up to date first
    done = 0
    try:
        with Session(engine) as session:
            for model in (DeclarationRow, EventRow, OtpRow, AccountRow, SmsRow):
                sealed = sealed_columns(_table(model))
                for row in session.scalars(select(model)):
                    for name in sealed:
                        flag_modified(row, name)
                    # The hash key changed too: look-up hashes are made again under the new key.
                    if isinstance(row, SmsRow):
                        row.phone_digest = keyring.digest(row.phone)
                    elif isinstance(row, AccountRow):
                        row.code_digest = account_key(session, row.social_insurance_code)
                    elif isinstance(row, OtpRow) and row.purpose == "account":
                        session.delete(row)  # found by the old hash; a new code is one tap away
                    done += 1
            session.commit()
    finally:
        engine.dispose()
    return done


def _reseal_outbox(path: Path, tables: tuple[str, ...], keyring: Keyring) -> int:
    if not path.exists():
        return 0
    done = 0
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("PRAGMA secure_delete = ON")
        for table in tables:
            key, column = _OUTBOX_COLUMNS[table]
            with contextlib.suppress(sqlite3.OperationalError):  # the table may not exist yet
                # Table and column names are constants of this module, never input.
                rows = db.execute(f"SELECT {key}, {column} FROM {table}").fetchall()  # noqa: S608 - constants
                for row_key, value in rows:
                    sealed = keyring.seal_text(keyring.open_text(value))
                    update_row = f"UPDATE {table} SET {column} = ? WHERE {key} = ?"  # noqa: S608 - constants
                    db.execute(update_row, (sealed, row_key))
                    done += 1
    return done


def _reseal_files(settings: Settings, keyring: Keyring) -> int:
    """Stored photos and PDFs under the new key (plain ones from before encryption sealed too);
    the terminal's clear copies (bot/handout.py) are dropped: they are named under the old key."""
    from bot.handout import forget_all

    forget_all(settings.data_dir)
    done = 0
    for root in (settings.uploads_dir, settings.documents_dir):
        if not root.is_dir():
            continue
        for path in root.rglob("*"):
            if path.suffix not in (".jpg", ".pdf") or not path.is_file():
                continue
            if not keyring.bytes_current(path.read_bytes()):
                keyring.write_file(path, keyring.read_file(path))
                done += 1
    return done
