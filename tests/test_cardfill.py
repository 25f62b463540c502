"""«Chụp thẻ để điền nhanh»: the form filled from photos of the chip CCCD and the BHYT card
(dialogs/cardfill.py), through the whole assistant with the real photo store and QR reader.
Synthetic people and cards only (bot/backend/people.yaml, tests/cardgen.py)."""

from __future__ import annotations

from functools import cache

import pytest

from tests import cardgen
from tests.chat_harness import (
    Chat,
    document_jpeg,
    otp_from_sms,
    portrait_jpeg,
    start_registration,
    type_answers,
)
from tests.test_parents import confirm_guardian

TRAM = cardgen.person("Bùi Thị Ngọc Trâm")  # no VssID account, ID not verified: ID photos are asked
KHANG = cardgen.person("Lê Minh Khang")
OLD_ADDRESS = "Số 20 Đường 30 Tháng 4, Phường Xuân Khánh, Quận Ninh Kiều, TP Cần Thơ"
PHONE = TRAM["phone"]


@cache
def card_photo(payload: str, kind: str = "cccd", size: tuple[int, int] = (2400, 1800)) -> bytes:
    """A phone photo of the card: tilted, a little soft, a lamp's glare, JPEG quality 60."""
    card = cardgen.card(payload, kind=kind)
    return cardgen.phone_photo(card, card_fraction=0.55, angle=12, blur=1.0, glare=True, size=size)


def tram_cccd(**changes) -> bytes:
    return card_photo(cardgen.cccd_payload({**TRAM, **changes}, address=OLD_ADDRESS))


def tram_bhyt() -> bytes:
    return card_photo(cardgen.bhyt_payload(TRAM), kind="bhyt")


def sent(chat: Chat) -> int:
    """How many messages the user has sent in this chat (texts, buttons and photos alike)."""
    return next(chat._ids) - 1


def summary(chat: Chat) -> str:
    assert "Kiểm tra lại thông tin trước khi gửi" in chat.said, chat.said
    return chat.said[chat.said.index("Kiểm tra lại thông tin") :]


async def test_the_two_cards_fill_the_form_in_fewer_messages_than_typing(assistant, backend) -> None:
    typed = Chat(assistant, user="typing")
    await start_registration(typed)
    await type_answers(
        typed,
        TRAM["social_insurance_code"],
        TRAM["full_name"],
        TRAM["id_number"],
        PHONE,
        "Cần Thơ",
        "Phường Xuân Khánh, Quận Ninh Kiều",
        "Số 20 Đường 30 Tháng 4",
    )
    for photo in (portrait_jpeg(), document_jpeg(), document_jpeg()):
        await typed.photo(photo)
    await typed.press("pick:0")
    await typed.press("skip")
    typed_summary, typed_count = summary(typed), sent(typed)

    chat = Chat(assistant, user="cards")
    await start_registration(chat)
    assert "Chụp thẻ để điền nhanh" in chat.labels  # offered beside typing on the first step
    await chat.photo(card_photo(cardgen.cccd_payload(TRAM, address=OLD_ADDRESS), size=(4000, 3000)))
    shown = chat.said
    for fact in (
        "Bùi Thị Ngọc Trâm",
        "092195900007",
        OLD_ADDRESS,
        "Phường Ninh Kiều",
        "Số 20 Đường 30 Tháng 4",
    ):
        assert fact in shown
    assert "đổi sang đơn vị hành chính mới" in shown  # the old district-level address, converted
    await chat.press("Đúng, dùng thông tin này")
    assert "không cần gửi lại" in chat.said  # the card photo is the ID-front photo
    assert "gửi tiếp ảnh thẻ để mình điền mã số BHXH" in chat.said
    await chat.photo(card_photo(cardgen.bhyt_payload(TRAM), kind="bhyt", size=(4000, 3000)))
    assert "Mã số BHXH: 9299000107" in chat.said
    await chat.press("Đúng, dùng thông tin này")
    assert "số điện thoại" in chat.said
    await chat.text(PHONE)
    await chat.photo(portrait_jpeg())
    assert "MẶT SAU" in chat.said  # the front is not asked again
    await chat.photo(document_jpeg())
    await chat.press("pick:0")
    await chat.press("skip")

    assert summary(chat) == typed_summary
    # README's figures: the messages sent from «Đăng ký tài khoản VssID» to the summary.
    assert (sent(chat), typed_count) == (11, 15)

    await chat.press("summary:ok")
    await chat.press("confirm:yes")
    await chat.text(otp_from_sms(await backend.sms_outbox(phone=PHONE), PHONE))
    assert chat.document is not None
    declaration = next(d for d in await backend.list_declarations() if d["full_name"] == TRAM["full_name"])
    assert declaration["id_number"] == TRAM["id_number"]
    assert declaration["social_insurance_code"] == "9299000107"
    assert declaration["address"]["ward"] == "Phường Ninh Kiều"
    assert sorted(declaration["photos"]) == ["id_back", "id_front", "portrait"]


async def test_a_value_read_is_corrected_field_by_field_and_still_checked_by_its_rule(assistant) -> None:
    chat = Chat(assistant)
    await start_registration(chat)
    await chat.press("Chụp thẻ để điền nhanh")
    assert "Tự nhập" in chat.labels
    await chat.photo(tram_cccd())
    await chat.press("Sửa một mục")
    assert {"Họ và tên", "Số nhà, đường", "Phường/Xã"} <= set(chat.labels)
    await chat.press("Họ và tên")
    await chat.text("bui thi ngoc tram")  # the name rule still wants its accents
    assert "chưa có dấu" in chat.said
    await chat.text("Bùi Thị Ngọc Trâm")
    await chat.press("Sửa một mục")
    await chat.press("Số nhà, đường")
    await chat.text("Số 22 Đường 30 Tháng 4")
    assert "Đã sửa Số nhà, đường" in chat.said
    assert "• Số nhà, đường: Số 22 Đường 30 Tháng 4" in chat.said  # shown again before use
    await chat.press("Đúng, dùng thông tin này")
    await chat.press("Tự nhập")
    assert "Nhập mã số BHXH" in chat.said
    await chat.text(TRAM["social_insurance_code"])
    assert "số điện thoại" in chat.said  # name, ID and address were filled by the card
    await chat.text(PHONE)
    await chat.photo(portrait_jpeg())
    await chat.photo(document_jpeg())  # the back: the card's photo is the front
    await chat.press("pick:0")
    await chat.press("skip")
    assert "• Số nhà, đường: Số 22 Đường 30 Tháng 4" in summary(chat)
    assert "• Họ và tên: Bùi Thị Ngọc Trâm" in summary(chat)


async def test_a_cccd_number_that_disagrees_with_the_birth_date_is_not_used(assistant) -> None:
    chat = Chat(assistant)
    await start_registration(chat)
    await chat.press("Chụp thẻ để điền nhanh")
    from datetime import date

    await chat.photo(tram_cccd(date_of_birth=date(1996, 10, 2)))
    assert "mang năm sinh 1995" in chat.said and "02/10/1996" in chat.said
    await chat.press("Đúng, dùng thông tin này")
    await chat.press("Tự nhập")
    await chat.text(TRAM["social_insurance_code"])
    assert "Nhập số giấy tờ tùy thân" in chat.said  # the number is asked, not taken from the card


async def test_a_malformed_card_qr_is_explained_and_typing_goes_on(assistant) -> None:
    chat = Chat(assistant)
    await start_registration(chat)
    await chat.press("Chụp thẻ để điền nhanh")
    bad_hex = "HS4929299000107|c328|02/10/1995|2|48|92 - 001|01/01/2026|$"
    await chat.photo(card_photo(bad_hex, kind="bhyt"))
    assert "bị lỗi mã hóa" in chat.said and "ví dụ" in chat.said.lower()
    assert "Tự nhập" in chat.labels  # still at the card step
    await chat.photo(card_photo("079085900006||Đặng Văn Hùng|10011985"))
    assert "thiếu thông tin" in chat.said
    await chat.text(TRAM["social_insurance_code"])  # typing right there answers the first field
    assert "Nhập họ và tên đầy đủ" in chat.said


async def test_a_card_without_qr_falls_back_to_typing(assistant) -> None:
    chat = Chat(assistant)
    await start_registration(chat)
    await chat.press("Chụp thẻ để điền nhanh")
    await chat.photo(cardgen.phone_photo(cardgen.blank_card(), card_fraction=0.6, angle=4, size=(2400, 1800)))
    assert "không tìm thấy mã QR" in chat.said
    await chat.press("Tự nhập")
    assert "Nhập mã số BHXH" in chat.said


async def test_cancelling_while_a_card_waits_for_confirmation_keeps_no_photo(assistant, tmp_path) -> None:
    chat = Chat(assistant)
    await start_registration(chat)
    await chat.photo(tram_cccd())
    assert list((tmp_path / "data").rglob("id_front-*.jpg"))
    await chat.text("hủy")
    await chat.press("Dừng và xóa")
    assert not list((tmp_path / "data").rglob("id_front-*.jpg"))


async def test_dropping_what_was_read_keeps_no_photo(assistant, tmp_path) -> None:
    chat = Chat(assistant)
    await start_registration(chat)
    await chat.photo(tram_cccd())
    assert list((tmp_path / "data").rglob("id_front-*.jpg"))
    await chat.text("không")  # typed, as a «Không dùng» press
    assert "không dùng thông tin đọc từ thẻ" in chat.said
    assert not list((tmp_path / "data").rglob("id_front-*.jpg"))
    assert "Nhập mã số BHXH" in chat.said


async def test_the_childs_own_bhyt_card_fills_the_childs_code_name_and_birth_date(assistant, backend) -> None:
    chat = Chat(assistant)
    await confirm_guardian(chat, backend)
    assert "mã số BHXH của CON" in chat.said
    await chat.press("Chụp thẻ để điền nhanh")
    await chat.photo(tram_cccd())
    assert "thẻ BHYT của CON" in chat.said  # a parent's CCCD is not the child's card
    await chat.photo(card_photo(cardgen.bhyt_payload(KHANG), kind="bhyt"))
    for fact in ("7999000201", "Lê Minh Khang", "03/09/2015"):  # dates as forms write them
        assert fact in chat.said
    await chat.text("đúng rồi")  # typed, as a press of «Đúng, dùng thông tin này»
    assert "Con là gì của bạn?" in chat.said


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        # A card issued after 1/7/2025: the new two-level units, taken as they are.
        (
            "Số 12, Phường Tân Mỹ, Thành phố Hồ Chí Minh",
            {
                "Tỉnh/Thành phố": "Thành phố Hồ Chí Minh",
                "Phường/Xã": "Phường Tân Mỹ",
                "Số nhà, đường": "Số 12",
            },
        ),
        # An older card: ward, district, province, converted; the street is what comes before.
        (
            "Thôn 3, Xã Ea Kly, Huyện Krông Pắc, Tỉnh Đắk Lắk",
            {"Phường/Xã": "Xã Ea Kly", "Số nhà, đường": "Thôn 3"},
        ),
        # No commas at all: nothing is guessed, the address steps will ask.
        ("Xóm 2 Xã Nghi Phong Huyện Nghi Lộc Nghệ An", {}),
    ],
)
def test_the_cards_address_line_is_split_into_the_forms_fields(address: str, expected: dict) -> None:
    from dialogs.cardfill import propose
    from dialogs.flow import load_flows
    from dialogs.state import ConversationState
    from knowledge.cards import parse_card

    card = parse_card(cardgen.cccd_payload(TRAM, address=address))
    items = propose(ConversationState(), load_flows()["registration"], card)["items"]
    filled = {i["label"]: i["shown"] for i in items if i["field"] and not i.get("problem")}
    assert {k: filled.get(k) for k in expected} == expected
    assert set(filled) >= {"Họ và tên", "Số CCCD/CMND/Hộ chiếu"}
    if not expected:
        assert not {"Tỉnh/Thành phố", "Phường/Xã", "Số nhà, đường"} & set(filled)


def test_every_payload_error_has_its_own_message() -> None:
    """Each way a card's QR can be malformed (knowledge/cards.py) is explained in its own words."""
    from dialogs.cardfill import texts

    codes = {"field_count", "bad_date", "bad_hex", "bad_number", "empty_name"}
    assert codes <= set(texts().raw("payload_errors"))
