"""What the Telegram channel owes a user survives a restart: replies parked while the Bot
API was unreachable, and the buttons whose payloads were too long for callback_data.

Each scenario runs one channel, stops it, and starts a new one (a new process, as far as
the channel can tell) on the same data dir against the same fake Bot API, on both
frameworks, by long polling and by webhook.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.channels.outbox import Outbox, queue_of
from bot.channels.telegram import TelegramChannel
from bot.channels.telegram.codec import CallbackCodec, TelegramOutbox
from bot.outbox import OutboxQueue
from tests.fake_bot_api import FakeBotApi, FakeUser
from tests.telegram_harness import (
    FAST_RETRY,
    LONG_PAYLOAD,
    ScriptedAssistant,
    build_served_channel,
    fake_pdf,
    make_settings,
)
from tests.telegram_spec import check_all

COMBOS = [("aiogram", "polling"), ("aiogram", "webhook"), ("ptb", "polling"), ("ptb", "webhook")]
both_frameworks = pytest.mark.parametrize(("framework", "mode"), COMBOS, ids=lambda v: v)


@contextlib.asynccontextmanager
async def fake_api() -> AsyncIterator[FakeBotApi]:
    server = FakeBotApi()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
    assert check_all(server.requests) == []


@contextlib.asynccontextmanager
async def running(
    server: FakeBotApi, framework: str, mode: str, data_dir: Path, assistant: ScriptedAssistant
) -> AsyncIterator[TelegramChannel]:
    """One run of the bot process: a new channel on `data_dir`, started, then stopped."""
    settings = make_settings(framework, mode, server.base_url, data_dir=data_dir)
    channel, runner = await build_served_channel(settings, mode, assistant, retry=FAST_RETRY, poll_timeout=1)
    try:
        await channel.start()
        yield channel
    finally:
        await channel.stop()
        if runner is not None:
            await runner.cleanup()


async def settle(server: FakeBotApi, channel: TelegramChannel) -> None:
    await server.delivered(10)
    await channel.idle()


def sent_ok(server: FakeBotApi, chat_id: int) -> list[str]:
    """What the Bot API accepted for this chat, in order (texts, or the file's name)."""
    shown = []
    for request in server.requests:
        if request.outcome != "ok" or str(request.params.get("chat_id")) != str(chat_id):
            continue
        if request.name == "sendmessage":
            shown.append(request.params["text"])
        elif request.name == "senddocument":
            shown.append(request.params["document"].filename)
    return shown


@both_frameworks
async def test_a_reply_parked_before_a_restart_arrives_once_before_the_next_answer(
    tmp_path: Path, framework: str, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    pdf = fake_pdf(tmp_path)
    data_dir = tmp_path / "data"
    async with fake_api() as server:
        user = FakeUser(server, 5_300_011)
        async with running(server, framework, mode, data_dir, ScriptedAssistant(pdf)) as first:
            server.outage = True  # updates still come in; nothing the bot sends gets through
            await user.say("/start")  # a greeting with a keyboard
            await user.say("tờ khai")  # a document with a caption
            await settle(server, first)
            assert user.screen() == []
            assert first.core.pending(user.id) == 2
        # The process stops while the Bot API is still unreachable.
        assert user.screen() == []
        server.outage = False

        async with running(server, framework, mode, data_dir, ScriptedAssistant(pdf)) as second:
            await user.say("hai")  # right away: may race the delivery started at start
            await settle(server, second)
            assert second.core.pending(user.id) == 0

        greeting, document, answer = user.screen()
        assert greeting.visible_text == "Xin chào! Tôi giúp bạn đăng ký VssID."
        assert greeting.labels == ["Đăng ký", "Hỏi đáp"]
        assert document.kind == "document"
        assert document.file is not None and document.file.data == pdf.read_bytes()
        assert document.visible_text == "Tờ khai của bạn (Mẫu 01):"
        assert answer.visible_text == "Bạn vừa gửi: hai"
        # Once each: nothing kept in memory and on disk at the same time was sent twice.
        assert sent_ok(server, user.id) == [
            "Xin chào! Tôi giúp bạn đăng ký VssID.",
            "to-khai-test.pdf",
            "Bạn vừa gửi: hai",
        ]

    # The outbox (in the main database) holds what people are told: private to the bot's
    # user, and kept out of logs.
    assert stat.S_IMODE((data_dir / "vssid.sqlite3").stat().st_mode) == 0o600
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("bot."))
    assert "parked" in ours
    assert "Xin chào" not in ours and "tờ khai" not in ours.lower() and str(user.id) not in ours


@both_frameworks
async def test_a_parked_reply_goes_out_at_start_without_waiting_for_a_message(
    tmp_path: Path, framework: str, mode: str
) -> None:
    data_dir = tmp_path / "data"
    async with fake_api() as server:
        user = FakeUser(server, 5_300_029)
        async with running(server, framework, mode, data_dir, ScriptedAssistant(fake_pdf(tmp_path))) as first:
            server.outage = True
            await user.say("một")
            await settle(server, first)
        server.outage = False
        async with running(server, framework, mode, data_dir, ScriptedAssistant(fake_pdf(tmp_path))):
            await server.wait_for(lambda: len(user.screen()) == 1, timeout=5)
        assert sent_ok(server, user.id) == ["Bạn vừa gửi: một"]

        # Delivered means deleted: a third start sends nothing again.
        async with running(server, framework, mode, data_dir, ScriptedAssistant(fake_pdf(tmp_path))) as third:
            await settle(server, third)
        assert sent_ok(server, user.id) == ["Bạn vừa gửi: một"]


@both_frameworks
async def test_a_long_payload_button_offered_before_a_restart_still_works_after_it(
    tmp_path: Path, framework: str, mode: str
) -> None:
    data_dir = tmp_path / "data"
    async with fake_api() as server:
        user = FakeUser(server, 5_300_037)
        async with running(server, framework, mode, data_dir, ScriptedAssistant(fake_pdf(tmp_path))) as first:
            await user.say("/start")
            await settle(server, first)
            await user.press("Đăng ký")
            await settle(server, first)
        question = user.last_with_button("TP. Hồ Chí Minh")
        data = {b["text"]: b["callback_data"] for b in question.buttons}["TP. Hồ Chí Minh"]
        assert len(data.encode()) <= 64 and data != LONG_PAYLOAD  # an id stands in for the payload

        after = ScriptedAssistant(fake_pdf(tmp_path))
        async with running(server, framework, mode, data_dir, after) as second:
            press = await user.press("TP. Hồ Chí Minh", question)
            await settle(server, second)
        assert [i.button for i in after.of(user.id)] == [LONG_PAYLOAD]
        [answer] = [
            r
            for r in server.calls("answerCallbackQuery")
            if r.params["callback_query_id"] == press["callback_query"]["id"]
        ]
        assert "text" not in answer.params  # not the "this button has expired" notice
        assert user.screen()[-1].visible_text == f"Đã chọn: {LONG_PAYLOAD}"
        assert question.labels == []  # the used keyboard is taken away


@pytest.mark.parametrize("framework", ["aiogram", "ptb"])
async def test_when_the_outbox_cannot_be_written_parked_replies_still_arrive_in_order(
    tmp_path: Path, framework: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(*args: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    async with fake_api() as server:
        user = FakeUser(server, 5_300_041)
        assistant = ScriptedAssistant(fake_pdf(tmp_path))
        async with running(server, framework, "polling", tmp_path / "data", assistant) as channel:
            monkeypatch.setattr(channel.outbox, "add_now", disk_full)
            server.outage = True
            await user.say("một")
            await settle(server, channel)
            assert channel.core.pending(user.id) == 1  # held in memory instead
            server.outage = False
            await user.say("hai")
            await settle(server, channel)
            assert channel.core.pending(user.id) == 0
        assert sent_ok(server, user.id) == ["Bạn vừa gửi: một", "Bạn vừa gửi: hai"]


# ---------------------------------------------------------------- the pieces underneath


class _NoStore:
    """A store that must not be touched."""

    def __getattr__(self, name: str):
        raise AssertionError(f"the store was used ({name}) for a short payload")


async def test_short_payloads_never_touch_the_store() -> None:
    codec = CallbackCodec(store=_NoStore())  # type: ignore[arg-type]
    assert codec.encode("menu:register") == "menu:register"
    assert not codec.dirty
    await codec.save()
    assert codec.decode("menu:register") == "menu:register"
    assert await codec.recall("menu:register") == "menu:register"
    assert await codec.recall("~not-one-of-ours") is None  # not shaped like an id: no look-up


async def test_button_ids_are_saved_before_use_and_the_oldest_are_evicted(tmp_path: Path) -> None:
    store = TelegramOutbox(_queue(tmp_path), callback_capacity=3)
    codec = CallbackCodec(store=store)
    payloads = [
        f"agency:{n}:" + "Bảo hiểm xã hội cơ sở phường Tân Phong, Thành phố Hồ Chí Minh" for n in range(5)
    ]
    tokens = [codec.encode(p) for p in payloads]
    assert codec.dirty
    await codec.save()
    assert not codec.dirty

    restarted = CallbackCodec(store=TelegramOutbox(_queue(tmp_path), callback_capacity=3))
    assert restarted.decode(tokens[4]) is None  # not in this process's memory
    assert [await restarted.recall(t) for t in tokens] == [None, None, *payloads[2:]]
    assert restarted.encode(payloads[4]) == tokens[4]  # recalled ids are reused


def _queue(data_dir: Path) -> OutboxQueue:
    """The outbox of a new process on `data_dir`'s main database."""
    return queue_of(None, f"sqlite:///{data_dir / 'vssid.sqlite3'}", data_dir)


def test_the_outbox_file_is_private_even_when_an_older_version_left_it_readable(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    Outbox(_queue(fresh), "telegram")
    assert stat.S_IMODE((fresh / "vssid.sqlite3").stat().st_mode) == 0o600
    old = tmp_path / "old"
    old.mkdir()
    (old / "vssid.sqlite3").touch()
    os.chmod(old / "vssid.sqlite3", 0o644)
    Outbox(_queue(old), "telegram")
    assert stat.S_IMODE((old / "vssid.sqlite3").stat().st_mode) == 0o600
