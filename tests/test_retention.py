"""Retention: a declaration's photos and PDF (and the terminal's clear copy of it) are purged
VSSID_RETENTION_DAYS after the office's decision, not a day before, for a citizen's own
registration and for a child's."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot.assistant import build_assistant
from bot.notifications import NotificationPump
from tests.chat_harness import Chat, isolated_settings
from tests.test_no_personal_data_at_rest import submitted
from tests.test_parents import KHANG, PARENT_WITH_ACCOUNT, confirm_guardian, register_child
from tests.test_sealed_files import TerminalChat


async def own_registration(chat: Chat, assistant) -> str:
    _, declaration = await submitted(chat, assistant)
    return declaration["receipt"]


async def childs_registration(chat: Chat, assistant) -> str:
    backend = assistant.engine.services.backend
    await confirm_guardian(chat, backend)
    return await register_child(chat, backend, KHANG, PARENT_WITH_ACCOUNT["phone"])


def files(data: Path) -> dict[str, int]:
    return {
        "photos": len(list((data / "uploads").rglob("*.jpg"))),
        "pdfs": len(list((data / "documents").glob("*.pdf"))),
        "copies": len(list((data / "handouts").rglob("*.pdf"))),
    }


@pytest.mark.parametrize(
    ("register", "decide", "photos"),
    [(own_registration, "approve", 3), (childs_registration, "reject", 2)],
    ids=["own-approved", "child-rejected"],
)
async def test_photos_pdfs_and_copies_go_n_days_after_the_decision_and_not_before(
    tmp_path: Path, register, decide, photos
):
    settings = isolated_settings(tmp_path, retention_days=30)
    assistant = await build_assistant(settings)
    data = settings.data_dir
    try:
        chat = TerminalChat(assistant, channel="terminal", user="local")
        receipt = await register(chat, assistant)
        kept = {"photos": photos, "pdfs": 1, "copies": 1}
        assert files(data) == kept
        backend = assistant.engine.services.backend
        await (backend.approve(receipt) if decide == "approve" else backend.reject(receipt, "Ảnh mờ."))
        pump = NotificationPump(assistant)
        real_clock = assistant.engine.services.clock
        for days in (0, 29):
            assistant.engine.services.clock = lambda days=days: real_clock() + timedelta(days=days)
            await pump.poll_once()
            assert files(data) == kept, f"purged after {days} days"
        assistant.engine.services.clock = lambda: real_clock() + timedelta(days=30, minutes=1)
        await pump.poll_once()
        assert files(data) == {"photos": 0, "pdfs": 0, "copies": 0}
        # The conversation itself goes on: /status still answers from the declaration's record.
        await chat.text("/status")
        assert receipt in chat.said
    finally:
        await assistant.close()
