"""Conversation state in SQL: versions guard against lost updates, message ids against redelivery.

Runs on SQLite always and on PostgreSQL when VSSID_TEST_POSTGRES_URL is set (CI sets it to the
server on this machine).
"""

from __future__ import annotations

import asyncio
import os

import pytest
from sqlalchemy import text

from bot.assistant import AssistantService
from bot.storage import ConversationStore, SaveResult
from dialogs.messages import Inbound
from dialogs.state import ConversationState
from tests.chat_harness import isolated_settings

POSTGRES_URL = os.environ.get("VSSID_TEST_POSTGRES_URL", "")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'bot.sqlite3'}"
    if not POSTGRES_URL:
        pytest.skip("VSSID_TEST_POSTGRES_URL not set (CI sets it)")
    store = ConversationStore(POSTGRES_URL)
    with store.engine.begin() as connection:
        for table in ("notice", "declaration_owner", "seen_message", "conversation", "key_value"):
            connection.execute(text(f"DELETE FROM {table}"))
    store.close()
    return POSTGRES_URL


def test_a_write_based_on_a_stale_version_is_refused(store_url):
    store = ConversationStore(store_url)
    state = ConversationState(flow="registration", step="full_name", values={"social_insurance_code": "7912345670"})
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
    """Two assistant processes (workers) answer the same user at once: every answer lands."""
    from bot.assistant import build_assistant

    settings = isolated_settings(tmp_path, database_url=store_url)
    first = await build_assistant(settings)
    second = AssistantService(engine=first.engine, store=ConversationStore(store_url))  # own lock, own pool
    await first.handle(Inbound("t", "u", "m0", text="/start"))
    await first.handle(Inbound("t", "u", "m1", button="flow:install_guide"))
    # Both workers get a different update for the same user concurrently, many times over.
    results = await asyncio.gather(
        *(
            (first if i % 2 else second).handle(Inbound("t", "u", f"h{i}", text="trợ giúp"))
            for i in range(12)
        )
    )
    assert all(results), "every update was answered"
    state, version = first.store.load("t:u")
    assert state.flow == "install_guide" and state.step == "platform"
    assert version == 2 + 12
    second.store.close()
    await first.close()
