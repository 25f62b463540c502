"""The QR texts of the chip CCCD and the BHYT card, parsed (knowledge/cards.py); synthetic people only."""

from __future__ import annotations

from datetime import date

import pytest

from knowledge.cards import (
    BhytCard,
    CardPayloadError,
    CccdCard,
    NotACard,
    card_kind,
    interpret,
    parse_card,
)
from tests import cardgen

HUNG = cardgen.person("Đặng Văn Hùng")
KHANG = cardgen.person("Lê Minh Khang")


def test_a_chip_cccd_qr_gives_number_name_birth_gender_and_address() -> None:
    card = parse_card(
        cardgen.cccd_payload(HUNG, address="Số 5 Lê Lợi, Phường Bến Nghé, Quận 1, TP Hồ Chí Minh")
    )
    assert card == CccdCard(
        id_number="079085900006",
        old_id_number=None,
        full_name="Đặng Văn Hùng",
        date_of_birth=date(1985, 1, 10),
        gender="Nam",
        address="Số 5 Lê Lợi, Phường Bến Nghé, Quận 1, TP Hồ Chí Minh",
        issue_date=date(2021, 6, 15),
    )


def test_newer_cccd_qr_with_more_fields_and_a_decomposed_name_is_read() -> None:
    import unicodedata

    text = cardgen.cccd_payload(HUNG) + "|extra|123"
    card = parse_card(unicodedata.normalize("NFD", text))
    assert isinstance(card, CccdCard)
    assert card.full_name == "Đặng Văn Hùng"  # stored NFC whatever the QR used


def test_a_bhyt_qr_gives_the_social_insurance_code_and_the_hex_encoded_name() -> None:
    card = parse_card(cardgen.bhyt_payload(KHANG, address="Phường Tân Phong, Quận 7, TP Hồ Chí Minh"))
    assert isinstance(card, BhytCard)
    assert card.card_code == "HS4797999000201"
    assert card.social_insurance_code == "7999000201"
    assert card.full_name == "Lê Minh Khang"
    assert card.date_of_birth == date(2015, 9, 3)
    assert card.address == "Phường Tân Phong, Quận 7, TP Hồ Chí Minh"


def test_a_bhyt_qr_with_the_ten_digit_code_and_a_birth_year_only() -> None:
    name = KHANG["full_name"].encode().hex()
    card = parse_card(f"7999000201|{name}|2015|2|{'Hà Nội'.encode().hex()}|01 - 001|01/01/2026|$")
    assert isinstance(card, BhytCard)
    assert card.social_insurance_code == "7999000201"
    assert card.date_of_birth is None and card.birth_year == 2015
    assert card.gender == "Nữ"


@pytest.mark.parametrize(
    ("text", "kind", "code"),
    [
        ("079085900006||Đặng Văn Hùng|10011985", "cccd", "field_count"),
        ("079085900006||Đặng Văn Hùng|31021985|Nam|Hà Nội|15062021", "cccd", "bad_date"),
        ("079085900006||Đặng Văn Hùng|1985|Nam|Hà Nội|15062021", "cccd", "bad_date"),
        ("079085900006|||10011985|Nam|Hà Nội|15062021", "cccd", "empty_name"),
        ("HS4797999000201|4cc3aa|$", "bhyt", "field_count"),
        ("HS4797999000201|4c3|03/09/2015|1|48|$", "bhyt", "bad_hex"),  # odd length
        ("HS4797999000201|zz41|03/09/2015|1|48|$", "bhyt", "bad_hex"),  # not hex
        ("HS4797999000201|c328|03/09/2015|1|48|$", "bhyt", "bad_hex"),  # hex, but not UTF-8
        ("HS4797999000201|4c65|31/02/2015|1|48|$", "bhyt", "bad_date"),
        ("HS4797999000201|4c65|03-09-2015|1|48|$", "bhyt", "bad_date"),
        ("HS47979990002|4c65|03/09/2015|1|48|$", "bhyt", "bad_number"),
        ("HS4797999000201||03/09/2015|1|48|$", "bhyt", "empty_name"),
    ],
)
def test_malformed_card_qr_texts_say_what_is_wrong(text: str, kind: str, code: str) -> None:
    with pytest.raises(CardPayloadError) as caught:
        parse_card(text)
    assert (caught.value.kind, caught.value.code) == (kind, code)


@pytest.mark.parametrize("text", ["https://example.org/card", "WIFI:S:home;T:WPA;P:x;;", "12|34|56", ""])
def test_other_qr_codes_are_no_card(text: str) -> None:
    assert card_kind(text) is None
    with pytest.raises(NotACard):
        parse_card(text)


def test_interpret_prefers_a_card_then_a_card_error_then_any_qr() -> None:
    good = cardgen.cccd_payload(HUNG)
    bad = "079085900006||Đặng Văn Hùng|10011985"
    assert interpret(["https://example.org", good]).card is not None
    read = interpret(["https://example.org", bad])
    assert read.card is None and read.error is not None and read.error.code == "field_count"
    assert interpret(["https://example.org"]).other_qr
    assert not interpret([]).found_qr
