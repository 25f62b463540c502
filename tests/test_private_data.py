"""The data dir is 0700 and every file in it 0600, whoever created them."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from bot.assistant import build_assistant
from bot.private import secure_tree
from tests.chat_harness import Chat, isolated_settings


def modes(root: Path) -> dict[str, int]:
    found = {".": stat.S_IMODE(root.stat().st_mode)}
    for path in root.rglob("*"):
        found[path.relative_to(root).as_posix()] = stat.S_IMODE(path.lstat().st_mode)
    return found


def assert_private(root: Path) -> None:
    for name, mode in modes(root).items():
        wanted = 0o700 if (root / name).is_dir() else 0o600
        assert mode == wanted, f"{name} is {oct(mode)}, not {oct(wanted)}"


async def test_a_data_dir_someone_else_made_is_tightened_and_new_files_are_private(tmp_path: Path):
    old = os.umask(0o022)  # an operator's ordinary umask: files 0644, directories 0755
    try:
        data = tmp_path / "data"
        (data / "uploads" / "someone").mkdir(parents=True, mode=0o755)
        (data / "uploads" / "someone" / "id_front-1.jpg").write_bytes(b"old photo")
        (data / "vssid.sqlite3").touch(mode=0o644)  # an older version's database
        (data / "notes.txt").write_text("copied in by hand")
        settings = isolated_settings(tmp_path)
        assistant = await build_assistant(settings)
        try:
            chat = Chat(assistant, channel="web")
            await chat.text("/start")
            await chat.text("đăng ký")
            await assistant.engine.services.backend.events(after=0)  # its store is made on first use
            # The stub backend's store, the database's WAL and SHM exist by now.
            assert (data / "vssid.sqlite3-wal").exists() and (data / "stub-backend.sqlite3").exists()
            assert_private(data)
        finally:
            await assistant.close()
        assert_private(data)
    finally:
        os.umask(old)


def test_secure_tree_never_follows_a_symbolic_link(tmp_path: Path):
    outside = tmp_path / "outside.txt"
    outside.write_text("not ours")
    outside.chmod(0o644)
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    (data / "link").symlink_to(outside)
    secure_tree(data)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE(outside.stat().st_mode) == 0o644
