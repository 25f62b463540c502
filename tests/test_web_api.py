"""The web chat's JSON API, as the page and other programs use it."""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.channels.web import CLIENT_MAX_SIZE, STATIC_DIR, DocumentLinks, WebChannel
from dialogs.messages import Outbound
from tests import imagegen
from tests.fake_assistant import ASK_CODE, GREETING, ScriptedAssistant

CID = "test-conversation-01-5f0c2a9e47b13d86"
REQUIRED_REPLY_KEYS = {"text", "buttons", "document"}


@pytest.fixture
async def chat(tmp_path: Path):
    document = tmp_path / "documents" / "to-khai-01.pdf"
    document.parent.mkdir()
    document.write_bytes(b"%PDF-1.4 synthetic declaration")
    assistant = ScriptedAssistant(document=document)
    channel = WebChannel(assistant, DocumentLinks.from_data_dir(tmp_path), max_photo_bytes=200_000)
    app = web.Application(client_max_size=CLIENT_MAX_SIZE)
    channel.add_routes(app)
    async with TestClient(TestServer(app)) as client:
        client.assistant = assistant  # type: ignore[attr-defined]
        client.channel = channel  # type: ignore[attr-defined]
        yield client


async def post(client: TestClient, body: dict, cid: str = CID) -> tuple[int, dict]:
    response = await client.post(f"/api/chat/{cid}/messages", json=body)
    return response.status, await response.json()


async def test_start_answers_the_greeting_with_buttons_in_the_documented_shape(chat):
    status, body = await post(chat, {"text": "/start"})
    assert status == 200
    [reply] = body["replies"]
    assert REQUIRED_REPLY_KEYS <= reply.keys()
    assert reply["text"] == GREETING
    assert reply["buttons"][0] == {"label": "Đăng ký tài khoản VssID", "payload": "flow:registration"}
    assert reply["document"] is None
    assert reply["progress"] is None


async def test_a_pressed_button_reaches_the_assistant_as_a_button_and_progress_is_reported(chat):
    status, body = await post(chat, {"button": "flow:registration"})
    assert status == 200
    assert body["replies"][0]["text"] == ASK_CODE
    assert body["replies"][0]["progress"] == [1, 7]
    inbound = chat.assistant.received[-1]
    assert (inbound.channel, inbound.user_id, inbound.button, inbound.text) == (
        "web",
        CID,
        "flow:registration",
        None,
    )


async def test_a_photo_upload_reaches_the_assistant_byte_for_byte(chat):
    photo = imagegen.encode(imagegen.portrait_image(300, 400))
    form = aiohttp.FormData()
    form.add_field("photo", photo, filename="chan-dung.jpg", content_type="image/jpeg")
    form.add_field("message_id", "photo-1")
    response = await chat.post(f"/api/chat/{CID}/messages", data=form)
    assert response.status == 200
    assert (await response.json())["replies"][0]["text"] == f"Đã nhận ảnh ({len(photo)} byte)."
    assert chat.assistant.received[-1].photo == photo


async def test_an_oversized_photo_is_refused_with_a_vietnamese_message_and_never_reaches_the_assistant(chat):
    form = aiohttp.FormData()
    form.add_field("photo", b"\xff" * 300_000, filename="big.jpg", content_type="image/jpeg")
    response = await chat.post(f"/api/chat/{CID}/messages", data=form)
    assert response.status == 413
    body = await response.json()
    assert "quá nặng" in body["replies"][0]["text"]
    assert "MB" in body["replies"][0]["text"]
    assert chat.assistant.received == []


async def test_a_body_over_the_server_limit_is_refused_as_too_large(chat):
    form = aiohttp.FormData()
    form.add_field("photo", b"\xff" * (CLIENT_MAX_SIZE + 10), filename="huge.jpg", content_type="image/jpeg")
    response = await chat.post(f"/api/chat/{CID}/messages", data=form)
    assert response.status == 413
    assert "quá nặng" in (await response.json())["message"]


@pytest.mark.parametrize("cid", ["short", "has space!", "x" * 65, "<script>"])
async def test_a_malformed_conversation_id_is_refused_with_a_json_error(chat, cid):
    response = await chat.post(f"/api/chat/{cid}/messages", json={"text": "xin chào"})
    assert response.status in (400, 404)
    if response.status == 400:
        body = await response.json()
        assert body["error"] == "bad_conversation_id"
    assert chat.assistant.received == []


@pytest.mark.parametrize(
    "body",
    [{}, {"text": "   "}, {"text": "a", "button": "b"}, {"text": 12}, {"message": "xin chào"}],
)
async def test_a_message_without_exactly_one_text_or_button_is_refused(chat, body):
    status, answer = await post(chat, body)
    assert status == 400
    assert answer["replies"][0]["text"].startswith("Tin nhắn trống")
    assert chat.assistant.received == []


async def test_text_that_is_not_json_is_refused(chat):
    response = await chat.post(
        f"/api/chat/{CID}/messages", data="text=hello", headers={"Content-Type": "text/plain"}
    )
    assert response.status == 400


async def test_an_overlong_text_is_refused_with_the_limit_stated(chat):
    status, body = await post(chat, {"text": "a" * 2001})
    assert status == 413
    assert "2000" in body["replies"][0]["text"]
    assert chat.assistant.received == []


async def test_a_retried_message_id_is_answered_once_with_the_same_replies(chat):
    first = await post(chat, {"text": "9299000107", "message_id": "m-1"})
    again = await post(chat, {"text": "9299000107", "message_id": "m-1"})
    assert first == again
    assert len(chat.assistant.received) == 1
    other = await post(chat, {"text": "9299000107", "message_id": "m-2"})
    assert other[0] == 200 and len(chat.assistant.received) == 2


async def test_the_same_message_id_in_another_conversation_is_a_different_message(chat):
    await post(chat, {"text": "một", "message_id": "m-1"})
    await post(chat, {"text": "hai", "message_id": "m-1"}, cid="another-conversation-5f0c2a9e47b13d86")
    assert [i.text for i in chat.assistant.received] == ["một", "hai"]


async def test_the_declaration_pdf_is_a_download_behind_an_unguessable_link(chat):
    status, body = await post(chat, {"text": "pdf"})
    url = body["replies"][0]["document"]
    assert status == 200 and url.startswith("http://")
    path = url.split("//", 1)[1].split("/", 1)[1]
    response = await chat.get("/" + path)
    assert response.status == 200
    assert await response.read() == b"%PDF-1.4 synthetic declaration"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert "to-khai-01.pdf" in response.headers["Content-Disposition"]

    signature = path.split("/")[1]
    forged = path.replace(signature, "0" * len(signature))
    assert (await chat.get("/" + forged)).status == 404


def test_links_are_never_made_for_files_outside_the_data_directory(tmp_path: Path):
    links = DocumentLinks.from_data_dir(tmp_path / "data")
    assert links.path_for(tmp_path / "elsewhere.pdf") is None
    inside = tmp_path / "data" / "documents" / "a.pdf"
    assert links.path_for(inside) is not None


def test_the_link_secret_survives_a_restart_so_old_links_keep_working(tmp_path: Path):
    file = tmp_path / "documents" / "a.pdf"
    first = DocumentLinks.from_data_dir(tmp_path).path_for(file)
    second = DocumentLinks.from_data_dir(tmp_path).path_for(file)
    assert first == second
    assert (tmp_path / "web-links.key").stat().st_mode & 0o077 == 0


async def test_a_failing_assistant_gives_a_vietnamese_apology_not_a_stack_trace(chat):
    status, body = await post(chat, {"text": "boom"})
    assert status == 500
    assert body["replies"][0]["text"].startswith("Xin lỗi")
    assert "Traceback" not in str(body)


async def test_pushed_notifications_wait_for_the_page_to_poll_them(chat):
    await chat.channel.send(CID, [Outbound("Hồ sơ của bạn đã được duyệt.")])
    response = await chat.get(f"/api/chat/{CID}/updates")
    assert [r["text"] for r in (await response.json())["replies"]] == ["Hồ sơ của bạn đã được duyệt."]
    again = await chat.get(f"/api/chat/{CID}/updates")
    assert (await again.json())["replies"] == []


async def test_notices_the_assistant_keeps_for_the_page_are_fetched_once(tmp_path: Path):
    kept = {CID: [Outbound("Hồ sơ VSS-2026-000001 đã được duyệt.")]}

    async def owed(conversation_id: str) -> list[Outbound]:
        return kept.pop(conversation_id, [])

    channel = WebChannel(ScriptedAssistant(), DocumentLinks.from_data_dir(tmp_path), owed_notices=owed)
    app = web.Application()
    channel.add_routes(app)
    async with TestClient(TestServer(app)) as client:
        first = await (await client.get(f"/api/chat/{CID}/updates")).json()
        second = await (await client.get(f"/api/chat/{CID}/updates")).json()
    assert [r["text"] for r in first["replies"]] == ["Hồ sơ VSS-2026-000001 đã được duyệt."]
    assert second["replies"] == []


async def test_the_page_is_served_with_everything_local_and_a_strict_content_policy(chat):
    response = await chat.get("/")
    assert response.status == 200
    html = await response.text()
    assert 'lang="vi"' in html
    assert 'accept="image/*"' in html and "capture" in html
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    for name in ("app.js", "style.css"):
        asset = await chat.get(f"/static/{name}")
        assert asset.status == 200
    assert (await chat.get("/static/../channels/web.py")).status == 404
    everything = "".join((STATIC_DIR / n).read_text() for n in ("index.html", "app.js", "style.css"))
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", everything)
    assert not re.search(r"\.innerHTML|insertAdjacentHTML|document\.write", everything)


async def test_messages_of_one_conversation_are_answered_in_order(chat):
    import asyncio

    slow = asyncio.create_task(post(chat, {"text": "slow"}))
    await asyncio.sleep(0.05)
    fast = asyncio.create_task(post(chat, {"text": "nhanh"}))
    await asyncio.gather(slow, fast)
    assert [i.text for i in chat.assistant.received] == ["slow", "nhanh"]


# -- end to end: the real assistant and the in-process stub, over the JSON API ---------------


@pytest.fixture
async def real_chat(tmp_path: Path):
    from bot.assistant import build_assistant
    from bot.backend.stub import StubBackend
    from bot.config import load_settings

    settings = load_settings(tmp_path / "data")
    stub = StubBackend(settings.backend_store_url)
    assistant = await build_assistant(settings, backend=stub)
    channel = WebChannel(assistant, DocumentLinks.from_data_dir(settings.data_dir))
    app = web.Application(client_max_size=CLIENT_MAX_SIZE)
    channel.add_routes(app)
    try:
        async with TestClient(TestServer(app)) as client:
            client.stub = stub  # type: ignore[attr-defined]
            yield client
    finally:
        await assistant.close()


async def test_a_complete_registration_over_the_api_ends_with_a_downloadable_pdf(real_chat):
    async def say(**body) -> list[dict]:
        if "photo" in body:
            form = aiohttp.FormData()
            form.add_field("photo", body["photo"], filename="anh.jpg", content_type="image/jpeg")
            response = await real_chat.post(f"/api/chat/{CID}/messages", data=form)
        else:
            response = await real_chat.post(f"/api/chat/{CID}/messages", json=body)
        assert response.status == 200
        replies = (await response.json())["replies"]
        assert all(REQUIRED_REPLY_KEYS <= r.keys() for r in replies)
        return replies

    def payload(replies: list[dict], label: str) -> str:
        return next(b["payload"] for r in replies for b in r["buttons"] if b["label"] == label)

    menu = await say(text="/start")
    step = await say(button=payload(menu, "Đăng ký tài khoản VssID"))
    assert step[-1]["progress"] == [1, 7]
    for text in (
        "9299000107",
        "Bùi Thị Ngọc Trâm",
        "092195900007",
        "0989000707",
        "Hồ Chí Minh",
        "Bến Thành",
    ):
        await say(text=text)
    assert "ảnh chân dung" in (await say(text="Số 12, đường Lê Lợi"))[-1]["text"]
    await say(photo=imagegen.encode(imagegen.portrait_image()))
    await say(photo=imagegen.sharp_document_jpeg())
    agencies = await say(photo=imagegen.sharp_document_jpeg())
    email = await say(button=payload(agencies, "[07901] BHXH Quận 1"))
    summary = await say(button=payload(email, "Bỏ qua"))
    commitment = await say(button=payload(summary, "Thông tin đúng, tiếp tục"))
    otp_prompt = await say(button=payload(commitment, "Đồng ý"))
    assert otp_prompt[-1]["progress"] == [7, 7]
    [sms] = [m for m in await real_chat.stub.sms_outbox("0989000707") if "OTP" in m["text"]]
    done = await say(text=re.search(r"là (\d{6})\b", sms["text"]).group(1))

    [url] = [r["document"] for r in done if r["document"]]
    response = await real_chat.get("/" + url.split("//", 1)[1].split("/", 1)[1])
    assert response.status == 200
    assert (await response.read()).startswith(b"%PDF")
    assert response.headers["Content-Disposition"].startswith("attachment;")


@pytest.mark.parametrize("cid", ["test-conversation-01-aaaaaaaaaaaaa", "w" + "0123456789abcdef" * 2])
async def test_a_web_conversation_id_under_128_bits_is_refused_with_what_a_good_one_looks_like(chat, cid):
    cid = cid[:31]  # 31 characters: one short of what 16 random bytes make
    response = await chat.post(f"/api/chat/{cid}/messages", json={"text": "xin chào"})
    assert response.status == 400
    body = await response.json()
    assert body["error"] == "bad_conversation_id"
    assert "32" in body["message"] and "tải lại trang" in body["message"]
    assert chat.assistant.received == []
    ok = await chat.post(f"/api/chat/{cid}0/messages", json={"text": "xin chào"})  # 32 characters
    assert ok.status == 200
