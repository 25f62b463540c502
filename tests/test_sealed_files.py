"""Photos and PDFs sealed at rest: on disk only ciphertext bound to its folder and name; the
channels send and serve the clear file from memory; the terminal gets a clear 0600 copy that
goes with the conversation; `vssid-bot keys rotate` re-seals the files."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from typer.testing import CliRunner

from bot.assistant import build_assistant
from bot.channels.replies import terminal_replies
from bot.channels.web import CLIENT_MAX_SIZE, DocumentLinks, WebChannel
from bot.crypto import FILE_MAGIC, DataKeyError, Keyring, SealedFileError, load_keyring, new_key, open_file
from bot.terminal import _answer
from dialogs.messages import Inbound
from tests import fake_assistant, telegram_harness
from tests.chat_harness import Chat, isolated_settings
from tests.fake_zalo_api import FakeZaloApi, text_event
from tests.test_no_personal_data_at_rest import submitted
from tests.test_zalo import USER, Harness, make_channel

PDF = b"%PDF-1.4\n% synthetic declaration\n" + bytes(range(256)) * 4 + b"\n%%EOF\n"


def clear_files(root: Path) -> list[str]:
    """Files a PDF reader or image viewer would open as they are (JPEG, PNG or PDF signatures)."""
    signatures = (b"%PDF", b"\xff\xd8\xff", b"\x89PNG")
    return [
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and p.read_bytes().startswith(signatures)
    ]


def sealed_document(data_dir: Path, name: str = "to-khai-01.pdf") -> Path:
    """A PDF sealed as the renderer seals it, under the data dir's own data.key."""
    path = data_dir / "documents" / name
    load_keyring(data_dir).write_file(path, PDF)
    return path


async def test_stored_photos_and_the_pdf_are_ciphertext_bound_to_their_place(tmp_path: Path):
    settings = isolated_settings(tmp_path)
    assistant = await build_assistant(settings)
    data = settings.data_dir
    try:
        chat = Chat(assistant)
        await submitted(chat, assistant)
        photos = sorted((data / "uploads").rglob("*.jpg"))
        [pdf] = list((data / "documents").glob("*.pdf"))
        assert len(photos) == 3 and chat.document == pdf
        for path in [*photos, pdf]:
            assert path.read_bytes().startswith(FILE_MAGIC)
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert clear_files(data) == []
        # Opened in memory, each is the picture or the Tờ khai the citizen sees.
        assert all(open_file(p).startswith(b"\xff\xd8\xff") for p in photos)
        assert open_file(pdf).startswith(b"%PDF")
        # Bound to their place: a photo moved into another person's folder, or a PDF renamed
        # to another declaration's, does not open.
        elsewhere = data / "uploads" / ("0" * 32)
        elsewhere.mkdir()
        shutil.copy(photos[0], elsewhere / photos[0].name)
        with pytest.raises(SealedFileError):
            open_file(elsewhere / photos[0].name)
        shutil.copy(pdf, pdf.with_name("to-khai-OTHER.pdf"))
        with pytest.raises(SealedFileError):
            open_file(pdf.with_name("to-khai-OTHER.pdf"))
        # And without the data key, nothing opens.
        with pytest.raises(DataKeyError):
            Keyring.from_texts([new_key()]).read_file(pdf)
    finally:
        await assistant.close()


async def test_the_web_chat_serves_the_sealed_pdf_in_clear_from_memory(tmp_path: Path):
    document = sealed_document(tmp_path)
    assistant = fake_assistant.ScriptedAssistant(document=document)
    channel = WebChannel(assistant, DocumentLinks.from_data_dir(tmp_path))
    app = web.Application(client_max_size=CLIENT_MAX_SIZE)
    channel.add_routes(app)
    async with TestClient(TestServer(app)) as client:
        response = await client.post(
            "/api/chat/test-conversation-01-5f0c2a9e47b13d86/messages", json={"text": "pdf"}
        )
        url = (await response.json())["replies"][0]["document"]
        download = await client.get("/" + url.split("//", 1)[1].split("/", 1)[1])
        assert download.status == 200
        assert await download.read() == PDF
        assert download.headers["Content-Type"] == "application/pdf"
        assert download.headers["Content-Disposition"].startswith("attachment;")
    assert document.read_bytes().startswith(FILE_MAGIC)  # still sealed on disk


async def test_zalo_uploads_the_clear_pdf_it_opened_in_memory(tmp_path: Path):
    api = await FakeZaloApi().start()
    channel = make_channel(
        fake_assistant.ScriptedAssistant(document=sealed_document(tmp_path)), api, tmp_path
    )
    app = web.Application(client_max_size=CLIENT_MAX_SIZE)
    channel.add_routes(app)
    await channel.start()
    try:
        async with TestClient(TestServer(app)) as client:
            await Harness(client, channel, api, channel.assistant).post(text_event(USER, "pdf"))
        [upload] = [r for r in api.requests if r.path == "/v2.0/oa/upload/file"]
        assert upload.body == {"file": PDF, "filename": "to-khai-01.pdf"}
    finally:
        await channel.stop()
        await api.close()


async def test_telegram_sends_the_clear_pdf_it_opened_in_memory(tmp_path: Path):
    document = sealed_document(tmp_path, "to-khai-test.pdf")
    async with telegram_harness.running_bot(
        "aiogram", "polling", telegram_harness.ScriptedAssistant(document)
    ) as h:
        user = h.user()
        await user.say("tờ khai")
        await h.settle()
        message = user.screen()[-1]
        assert message.kind == "document" and message.file is not None
        assert message.file.data == PDF and message.file.filename == "to-khai-test.pdf"


class TerminalChat(Chat):
    """`vssid-bot chat`'s way of answering: a PDF handed out as the local user's clear copy."""

    async def send(self, inbound: Inbound):
        self.replies = await _answer(self.assistant, inbound)
        return self.replies


async def test_the_terminal_gets_a_clear_0600_copy_that_goes_with_the_conversation(tmp_path: Path):
    settings = isolated_settings(tmp_path)
    assistant = await build_assistant(settings)
    data = settings.data_dir
    try:
        chat = TerminalChat(assistant, channel="terminal", user="local")
        await submitted(chat, assistant)
        copy = chat.document
        assert copy is not None and copy.is_relative_to(data / "handouts")
        [line] = [r for r in terminal_replies(chat.replies)["replies"] if r["document"]]
        assert line["document"] == str(copy)  # the JSON line's path opens as a PDF
        assert copy.read_bytes().startswith(b"%PDF") and stat.S_IMODE(copy.stat().st_mode) == 0o600
        [sealed] = list((data / "documents").glob("*.pdf"))
        assert copy.read_bytes() == open_file(sealed) and sealed.read_bytes().startswith(FILE_MAGIC)
        await chat.text("/delete")
        await chat.press("Xóa hết")
        assert not copy.exists() and not sealed.exists()
        assert [p for p in (data / "handouts").rglob("*") if p.is_file()] == []
    finally:
        await assistant.close()


async def test_keys_rotate_reseals_photos_and_pdfs_and_drops_the_clear_copies(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("VSSID_DATA_KEY", raising=False)
    settings = isolated_settings(tmp_path)
    assistant = await build_assistant(settings)
    data = settings.data_dir
    chat = TerminalChat(assistant, channel="terminal", user="local")
    try:
        await submitted(chat, assistant)
    finally:
        await assistant.close()
    files = sorted([*(data / "uploads").rglob("*.jpg"), *(data / "documents").glob("*.pdf")])
    before = {p: p.read_bytes() for p in files}
    clear = {p: open_file(p) for p in files}
    old_key = (data / "data.key").read_text().split()

    from bot.cli import app

    result = CliRunner().invoke(app, ["keys", "rotate", "--data-dir", str(data)])
    assert result.exit_code == 0, result.output
    assert "4 files" in result.output
    for path in files:
        assert path.read_bytes() != before[path] and path.read_bytes().startswith(FILE_MAGIC)
        with pytest.raises(DataKeyError):
            Keyring.from_texts(old_key).read_file(path)
        assert Keyring.from_texts((data / "data.key").read_text().split()).read_file(path) == clear[path]
        assert open_file(path) == clear[path]
    assert not (data / "handouts").exists()  # named under the old key: made again when asked
