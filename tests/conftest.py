"""Fixtures shared by the conversation tests: the real assistant on a private data dir."""

from __future__ import annotations

import os
import tempfile

import pytest

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
