"""A message is read once: a value the step accepts is an answer, a question is answered at
every kind of step and the step is asked again with its own buttons (issue 17, items 2 and 4)."""

from __future__ import annotations

import json

import pytest

from dialogs.state import ConversationState, Flags
from tests.chat_harness import (
    CITIZEN,
    FORM_ORDER,
    Chat,
    fill_registration_until_summary,
    otp_from_sms,
    portrait_jpeg,
    send_requested_photos,
    start_registration,
    type_answers,
)
from tests.test_parents import confirm_guardian

NAMES_WITH_QUESTION_WORDS = [
    "Đặng Văn Hà",
    "Đặng Hữu Dũng Hà",
    "Đặng Văn Hà Hà",
    "Nguyễn Thị Sao",
    "Trần Văn Nào",
    "Lê Thị Gì",
    "Phạm Văn Hả",
]


@pytest.mark.parametrize("name", NAMES_WITH_QUESTION_WORDS)
async def test_a_name_with_a_question_word_is_the_name_and_a_later_answer_never_replaces_it(
    assistant, backend, name
):
    chat = Chat(assistant)
    await start_registration(chat)
    await chat.text(CITIZEN["social_insurance_code"])
    await chat.text(name)
    assert "Có phải bạn muốn hỏi" not in chat.said and "1900 9068" not in chat.said
    assert "Nhập số giấy tờ tùy thân" in chat.said  # the next step: the name was taken
    await type_answers(chat, *(CITIZEN[key] for key in FORM_ORDER[2:]))
    await send_requested_photos(chat)
    await chat.text(CITIZEN["agency"])
    await chat.press("skip")
    assert f"Họ và tên: {name}\n" in chat.said
    await chat.press("Thông tin đúng, tiếp tục")
    await chat.press("Đồng ý")
    await chat.text(otp_from_sms(await backend.sms_outbox(), "0987654321"))
    [declaration] = await backend.list_declarations()
    assert declaration["full_name"] == name
    assert declaration["address"]["ward"] == "Phường Tân Hưng"


async def test_a_childs_name_with_a_question_word_is_the_childs_name(assistant, backend):
    chat = Chat(assistant)
    await _at_the_childs_step(chat, backend, "Nhập họ và tên của con")
    await chat.text("Lê Minh Hà")
    assert "Có phải bạn muốn hỏi" not in chat.said and "ngày sinh" in chat.said.lower()


def _asked_again(chat: Chat, before) -> None:
    """The step is asked again after the answer: its prompt and exactly its buttons."""
    last = chat.replies[-1]
    assert last.text.startswith("Quay lại việc đang làm:")
    assert last.text.endswith(before.text)
    assert [b.label for b in last.buttons] == [b.label for b in before.buttons]


def _answered_or_hotline(chat: Chat, assistant, question: str) -> None:
    result = assistant.engine.faq.ask(question)
    if result.match is not None:
        assert chat.replies[0].text == result.match.entry.answer
    elif result.suggestions:
        assert "Có phải bạn muốn hỏi" in chat.said
    else:
        assert "1900 9068" in chat.said


QUESTIONS = ["bao lâu thì có tài khoản", "giấy khai sinh mất thì sao", "lương hưu tháng này bao giờ có?"]


@pytest.mark.parametrize("question", QUESTIONS)
async def test_a_question_at_the_otp_step_keeps_the_resend_button(assistant, backend, question):
    chat = Chat(assistant)
    await fill_registration_until_summary(chat)
    await chat.press("Thông tin đúng, tiếp tục")
    await chat.press("Đồng ý")
    before = chat.replies[-1]
    assert "Gửi lại mã OTP" in [b.label for b in before.buttons]
    await chat.text(question)
    _answered_or_hotline(chat, assistant, question)
    assert "Mã OTP chỉ gồm chữ số" not in chat.said
    _asked_again(chat, before)
    await chat.text("Gửi lại mã OTP")  # the button's label, typed
    assert "60 giây" in chat.said or "Đã gửi mã OTP mới" in chat.said
    await chat.text(otp_from_sms(await backend.sms_outbox(), "0987654321"))
    assert "Đăng ký thành công bước đầu" in chat.said


@pytest.mark.parametrize("question", QUESTIONS)
async def test_a_question_at_a_photo_step_is_answered_not_told_to_send_a_photo(assistant, question):
    chat = Chat(assistant)
    await start_registration(chat)
    await type_answers(chat, *(CITIZEN[key] for key in FORM_ORDER))
    await chat.photo(portrait_jpeg())
    before = chat.replies[-1]
    assert "MẶT TRƯỚC" in before.text
    await chat.text(question)
    _answered_or_hotline(chat, assistant, question)
    assert "Bước này cần một ảnh" not in chat.said
    _asked_again(chat, before)


async def test_a_question_at_the_childs_birth_certificate_step(assistant, backend):
    chat = Chat(assistant)
    await _at_the_childs_step(chat, backend, "GIẤY KHAI SINH")
    before = chat.replies[-1]
    await chat.text("giấy khai sinh mất thì sao")
    _answered_or_hotline(chat, assistant, "giấy khai sinh mất thì sao")
    assert "Bước này cần một ảnh" not in chat.said
    _asked_again(chat, before)


@pytest.mark.parametrize("question", QUESTIONS)
async def test_a_question_at_a_choice_step_keeps_the_options(assistant, backend, question):
    chat = Chat(assistant)
    await _at_the_childs_step(chat, backend, "Con đẻ")
    before = chat.replies[-1]
    assert "Con đẻ" in [b.label for b in before.buttons]
    await chat.text(question)
    _answered_or_hotline(chat, assistant, question)
    _asked_again(chat, before)
    await chat.press("Con đẻ")
    assert "ảnh chân dung" in chat.said.lower()


@pytest.mark.parametrize("question", QUESTIONS)
async def test_a_question_at_the_commitment_keeps_its_buttons(assistant, question):
    chat = Chat(assistant)
    await fill_registration_until_summary(chat)
    await chat.press("Thông tin đúng, tiếp tục")
    before = chat.replies[-1]
    assert [b.label for b in before.buttons] == ["Đồng ý", "Hủy"]
    await chat.text(question)
    _answered_or_hotline(chat, assistant, question)
    _asked_again(chat, before)


@pytest.mark.parametrize("question", QUESTIONS)
async def test_a_question_at_a_text_step_is_answered_and_the_step_asked_again(assistant, question):
    chat = Chat(assistant)
    await start_registration(chat)
    before = chat.replies[-1]
    await chat.text(question)
    _answered_or_hotline(chat, assistant, question)
    _asked_again(chat, before)
    await chat.text(CITIZEN["social_insurance_code"])
    assert "Nhập họ và tên" in chat.said


async def _at_the_childs_step(chat: Chat, backend, marker: str) -> None:
    """A confirmed guardian fills a child's form until the step whose prompt shows `marker`."""
    await confirm_guardian(chat, backend)
    for answer in ("7999000201", "Lê Minh Khang", "03/09/2015", "Con đẻ", portrait_jpeg()):
        if marker in chat.said or marker in chat.labels:
            return
        if isinstance(answer, bytes):
            await chat.photo(answer)
        elif answer in chat.labels:
            await chat.press(answer)
        else:
            await chat.text(answer)
    assert marker in chat.said, chat.said


def test_state_stored_with_flags_among_the_values_loads_with_them_apart():
    """Conversations saved before `flags` existed kept the engine's notes as "_name" values."""
    stored = {
        "flow": "registration",
        "step": "full_name",
        "values": {
            "full_name": "Le Van An",
            "_offered_flag": "_name_without_accents_ok",
            "_flag_set": "_name_without_accents_ok",
            "_name_without_accents_ok": True,
            "_id_verified": True,
            "_looked_up_code": "7999000106",
            "_submit_attempted": True,
            "_receipt": "HS-1",
        },
    }
    state = ConversationState.model_validate_json(json.dumps(stored))
    assert state.values == {"full_name": "Le Van An"}
    assert state.flags == Flags(
        offered_escape="_name_without_accents_ok",
        escapes=["_name_without_accents_ok"],
        id_verified=True,
        looked_up_code="7999000106",
        submit_attempted=True,
        receipt="HS-1",
    )
    assert state.parse_values()["_name_without_accents_ok"] is True
    again = ConversationState.model_validate_json(state.model_dump_json())
    assert again == state


def test_state_stored_with_a_card_proposal_and_a_handoff_phone_among_the_values_loads_with_them_apart():
    """A card read but not yet used, and the phone of a hotline handoff, were "_name" values too."""
    proposal = {"kind": "cccd", "items": [{"field": "full_name", "value": "Lê Văn An"}], "photo": "p/x.jpg"}
    stored = {
        "flow": "registration",
        "step": "social_insurance_code",
        "values": {
            "phone": "0912345678",
            "_card": proposal,
            "_cards_used": ["bhyt"],
            "_card_filled": ["social_insurance_code"],
            "_handoff_phone": "0987654321",
        },
    }
    state = ConversationState.model_validate_json(json.dumps(stored))
    assert state.values == {"phone": "0912345678"}
    assert state.flags == Flags(
        card_proposal=proposal,
        cards_used=["bhyt"],
        card_filled=["social_insurance_code"],
        handoff_phone="0987654321",
    )
    assert ConversationState.model_validate_json(state.model_dump_json()) == state


async def test_a_name_without_accents_kept_by_its_button_is_stored_without_the_flag(assistant):
    chat = Chat(assistant)
    await start_registration(chat)
    await chat.text(CITIZEN["social_insurance_code"])
    await chat.text("John Smith")
    await chat.press("Tên tôi không có dấu")
    assert "Nhập số giấy tờ tùy thân" in chat.said
    loaded, _ = assistant.store.load("test:parent-1")
    assert loaded.values["full_name"] == "John Smith" and not loaded.flags.escapes
    await chat.press("quay lại") if "quay lại" in chat.labels else await chat.text("quay lại")
    await chat.text("John Smith")  # the way out answered one question only: asked again
    assert "chưa có dấu" in chat.said
