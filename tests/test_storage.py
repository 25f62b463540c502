"""Conversation state in SQL: versions guard against lost updates, message ids against redelivery.

Runs on SQLite always and on PostgreSQL when VSSID_TEST_POSTGRES_URL is set (CI sets it to the
server on this machine).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bot.assistant import AssistantService
from bot.storage import ConversationStore, SaveResult, utcnow
from dialogs.messages import Inbound
from dialogs.state import ConversationState
from tests.chat_harness import isolated_settings
from tests.databases import KINDS, empty_database_url


@pytest.fixture(params=KINDS)
def store_url(request, tmp_path):
    return empty_database_url(request.param, tmp_path)


def test_a_write_based_on_a_stale_version_is_refused(store_url):
    store = ConversationStore(store_url)
    state = ConversationState(
        flow="registration", step="full_name", values={"social_insurance_code": "7912345670"}
    )
    assert store.save("t:u", "t", "u", state, 0, "m1") is SaveResult.SAVED
    loaded, version = store.load("t:u")
    assert loaded.values == state.values and version == 1

    mine = loaded.model_copy(deep=True)
    mine.values["full_name"] = "Lê Thị Hồng Nhung"
    theirs = loaded.model_copy(deep=True)
    theirs.values["full_name"] = "Trần Văn Bình"
    assert store.save("t:u", "t", "u", mine, version, "m2") is SaveResult.SAVED
    assert store.save("t:u", "t", "u", theirs, version, "m3") is SaveResult.CONFLICT
    assert store.load("t:u")[0].values["full_name"] == "Lê Thị Hồng Nhung"
    # The refused write left no trace: its message id can still be processed.
    assert not store.seen("t:u", "m3")
    store.close()


def test_a_message_id_is_accepted_once(store_url):
    store = ConversationStore(store_url)
    assert store.save("t:u", "t", "u", ConversationState(), 0, "m1") is SaveResult.SAVED
    assert store.save("t:u", "t", "u", ConversationState(step="x"), 1, "m1") is SaveResult.DUPLICATE
    assert store.load("t:u")[1] == 1
    store.close()


async def test_two_workers_on_one_database_never_lose_a_users_answers(store_url, tmp_path):
    """Two assistant processes (workers) answer the same user at once: every answer lands.

    The second worker runs on its own thread and event loop, as a second process would:
    each holds its own connection, lock and (SQLite) group commit.
    """
    from bot.assistant import build_assistant

    settings = isolated_settings(tmp_path, database_url=store_url)
    first = await build_assistant(settings)
    await first.handle(Inbound("t", "u", "m0", text="/start"))
    await first.handle(Inbound("t", "u", "m1", button="flow:install_guide"))

    def help_requests(worker: int) -> list[Inbound]:
        return [Inbound("t", "u", f"h{i}", text="trợ giúp") for i in range(worker, 12, 2)]

    async def second_worker() -> list[list]:
        second = AssistantService(
            engine=first.engine, store=ConversationStore(store_url, keyring=settings.keyring())
        )  # own lock, own pool
        try:
            return await asyncio.gather(*(second.handle(m) for m in help_requests(1)))
        finally:
            second.store.close()

    # Both workers get a different update for the same user concurrently, many times over.
    theirs = asyncio.create_task(asyncio.to_thread(asyncio.run, second_worker()))
    mine = await asyncio.gather(*(first.handle(m) for m in help_requests(0)))
    results = [*mine, *await theirs]
    assert len(results) == 12 and all(results), "every update was answered"
    state, version = first.store.load("t:u")
    assert state.flow == "install_guide" and state.step == "platform"
    assert version == 2 + 12
    await first.close()


# ---------------------------------------------------------------- SQLite group commit


def test_a_deferred_save_is_durable_only_after_commit_pending(tmp_path):
    url = f"sqlite:///{tmp_path / 'bot.sqlite3'}"
    store, other_process = ConversationStore(url), ConversationStore(url)
    state = ConversationState(flow="registration", step="phone")
    assert store.save("t:a", "t", "a", state, 0, "m1", defer_commit=True) is SaveResult.SAVED
    assert store.load("t:a")[1] == 1  # the writer sees its own turn
    assert other_process.load("t:a")[1] == 0  # nobody else does yet
    store.commit_pending()
    assert other_process.load("t:a") == (state, 1)
    store.close()
    other_process.close()


def test_a_refused_deferred_save_keeps_the_turns_other_saves_and_frees_the_database(tmp_path):
    url = f"sqlite:///{tmp_path / 'bot.sqlite3'}"
    store, other_process = ConversationStore(url), ConversationStore(url)
    store.save("t:a", "t", "a", ConversationState(step="x"), 0, "m1")
    # One turn: a save that lands, then a redelivery and a stale write that must not.
    assert (
        store.save("t:b", "t", "b", ConversationState(step="y"), 0, "m1", defer_commit=True)
        is SaveResult.SAVED
    )
    assert (
        store.save("t:a", "t", "a", ConversationState(step="z"), 1, "m1", defer_commit=True)
        is SaveResult.DUPLICATE
    )
    assert (
        store.save("t:a", "t", "a", ConversationState(step="z"), 7, "m2", defer_commit=True)
        is SaveResult.CONFLICT
    )
    store.commit_pending()
    assert other_process.load("t:b")[0].step == "y"
    assert other_process.load("t:a") == (ConversationState(step="x"), 1)
    # A turn whose only save was refused leaves no transaction holding the write lock.
    assert (
        store.save("t:a", "t", "a", ConversationState(step="z"), 7, "m3", defer_commit=True)
        is SaveResult.CONFLICT
    )
    assert not store.has_pending_commit
    assert other_process.save("t:a", "t", "a", ConversationState(step="w"), 1, "m4") is SaveResult.SAVED
    store.close()
    other_process.close()


def test_a_busy_stores_write_ahead_log_reaches_the_database_file(tmp_path):
    """The WAL is checkpointed by a thread of the store's own (not by the committing one):
    after enough saves, the database file alone holds them, and a restart reads them all."""
    import shutil
    import sqlite3
    import time

    from bot.sqlite_fast import CHECKPOINT_EVERY

    path = tmp_path / "bot.sqlite3"
    store = ConversationStore(f"sqlite:///{path}")
    for turn in range(3):
        for user in range(CHECKPOINT_EVERY // 2):
            state = ConversationState(flow="registration", step=f"turn-{turn}")
            assert store.save(f"t:{user}", "t", str(user), state, turn, f"m{turn}", defer_commit=True) is (
                SaveResult.SAVED
            )
        store.commit_pending()
    copy = tmp_path / "file-alone.sqlite3"  # the database file without its WAL
    for _ in range(200):  # the checkpoint thread runs when asked; wait for it, not a set time
        shutil.copyfile(path, copy)
        with sqlite3.connect(copy) as alone:
            rows = alone.execute("SELECT count(*) FROM conversation").fetchone()[0]
        if rows == CHECKPOINT_EVERY // 2:
            break
        time.sleep(0.05)
    assert rows == CHECKPOINT_EVERY // 2
    store.close()
    restarted = ConversationStore(f"sqlite:///{path}")
    assert all(restarted.load(f"t:{user}")[0].step == "turn-2" for user in range(CHECKPOINT_EVERY // 2))
    restarted.close()


async def test_concurrent_conversations_share_one_commit_and_are_answered_after_it(tmp_path):
    from bot.assistant import build_assistant

    settings = isolated_settings(tmp_path)
    assistant = await build_assistant(settings)
    commits = 0
    commit = assistant.store.commit_pending

    def counting_commit() -> None:
        nonlocal commits
        commits += assistant.store.has_pending_commit
        commit()

    assistant.store.commit_pending = counting_commit
    replies = await asyncio.gather(
        *(assistant.handle(Inbound("t", f"u{i}", "m1", text="/start")) for i in range(20))
    )
    assert all(replies) and commits == 1
    # Answered means saved: another process reading the file sees every conversation.
    reader = ConversationStore(settings.sqlalchemy_url, keyring=settings.keyring())
    assert all(reader.load(f"t:u{i}")[1] == 1 for i in range(20))
    reader.close()
    await assistant.close()


# ---------------------------------------------------------------- retried messages, the window


def test_answered_message_ids_are_kept_for_a_window_then_forgotten(store_url):
    store = ConversationStore(store_url)
    store.save("t:u", "t", "u", ConversationState(step="x"), 0, "m1")
    store.save("t:u", "t", "u", ConversationState(step="y"), 1, "m2")
    assert store.purge_seen(utcnow() - timedelta(days=1)) == 0  # both younger than the window
    assert store.seen("t:u", "m1") and store.seen("t:u", "m2")
    assert store.purge_seen(utcnow() + timedelta(seconds=1)) == 2
    assert not store.seen("t:u", "m1") and not store.seen("t:u", "m2")
    assert store.load("t:u") == (ConversationState(step="y"), 2)  # the conversation stays
    store.close()


CID = "retried-conversation-0123456789abcdef"  # 128 bits and more, as the page makes


async def _web_worker(settings) -> tuple:
    """One `vssid-bot run` as far as the web chat goes: an assistant and its HTTP API."""
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    from bot.assistant import build_assistant
    from bot.channels.web import CLIENT_MAX_SIZE, DocumentLinks, WebChannel

    assistant = await build_assistant(settings)
    app = web.Application(client_max_size=CLIENT_MAX_SIZE)
    WebChannel(assistant, DocumentLinks.from_data_dir(settings.data_dir)).add_routes(app)
    client = TestClient(TestServer(app))
    await client.start_server()
    return assistant, client


async def test_a_retried_web_message_gets_the_same_replies_on_another_worker_and_after_a_restart(
    store_url, tmp_path
):
    settings = isolated_settings(tmp_path, database_url=store_url)
    first, first_web = await _web_worker(settings)
    second, second_web = await _web_worker(settings)

    async def post(client, body: dict) -> list[dict]:
        response = await client.post(f"/api/chat/{CID}/messages", json=body)
        assert response.status == 200
        return (await response.json())["replies"]

    await post(first_web, {"text": "/start", "message_id": "m-1"})
    answer = await post(first_web, {"button": "flow:registration", "message_id": "m-2"})
    assert answer and answer[-1]["progress"] == [1, 7]
    # The response was lost; the page retries, and the load balancer picks the other worker.
    assert await post(second_web, {"button": "flow:registration", "message_id": "m-2"}) == answer
    for assistant, client in ((first, first_web), (second, second_web)):
        await client.close()
        await assistant.close()

    restarted, restarted_web = await _web_worker(settings)
    assert await post(restarted_web, {"button": "flow:registration", "message_id": "m-2"}) == answer
    # Answered once: the retries moved the conversation no further.
    state, version = restarted.store.load(f"web:{CID}")
    assert version == 2 and state.flow == "registration"
    await restarted_web.close()
    await restarted.close()


async def test_the_running_bot_forgets_message_ids_older_than_its_window(tmp_path):
    from bot.assistant import build_assistant
    from bot.notifications import NotificationPump

    settings = isolated_settings(tmp_path, seen_message_days=0.5 / 86400)  # half a second
    assistant = await build_assistant(settings)
    await assistant.handle(Inbound("t", "u", "m1", text="/start"))
    pump = NotificationPump(assistant)
    await pump.purge_now_and_then()
    assert assistant.store.seen("t:u", "m1")  # younger than the window
    await asyncio.sleep(0.6)
    await pump.purge_now_and_then()
    assert assistant.store.seen("t:u", "m1")  # purged at most once an hour
    pump._next_purge = 0.0
    await pump.purge_now_and_then()
    assert not assistant.store.seen("t:u", "m1")
    await assistant.close()


def test_the_sqlite_driver_path_runs_the_store_statements_as_sqlalchemy_compiles_them():
    """bot/sqlite_fast.py keeps the per-message statements compiled (a chat starts without
    SQLAlchemy): the same text and parameters as bot/statements.py's Core statements give."""
    from bot import sqlite_fast, statements

    for name, kept in sqlite_fast.STATEMENTS.items():
        assert statements.compile_for_sqlite(getattr(statements, name)) == kept, name


# ---------------------------------------------------------------- marks in the conversation's row


def _answer(store, message_id: str, conversation_id: str = "t:u") -> SaveResult:
    """What the assistant does with a message: begin, then save at the version begun from."""
    seen, _, version = store.begin(conversation_id, message_id)
    assert seen is None, message_id
    return store.save(conversation_id, "t", "u", ConversationState(step=message_id), version, message_id)


def _marks(store, conversation_id: str = "t:u") -> tuple[str, list[str]]:
    """The marks in the conversation's row, and the keys in seen_message."""
    from sqlalchemy import select

    from bot import statements as sql

    with store.engine.connect() as connection:
        row = connection.execute(
            select(sql.CONVERSATION.c.seen).where(sql.CONVERSATION.c.id == conversation_id)
        )
        keys = connection.execute(select(sql.SEEN.c.key).order_by(sql.SEEN.c.key)).scalars().all()
        return row.scalar_one(), list(keys)


def test_answered_ids_move_from_the_row_to_seen_message_together_and_stay_answered(store_url):
    from bot.seen_marks import SEEN_ROW_CHARS
    from bot.sqlite_fast import sqlite_time

    store = ConversationStore(store_url)
    fits = SEEN_ROW_CHARS // len(f"{sqlite_time(0)}\tm00\n")  # marks of these ids a row holds
    ids = [f"m{n:02d}" for n in range(fits + 3)]
    for message_id in ids:
        assert _answer(store, message_id) is SaveResult.SAVED
    row, moved = _marks(store)
    assert moved == [f"t:u#{m}" for m in ids[:fits]]  # one batch, when the row was full
    assert [line.split("\t")[1] for line in row.splitlines()] == ids[fits:]
    store.close()
    restarted = ConversationStore(store_url)
    assert all(restarted.seen("t:u", m) for m in ids) and not restarted.seen("t:u", "m-new")
    # A save nobody began from refuses an answered id wherever its mark is.
    for message_id in (ids[0], ids[-1]):
        again = restarted.save("t:u", "t", "u", ConversationState(step="again"), len(ids), message_id)
        assert again is SaveResult.DUPLICATE
    assert restarted.load("t:u") == (ConversationState(step=ids[-1]), len(ids))
    restarted.close()


@pytest.mark.parametrize("message_id", ["x" * 101, "tab\there", "new\nline"])
def test_ids_a_row_cannot_hold_are_marked_in_seen_message(store_url, message_id):
    store = ConversationStore(store_url)
    assert _answer(store, "m1") is SaveResult.SAVED
    assert _answer(store, message_id) is SaveResult.SAVED
    assert _marks(store)[1] == [f"t:u#{message_id}"]
    assert store.seen("t:u", message_id) and store.seen("t:u", "m1")
    assert store.save("t:u", "t", "u", ConversationState(), 2, message_id) is SaveResult.DUPLICATE
    store.close()


def test_an_id_is_not_taken_for_one_that_spans_two_of_the_rows_marks(store_url):
    store = ConversationStore(store_url)
    assert _answer(store, "a") is SaveResult.SAVED
    assert _answer(store, "b") is SaveResult.SAVED
    row, _ = _marks(store)
    spanning = row.splitlines()[0].split("\t")[1] + "\n" + row.splitlines()[1]  # "a\n<at>\tb"
    assert not store.seen("t:u", spanning)
    store.close()


def _answered_days_ago(monkeypatch, days: float) -> None:
    import time

    monkeypatch.setattr("bot.storage.time_ns", lambda: time.time_ns() - int(days * 86400 * 10**9))


def test_the_purge_drops_a_rows_old_marks_and_keeps_its_young_ones(store_url, monkeypatch):
    from sqlmodel import Session

    from bot.schema import ConversationRow

    store = ConversationStore(store_url)
    _answered_days_ago(monkeypatch, 10)
    assert _answer(store, "m1") is SaveResult.SAVED
    assert _answer(store, "m2") is SaveResult.SAVED
    monkeypatch.undo()
    assert _answer(store, "m3") is SaveResult.SAVED
    assert store.purge_seen(utcnow() - timedelta(days=7)) == 2
    assert not store.seen("t:u", "m1") and not store.seen("t:u", "m2") and store.seen("t:u", "m3")
    with Session(store.engine) as session:
        since = session.get(ConversationRow, "t:u").seen_since
    assert utcnow() - timedelta(minutes=1) < since <= utcnow()  # the oldest mark left: m3's
    assert store.purge_seen(utcnow() - timedelta(days=7)) == 0
    assert store.load("t:u") == (ConversationState(step="m3"), 3)  # the conversation stays
    store.close()


def test_a_save_begun_before_the_purge_does_not_bring_purged_marks_back(store_url, monkeypatch):
    store = ConversationStore(store_url)
    _answered_days_ago(monkeypatch, 10)
    assert _answer(store, "m1") is SaveResult.SAVED
    monkeypatch.undo()
    _, _, version = store.begin("t:u", "m2")  # reads the row's marks, m1's among them
    assert store.purge_seen(utcnow() - timedelta(days=7)) == 1
    state = ConversationState(step="m2")
    assert store.save("t:u", "t", "u", state, version, "m2") is SaveResult.CONFLICT  # run again
    assert _answer(store, "m2") is SaveResult.SAVED
    assert not store.seen("t:u", "m1") and store.seen("t:u", "m2")
    store.close()


def test_forgetting_a_conversation_erases_the_marks_in_its_row(store_url):
    store = ConversationStore(store_url)
    for message_id in ("m1", "m2"):
        assert _answer(store, message_id) is SaveResult.SAVED
    # /delete: its message begins, the conversation is forgotten, then the message is saved.
    _, _, version = store.begin("t:u", "m3")
    store.forget_conversation("t:u")
    assert store.save("t:u", "t", "u", ConversationState(), version, "m3") is SaveResult.SAVED
    assert not store.seen("t:u", "m1") and not store.seen("t:u", "m2") and store.seen("t:u", "m3")
    row, moved = _marks(store)
    assert row.count("\n") == 1 and moved == []
    store.close()
