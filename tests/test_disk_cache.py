"""Start-up work kept on disk (bot/disk_cache.py): a fresh process reads the flows back
instead of reading and validating the flow files again."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from bot import disk_cache
from dialogs import flow


@pytest.fixture
def fresh(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("VSSID_CACHE_DIR", str(tmp_path / "cache"))
    disk_cache.flows.cache_clear()  # as a new process would
    yield tmp_path / "cache"
    disk_cache.flows.cache_clear()


def test_the_flows_are_kept_once_and_read_back_the_same(fresh: Path, monkeypatch) -> None:
    built = disk_cache.flows()
    [kept] = list(fresh.glob("flows-*.pickle"))
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600

    disk_cache.flows.cache_clear()
    monkeypatch.setattr(flow, "load_flows", lambda: pytest.fail("read and validated again despite the cache"))
    read = disk_cache.flows()
    assert read is not built and read == built


def test_a_changed_dialogs_file_is_never_read_from_the_old_flows(fresh: Path, monkeypatch) -> None:
    built = disk_cache.flows()
    [old] = list(fresh.glob("flows-*.pickle"))
    disk_cache.flows.cache_clear()
    monkeypatch.setattr(disk_cache, "files_hash", lambda *_: "a-different-flow-file")
    calls: list[int] = []
    monkeypatch.setattr(flow, "load_flows", lambda: calls.append(1) or built)
    disk_cache.flows()
    assert calls == [1]  # read and validated again, not taken from the file the old flows made
    assert not old.exists()


def test_a_yaml_file_is_parsed_once_and_read_back_until_its_text_changes(fresh: Path, monkeypatch) -> None:
    from knowledge import yamlfile

    monkeypatch.setattr(yamlfile, "keeper", disk_cache.parsed_yaml)
    text = "messages:\n  refuse: Xin lỗi, mình chưa trả lời được câu này.\n"
    assert yamlfile.safe_load(text, kept_as="faq.yaml") == {
        "messages": {"refuse": "Xin lỗi, mình chưa trả lời được câu này."}
    }
    monkeypatch.setattr(yamlfile, "_parse", lambda _: pytest.fail("parsed again despite the cache"))
    assert yamlfile.safe_load(text, kept_as="faq.yaml")["messages"]["refuse"].startswith("Xin lỗi")

    monkeypatch.undo()
    monkeypatch.setenv("VSSID_CACHE_DIR", str(fresh))
    monkeypatch.setattr(yamlfile, "keeper", disk_cache.parsed_yaml)
    changed = text.replace("Xin lỗi", "Rất tiếc")
    assert yamlfile.safe_load(changed, kept_as="faq.yaml")["messages"]["refuse"].startswith("Rất tiếc")
    assert len(list(fresh.glob("yaml-*.pickle"))) == 1  # the old text's parse is gone
