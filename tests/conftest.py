"""Fixtures shared by the conversation tests: the real assistant on a private data dir."""

from __future__ import annotations

import os
import tempfile

import pytest

# Every conversation state the store keeps in memory is checked against its stored text
# (bot/storage.py), in this process and the bot processes the tests start.
os.environ["VSSID_CHECK_KEPT_STATES"] = "1"

from bot.assistant import build_assistant
from tests.chat_harness import isolated_settings

# The FAQ index cache (bot/faq_cache.py) of this test run, never the user's own ~/.cache.
os.environ.setdefault("VSSID_CACHE_DIR", tempfile.mkdtemp(prefix="vssid-test-cache-"))


@pytest.fixture
async def assistant(tmp_path):
    """The whole assistant (SQLite, in-process stub backend, Pillow, PDF) in tmp_path."""
    service = await build_assistant(isolated_settings(tmp_path))
    yield service
    await service.close()


@pytest.fixture
def backend(assistant):
    """The stub backend that assistant talks to (SMS outbox, declarations, operator actions)."""
    return assistant.engine.services.backend


@pytest.fixture
async def browser():
    """Debian's Chromium, headless, for the staff console and schools pages."""
    from tests.test_web_browser import CHROMIUM, CHROMIUM_ARGS

    playwright_api = pytest.importorskip("playwright.async_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (./dev test installs it)")
    async with playwright_api.async_playwright() as p:
        chromium = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()
