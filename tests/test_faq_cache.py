"""The FAQ index kept on disk: a fresh process reads it instead of building it again."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from bot import faq_cache
from knowledge.faq import FaqIndex

QUESTIONS = ["Mã OTP là gì?", "quên mật khẩu vssid", "cài tiktok"]


def test_the_index_is_kept_once_and_read_back_answering_the_same(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("VSSID_CACHE_DIR", str(tmp_path / "cache"))
    built = faq_cache.faq_index()
    [kept] = list((tmp_path / "cache").glob("faq-index-*.pickle"))
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert stat.S_IMODE(kept.parent.stat().st_mode) == 0o700

    monkeypatch.setattr(FaqIndex, "default", lambda: pytest.fail("built again despite the cache"))
    read = faq_cache.faq_index()
    assert read is not built
    for question in QUESTIONS:
        assert read.ask(question).to_json() == built.ask(question).to_json()


def test_a_changed_knowledge_file_is_never_answered_from_the_old_index(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("VSSID_CACHE_DIR", str(tmp_path / "cache"))
    built = faq_cache.faq_index()
    [old] = list((tmp_path / "cache").glob("faq-index-*.pickle"))
    monkeypatch.setattr(faq_cache, "knowledge_hash", lambda: "a-different-faq-yaml")
    calls: list[int] = []
    monkeypatch.setattr(FaqIndex, "default", lambda: calls.append(1) or built)
    faq_cache.faq_index()
    assert calls == [1]  # built again, not read from the file the old knowledge made
    assert not old.exists()
