"""A citizen registers a VssID account with the assistant, as the circulars describe it."""

from __future__ import annotations

import pytest

from bot.assistant import build_assistant
from bot.crypto import open_file
from dialogs.flow import FlowError, load_flow
from dialogs.messages import Inbound
from knowledge.faq import FaqIndex, load_anchors, load_entries, load_out_of_scope
from knowledge.faq import message as faq_message
from knowledge.faq.models import SCOPE_FEATURES, Scope
from tests.chat_harness import (
    CITIZEN,
    FORM_ORDER,
    Chat,
    document_jpeg,
    fill_registration_until_summary,
    isolated_settings,
    otp_from_sms,
    portrait_jpeg,
    send_requested_photos,
    start_registration,
    type_answers,
    type_the_form,
)


async def test_a_citizen_registers_end_to_end_and_gets_the_to_khai_pdf(assistant, backend):
    chat = Chat(assistant)
    await fill_registration_until_summary(chat)

    assert "Kiểm tra lại thông tin" in chat.said
    assert "Lê Thị Hồng Nhung" in chat.said and "0987654321" in chat.said
    assert "[07919] BHXH Quận 7" in chat.said
    await chat.press("Thông tin đúng, tiếp tục")
    assert "cam kết hoàn toàn chịu trách nhiệm trước pháp luật" in chat.said
    assert chat.labels == ["Đồng ý", "Hủy"]
    await chat.press("Đồng ý")
    assert "Nhập mã OTP gồm 6 chữ số" in chat.said

    code = otp_from_sms(await backend.sms_outbox(), "0987654321")
    await chat.text(code)

    assert "Đăng ký thành công bước đầu" in chat.said
    assert "10 ngày" in chat.said and "[07919] BHXH Quận 7" in chat.said
    assert chat.document is not None and open_file(chat.document).startswith(b"%PDF")
    [declaration] = await backend.list_declarations()
    assert declaration["kind"] == "individual"
    assert declaration["status"] == "received"
    assert declaration["social_insurance_code"] == "7912345670"
    assert declaration["full_name"] == "Lê Thị Hồng Nhung"
    assert (declaration["id_kind"], declaration["id_number"]) == ("cccd", "079195001234")
    assert declaration["address"]["ward"] == "Phường Tân Hưng"
    assert declaration["agency_code"] == "07919"
    assert sorted(declaration["photos"]) == ["id_back", "id_front", "portrait"]


async def test_a_question_mid_form_is_answered_and_the_same_step_asked_again(assistant):
    chat = Chat(assistant)
    await start_registration(chat)
    await chat.text("7912345670")
    await chat.text("ma so bhxh la so nao vay")
    assert "10 số cuối" in chat.said
    assert chat.replies[-1].text.endswith("Ví dụ: Nguyễn Văn An.")  # the name step again
    await chat.text("Lê Thị Hồng Nhung")
    assert "số giấy tờ tùy thân" in chat.said


# A person the stub backend knows (bot/backend/people.yaml), synthetic like all of them.
KNOWN = {"name": "Đặng Văn Hùng", "born": "10/01/1985", "province": "hcm", "code": "7999000106"}


async def _look_up(chat: Chat, name: str, born: str, province: str) -> None:
    await chat.press("Không nhớ mã số BHXH")
    assert "Tra cứu mã số BHXH" in chat.said
    await chat.text(name)
    await chat.text(born)
    await chat.text(province)


async def test_a_forgotten_code_is_looked_up_and_the_form_goes_on_with_it(assistant, backend):
    chat = Chat(assistant)
    await start_registration(chat)
    await _look_up(chat, KNOWN["name"], KNOWN["born"], KNOWN["province"])
    assert f"Đã tìm thấy mã số BHXH của {KNOWN['name']}: {KNOWN['code']}" in chat.said
    assert "Nhập số giấy tờ tùy thân" in chat.said  # the name was given with the look-up
    await type_answers(chat, *(CITIZEN[key] for key in FORM_ORDER[2:]))
    await send_requested_photos(chat)
    await chat.text("07919")
    await chat.press("skip")
    assert "Kiểm tra lại thông tin" in chat.said
    assert f"Mã số BHXH: {KNOWN['code']}" in chat.said and f"Họ và tên: {KNOWN['name']}" in chat.said


async def test_after_a_mistake_the_look_up_is_still_offered_and_its_label_can_be_typed(assistant):
    chat = Chat(assistant)
    await start_registration(chat)
    await chat.text("tôi ko có thẻ bhyt")
    assert "bạn chưa gõ chữ số nào" in chat.said  # not "a card code has 15 characters"
    assert chat.labels == ["Chụp thẻ để điền nhanh", "Không nhớ mã số BHXH"]
    await chat.text("khong nho ma so bhxh")  # the button's label, typed
    assert "Tra cứu mã số BHXH" in chat.said


async def test_a_look_up_that_finds_nothing_says_what_to_check_and_keeps_the_name(assistant):
    chat = Chat(assistant)
    await start_registration(chat)
    await _look_up(chat, KNOWN["name"], "11/01/1985", "hà nội")
    assert "Không tìm thấy mã số BHXH" in chat.said
    assert f"«{KNOWN['name']}», ngày sinh 11/01/1985, Thành phố Hà Nội" in chat.said
    assert "1900 9068" in chat.said and "10 số cuối" in chat.said
    assert chat.labels == [
        "Chụp thẻ để điền nhanh",
        "Không nhớ mã số BHXH",
    ]  # back at the code step, the look-up at hand
    await chat.text(KNOWN["code"])
    assert f"Giữ nguyên: {KNOWN['name']}" in chat.labels  # the name typed for the look-up


async def test_going_back_after_a_look_up_asks_its_last_question_again(assistant):
    chat = Chat(assistant)
    await start_registration(chat)
    await _look_up(chat, KNOWN["name"], KNOWN["born"], "hà nội")
    assert "Không tìm thấy" in chat.said
    await chat.text("quay lại")
    assert "tỉnh/thành phố nào" in chat.said
    await chat.text("hcm")  # the corrected province: the look-up runs again
    assert KNOWN["code"] in chat.said and "Nhập số giấy tờ tùy thân" in chat.said


async def test_a_look_up_started_while_editing_from_the_summary_runs_to_its_end(assistant):
    chat = Chat(assistant)
    await fill_registration_until_summary(chat)
    await chat.press("Sửa một mục")
    await chat.press("Mã số BHXH")
    await _look_up(chat, KNOWN["name"], KNOWN["born"], KNOWN["province"])
    assert KNOWN["code"] in chat.said and "Kiểm tra lại thông tin" in chat.said  # back at the summary
    assert f"Mã số BHXH: {KNOWN['code']}" in chat.said and f"Họ và tên: {KNOWN['name']}" in chat.said


async def test_a_failed_second_look_up_does_not_keep_the_first_persons_code(assistant):
    chat = Chat(assistant)
    await start_registration(chat)
    await _look_up(chat, KNOWN["name"], KNOWN["born"], KNOWN["province"])
    assert KNOWN["code"] in chat.said
    for _ in range(3):
        await chat.text("quay lại")
    assert "Tra cứu mã số BHXH" in chat.said
    await chat.text("Lê Thị Hồng Nhung")
    await chat.text("01/01/1990")
    await chat.text("hcm")
    assert "Không tìm thấy" in chat.said
    assert not any(KNOWN["code"] in label for label in chat.labels)


async def test_a_look_up_during_an_outage_is_retried_without_retyping(assistant, backend):
    chat = Chat(assistant)
    await start_registration(chat)
    await chat.press("Không nhớ mã số BHXH")
    await chat.text(KNOWN["name"])
    await chat.text(KNOWN["born"])
    backend.set_outage(True)
    await chat.text(KNOWN["province"])
    assert "không phản hồi" in chat.said and chat.labels == ["Thử lại"]
    await chat.text(KNOWN["province"])  # typed again instead of pressing the button
    assert "không phản hồi" in chat.said and chat.labels == ["Thử lại"]
    backend.set_outage(False)
    await chat.press("Thử lại")
    assert KNOWN["code"] in chat.said


async def test_after_a_submission_without_an_answer_the_form_is_not_changed_behind_its_back(
    assistant, backend
):
    chat = Chat(assistant)
    await fill_registration_until_summary(chat)
    await chat.press("Thông tin đúng, tiếp tục")
    backend.set_outage(True)
    await chat.press("Đồng ý")
    assert "không phản hồi" in chat.said
    for move in ("sửa", "quay lại"):
        await chat.text(move)
        assert "không sửa được nữa" in chat.said and "«làm lại»" in chat.said
        assert chat.labels == ["Thử lại"]  # still at the submission, the way on at hand
    backend.set_outage(False)
    await chat.press("Thử lại")
    assert "Nhập mã OTP" in chat.said


async def test_the_look_up_button_left_from_the_first_step_is_stale_later(assistant):
    chat = Chat(assistant)
    await start_registration(chat)
    await chat.text(CITIZEN["social_insurance_code"])
    await chat.send(Inbound("test", "parent-1", message_id="old-button", button="goto:lookup_name"))
    assert "Nút này thuộc một bước đã qua" in chat.said and "Nhập họ và tên" in chat.said


def test_a_goto_button_to_a_step_that_does_not_exist_fails_when_the_flow_loads(tmp_path):
    flow = tmp_path / "typo.yaml"
    flow.write_text(
        "id: typo\ntitle: T\nsteps:\n  - id: a\n    prompt: A\n"
        "    buttons: [{label: L, payload: 'goto:lookup_nmae'}]\n",
        encoding="utf-8",
    )
    with pytest.raises(FlowError, match="lookup_nmae"):
        load_flow(flow)


async def test_the_form_can_still_be_edited_at_the_commitment_but_not_once_sent(assistant, backend):
    chat = Chat(assistant)
    await fill_registration_until_summary(chat)
    await chat.press("Thông tin đúng, tiếp tục")
    await chat.text("sửa")
    assert "Bạn muốn sửa mục nào?" in chat.said and "Số điện thoại" in chat.labels
    await chat.press("Số điện thoại")
    await chat.text("0912 345 678")
    assert "Kiểm tra lại thông tin" in chat.said and "0912345678" in chat.said
    await chat.press("Thông tin đúng, tiếp tục")
    await chat.press("Đồng ý")
    assert "Nhập mã OTP" in chat.said
    await chat.text("sửa")
    assert "không sửa được nữa" in chat.said and "làm lại" in chat.said


@pytest.mark.parametrize("answered", [0, 1])
async def test_asking_to_edit_before_the_id_is_given_lists_the_form_and_stays_at_the_step(
    assistant, answered
):
    # The ID photo steps are asked only for some kinds of ID: before the ID is known their
    # condition cannot hold (it used to raise, and the chat answered with an error).
    chat = Chat(assistant)
    await start_registration(chat)
    await type_answers(chat, *(CITIZEN[key] for key in FORM_ORDER[:answered]))
    prompt = chat.replies[-1].text
    await chat.text("sửa")
    assert "Bạn muốn sửa mục nào?" in chat.said
    assert "Họ và tên" in chat.labels and "Số điện thoại" in chat.labels
    assert not {"Ảnh mặt trước giấy tờ", "Ảnh mặt sau giấy tờ", "Ảnh hộ chiếu"} & set(chat.labels)
    await chat.press("Số điện thoại")
    assert "điện thoại" in chat.said
    await chat.text("0912 345 678")
    assert chat.replies[-1].text.endswith(prompt.split("\n")[-1])  # back where the form was


def test_a_condition_reading_an_answer_the_flow_never_asks_fails_when_the_flow_loads(tmp_path):
    for misspelt, name in (("v.idd.kind == 'passport'", "v.idd"), ("not flags.verified", "flags.verified")):
        flow = tmp_path / "typo.yaml"
        flow.write_text(
            "id: typo\ntitle: T\nsteps:\n"
            "  - {id: id, kind: text, prompt: ID, field: id.number, label: ID}\n"
            f'  - {{id: photo, kind: text, prompt: P, field: photo, label: P, when: "{misspelt}"}}\n',
            encoding="utf-8",
        )
        with pytest.raises(FlowError, match=name.replace(".", r"\.")):
            load_flow(flow)


async def _at_the_street_step(chat: Chat) -> None:
    await start_registration(chat)
    await type_answers(chat, *(CITIZEN[key] for key in FORM_ORDER[:-1]))
    assert "Số nhà, tên đường" in chat.said


@pytest.mark.parametrize(
    "question", ["lương hưu tháng này bao giờ có?", "cho hoi ma so thue ca nhan o dau", "em muốn hỏi chút"]
)
async def test_a_question_the_faq_cannot_answer_is_not_taken_for_the_street(assistant, question):
    chat = Chat(assistant)
    await _at_the_street_step(chat)
    await chat.text(question)
    assert f"«{question}» có vẻ là một câu hỏi" in chat.said and "1900 9068" in chat.said
    assert chat.labels == ["Đúng", "Không, nhập lại"]
    await chat.text(CITIZEN["street"])  # the real street, typed instead of pressing a button
    assert "ảnh chân dung" in chat.said
    await send_requested_photos(chat)
    await chat.text("07919")
    await chat.press("skip")
    assert "Kiểm tra lại thông tin" in chat.said
    assert CITIZEN["street"] in chat.said and question not in chat.said


async def test_a_question_like_street_is_kept_when_the_user_says_it_is_the_street(assistant):
    chat = Chat(assistant)
    await _at_the_street_step(chat)
    prompt = chat.replies[-1].text
    await chat.text("Xóm Đâu?")
    await chat.press("Không, nhập lại")
    assert chat.replies[-1].text.endswith(prompt)  # the same step again, with its example
    await chat.text("Xóm Đâu?")
    await chat.press("Đúng")
    assert "ảnh chân dung" in chat.said
    await send_requested_photos(chat)
    await chat.text("07919")
    await chat.press("skip")
    assert "Xóm Đâu?" in chat.said  # on the summary


@pytest.mark.parametrize("name", ["Nguyễn Thu Hà", "Đào Thị Mây", "Nguyễn Thị Sao"])
async def test_a_name_ending_like_a_question_word_is_taken_without_a_question(assistant, name):
    chat = Chat(assistant)
    await start_registration(chat)
    await chat.text(CITIZEN["social_insurance_code"])
    await chat.text(name)
    assert "Nhập số giấy tờ tùy thân" in chat.said and "1900 9068" not in chat.said


@pytest.mark.parametrize("street", ["Số 5, đường Sao Mai", "Lô J, KCN Tân Tạo"])
async def test_a_street_with_a_teencode_question_word_is_taken_as_it_is(assistant, street):
    chat = Chat(assistant)
    await _at_the_street_step(chat)
    await chat.text(street)
    assert "ảnh chân dung" in chat.said and "có vẻ là một câu hỏi" not in chat.said


async def test_a_question_at_the_look_up_name_step_reads_naturally(assistant):
    chat = Chat(assistant)
    await start_registration(chat)
    await chat.press("Không nhớ mã số BHXH")
    await chat.text("Em muốn hỏi chút")  # a valid-looking name, but plainly a question
    assert "Nếu đây đúng là câu trả lời cho bước này, bấm «Đúng»" in chat.said


async def test_an_unanswerable_question_at_the_phone_step_gets_the_hotline_and_the_rule(assistant):
    chat = Chat(assistant)
    await start_registration(chat)
    await type_answers(chat, *(CITIZEN[key] for key in FORM_ORDER[:3]))
    await chat.text("lương hưu tháng này bao giờ có?")
    assert "chưa trả lời được" in chat.said and "1900 9068" in chat.said
    assert "Ví dụ: 0912345678" in chat.said  # the step's own rule, and still at this step
    await chat.text(CITIZEN["phone"])
    assert "bạn ở tỉnh/thành phố nào?" in chat.said


async def _at_the_agency_step(chat: Chat) -> None:
    await start_registration(chat)
    await type_the_form(chat)
    await send_requested_photos(chat)
    assert "cơ quan BHXH tiếp nhận" in chat.said


@pytest.mark.parametrize("typed", ["Quận", "quan"])
async def test_part_of_an_office_name_lists_the_matching_offices_not_an_faq_answer(assistant, typed):
    chat = Chat(assistant)
    await _at_the_agency_step(chat)
    await chat.text(typed)
    # The FAQ matches this word confidently (the hotline entry); here it is a search.
    assert "Quay lại việc đang làm" not in chat.said and "1900 9068" not in chat.said
    assert f"lựa chọn khớp với «{typed}»" in chat.said and "gõ thêm" in chat.said  # more than 8 match
    assert len(chat.labels) == 8 and all("Quận" in label for label in chat.labels)
    await chat.press(chat.labels[0])
    assert "Bỏ qua" in chat.labels  # the agency is taken: the optional step after it


@pytest.mark.parametrize("question", ["mã bhxh là số nào?", "ko có cccd thì dùng hộ chiếu được ko"])
async def test_a_question_at_the_agency_step_is_answered_and_the_step_asked_again(assistant, question):
    chat = Chat(assistant)
    await _at_the_agency_step(chat)
    prompt = chat.replies[-1]
    await chat.text(question)
    answer = assistant.engine.faq.ask(question).match.entry.answer
    assert chat.replies[0].text == answer
    assert chat.replies[-1].text.startswith("Quay lại việc đang làm:")
    assert chat.replies[-1].text.endswith(prompt.text)
    assert chat.labels == [b.label for b in prompt.buttons]


@pytest.mark.parametrize("typed", ["xyz", "huyện"])  # no "huyện" office in this province
async def test_a_search_that_finds_no_office_says_so_and_keeps_the_list(assistant, typed):
    chat = Chat(assistant)
    await _at_the_agency_step(chat)
    offered = chat.labels
    await chat.text(typed)
    assert chat.said.startswith(f"Không tìm thấy cơ quan BHXH nào khớp với «{typed}»")
    assert "Quay lại việc đang làm" not in chat.said
    assert chat.labels == offered
    await chat.press("[07901] BHXH Quận 1")
    assert "Bỏ qua" in chat.labels


async def test_a_name_without_accents_is_refused_with_an_example_and_a_way_out(assistant):
    chat = Chat(assistant)
    await start_registration(chat)
    await chat.text("7912345670")
    await chat.text("le thi hong nhung")
    assert "có dấu" in chat.said and "Ví dụ" in chat.said
    await chat.press("Tên tôi không có dấu")
    assert "số giấy tờ tùy thân" in chat.said


async def test_back_keeps_what_was_typed_and_offers_to_keep_it(assistant):
    chat = Chat(assistant)
    await start_registration(chat)
    await chat.text("7912345670")
    await chat.text("Lê Thị Hồng Nhung")
    await chat.text("quay lại")
    assert "họ và tên" in chat.said.lower()
    await chat.press("Giữ nguyên: Lê Thị Hồng Nhung")
    assert "số giấy tờ tùy thân" in chat.said


async def test_editing_one_field_from_the_summary_returns_to_the_summary(assistant):
    chat = Chat(assistant)
    await fill_registration_until_summary(chat)
    await chat.press("Sửa một mục")
    await chat.press("Số điện thoại")
    await chat.text("+84 912 000 111")
    assert "Kiểm tra lại thông tin" in chat.said
    assert "0912000111" in chat.said and "Lê Thị Hồng Nhung" in chat.said


async def test_changing_the_province_from_the_summary_asks_ward_and_agency_again(assistant):
    chat = Chat(assistant)
    await fill_registration_until_summary(chat)
    await chat.press("Sửa một mục")
    await chat.press("Tỉnh/Thành phố")
    await chat.text("ha noi")
    assert "thuộc Thành phố Hà Nội" in chat.said
    await chat.text("Phường Hoàn Kiếm")
    assert "cơ quan BHXH tiếp nhận" in chat.said
    await chat.press("[001] BHXH TP. Hà Nội")
    assert "Kiểm tra lại thông tin" in chat.said and "Phường Hoàn Kiếm" in chat.said


async def test_cancel_asks_first_and_keeps_the_form_when_the_user_changes_their_mind(assistant):
    chat = Chat(assistant)
    await start_registration(chat)
    await chat.text("7912345670")
    await chat.text("hủy")
    assert "Bạn muốn dừng" in chat.said
    await chat.press("Tiếp tục làm")
    assert "họ và tên" in chat.said.lower()
    await chat.text("/cancel")
    await chat.press("Dừng và xóa")
    assert "Đã dừng" in chat.said
    assert "Đăng ký tài khoản VssID" in chat.labels


async def test_the_commitment_hủy_sends_nothing_and_keeps_the_form(assistant, backend):
    chat = Chat(assistant)
    await fill_registration_until_summary(chat)
    await chat.press("Thông tin đúng, tiếp tục")
    await chat.press("Hủy")
    assert "CHƯA được gửi" in chat.said and "Kiểm tra lại thông tin" in chat.said
    assert await backend.list_declarations() == []


async def test_a_restarted_process_continues_at_the_same_step_with_everything_entered(tmp_path):
    settings = isolated_settings(tmp_path)
    first = await build_assistant(settings)
    chat = Chat(first)
    await start_registration(chat)
    await chat.text("7912345670")
    await chat.text("Lê Thị Hồng Nhung")
    await first.close()

    second = await build_assistant(settings)
    chat = Chat(second)
    await chat.text("/start")
    assert "đang làm dở" in chat.said and "số giấy tờ tùy thân" in chat.said
    await type_answers(chat, "079195001234", "0987654321", "hcm", "Phường Tân Hưng", "Số 8, đường số 9")
    await chat.photo(portrait_jpeg())
    await chat.photo(document_jpeg())
    await chat.photo(document_jpeg())
    await chat.text("07919")
    await chat.press("skip")
    assert "7912345670" in chat.said and "Lê Thị Hồng Nhung" in chat.said
    await second.close()


async def test_a_redelivered_message_is_answered_once(assistant):
    chat = Chat(assistant)
    await chat.text("/start", message_id="u1")
    await chat.press("flow:registration")
    first = await chat.text("7912345670", message_id="u3")
    again = await chat.text("7912345670", message_id="u3")
    assert first and again == []
    state, _ = assistant.store.load("test:parent-1")
    assert state.step == "full_name"


async def test_a_retried_submit_after_an_outage_makes_one_declaration(assistant, backend):
    chat = Chat(assistant)
    await fill_registration_until_summary(chat)
    await chat.press("Thông tin đúng, tiếp tục")
    backend.set_outage(True)
    await chat.press("Đồng ý")
    assert "không phản hồi" in chat.said and "Thử lại" in chat.labels
    backend.set_outage(False)
    await chat.press("Thử lại")
    assert "Nhập mã OTP" in chat.said
    # A stale "Thử lại" pressed again (double tap) must not submit twice.
    await chat.send(Inbound("test", "parent-1", message_id="again", button="retry"))
    assert len(await backend.list_declarations()) == 1


async def test_an_id_verified_against_the_population_database_skips_the_id_photos(assistant):
    chat = Chat(assistant)
    await start_registration(chat)
    # A seeded synthetic person whose CCCD the stub reports as verified.
    await type_answers(chat, "7999000101", "Trần Thị Thu Hương", "079186900001")
    assert "KHÔNG cần chụp ảnh mặt trước" in chat.said
    await type_answers(chat, "0901000101", "hcm", "Phường Tân Hưng", "12 Lê Văn Lương")
    await chat.photo(portrait_jpeg())
    assert "cơ quan BHXH tiếp nhận" in chat.said


async def test_a_passport_holder_sends_one_page(assistant):
    chat = Chat(assistant)
    await start_registration(chat)
    await type_answers(
        chat, "7912345670", "Lê Thị Hồng Nhung", "C1234567", "0987654321", "hcm", "Phường Tân Hưng", "Số 8"
    )
    await chat.photo(portrait_jpeg())
    assert "hộ chiếu" in chat.said
    await chat.photo(document_jpeg())
    assert "cơ quan BHXH tiếp nhận" in chat.said


async def test_text_at_a_photo_step_and_a_photo_at_a_text_step_are_explained(assistant):
    chat = Chat(assistant)
    await start_registration(chat)
    await chat.photo(portrait_jpeg())
    assert "chưa cần ảnh" in chat.said and "mã số BHXH" in chat.said
    await type_the_form(chat)
    await chat.text("anh day")
    assert "cần một ảnh" in chat.said


async def test_a_blurry_id_photo_is_refused_with_the_reason_and_the_step_stays(assistant):
    from tests import imagegen

    chat = Chat(assistant)
    await start_registration(chat)
    await type_the_form(chat)
    await chat.photo(portrait_jpeg())
    await chat.photo(imagegen.blurred_document_jpeg())
    assert "mờ" in chat.said and "MẶT TRƯỚC" in chat.said


async def test_a_wrong_otp_says_how_many_tries_are_left(assistant, backend):
    chat = Chat(assistant)
    await fill_registration_until_summary(chat)
    await chat.press("Thông tin đúng, tiếp tục")
    await chat.press("Đồng ý")
    code = otp_from_sms(await backend.sms_outbox(), "0987654321")
    wrong = "111111" if code != "111111" else "222222"
    await chat.text(wrong)
    assert "không đúng" in chat.said and "4 lần" in chat.said
    assert "Ví dụ" not in chat.said and "482913" not in chat.said  # the code's shape was right
    await chat.text("12ab")
    assert "Ví dụ" in chat.said


async def test_an_old_button_cannot_replay_a_step(assistant):
    chat = Chat(assistant)
    await fill_registration_until_summary(chat)
    await chat.press("Thông tin đúng, tiếp tục")
    await chat.send(Inbound("test", "parent-1", message_id="old", button="summary:ok"))
    assert "bước đã qua" in chat.said
    assert "cam kết" in chat.said


async def test_free_questions_work_outside_any_flow_and_offer_the_next_step(assistant):
    chat = Chat(assistant)
    await chat.text("ko co smartphone thi dk dc ko")
    assert "dichvucong.baohiemxahoi.gov.vn" in chat.said
    await chat.text("thời tiết hà nội hôm nay thế nào")
    assert "1900 9068" in chat.said
    assert chat.replies[0].text == faq_message("refuse")  # the same words as `vssid-bot faq`


async def test_a_refused_question_close_to_an_answer_offers_it_after_the_hotline(assistant):
    """Refused (the hotline), then the entries that were close, as buttons that answer."""
    never_ours = Scope([0.0] * len(SCOPE_FEATURES), -50.0)
    assistant.engine.services.faq = FaqIndex(
        load_entries(), load_out_of_scope(), load_anchors(), scope=never_ours
    )
    chat = Chat(assistant)
    await chat.text("ma so bhxh nam o dau")
    assert "1900 9068" in chat.said
    await chat.press("faq:ma_so_bhxh_where")
    assert "10 số cuối" in chat.said


@pytest.mark.parametrize("start", ["/start school_THCS-LeLoi", "/start !!bad payload!!"])
async def test_a_deep_link_starts_normally_and_keeps_a_valid_referral(assistant, start):
    chat = Chat(assistant)
    await chat.text(start)
    assert "Đăng ký tài khoản VssID" in chat.labels
    state, _ = assistant.store.load("test:parent-1")
    assert state.meta.get("referral") == ("THCS-LeLoi" if "school" in start else None)


def test_a_whole_registration_via_the_jsonl_terminal_contract(tmp_path):
    """`vssid-bot chat --jsonl`: one JSON line out per line in, state kept across runs."""
    import json
    import subprocess
    import sys

    data_dir = tmp_path / "data"
    photo = tmp_path / "chan-dung.jpg"
    photo.write_bytes(portrait_jpeg())

    def run(*lines: dict) -> list[dict]:
        out = subprocess.run(
            [sys.executable, "-m", "bot.cli", "chat", "--jsonl", "--user", "u1", "--data-dir", str(data_dir)],
            input="".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines),
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return [json.loads(line) for line in out.stdout.splitlines()]

    first = run(
        {"text": "/start"}, {"button": "flow:registration"}, {"text": CITIZEN["social_insurance_code"]}
    )
    assert len(first) == 3
    assert {"label": "Đăng ký tài khoản VssID", "payload": "flow:registration"} in first[0]["replies"][0][
        "buttons"
    ]
    assert all(set(r) == {"text", "buttons", "document"} for line in first for r in line["replies"])
    second = run({"text": "Lê Thị Hồng Nhung"}, {"photo": str(photo)}, {"nonsense": 1})
    assert "số giấy tờ tùy thân" in second[0]["replies"][-1]["text"]
    assert "chưa cần ảnh" in second[1]["replies"][0]["text"]
    assert "Ví dụ" in second[2]["replies"][0]["text"]


def test_the_jsonl_form_programs_call_answers_as_the_command_line_app_does(tmp_path):
    """`vssid-bot chat --jsonl --user … --data-dir …` starts without typer (bot/cli.py): the
    same lines out as the typer app gives for the same lines in."""
    import subprocess
    import sys

    from typer.testing import CliRunner

    from bot.cli import app

    lines = '{"text": "/start"}\n{"button": "flow:registration"}\n{"nonsense": 1}\n'

    def options(name: str) -> list[str]:
        return ["chat", "--jsonl", "--user", "u1", "--data-dir", str(tmp_path / name)]

    via_typer = CliRunner().invoke(app, options("typer"), input=lines)
    direct = subprocess.run(
        [sys.executable, "-m", "bot.cli", *options("direct")],
        input=lines,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert via_typer.exit_code == 0 and len(direct.stdout.splitlines()) == 3
    assert direct.stdout == via_typer.stdout


@pytest.mark.parametrize(
    ("answer", "number"), [("Dùng số trên thẻ", "079203001122"), ("Giữ số đã nhập", "079195001234")]
)
async def test_the_cccd_qr_catches_a_mistyped_number(assistant, backend, answer, number):
    from tests import imagegen

    card = "079203001122|271234567|Trần Thị Bích Ngọc|01022003|Nữ|Số 12 Đường Số 7, Phường Tân Hưng|15062021"
    chat = Chat(assistant)
    await start_registration(chat)
    await type_the_form(chat)
    await chat.photo(portrait_jpeg())
    await chat.photo(imagegen.encode(imagegen.card_with_qr(card), quality=90))
    assert "079203001122" in chat.said and "khác với số bạn đã nhập" in chat.said
    await chat.press(answer)
    assert "MẶT SAU" in chat.said
    await chat.photo(document_jpeg())
    await chat.text("07919")
    await chat.press("skip")
    assert f"CCCD {number}" in chat.said


async def test_a_hanoi_parent_typing_a_district_with_no_office_is_asked_and_never_sent_elsewhere(assistant):
    """«ba đình» once chose BHXH tỉnh Bắc Ninh and went straight on; now the user's own offices lead."""
    chat = Chat(assistant)
    await start_registration(chat)
    hanoi = {**CITIZEN, "province": "Hà Nội", "ward": "Phường Ba Đình", "street": "Số 5, phố Đội Cấn"}
    await type_the_form(chat, hanoi)
    await send_requested_photos(chat)
    assert "«07919»" not in chat.said and "quận 7" not in chat.said.lower()
    await chat.text("ba đình")
    assert "Kiểm tra lại" not in chat.said and "email" not in chat.said.lower()
    assert "không khớp" in chat.said or "Không có cơ quan BHXH nào thuộc Thành phố Hà Nội" in chat.said
    assert chat.labels[0] == "[001] BHXH TP. Hà Nội"
    await chat.press("[001] BHXH TP. Hà Nội")
    assert "Cơ quan BHXH: BHXH TP. Hà Nội" in chat.said and "email" in chat.said


async def test_an_office_typed_by_name_is_confirmed_and_not_offered_twice_when_kept(assistant):
    chat = Chat(assistant)
    await start_registration(chat)
    await type_the_form(chat)
    await send_requested_photos(chat)
    assert chat.labels[0] == "[07919] BHXH Quận 7", "Tân Hưng was in Quận 7: its office comes first"
    await chat.text("quan 7")
    assert "đúng không" in chat.said and "[07919] BHXH Quận 7" in chat.said
    await chat.press("confirm:yes")
    await chat.press("skip")
    await chat.press("Sửa một mục")
    await chat.press("Cơ quan BHXH tiếp nhận")
    assert [label for label in chat.labels if "BHXH Quận 7" in label] == ["Giữ nguyên: [07919] BHXH Quận 7"]


async def test_a_blurry_portrait_is_told_about_the_face_not_about_laying_a_document_flat(assistant):
    from tests import imagegen

    chat = Chat(assistant)
    await start_registration(chat)
    await type_the_form(chat)
    await chat.photo(imagegen.encode(imagegen.blurred(imagegen.portrait_image(), 8)))
    assert "mờ" in chat.said and "khuôn mặt" in chat.said
    assert "mặt phẳng" not in chat.said


async def test_the_real_photo_error_comes_before_the_step_seems_hard(assistant):
    from tests import imagegen

    chat = Chat(assistant)
    await start_registration(chat)
    await type_the_form(chat)
    for _ in range(3):
        await chat.photo(imagegen.not_an_image())
    said = chat.said
    assert "không phải là ảnh" in said and "đang khó" in said
    assert said.index("không phải là ảnh") < said.index("đang khó")
