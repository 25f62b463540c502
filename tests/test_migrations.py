"""Schema migrations: a database made before migrations keeps everything; the migrations and
the models agree.

Runs on SQLite always and on PostgreSQL when VSSID_TEST_POSTGRES_URL is set.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from bot import migrate
from bot.assistant import build_assistant
from bot.schema import METADATA
from bot.storage import ConversationStore
from dialogs.messages import Inbound
from dialogs.state import ConversationState
from tests.chat_harness import isolated_settings
from tests.databases import KINDS, empty_database_url

# The tables exactly as `create_all` made them before migrations existed (sqlite3 .schema).
OLD_SCHEMA = Path(__file__).parent / "data" / "schema_before_migrations.sql"
AT = "2026-11-20 08:30:00.000000"


def _old_data_dir(data_dir: Path) -> None:
    """A data dir as the bot left it before migrations: a parent mid-registration who has
    already submitted one declaration, a notice owed, a redelivery marker, an event marker."""
    data_dir.mkdir(parents=True)
    db = sqlite3.connect(data_dir / "vssid.sqlite3")
    db.executescript(OLD_SCHEMA.read_text())
    state = ConversationState(
        flow="registration",
        step="phone",
        values={"social_insurance_code": "7912345670", "full_name": "Lê Thị Hồng Nhung"},
        meta={
            "declarations": [{"receipt": "VSS-OLD-1", "kind": "individual", "full_name": "Lê Thị Hồng Nhung"}]
        },
    )
    db.execute(
        "INSERT INTO conversation VALUES ('test:old', 'test', 'old', ?, 5, ?)", (state.model_dump_json(), AT)
    )
    db.execute("INSERT INTO seen_message VALUES ('test:old#m5', ?)", (AT,))
    db.execute(
        "INSERT INTO declaration_owner VALUES ('VSS-OLD-1', 'test:old', 'individual', ?, NULL, 0, 0)", (AT,)
    )
    db.execute(
        "INSERT INTO notice (key, conversation_id, payload, created_at, sent_at, attempts)"
        " VALUES ('event:3', 'test:old', '[{\"text\": \"Hồ sơ đã được duyệt\", \"buttons\": []}]', ?, NULL, 0)",
        (AT,),
    )
    db.execute("INSERT INTO key_value VALUES ('notifications:last_event', '3')")
    db.commit()
    db.close()


async def test_a_data_dir_made_before_migrations_keeps_every_conversation_and_declaration(tmp_path):
    settings = isolated_settings(tmp_path)
    _old_data_dir(settings.data_dir)

    assistant = await build_assistant(settings)
    store = assistant.store
    state, version = store.load("test:old")
    assert (state.flow, state.step, version) == ("registration", "phone", 5)
    assert state.values["full_name"] == "Lê Thị Hồng Nhung"
    owner = store.owner_of("VSS-OLD-1")
    assert owner is not None and owner.conversation_id == "test:old"
    assert store.statistics()["declarations_individual"] == 1
    assert store.get_marker("notifications:last_event") == "3"
    assert store.seen("test:old", "m5")  # a redelivered old message is still answered once
    assert store.owes_notices("test:old")

    # The conversation goes on where it was: the owed notice comes with the next reply.
    replies = await assistant.handle(Inbound("test", "old", "m6", text="0987654321"))
    assert replies[0].text == "Hồ sơ đã được duyệt"
    assert store.load("test:old")[0].values["phone"] == "0987654321"
    with store.engine.connect() as connection:
        assert migrate.current_revision(connection) == migrate.head_revision()
    await assistant.close()


def test_starting_twice_on_a_migrated_database_changes_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 'bot.sqlite3'}"
    first = ConversationStore(url)
    first.save("t:u", "t", "u", ConversationState(step="x"), 0, "m1")
    first.close()
    again = ConversationStore(url)
    assert again.load("t:u") == (ConversationState(step="x"), 1)
    again.close()


def test_the_quick_head_check_agrees_with_alembic(tmp_path):
    """Start-up skips alembic when the SQLite file is at the newest revision, read from the
    scripts' own lines: that reading must name the head alembic names, and a file at an
    older revision (or without one) is not taken for migrated."""
    assert migrate.head_from_files() == migrate.head_revision()
    path = tmp_path / "bot.sqlite3"
    ConversationStore(f"sqlite:///{path}").close()
    assert migrate.sqlite_at_head(str(path))
    with sqlite3.connect(path) as db:
        db.execute("UPDATE alembic_version SET version_num = '0004'")
    assert not migrate.sqlite_at_head(str(path))
    assert not migrate.sqlite_at_head(str(tmp_path / "missing.sqlite3"))


@pytest.fixture(params=KINDS)
def empty_database(request, tmp_path):
    """A URL to a database with no tables at all."""
    return empty_database_url(request.param, tmp_path)


def test_the_migrations_build_exactly_the_models_tables(empty_database):
    """Every model change comes with its migration: step by step from nothing, alembic
    finds no difference between the migrated database and the models."""
    engine = create_engine(empty_database)
    with engine.begin() as connection:
        command.upgrade(migrate.alembic_config(connection), "head")
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, METADATA) == []
        assert migrate.current_revision(connection) == migrate.head_revision()
    engine.dispose()


def test_start_up_migrates_a_new_database_to_the_newest_revision(empty_database):
    store = ConversationStore(empty_database)
    with store.engine.connect() as connection:
        assert migrate.current_revision(connection) == migrate.head_revision()
        assert set(METADATA.tables) <= set(inspect(connection).get_table_names())
    store.close()


def _at_0007(url: str) -> None:
    """A database as 0007 left it: a conversation, and its answered ids all in seen_message."""
    import sqlalchemy as sa
    from sqlmodel.sql.sqltypes import UTCDateTime

    from bot.storage import utcnow

    conversation = sa.table(
        "conversation",
        *(sa.column(name) for name in ("id", "channel", "user_id", "state", "version")),
        sa.column("updated_at", UTCDateTime()),
    )
    seen = sa.table("seen_message", sa.column("key"), sa.column("at", UTCDateTime()))
    engine = create_engine(url)
    with engine.begin() as connection:
        command.upgrade(migrate.alembic_config(connection), "0007")
        state = ConversationState(flow="registration", step="phone").model_dump_json()
        connection.execute(
            sa.insert(conversation).values(
                id="t:old", channel="t", user_id="old", state=state, version=5, updated_at=utcnow()
            )
        )
        connection.execute(sa.insert(seen).values(key="t:old#m5", at=utcnow()))
    engine.dispose()


def test_upgrading_from_0007_keeps_every_conversation_and_the_ids_it_answered(empty_database):
    from datetime import timedelta

    from bot.storage import SaveResult, utcnow

    _at_0007(empty_database)
    store = ConversationStore(empty_database)  # migrates to the newest revision
    state, version = store.load("t:old")
    assert (state.flow, state.step, version) == ("registration", "phone", 5)
    assert store.seen("t:old", "m5")  # answered before the upgrade: still answered once
    assert store.save("t:old", "t", "old", ConversationState(), 5, "m5") is SaveResult.DUPLICATE
    seen, state, version = store.begin("t:old", "m6")
    assert seen is None and version == 5
    state.step = "address"
    assert store.save("t:old", "t", "old", state, version, "m6") is SaveResult.SAVED
    assert store.seen("t:old", "m6") and store.load("t:old")[0].step == "address"
    assert store.purge_seen(utcnow() + timedelta(seconds=1)) == 2  # the old mark and the new
    assert not store.seen("t:old", "m5") and not store.seen("t:old", "m6")
    store.close()


def test_downgrading_to_0007_moves_the_marks_in_rows_to_seen_message(empty_database):
    from sqlalchemy import text

    from bot.storage import SaveResult

    store = ConversationStore(empty_database)
    for version, message_id in enumerate(("m1", "m2")):
        assert store.save("t:u", "t", "u", ConversationState(), version, message_id) is SaveResult.SAVED
    store.close()
    engine = create_engine(empty_database)
    with engine.begin() as connection:
        command.downgrade(migrate.alembic_config(connection), "0007")
        keys = connection.execute(text("SELECT key FROM seen_message ORDER BY key")).scalars().all()
        assert keys == ["t:u#m1", "t:u#m2"]
        assert connection.execute(text("SELECT version FROM conversation")).scalar_one() == 2
    engine.dispose()
