"""The Zalo OA channel against a fake OA server on loopback: first with a scripted assistant
(transport behaviour), then end to end with the real assistant and the in-process stub."""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.channels.web import CLIENT_MAX_SIZE
from bot.channels.zalo import MAX_BUTTONS, MAX_TEXT_CHARS, ZALO_MEDIA_HOSTS, ZaloChannel, split_text
from dialogs.messages import Outbound
from tests import imagegen
from tests.fake_assistant import GREETING, ScriptedAssistant
from tests.fake_zalo_api import (
    APP_ID,
    APP_SECRET_KEY,
    OA_SECRET_KEY,
    FakeZaloApi,
    event,
    image_event,
    signed,
    text_event,
)

USER = "8492990001070123456"


class Harness:
    def __init__(
        self, client: TestClient, channel: ZaloChannel, api: FakeZaloApi, assistant: ScriptedAssistant
    ):
        self.client, self.channel, self.api, self.assistant = client, channel, api, assistant

    async def post(self, body: dict, **sign: str) -> int:
        raw, headers = signed(body, **sign)
        response = await self.client.post("/zalo/webhook", data=raw, headers=headers)
        await self.channel.idle()
        return response.status


def make_channel(assistant, api: FakeZaloApi, data_dir: Path, **options) -> ZaloChannel:
    params = {
        "app_id": APP_ID,
        "oa_secret_key": OA_SECRET_KEY,
        "access_token": "access-1",
        "refresh_token": "refresh-1",
        "app_secret_key": APP_SECRET_KEY,
        "data_dir": data_dir,
        "api_base": api.url(),
        "oauth_base": api.url(),
        "retry_interval_s": 3600,
        # The fake platform serves its images on loopback: allowed here, and only here.
        "media_hosts": ("127.0.0.1",),
        "private_media_ok": True,
    }
    params.update(options)
    return ZaloChannel(assistant, **params)


@pytest.fixture
async def api():
    fake = await FakeZaloApi().start()
    yield fake
    await fake.close()


@pytest.fixture
async def zalo(api: FakeZaloApi, tmp_path: Path, request):
    options = getattr(request, "param", {})
    document = tmp_path / "documents" / "to-khai.pdf"
    document.parent.mkdir()
    document.write_bytes(b"%PDF-1.4 synthetic")
    assistant = ScriptedAssistant(document=document)
    channel = make_channel(assistant, api, tmp_path, **options)
    app = web.Application(client_max_size=CLIENT_MAX_SIZE)
    channel.add_routes(app)
    await channel.start()
    async with TestClient(TestServer(app)) as client:
        yield Harness(client, channel, api, assistant)
    await channel.stop()


async def test_a_text_message_is_answered_through_the_oa_api_with_buttons_as_query_templates(zalo):
    assert await zalo.post(text_event(USER, "/start")) == 200
    [request] = zalo.api.messages
    assert request.headers["access_token"] == "access-1"
    assert request.body["recipient"] == {"user_id": USER}
    message = request.body["message"]
    assert message["text"] == GREETING
    assert message["attachment"]["type"] == "template"
    buttons = message["attachment"]["payload"]["buttons"]
    assert buttons[0] == {
        "title": "Đăng ký tài khoản VssID",
        "type": "oa.query.show",
        "payload": "Đăng ký tài khoản VssID",
    }


async def test_tapping_a_button_comes_back_as_its_label_and_reaches_the_assistant_as_the_payload(zalo):
    await zalo.post(text_event(USER, "/start"))
    tapped = zalo.api.last_buttons(USER)[0]["payload"]
    await zalo.post(text_event(USER, tapped))
    assert zalo.assistant.received[-1].button == "flow:registration"
    assert zalo.api.texts(USER)[-1].startswith("Nhập mã số BHXH")


async def test_typed_text_that_is_not_a_button_label_stays_text(zalo):
    await zalo.post(text_event(USER, "/start"))
    await zalo.post(text_event(USER, "mã số BHXH là gì?"))
    assert zalo.assistant.received[-1].text == "mã số BHXH là gì?"
    assert zalo.assistant.received[-1].button is None


async def test_following_the_oa_is_greeted(zalo):
    assert await zalo.post(event("follow", USER)) == 200
    assert zalo.assistant.received[-1].text == "/start"
    assert zalo.api.texts(USER) == [GREETING]


async def test_a_sent_photo_is_downloaded_and_handed_over_byte_for_byte(zalo):
    photo = imagegen.encode(imagegen.portrait_image(300, 400))
    await zalo.post(image_event(USER, zalo.api.add_image(photo)))
    assert zalo.assistant.received[-1].photo == photo
    assert zalo.api.texts(USER) == [f"Đã nhận ảnh ({len(photo)} byte)."]


@pytest.mark.parametrize("zalo", [{"max_image_bytes": 1000}], indirect=True)
async def test_a_photo_over_the_size_bound_is_not_downloaded_whole_and_the_user_is_told(zalo):
    await zalo.post(image_event(USER, zalo.api.add_image(b"\xff" * 5000)))
    assert zalo.assistant.received == []
    assert "quá nặng" in zalo.api.texts(USER)[0]


async def test_a_photo_that_cannot_be_fetched_asks_the_user_to_send_it_again(zalo):
    await zalo.post(image_event(USER, zalo.api.url("/images/missing.jpg")))
    assert zalo.assistant.received == []
    assert "gửi lại ảnh" in zalo.api.texts(USER)[0]


async def test_unsigned_missigned_stale_or_altered_events_are_refused_and_nothing_is_processed(zalo):
    body = text_event(USER, "/start")
    raw, headers = signed(body)

    unsigned = await zalo.client.post("/zalo/webhook", data=raw, headers={"Content-Type": "application/json"})
    assert unsigned.status == 401

    assert await zalo.post(body, secret="not-the-oa-secret") == 403
    assert await zalo.post(body, app_id="another-app") == 403

    stale = text_event(USER, "/start", timestamp_ms=int((time.time() - 600) * 1000))
    assert await zalo.post(stale) == 403

    altered = raw.replace(b"/start", b"/xoa__")
    response = await zalo.client.post("/zalo/webhook", data=altered, headers=headers)
    assert response.status == 403

    await zalo.channel.idle()
    assert zalo.assistant.received == []
    assert zalo.api.messages == []


async def test_a_redelivered_event_is_answered_once(zalo):
    body = text_event(USER, "/start")
    assert await zalo.post(body) == 200
    assert await zalo.post(body) == 200
    assert len(zalo.assistant.received) == 1
    assert len(zalo.api.messages) == 1


async def test_other_events_are_acknowledged_and_ignored(zalo):
    assert await zalo.post(event("user_send_sticker", USER, attachments=[])) == 200
    assert await zalo.post(event("user_seen_message", USER)) == 200
    assert zalo.assistant.received == []


async def test_long_texts_and_many_buttons_are_split_within_zalo_limits_keeping_every_choice(zalo):
    await zalo.post(text_event(USER, "many"))
    delivered = zalo.api.delivered(USER)
    assert len(delivered) >= 4
    titles = []
    for message in delivered:
        assert len(message["text"]) <= MAX_TEXT_CHARS
        buttons = (message.get("attachment") or {}).get("payload", {}).get("buttons", [])
        assert len(buttons) <= MAX_BUTTONS
        titles += [b["title"] for b in buttons]
    assert titles == [f"Lựa chọn {i}" for i in range(1, 13)]
    await zalo.post(text_event(USER, "Lựa chọn 12"))
    assert zalo.assistant.received[-1].button == "choice:12"


async def test_a_document_is_uploaded_the_oa_way_and_sent_as_a_file(zalo):
    await zalo.post(text_event(USER, "pdf"))
    [upload] = [r for r in zalo.api.requests if r.path == "/v2.0/oa/upload/file"]
    assert upload.body == {"file": b"%PDF-1.4 synthetic", "filename": "to-khai.pdf"}
    assert upload.headers["access_token"] == "access-1"
    file_message = zalo.api.delivered(USER)[-1]
    assert file_message["attachment"]["type"] == "file"
    assert file_message["attachment"]["payload"]["token"].startswith("up-")


async def test_an_expired_token_is_refreshed_saved_and_the_message_still_arrives(zalo, tmp_path: Path):
    zalo.api.expire_token()
    await zalo.post(text_event(USER, "/start"))
    assert zalo.api.texts(USER) == [GREETING]
    assert zalo.api.refreshed == 1
    [oauth] = [r for r in zalo.api.requests if r.path == "/v4/oa/access_token"]
    assert oauth.headers["secret_key"] == APP_SECRET_KEY
    assert oauth.body == {"refresh_token": "refresh-1", "app_id": APP_ID, "grant_type": "refresh_token"}
    saved = json.loads((tmp_path / "zalo-tokens.json").read_text())
    assert (saved["access_token"], saved["refresh_token"]) == ("access-2", "refresh-2")
    assert (tmp_path / "zalo-tokens.json").stat().st_mode & 0o077 == 0

    # After a restart with the same environment, the saved (newer) tokens are used.
    restarted = make_channel(zalo.assistant, zalo.api, tmp_path)
    assert restarted.tokens.access_token == "access-2"


async def test_a_message_zalo_refuses_is_kept_and_delivered_in_order_on_retry(zalo, caplog):
    caplog.set_level(logging.INFO)
    zalo.api.fail_next = [-32]  # e.g. quota exceeded
    await zalo.post(text_event(USER, "9299000107"))
    assert zalo.api.texts(USER) == []
    await zalo.post(text_event(USER, "4699000112"))
    assert zalo.api.texts(USER) == ["Bạn đã gõ: 9299000107", "Bạn đã gõ: 4699000112"]
    assert await zalo.channel.outbox.items() == []
    assert "9299000107" not in caplog.text  # logs carry error codes, not what people typed


async def test_kept_messages_wait_in_the_outbox_while_zalo_keeps_refusing(zalo):
    zalo.api.fail_next = [-201, -201, -201]
    await zalo.post(text_event(USER, "một"))
    await zalo.post(text_event(USER, "hai"))
    kept = [spec["text"] for _, _, spec in await zalo.channel.outbox.items()]
    assert kept == ["Bạn đã gõ: một", "Bạn đã gõ: hai"]
    zalo.api.fail_next = []
    await zalo.channel.retry_outbox()
    assert zalo.api.texts(USER) == ["Bạn đã gõ: một", "Bạn đã gõ: hai"]


@pytest.mark.parametrize("zalo", [{"app_secret_key": ""}], indirect=True)
async def test_an_expired_token_that_cannot_be_refreshed_keeps_the_reply(zalo):
    zalo.api.expire_token()
    await zalo.post(text_event(USER, "/start"))
    assert zalo.api.texts(USER) == []
    [(_, user, spec)] = await zalo.channel.outbox.items()
    assert (user, spec["text"]) == (USER, GREETING)


async def test_kept_messages_survive_a_restart_and_are_sent_at_start(api: FakeZaloApi, tmp_path: Path):
    assistant = ScriptedAssistant()
    first = make_channel(assistant, api, tmp_path, api_base="http://127.0.0.1:9")  # nothing listens there
    await first.start()
    await first.send(USER, [Outbound("Hồ sơ đã được duyệt.")])
    await first.stop()
    assert api.messages == []

    second = make_channel(assistant, api, tmp_path)
    await second.start()
    try:
        await second.retry_outbox()
        assert api.texts(USER) == ["Hồ sơ đã được duyệt."]
    finally:
        await second.stop()


async def test_a_failing_assistant_still_answers_the_user_with_an_apology(zalo):
    await zalo.post(text_event(USER, "boom"))
    assert zalo.api.texts(USER)[0].startswith("Xin lỗi")


def test_split_text_cuts_at_line_or_word_boundaries_within_the_limit():
    text = "\n".join(f"Dòng số {i} có vài chữ." for i in range(300))
    pieces = split_text(text, 500)
    assert all(len(p) <= 500 for p in pieces)
    assert "\n".join(pieces) == text
    words = "chữ " * 400
    assert all(len(p) <= 100 for p in split_text(words, 100))
    assert split_text("x" * 250, 100) == ["x" * 100, "x" * 100, "x" * 50]


# -- end to end: the real assistant, the stub backend, signed webhooks ------------------------

# A synthetic person the stub knows (bot/backend/people.yaml), without an account yet.
PHONE = "0989000707"


class Parent:
    """A synthetic parent chatting with the OA: types, taps buttons (Zalo posts the label
    back as a text message), sends photos by URL, and reads what the OA delivered."""

    def __init__(self, harness: Harness, user_id: str) -> None:
        self.h, self.user_id = harness, user_id

    @property
    def texts(self) -> list[str]:
        return self.h.api.texts(self.user_id)

    async def says(self, text: str) -> str:
        before = len(self.texts)
        assert await self.h.post(text_event(self.user_id, text)) == 200
        return "\n".join(self.texts[before:])

    async def taps(self, label: str) -> str:
        offered = [b["payload"] for b in self.h.api.last_buttons(self.user_id)]
        offered += [
            b["payload"]
            for m in self.h.api.delivered(self.user_id)[-4:]
            for b in (m.get("attachment") or {}).get("payload", {}).get("buttons", [])
        ]
        assert label in offered, f"{label!r} not offered; offered: {offered}"
        return await self.says(label)

    async def sends_photo(self, data: bytes) -> str:
        before = len(self.texts)
        assert await self.h.post(image_event(self.user_id, self.h.api.add_image(data))) == 200
        return "\n".join(self.texts[before:])


@pytest.fixture
async def real_zalo(api: FakeZaloApi, tmp_path: Path):
    from bot.assistant import build_assistant
    from bot.backend.stub import StubBackend
    from bot.config import load_settings

    settings = load_settings(tmp_path / "data")
    stub = StubBackend(settings.backend_store_url)
    assistant = await build_assistant(settings, backend=stub)
    channel = make_channel(assistant, api, settings.data_dir)
    assistant.add_channel(channel)
    app = web.Application(client_max_size=CLIENT_MAX_SIZE)
    channel.add_routes(app)
    await channel.start()
    try:
        async with TestClient(TestServer(app)) as client:
            harness = Harness(client, channel, api, assistant)  # type: ignore[arg-type]
            harness.stub = stub  # type: ignore[attr-defined]
            yield harness
    finally:
        await channel.stop()
        await assistant.close()


async def test_a_parent_registers_end_to_end_on_zalo_and_receives_the_pdf(real_zalo):
    parent = Parent(real_zalo, "8409990001112223334")
    assert await real_zalo.post(event("follow", parent.user_id)) == 200
    assert "trợ lý VssID" in parent.texts[0]

    assert "mã số BHXH" in await parent.taps("Đăng ký tài khoản VssID")
    assert "họ và tên" in await parent.says("9299000107")
    assert "giấy tờ tùy thân" in await parent.says("Bùi Thị Ngọc Trâm")
    assert "số điện thoại" in await parent.says("092195900007")
    assert "tỉnh/thành phố" in await parent.says(PHONE)
    assert "Phường/xã" in await parent.says("Hồ Chí Minh")
    assert "Số nhà" in await parent.says("Bến Thành")
    assert "ảnh chân dung" in await parent.says("Số 12, đường Lê Lợi")
    assert "MẶT TRƯỚC" in await parent.sends_photo(imagegen.encode(imagegen.portrait_image()))
    assert "MẶT SAU" in await parent.sends_photo(imagegen.sharp_document_jpeg())
    assert "cơ quan BHXH" in await parent.sends_photo(imagegen.sharp_document_jpeg())
    assert "email" in await parent.taps("[07901] BHXH Quận 1")
    summary = await parent.taps("Bỏ qua")
    assert "Bùi Thị Ngọc Trâm" in summary and "BHXH Quận 1" in summary
    assert "Đồng ý" in await parent.taps("Thông tin đúng, tiếp tục")
    assert "mã OTP" in await parent.taps("Đồng ý")

    [sms] = [m for m in await real_zalo.stub.sms_outbox(PHONE) if "OTP" in m["text"]]
    code = re.search(r"là (\d{6})\b", sms["text"]).group(1)
    done = await parent.says(code)
    assert "Đăng ký thành công" in done

    [upload] = [r for r in real_zalo.api.requests if r.path == "/v2.0/oa/upload/file"]
    assert upload.body["file"].startswith(b"%PDF") and upload.body["filename"].endswith(".pdf")
    file_messages = [
        m
        for m in real_zalo.api.delivered(parent.user_id)
        if (m.get("attachment") or {}).get("type") == "file"
    ]
    assert len(file_messages) == 1
    assert await real_zalo.channel.outbox.items() == []

    # Days later the office approves: the notice is pushed to the parent's Zalo.
    from bot.notifications import NotificationPump

    receipt = re.search(r"VSS-\d{4}-\d+", done).group(0)
    await real_zalo.stub.approve(receipt)
    await NotificationPump(real_zalo.assistant).poll_once()
    assert f"hồ sơ {receipt}" in parent.texts[-1] and "DUYỆT" in parent.texts[-1], parent.texts[-1]


async def test_a_question_on_zalo_is_answered_from_the_faq(real_zalo):
    parent = Parent(real_zalo, "8409990004445556667")
    await parent.says("/start")
    suggestions = await parent.says("mk?")  # which password: first, forgotten or changed
    assert "Có phải bạn muốn hỏi" in suggestions
    answer = await parent.taps("Quên mật khẩu VssID thì làm sao?")
    assert '"Quên mật khẩu"' in answer and "1900 9068" in answer


async def test_a_redelivered_webhook_moves_the_real_conversation_once(real_zalo):
    parent = Parent(real_zalo, "8409990007778889990")
    await parent.says("/start")
    await parent.taps("Đăng ký tài khoản VssID")
    body = text_event(parent.user_id, "9299000107")
    await real_zalo.post(body)
    answered = len(parent.texts)
    assert await real_zalo.post(body) == 200
    assert len(parent.texts) == answered
    assert "giấy tờ tùy thân" in await parent.says("Bùi Thị Ngọc Trâm")


async def test_delete_drops_the_messages_kept_for_the_user_and_their_buttons(real_zalo):
    name = "Vương Thị Kim Liên"  # synthetic
    parent = Parent(real_zalo, "8409990002223334445")
    other = Parent(real_zalo, "8409990003334445556")
    await parent.says("/start")
    await parent.taps("Đăng ký tài khoản VssID")
    await parent.says("9299000107")
    outbox = real_zalo.channel.outbox
    real_zalo.api.fail_next = [-32] * 50  # Zalo refuses every message for a while
    await other.says("/start")
    await parent.says(name)
    await parent.says("quay lại")  # offers "Giữ nguyên: <name>"
    await parent.says("/delete")
    assert name in json.dumps(await outbox.items(parent.user_id), ensure_ascii=False)
    await parent.says("Xóa hết")  # the confirmation button, tapped
    # Only the confirmation of the deletion is kept now; the name is gone from the file.
    [(_, _, spec)] = await outbox.items(parent.user_id)
    assert spec["text"].startswith("Đã xóa")
    database = real_zalo.assistant.store.engine.url.database  # the outbox lives in the main database
    assert all(name.encode() not in p.read_bytes() for p in Path(database).parent.glob("vssid.sqlite3*"))
    assert len(await outbox.items(other.user_id)) == 1  # another user's kept message stays

    real_zalo.api.fail_next = []
    await real_zalo.channel.retry_outbox()
    assert await outbox.items() == []
    assert parent.texts[-1].startswith("Đã xóa")
    assert not any(name in json.dumps(m, ensure_ascii=False) for m in real_zalo.api.delivered(parent.user_id))


async def test_a_button_tapped_after_a_restart_still_reaches_the_assistant_as_a_button(zalo, tmp_path: Path):
    await zalo.post(text_event(USER, "/start"))
    restarted = make_channel(zalo.assistant, zalo.api, tmp_path)
    app = web.Application(client_max_size=CLIENT_MAX_SIZE)
    restarted.add_routes(app)
    await restarted.start()
    try:
        async with TestClient(TestServer(app)) as client:
            again = Harness(client, restarted, zalo.api, zalo.assistant)
            await again.post(text_event(USER, "Đăng ký tài khoản VssID"))
        assert zalo.assistant.received[-1].button == "flow:registration"
    finally:
        await restarted.stop()


@pytest.mark.parametrize("zalo", [{"access_token": ""}], indirect=True)
async def test_without_an_access_token_the_channel_obtains_one_with_the_refresh_token(zalo):
    assert zalo.api.refreshed == 1
    await zalo.post(text_event(USER, "/start"))
    assert zalo.api.texts(USER) == [GREETING]


@pytest.mark.parametrize(
    "zalo", [{"media_hosts": ZALO_MEDIA_HOSTS, "private_media_ok": False}], indirect=True
)
async def test_a_zalo_image_url_pointing_inside_is_not_fetched_and_the_user_is_asked_again(zalo):
    photo = imagegen.encode(imagegen.portrait_image(300, 400))
    await zalo.post(image_event(USER, zalo.api.add_image(photo)))  # the fake listens on 127.0.0.1
    assert zalo.assistant.received == []
    assert "gửi lại ảnh" in zalo.api.texts(USER)[0]
