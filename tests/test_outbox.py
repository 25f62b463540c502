"""Upgrading to the one outbox in the main database: notices queued by the previous version
are carried over by the migration, and what an earlier version kept in its per-channel
SQLite files (Telegram, Zalo) moves into the database on the first start and is delivered.

The migration runs on SQLite always and on PostgreSQL when VSSID_TEST_POSTGRES_URL is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, text

from bot import migrate
from bot.channels.outbox import queue_of
from bot.crypto import keyring_beside
from bot.outbox import OutboxQueue
from bot.storage import ConversationStore
from tests.databases import KINDS, empty_database_url

AT = "2026-11-20 08:30:00.000000"


@pytest.fixture(params=KINDS)
def database(request, tmp_path):
    return empty_database_url(request.param, tmp_path)


def test_notices_queued_before_the_upgrade_are_carried_over_in_order_and_sent_once(database):
    engine = create_engine(database)
    with engine.begin() as connection:
        command.upgrade(migrate.alembic_config(connection), "0005")
        rows = [
            # key, conversation, text, sent
            ("event:1", "telegram:11", "đã gửi rồi", True),
            ("event:2", "telegram:11", "hồ sơ được duyệt", False),
            ("reminder:VSS-1", "telegram:11", "nhắc nộp bản giấy", False),
            ("event:3", "zalo:22", "hồ sơ bị trả lại", False),
        ]
        for key, conversation, body, sent in rows:
            connection.execute(
                text(
                    "INSERT INTO notice (key, conversation_id, payload, created_at, sent_at, attempts)"
                    " VALUES (:key, :conversation, :payload, :at, :sent, 0)"
                ),
                {
                    "key": key,
                    "conversation": conversation,
                    "payload": json.dumps([{"text": body, "buttons": []}], ensure_ascii=False),
                    "at": AT,
                    "sent": AT if sent else None,
                },
            )
    engine.dispose()

    store = ConversationStore(database)  # starts as a worker does: migrates to the newest revision
    with store.engine.connect() as connection:
        assert migrate.current_revision(connection) == migrate.head_revision()
    # A sent notice's key stays taken: the decision is not told twice.
    assert not store.enqueue_notice("event:1", "telegram:11", [{"text": "lần hai", "buttons": []}])
    first = store.claim_notices("worker-a", ("telegram:", "zalo:"), timedelta(minutes=1))
    assert [(n.key, n.payload[0]["text"]) for n in first] == [
        ("event:2", "hồ sơ được duyệt"),
        ("event:3", "hồ sơ bị trả lại"),
    ]
    for notice in first:
        store.outbox.done(notice.id)
    [last] = store.claim_notices("worker-b", ("telegram:",), timedelta(minutes=1))
    assert last.key == "reminder:VSS-1"  # in its order, after the one before it was sent
    store.outbox.done(last.id)
    assert not store.owes_notices("telegram:11")
    assert store.claim_notices("worker-a", ("telegram:", "zalo:"), timedelta(minutes=1)) == []
    store.close()


def _old_outbox_file(path: Path, channel_rows: list[tuple[str, dict]], **tables: list[tuple]) -> None:
    """A per-channel outbox file as the previous version left it (sealed with the data keys)."""
    keyring = keyring_beside(path)
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute(
            "CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL,"
            " spec TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, created_at REAL NOT NULL)"
        )
        for user, spec in channel_rows:
            db.execute(
                "INSERT INTO outbox (user_id, spec, attempts, created_at) VALUES (?, ?, 1, 0)",
                (user, keyring.seal_text(json.dumps(spec, ensure_ascii=False))),
            )
        if "offered" in tables:
            db.execute("CREATE TABLE offered (user_id TEXT PRIMARY KEY, buttons TEXT NOT NULL)")
            for user, buttons in tables["offered"]:
                db.execute(
                    "INSERT INTO offered VALUES (?, ?)",
                    (user, keyring.seal_text(json.dumps(buttons, ensure_ascii=False))),
                )
        if "callbacks" in tables:
            db.execute(
                "CREATE TABLE callbacks (id INTEGER PRIMARY KEY AUTOINCREMENT,"
                " token TEXT NOT NULL UNIQUE, payload TEXT NOT NULL)"
            )
            db.executemany("INSERT INTO callbacks (token, payload) VALUES (?, ?)", tables["callbacks"])


async def test_replies_kept_in_an_old_zalo_outbox_file_are_delivered_after_the_upgrade(tmp_path):
    from tests.fake_assistant import ScriptedAssistant
    from tests.fake_zalo_api import FakeZaloApi, text_event
    from tests.test_zalo import Harness, make_channel

    user = "8492990001070555001"
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    old = data_dir / "zalo-outbox.sqlite3"
    _old_outbox_file(
        old,
        [
            (user, {"kind": "text", "text": "Hồ sơ đã được duyệt."}),
            (user, {"kind": "text", "text": "Cảm ơn bạn."}),
        ],
        offered=[(user, {"Theo dõi hồ sơ": "cmd:status"})],
    )
    api = await FakeZaloApi().start()
    assistant = ScriptedAssistant(document=tmp_path / "to-khai.pdf")
    channel = make_channel(assistant, api, data_dir)
    try:
        from aiohttp import web
        from aiohttp.test_utils import TestClient, TestServer

        app = web.Application()
        channel.add_routes(app)
        await channel.start()
        assert not old.exists()  # moved into the database, not left behind
        await channel.retry_outbox()
        assert api.texts(user) == ["Hồ sơ đã được duyệt.", "Cảm ơn bạn."]
        async with TestClient(TestServer(app)) as client:
            harness = Harness(client, channel, api, assistant)
            await harness.post(text_event(user, "Theo dõi hồ sơ"))  # a button offered before the upgrade
        assert assistant.received[-1].button == "cmd:status"
        assert await channel.outbox.items() == []
    finally:
        await channel.stop()
        await api.close()


async def test_replies_and_button_ids_kept_in_an_old_telegram_outbox_file_survive_the_upgrade(tmp_path):
    from tests.fake_bot_api import FakeBotApi, FakeUser
    from tests.telegram_harness import (
        FAST_RETRY,
        ScriptedAssistant,
        build_served_channel,
        fake_pdf,
        make_settings,
    )

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    chat = 5_300_777
    old = data_dir / "telegram-outbox.sqlite3"
    _old_outbox_file(
        old,
        [(str(chat), {"kind": "text", "text": "Hồ sơ đã được duyệt.", "batch": 3})],
        callbacks=[("~abcdefghijkl", "province:ha-noi")],
    )
    server = FakeBotApi()
    await server.start()
    try:
        FakeUser(server, chat)
        settings = make_settings("aiogram", "polling", server.base_url, data_dir=data_dir)
        channel, _ = await build_served_channel(
            settings, "polling", ScriptedAssistant(fake_pdf(tmp_path)), retry=FAST_RETRY, poll_timeout=1
        )
        assert not old.exists()
        assert await channel.outbox.get_callback("~abcdefghijkl") == "province:ha-noi"
        await channel.start()
        await server.wait_for(
            lambda: any(r.name == "sendmessage" and r.outcome == "ok" for r in server.requests), timeout=10
        )
        await channel.idle()
        sent = [r.params["text"] for r in server.requests if r.name == "sendmessage" and r.outcome == "ok"]
        assert sent == ["Hồ sơ đã được duyệt."]
        assert channel.outbox.items_now() == []
        await channel.stop()
    finally:
        await server.stop()


def test_two_workers_claiming_at_once_never_take_the_same_item(database, tmp_path):
    queues = [
        OutboxQueue(ConversationStore(database).engine),
        OutboxQueue(ConversationStore(database).engine),
    ]
    for n in range(20):
        queues[0].add_messages(f"zalo:u{n % 5}", [{"kind": "text", "text": f"tin {n}"}], "refused")
    taken = [queues[i % 2].claim(f"w{i % 2}", timedelta(minutes=1), prefixes=("zalo:",)) for i in range(2)]
    ids = [item.id for batch in taken for item in batch]
    assert len(ids) == len(set(ids)) == 5  # one per user: the next of each waits behind it
    assert queue_of(None, database, tmp_path).waiting("zalo:") == {f"zalo:u{n}": 4 for n in range(5)}


async def test_an_update_held_by_a_worker_killed_mid_answer_is_answered_by_another_in_order(database):
    from bot.channels.inbox import Inbox
    from bot.outbox import UPDATE

    store = ConversationStore(database)
    answered: list[tuple[str, str]] = []

    async def answer(user_id: str, payload: dict) -> None:
        answered.append((user_id, payload["text"]))

    survivor = Inbox(store.outbox, "zalo", answer)
    assert await survivor.take("u1", "m1", {"text": "một"})
    assert await survivor.take("u1", "m2", {"text": "hai"})
    assert not await survivor.take("u1", "m1", {"text": "một"})  # a redelivery: recorded once
    # Another worker took the first update and died before answering it.
    [held] = store.outbox.claim(
        "dead-worker", timedelta(seconds=1), conversation_id="in:zalo:u1", kinds=(UPDATE,)
    )
    assert held.payload == {"text": "một"}

    await survivor.drain("u1")
    assert answered == []  # held, and the second waits behind it
    await asyncio.sleep(1.1)
    await survivor.sweep()
    await survivor.idle()
    assert answered == [("u1", "một"), ("u1", "hai")]
    await survivor.sweep()
    await survivor.idle()
    assert answered == [("u1", "một"), ("u1", "hai")]  # answered once
    store.close()


async def test_a_zalo_reply_held_by_a_worker_killed_mid_send_is_sent_once_by_another(tmp_path):
    from bot.outbox import MESSAGE
    from tests.fake_assistant import ScriptedAssistant
    from tests.fake_zalo_api import FakeZaloApi
    from tests.test_zalo import make_channel

    user = "8492990001070555002"
    api = await FakeZaloApi().start()
    channel = make_channel(ScriptedAssistant(document=tmp_path / "to-khai.pdf"), api, tmp_path / "data")
    await channel.start()
    try:
        queue = channel.outbox.queue
        queue.add_messages(f"zalo:{user}", [{"kind": "text", "text": "Hồ sơ đã được duyệt."}], "refused")
        # Another worker took it to send and died before it could.
        [held] = queue.claim(
            "dead-worker", timedelta(seconds=1), conversation_id=f"zalo:{user}", kinds=(MESSAGE,)
        )
        await channel.retry_outbox()
        assert held.payload[0]["text"] == "Hồ sơ đã được duyệt."
        assert api.texts(user) == []  # held: not sent twice
        await asyncio.sleep(1.1)
        await channel.retry_outbox()
        await channel.retry_outbox()
        assert api.texts(user) == ["Hồ sơ đã được duyệt."]  # once, after the lease ended
        assert await channel.outbox.items() == []
    finally:
        await channel.stop()
        await api.close()


def test_due_names_each_conversation_with_a_free_item_of_the_kind_even_one_held_back(database):
    """`due` is a hint of whom to flush: an item free of any lease, whether or not an older
    item of the conversation holds it back (that is `claim`'s to say)."""
    from bot.outbox import MESSAGE, NOTICE

    queue = OutboxQueue(ConversationStore(database).engine)

    def message(conversation: str) -> None:
        queue.add_messages(conversation, [{"kind": "text", "text": "tin"}], "refused")

    queue.enqueue_notice("event:1", "zalo:a", [{"text": "hồ sơ được duyệt", "buttons": []}])
    message("zalo:a")  # behind the older notice
    message("zalo:b")
    message("zalo:b")  # two items: named once
    for conversation in ("zalo:held", "zalo:lapsed", "telegram:other"):
        message(conversation)
    assert queue.claim("w1", timedelta(minutes=1), conversation_id="zalo:held")
    assert queue.claim("w1", timedelta(seconds=-1), conversation_id="zalo:lapsed")  # its lease is over
    assert sorted(queue.due(("zalo:",))) == ["zalo:a", "zalo:b", "zalo:lapsed"]
    assert queue.due(("zalo:",), NOTICE) == ["zalo:a"]
    assert [item.kind for item in queue.claim("w2", timedelta(minutes=1), conversation_id="zalo:a")] == [
        NOTICE
    ]
    assert queue.claim("w2", timedelta(minutes=1), conversation_id="zalo:a", kinds=(MESSAGE,)) == []
