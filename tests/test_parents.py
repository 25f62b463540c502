"""A parent's whole journey: own account, children through it, the app, and the file to the end."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta, timezone
from pathlib import Path

import pytest

from bot.assistant import build_assistant
from bot.crypto import open_file
from bot.notifications import NotificationPump
from dialogs.messages import Outbound
from tests.chat_harness import (
    Chat,
    document_jpeg,
    fill_registration_until_summary,
    isolated_settings,
    otp_from_sms,
    portrait_jpeg,
)
from tests.test_documents import pdf_text

# Synthetic people seeded in the stub (bot/backend/people.yaml).
PARENT_WITH_ACCOUNT = {"code": "7999000101", "phone": "0901000101"}
PARENT_WITHOUT_ACCOUNT = {
    "social_insurance_code": "7999000106",
    "full_name": "Đặng Văn Hùng",
    "id_number": "079085900006",
    "phone": "0978000606",
    "province": "hcm",
    "ward": "Phường Tân Hưng",
    "street": "Số 8, đường số 9",
}
SEEDED_ADULT = PARENT_WITHOUT_ACCOUNT  # no VssID account yet; the stub approves this person
KHANG = ("7999000201", "Lê Minh Khang", "03/09/2015")
HAN = ("7999000202", "Lê Ngọc Hân", "20/01/2018")
CHAU = ("7999000208", "Đặng Minh Châu", "04/04/2017")


@dataclass
class PushChannel:
    """A channel that can push (like Telegram): records what the assistant sends unasked."""

    name: str = "test"
    sent: list[tuple[str, list[Outbound]]] = field(default_factory=list)

    async def send(self, user_id: str, replies: list[Outbound]) -> None:
        self.sent.append((user_id, replies))


async def confirm_guardian(chat: Chat, backend) -> None:
    """A parent with a VssID account starts a child's registration and confirms it by OTP."""
    await chat.text("/start")
    await chat.press("Đăng ký cho con dưới 18 tuổi")
    await chat.press("Tôi đã có tài khoản VssID")
    await chat.text(PARENT_WITH_ACCOUNT["code"])
    await chat.text(PARENT_WITH_ACCOUNT["phone"])
    await chat.text(otp_from_sms(await backend.sms_outbox(), PARENT_WITH_ACCOUNT["phone"]))


async def register_child(chat: Chat, backend, child: tuple[str, str, str], guardian_phone: str) -> str:
    code, name, born = child
    await chat.text(code)
    await chat.text(name)
    await chat.text(born)
    await chat.press("Con đẻ")
    await chat.photo(portrait_jpeg())
    assert "GIẤY KHAI SINH" in chat.said
    await chat.photo(document_jpeg())
    for _ in range(4):  # address and agency: pre-filled from the parent or asked
        keep = [b.label for r in chat.replies for b in r.buttons if b.payload == "keep"]
        if keep:
            await chat.press(keep[0])
        elif "tỉnh/thành phố" in chat.said:
            await chat.text("hcm")
        elif "Phường/xã" in chat.said:
            await chat.text("Phường Tân Hưng")
        elif "Số nhà" in chat.said:
            await chat.text("Số 8, đường số 9")
        elif "cơ quan BHXH tiếp nhận" in chat.said:
            await chat.text("07919")
    assert "Kiểm tra lại thông tin của con" in chat.said, chat.said
    assert name in chat.said and "Con đẻ" in chat.said
    await chat.press("Thông tin đúng, tiếp tục")
    assert "Cá nhân tôi cam kết hoàn toàn chịu trách nhiệm trước pháp luật" in chat.said
    assert chat.labels == ["Đồng ý", "Hủy"]
    await chat.press("Đồng ý")
    await chat.text(otp_from_sms(await backend.sms_outbox(), guardian_phone))
    assert "Nộp tờ khai cho con thành công" in chat.said
    assert chat.document is not None and open_file(chat.document).startswith(b"%PDF")
    return next(d["receipt"] for d in await backend.list_declarations() if d["social_insurance_code"] == code)


async def test_a_parent_with_an_account_registers_two_children_confirming_once(assistant, backend):
    chat = Chat(assistant)
    await chat.text("/start")
    await chat.press("Đăng ký cho con dưới 18 tuổi")
    assert "đã có tài khoản VssID chưa" in chat.said
    await chat.press("Tôi đã có tài khoản VssID")
    await chat.text(PARENT_WITH_ACCOUNT["code"])
    await chat.text(PARENT_WITH_ACCOUNT["phone"])
    assert "Nhập mã OTP" in chat.said
    await chat.text(otp_from_sms(await backend.sms_outbox(), PARENT_WITH_ACCOUNT["phone"]))
    assert "Đã xác nhận tài khoản" in chat.said
    await register_child(chat, backend, KHANG, PARENT_WITH_ACCOUNT["phone"])
    # The guardian's name on the child's Tờ khai is the one on their VssID account.
    assert "Trần Thị Thu Hương" in pdf_text(chat.document)
    sms_count = len(await backend.sms_outbox(phone=PARENT_WITH_ACCOUNT["phone"]))

    await chat.press("Đăng ký thêm cho con khác")
    assert "Bạn đã được xác nhận là người giám hộ" in chat.said
    await register_child(chat, backend, HAN, PARENT_WITH_ACCOUNT["phone"])
    assert "Trần Thị Thu Hương" in pdf_text(chat.document)
    texts = [m["text"] for m in await backend.sms_outbox(phone=PARENT_WITH_ACCOUNT["phone"])][sms_count:]
    assert texts, "the second child's declaration was confirmed by SMS too"
    assert not any("xác thực tài khoản" in t for t in texts), "the parent was not asked to confirm again"

    children = [d for d in await backend.list_declarations() if d["kind"] == "child"]
    assert {d["full_name"] for d in children} == {"Lê Minh Khang", "Lê Ngọc Hân"}
    for declaration in children:
        assert declaration["guardian_social_insurance_code"] == PARENT_WITH_ACCOUNT["code"]
        assert declaration["relationship"] == "con_de"
        assert declaration["phone"] == PARENT_WITH_ACCOUNT["phone"]
        assert sorted(declaration["photos"]) == ["birth_certificate", "portrait"]
    assert {d["date_of_birth"] for d in children} == {"2015-09-03", "2018-01-20"}
    # The guardian got the SMS with the declaration link, as 002 describes.
    assert any("http" in m["text"] for m in await backend.sms_outbox(phone=PARENT_WITH_ACCOUNT["phone"]))


async def test_a_parent_looks_up_the_childs_code_and_skips_what_the_look_up_asked(assistant, backend):
    code, name, born = KHANG
    chat = Chat(assistant)
    await confirm_guardian(chat, backend)
    assert "mã số BHXH của CON" in chat.said
    await chat.press("Không nhớ mã số BHXH")
    assert "Tra cứu mã số BHXH của con" in chat.said
    await chat.text("le minh khang")  # no accents: the name rule asks for them, as on the form
    assert "“Le Minh Khang” chưa có dấu" in chat.said
    await chat.text(name)
    await chat.text("03/09/2005")  # an adult's date: the child's rule still applies
    assert "đã đủ 18 tuổi" in chat.said
    await chat.text(born)
    await chat.text("Hồ Chí Minh")
    assert f"Đã tìm thấy mã số BHXH của {name}: {code}" in chat.said
    assert "Con là gì của bạn?" in chat.said  # name and date of birth were given with the look-up


async def test_a_wrong_guardian_phone_is_refused_and_asked_again(assistant):
    chat = Chat(assistant)
    await chat.text("/start")
    await chat.press("flow:child_registration")
    await chat.press("Tôi đã có tài khoản VssID")
    await chat.text(PARENT_WITH_ACCOUNT["code"])
    await chat.text("0987 111 222")
    assert "không khớp" in chat.said and "số điện thoại" in chat.said.lower()


async def test_a_parent_without_an_account_registers_first_then_goes_straight_to_the_child(
    assistant, backend
):
    chat = Chat(assistant)
    await chat.text("/start")
    await chat.press("flow:child_registration")
    await chat.press("Tôi chưa có tài khoản")
    assert "mã số BHXH của bạn" in chat.said
    parent = PARENT_WITHOUT_ACCOUNT
    await fill_registration_until_summary(chat, parent, started=True)
    await chat.press("Thông tin đúng, tiếp tục")
    await chat.press("Đồng ý")
    await chat.text(otp_from_sms(await backend.sms_outbox(), parent["phone"]))
    assert "Đăng ký thành công bước đầu" in chat.said
    # Straight on to the child, the parent counted as confirmed by the OTP just entered.
    assert "Đăng ký tài khoản cho con" in chat.said or "mã số BHXH của CON" in chat.said
    await register_child(chat, backend, CHAU, parent["phone"])
    # The guardian on the child's Tờ khai is the parent of the declaration just confirmed.
    assert parent["full_name"] in pdf_text(chat.document)
    kinds = sorted(d["kind"] for d in await backend.list_declarations())
    assert kinds == ["child", "individual"]


@pytest.mark.parametrize(
    ("platform", "store", "install_word"),
    [
        ("Android (Samsung, Oppo, Vivo, Xiaomi…)", "CH Play", "Cài đặt"),
        ("iPhone / iPad", "App Store", "Nhận"),
    ],
)
async def test_the_install_guide_walks_each_platform_and_ends_by_offering_registration(
    assistant, platform, store, install_word
):
    chat = Chat(assistant)
    await chat.text("/start")
    await chat.press("Cài ứng dụng VssID")
    await chat.press(platform)
    assert store in chat.said and chat.labels == ["Xong", "Bị kẹt ở bước này"]
    await chat.press("Bị kẹt ở bước này")
    assert "4G hoặc Wi-Fi" in chat.said
    await chat.press("Thử lại")
    await chat.press("Xong")
    assert "VssID" in chat.said and "Tìm kiếm" in chat.said
    await chat.press("Xong")
    assert install_word in chat.said
    await chat.press("Xong")
    assert "Đăng ký tài khoản ngay" in chat.labels
    await chat.press("Đăng ký tài khoản ngay")
    assert "mã số BHXH" in chat.said


async def test_no_smartphone_leads_to_the_web_portal(assistant):
    chat = Chat(assistant)
    await chat.text("/start")
    await chat.press("flow:install_guide")
    await chat.press("Không có điện thoại thông minh")
    assert "dichvucong.baohiemxahoi.gov.vn" in chat.said and "Ghi nhận" in chat.said


async def test_account_help_explains_login_password_and_devices(assistant):
    chat = Chat(assistant)
    await chat.text("/start")
    await chat.press("Hỗ trợ tài khoản")
    await chat.press("Đăng nhập lần đầu")
    assert "mã số BHXH" in chat.said and "SMS" in chat.said
    await chat.press("Chủ đề khác")
    await chat.press("Đổi mật khẩu")
    assert "OTP" in chat.said and "6 tháng" in chat.said
    await chat.press("Chủ đề khác")
    await chat.press("Dùng trên điện thoại khác")
    assert "thiết bị thứ nhất" in chat.said
    await chat.press("Chủ đề khác")
    await chat.press("Quên mật khẩu")
    assert "1900 9068" in chat.said


async def _submitted(assistant, backend, chat: Chat) -> str:
    await fill_registration_until_summary(chat)
    await chat.press("Thông tin đúng, tiếp tục")
    await chat.press("Đồng ý")
    await chat.text(otp_from_sms(await backend.sms_outbox(), "0987654321"))
    [declaration] = await backend.list_declarations()
    return declaration["receipt"]


async def test_a_rejection_is_notified_once_with_the_reason_and_status_shows_it(assistant, backend):
    channel = PushChannel()
    assistant.add_channel(channel)
    chat = Chat(assistant)
    receipt = await _submitted(assistant, backend, chat)
    await chat.text("/status")
    assert receipt in chat.said and "chờ bạn nộp Tờ khai giấy" in chat.said

    await backend.reject(receipt, "Ảnh CCCD bị lóa, không đọc được số.")
    pump = NotificationPump(assistant)
    await pump.poll_once()
    await pump.poll_once()
    [(user, [notice])] = channel.sent
    assert user == "parent-1"
    assert "CHƯA được chấp nhận" in notice.text and "Ảnh CCCD bị lóa" in notice.text
    assert "[07919] BHXH Quận 7" in notice.text and "Đăng ký lại" in [b.label for b in notice.buttons]
    await chat.text("/status")
    assert "Bị từ chối" in chat.said and "Ảnh CCCD bị lóa" in chat.said


async def test_an_approved_declaration_is_notified_after_a_restart_exactly_once(tmp_path):
    settings = isolated_settings(tmp_path)
    first = await build_assistant(settings)
    chat = Chat(first)
    backend = first.engine.services.backend
    await fill_registration_until_summary(chat, SEEDED_ADULT)
    await chat.press("Thông tin đúng, tiếp tục")
    await chat.press("Đồng ý")
    await chat.text(otp_from_sms(await backend.sms_outbox(), "0978000606"))
    [declaration] = await backend.list_declarations()
    decided = await backend.approve(declaration["receipt"])
    assert decided.status == "approved", decided.reason
    await first.close()

    second = await build_assistant(settings)
    channel = PushChannel()
    second.add_channel(channel)
    await NotificationPump(second).poll_once()
    await second.close()
    third = await build_assistant(settings)
    third.add_channel(channel)
    await NotificationPump(third).poll_once()
    await third.close()
    [(_, [notice])] = channel.sent
    assert "DUYỆT" in notice.text and "Mật khẩu đăng nhập lần đầu" in notice.text


async def test_a_channel_that_cannot_push_gets_the_notice_with_the_next_reply(assistant, backend):
    chat = Chat(assistant)
    receipt = await _submitted(assistant, backend, chat)
    await backend.reject(receipt, "Sai mã số BHXH.")
    await NotificationPump(assistant).poll_once()
    await chat.text("xin chào")
    assert "Sai mã số BHXH" in chat.said
    await chat.text("xin chào")
    assert "Sai mã số BHXH" not in chat.said


async def test_the_paper_form_reminder_is_sent_once(assistant, backend):
    channel = PushChannel()
    assistant.add_channel(channel)
    chat = Chat(assistant)
    receipt = await _submitted(assistant, backend, chat)
    pump = NotificationPump(assistant)
    await pump.poll_once()
    assert channel.sent == []  # not due yet
    real_clock = assistant.engine.services.clock
    assistant.engine.services.clock = lambda: real_clock() + timedelta(days=8)
    await pump.poll_once()
    await pump.poll_once()
    [(_, [reminder])] = channel.sent
    assert receipt in reminder.text and "trước ngày" in reminder.text
    assert "Dừng nhắc nhở" in [b.label for b in reminder.buttons]


async def test_no_reminder_after_the_user_stopped_them(assistant, backend):
    channel = PushChannel()
    assistant.add_channel(channel)
    chat = Chat(assistant)
    await _submitted(assistant, backend, chat)
    await chat.press("Không cần nhắc tôi hạn nộp Tờ khai giấy")
    assert "Đã tắt nhắc nhở" in chat.said
    real_clock = assistant.engine.services.clock
    assistant.engine.services.clock = lambda: real_clock() + timedelta(days=8)
    await NotificationPump(assistant).poll_once()
    assert channel.sent == []


async def test_a_user_sees_and_deletes_what_the_assistant_holds(assistant, backend, tmp_path):
    chat = Chat(assistant)
    receipt = await _submitted(assistant, backend, chat)
    uploads = list(Path(tmp_path / "data" / "uploads").rglob("*.jpg"))
    assert len(uploads) == 3
    await chat.text("/mydata")
    assert receipt in chat.said and "3 ảnh" in chat.said
    await chat.press("Xóa dữ liệu của tôi")
    assert "không hoàn tác" in chat.said
    await chat.press("Xóa hết")
    assert "Đã xóa: 3 ảnh, 1 tờ khai PDF" in chat.said
    assert list(Path(tmp_path / "data" / "uploads").rglob("*.jpg")) == []
    assert list(Path(tmp_path / "data" / "documents").rglob("*.pdf")) == []
    await chat.text("/mydata")
    assert "không lưu thông tin nào" in chat.said
    assert assistant.store.statistics() == {
        "declarations_individual": 1,
        "declarations_child": 0,
        "deleted_users": 1,
    }


async def test_a_parent_edits_the_childs_date_of_birth_from_the_summary_and_comes_back_to_it(
    assistant, backend
):
    """Editing a field after the guardian's OTP goes back to the summary, not to an OTP nobody sent."""
    chat = Chat(assistant)
    await confirm_guardian(chat, backend)
    code, name, _born = KHANG
    for answer in (code, name, "03/09/2015"):
        await chat.text(answer)
    await chat.press("Con đẻ")
    await chat.photo(portrait_jpeg())
    await chat.photo(document_jpeg())
    for answer in ("hcm", "Phường Tân Hưng", "Số 8, đường số 9", "07919"):
        if "Kiểm tra lại thông tin của con" not in chat.said:
            await chat.text(answer)
    assert "Ngày sinh của con: 03/09/2015" in chat.said  # as forms write dates, not 2015-09-03
    sms_before = len(await backend.sms_outbox(phone=PARENT_WITH_ACCOUNT["phone"]))
    await chat.press("Sửa một mục")
    await chat.press("Ngày sinh của con")
    await chat.text("04/09/2015")
    assert "Kiểm tra lại thông tin của con" in chat.said, chat.said
    assert "Ngày sinh của con: 04/09/2015" in chat.said
    assert "OTP" not in chat.said
    assert len(await backend.sms_outbox(phone=PARENT_WITH_ACCOUNT["phone"])) == sms_before
    await chat.press("Sửa một mục")
    await chat.press("Số nhà, đường")
    await chat.text("Số 10, đường số 9")
    assert "Kiểm tra lại thông tin của con" in chat.said and "Số 10, đường số 9" in chat.said


async def test_a_childs_short_year_unaccented_name_and_the_paper_deadline(assistant, backend):
    """A child's "3/9/15" is 2015; the escape button is about the child's name; the last message,
    the PDF and /status give the 10-day deadline as a date, and the PDF asks for the birth certificate."""
    from tests.test_documents import pdf_text

    chat = Chat(assistant)
    await confirm_guardian(chat, backend)
    await chat.text(KHANG[0])
    await chat.text("le minh khang")
    assert "Tên của con không có dấu" in chat.labels and "Tên tôi không có dấu" not in chat.said
    await chat.text(KHANG[1])
    await chat.text("3/9/15")
    assert "Con đẻ" in chat.labels, chat.said
    await chat.press("Con đẻ")
    await chat.photo(portrait_jpeg())
    await chat.photo(document_jpeg())
    for answer in ("hcm", "Phường Tân Hưng", "Số 8, đường số 9", "07919"):
        if "Kiểm tra lại thông tin của con" not in chat.said:
            await chat.text(answer)
    await chat.press("Thông tin đúng, tiếp tục")
    await chat.press("Đồng ý")
    await chat.text(otp_from_sms(await backend.sms_outbox(), PARENT_WITH_ACCOUNT["phone"]))
    # Counted from the day in Vietnam (UTC+7), whatever the hour of the run.
    in_vietnam = assistant.engine.services.clock().astimezone(timezone(timedelta(hours=7)))
    deadline = (in_vietnam.date() + timedelta(days=10)).strftime("%d/%m/%Y")
    assert f"trước ngày {deadline}" in chat.said, chat.said
    assert "Không cần nhắc tôi hạn nộp Tờ khai giấy" in chat.labels
    pdf = pdf_text(chat.document)
    assert f"trước ngày {deadline}" in pdf and "giấy khai sinh" in pdf
    [declaration] = [d for d in await backend.list_declarations() if d["kind"] == "child"]
    assert declaration["date_of_birth"] == "2015-09-03"
    await chat.text("/status")
    assert f"trước ngày {deadline}" in chat.said


async def test_asking_where_my_application_is_gets_my_own_status(assistant, backend):
    chat = Chat(assistant)
    receipt = await _submitted(assistant, backend, chat)
    await chat.text("hồ sơ của tôi đến đâu rồi")
    assert receipt in chat.said and "chờ bạn nộp Tờ khai giấy" in chat.said, chat.said
