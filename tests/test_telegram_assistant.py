"""A parent registers with the real assistant over Telegram, on aiogram and on PTB, polling and webhook.

Everything goes through real HTTP: the fake Bot API delivers the parent's messages, the
framework parses them, the channel hands them to the real assistant (engine + SQLite +
in-process stub backend), and the replies come back as Bot API calls, all checked
against the Bot API spec.
"""

from __future__ import annotations

import json

import pytest
import pytest_asyncio

from bot.assistant import build_assistant
from tests.chat_harness import CITIZEN, document_jpeg, isolated_settings, otp_from_sms, portrait_jpeg
from tests.fake_bot_api import BotMessage, FakeUser
from tests.telegram_harness import Harness, running_bot
from tests.telegram_spec import check_all

pytestmark = pytest.mark.asyncio(loop_scope="module")

COMBOS = [("aiogram", "polling"), ("aiogram", "webhook"), ("ptb", "polling"), ("ptb", "webhook")]


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=COMBOS, ids=lambda c: f"{c[0]}-{c[1]}")
async def bot(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    framework, mode = request.param
    assistant = await build_assistant(isolated_settings(tmp_path_factory.mktemp("data")))
    try:
        async with running_bot(framework, mode, assistant) as harness:
            assistant.add_channel(harness.channel)  # as the runner does: notices go out through it
            yield harness
    finally:
        await assistant.close()


@pytest_asyncio.fixture(loop_scope="module")
async def h(bot: Harness):
    bot.new_requests()
    yield bot
    await bot.settle()
    assert check_all(bot.new_requests()) == []


class TelegramChat:
    """A parent in the Telegram app: sees only labels and texts, taps buttons."""

    def __init__(self, harness: Harness) -> None:
        self.h = harness
        self.user: FakeUser = harness.user("Nhung")
        self._mark = 0

    @property
    def replies(self) -> list[BotMessage]:
        return self.user.screen()[self._mark :]

    @property
    def said(self) -> str:
        return "\n".join(m.visible_text for m in self.replies)

    @property
    def labels(self) -> list[str]:
        return [label for m in self.replies for label in m.labels]

    async def _after(self, push) -> None:
        self._mark = len(self.user.screen())
        await push
        await self.h.settle()

    async def text(self, text: str) -> None:
        await self._after(self.user.say(text))

    async def photo(self, data: bytes, media_group_id: str | None = None) -> None:
        await self._after(self.user.send_photo(data, media_group_id))

    async def photo_as_file(self, data: bytes) -> None:
        await self._after(self.h.server.push(self.user.document_update(data, "image/jpeg", "IMG_2041.jpg")))

    async def album(self, *photos: bytes) -> None:
        self._mark = len(self.user.screen())
        for data in photos:
            await self.user.send_photo(data, media_group_id="album-7")
        await self.h.settle()

    async def press(self, label: str) -> None:
        message = next(m for m in reversed(self.replies) if label in m.labels)
        await self._after(self.user.press(label, message))


async def register(chat: TelegramChat) -> None:
    await chat.text("/start")
    await chat.press("Đăng ký tài khoản VssID")
    for key in ("social_insurance_code", "full_name", "id_number", "phone", "province", "ward", "street"):
        await chat.text(CITIZEN[key])
        if "Đúng" in " ".join(chat.labels):  # a "did you mean" confirmation
            await chat.press(next(label for label in chat.labels if label.startswith("Đúng")))
    # "Send as file" keeps the original quality: parents are often told to do that.
    await chat.photo_as_file(portrait_jpeg())
    assert "MẶT TRƯỚC" in chat.said
    # Both sides of the ID card picked together in the gallery arrive as one album.
    await chat.album(document_jpeg(), document_jpeg())
    assert "cơ quan BHXH tiếp nhận" in chat.said
    await chat.text(CITIZEN["agency"])
    await chat.press("Bỏ qua")


async def test_a_parent_registers_over_telegram_and_gets_the_pdf(h: Harness) -> None:
    chat = TelegramChat(h)
    backend = h.assistant.engine.services.backend
    await register(chat)

    assert "Kiểm tra lại thông tin" in chat.said
    assert "Lê Thị Hồng Nhung" in chat.said and "[07919] BHXH Quận 7" in chat.said
    await chat.press("Thông tin đúng, tiếp tục")
    assert chat.labels == ["Đồng ý", "Hủy"]
    await chat.press("Đồng ý")
    assert "Nhập mã OTP gồm 6 chữ số" in chat.said

    await chat.text(otp_from_sms(await backend.sms_outbox(), "0987654321"))
    assert "Đăng ký thành công bước đầu" in chat.said
    [pdf] = [m for m in chat.replies if m.kind == "document"]
    assert pdf.file is not None and pdf.file.data.startswith(b"%PDF")
    assert pdf.file.filename.endswith(".pdf")

    declarations = [d for d in await backend.list_declarations() if d["full_name"] == "Lê Thị Hồng Nhung"]
    assert [d["status"] for d in declarations] == ["received"]
    assert sorted(declarations[0]["photos"]) == ["id_back", "id_front", "portrait"]
    # Every keyboard the parent used is gone: no old step can be replayed.
    pressed = [r.params["message_id"] for r in h.server.calls("editMessageReplyMarkup")]
    assert len(pressed) >= 4


async def test_a_question_is_answered_from_the_faq_and_the_form_resumes(h: Harness) -> None:
    chat = TelegramChat(h)
    await chat.text("/start")
    await chat.text("mã số bhxh là số nào vậy")
    assert "10 số cuối" in chat.said
    await chat.press("Đăng ký tài khoản VssID")
    await chat.text(CITIZEN["social_insurance_code"])
    await chat.text("ma so bhxh la so nao vay")  # mid-form, without accents
    assert "10 số cuối" in chat.said
    assert chat.replies[-1].visible_text.endswith("Ví dụ: Nguyễn Văn An.")  # the name step again


async def test_a_school_link_is_remembered_and_a_broken_one_still_starts(h: Harness) -> None:
    chat = TelegramChat(h)
    await chat.text("/start school_THCS-LeLoi")
    assert "THCS-LeLoi" in chat.said
    assert "Đăng ký tài khoản VssID" in chat.labels
    other = TelegramChat(h)
    await other.text("/start school_THCS Lê Lợi!")
    assert "Đăng ký tài khoản VssID" in other.labels
    assert "Lê Lợi" not in other.said


async def test_a_wrong_answer_gets_a_vietnamese_explanation_with_an_example(h: Harness) -> None:
    chat = TelegramChat(h)
    await chat.text("/start")
    await chat.press("Đăng ký tài khoản VssID")
    await chat.text("12345")
    assert "Ví dụ" in chat.said
    assert chat.replies[-1].parse_mode == "HTML"  # escaped, so « » and < > in texts are safe


async def test_delete_drops_the_replies_still_owed_to_the_chat(h: Harness) -> None:
    name = "Vương Thị Kim Liên"  # synthetic
    chat = TelegramChat(h)
    await chat.text("/start")
    await chat.press("Đăng ký tài khoản VssID")
    await chat.text(CITIZEN["social_insurance_code"])
    outbox = h.channel.outbox
    h.server.outage = True  # updates still arrive; nothing the bot sends gets through
    try:
        await chat.text(name)
        await chat.text("quay lại")  # offers "Giữ nguyên: <name>"
        await chat.text("/delete")
        owed = [spec for _, _, spec in outbox.items_now(str(chat.user.id))]
        assert name in json.dumps(owed, ensure_ascii=False)
        await chat.text("có")
        # Only the confirmation of the deletion is owed now, and the name is gone from the file.
        [(_, _, spec)] = outbox.items_now(str(chat.user.id))
        assert spec["text"].startswith("Đã xóa")
        assert h.channel.core.pending(chat.user.id) == 1
        assert name.encode() not in outbox.path.read_bytes()
    finally:
        h.server.outage = False
    await h.server.wait_for(lambda: chat.user.screen()[-1].visible_text.startswith("Đã xóa"), timeout=10)
    await h.settle()
    assert outbox.items_now(str(chat.user.id)) == []
    shown = [m.visible_text + " ".join(m.labels) for m in chat.user.screen()]
    assert not any(name in text for text in shown)
