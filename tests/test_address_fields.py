"""The address and agency steps of the registration, as a parent meets them."""

from __future__ import annotations

import json

import pytest

from dialogs import address_fields as af
from dialogs.parsing import Accepted, Ambiguous, NeedsConfirmation, Rejected

HCM = {"province": {"code": 79, "name": "Thành phố Hồ Chí Minh"}}
HANOI = {"province": {"code": 1, "name": "Thành phố Hà Nội"}}
HAI_PHONG = {"province": {"code": 31, "name": "Thành phố Hải Phòng"}}
HANOI_BA_DINH = {**HANOI, "ward": {"code": 4, "name": "Phường Ba Đình"}}
HUE = {"province": {"code": 46, "name": "Thành phố Huế"}}


def _json_round_trip(result):
    """The engine stores values and choices as JSON: they must survive it unchanged."""
    if isinstance(result, Accepted | NeedsConfirmation):
        assert json.loads(json.dumps(result.value)) == result.value
    if isinstance(result, Ambiguous):
        for choice in result.choices:
            assert json.loads(json.dumps(choice.value)) == choice.value


# ------------------------------------------------------------------------------- province


@pytest.mark.parametrize(
    ("typed", "code", "notice_has"),
    [
        ("hcm", 79, None),
        ("sài gòn", 79, None),
        ("Bình Dương", 79, "Bình Dương thuộc Thành phố Hồ Chí Minh"),
        ("vung tau", 79, "Bà Rịa - Vũng Tàu"),
        ("Quảng Nam", 48, "Quảng Nam thuộc Thành phố Đà Nẵng"),
        ("hn", 1, None),
        ("Phường Tân Phong, Quận 7, TP HCM", 79, "Phường/xã mình sẽ hỏi ở bước tiếp theo"),
    ],
)
def test_province_step_accepts(typed, code, notice_has):
    result = af.parse_province(typed, {})
    assert isinstance(result, Accepted)
    assert result.value["code"] == code and isinstance(result.value["name"], str)
    if notice_has:
        assert notice_has in result.notice
    else:
        assert result.notice is None
    _json_round_trip(result)


def test_province_step_offers_choices_when_vague():
    result = af.parse_province("quang", {})
    assert isinstance(result, Ambiguous)
    assert "Quảng Ninh" in [c.label for c in result.choices]
    assert len(result.choices) <= 6
    _json_round_trip(result)


@pytest.mark.parametrize("typed", ["", "   ", "xyz", "!!!"])
def test_province_step_rejects_with_an_example(typed):
    result = af.parse_province(typed, {})
    assert isinstance(result, Rejected)
    assert "Ví dụ" in result.message and "Hồ Chí Minh" in result.message


# ----------------------------------------------------------------------------------- ward


@pytest.mark.parametrize(
    ("values", "typed", "name"),
    [
        (HCM, "Tân Hưng", "Phường Tân Hưng"),
        (HCM, "tan hung", "Phường Tân Hưng"),
        (HCM, "p. Tân Hưng", "Phường Tân Hưng"),
        (HCM, "Tân Hưng, TP HCM", "Phường Tân Hưng"),
        (HCM, "Thạnh An", "Xã Thạnh An"),
        (HANOI, "hoan kiem", "Phường Hoàn Kiếm"),
    ],
)
def test_ward_step_accepts_a_2025_ward(values, typed, name):
    result = af.parse_ward(typed, values)
    assert isinstance(result, Accepted), result
    assert result.value["name"] == name and isinstance(result.value["code"], int)


@pytest.mark.parametrize(
    "typed", ["Phường Tân Phong, Quận 7", "p tan phong q7", "phuong tan phong quan 7", "Tân Phong"]
)
def test_old_address_is_converted_and_confirmed(typed):
    result = af.parse_ward(typed, HCM)
    assert isinstance(result, NeedsConfirmation), result
    assert result.value["name"] == "Phường Tân Hưng"
    assert "Địa chỉ cũ «Phường Tân Phong, Quận 7» nay thuộc «Phường Tân Hưng»" in result.message
    _json_round_trip(result)


def test_old_ward_split_in_2025_asks_which_new_ward():
    result = af.parse_ward("phuong 15 quan phu nhuan", HCM)
    assert isinstance(result, Ambiguous)
    assert "Phường 15, Quận Phú Nhuận" in result.message
    assert {c.value["name"] for c in result.choices} == {"Phường Phú Nhuận", "Phường Cầu Kiệu"}
    _json_round_trip(result)


def test_same_name_without_accents_asks_which():
    result = af.parse_ward("thanh an", HCM)
    assert isinstance(result, Ambiguous)
    assert {c.label for c in result.choices} == {"Xã Thanh An", "Xã Thạnh An"}


def test_old_ward_number_without_district_asks_for_the_district():
    result = af.parse_ward("Phường 15", HCM)
    assert isinstance(result, Rejected)
    assert "quận/huyện cũ" in result.message and "Ví dụ: «Phường 15, " in result.message


def test_old_address_of_another_province_says_which():
    result = af.parse_ward("Phường Tân Phong, Quận 7, TP HCM", HANOI)
    assert isinstance(result, Rejected)
    assert "nay thuộc Thành phố Hồ Chí Minh" in result.message
    assert "quay lại" in result.message and "Ví dụ" in result.message


@pytest.mark.parametrize(("values", "example"), [(HCM, "Phường Tân Định"), (HANOI, "Phường Ba Đình")])
@pytest.mark.parametrize("typed", ["zzzz", "", "Phường Xyz, Quận Abc"])
def test_ward_rejection_shows_a_ward_of_that_province(values, example, typed):
    result = af.parse_ward(typed, values)
    assert isinstance(result, Rejected), result
    assert f"Ví dụ: «{example}»" in result.message


def test_ward_without_a_province_asks_to_go_back():
    result = af.parse_ward("tan hung", {})
    assert isinstance(result, Rejected) and "quay lại" in result.message


# --------------------------------------------------------------------------------- street


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("Số 12, đường Nguyễn Trãi, tổ 3", "Số 12, đường Nguyễn Trãi, tổ 3"),
        ("  12   Nguyễn   Trãi ", "12 Nguyễn Trãi"),
        ("So\u0302\u0301 5 ngo\u0302 3", "Số 5 ngô 3"),  # decomposed marks stored as NFC
        ("123", "123"),
    ],
)
def test_street_is_stored_clean(typed, stored):
    result = af.parse_street(typed, HCM)
    assert isinstance(result, Accepted)
    assert result.value == stored


@pytest.mark.parametrize("typed", ["", "ab", "....", "-- / --", "x" * 201])
def test_street_rejections_show_an_example(typed):
    result = af.parse_street(typed, HCM)
    assert isinstance(result, Rejected)
    assert "Ví dụ: Số 12, đường Nguyễn Trãi, tổ 3" in result.message


# --------------------------------------------------------------------------------- agency


def test_agency_suggestions_start_with_the_province_office():
    labels = [c.label for c in af.agency_choices(HCM)]
    assert labels[0] == "[079] BHXH TP. Hồ Chí Minh"
    assert "[07919] BHXH Quận 7" in labels
    assert [c.label for c in af.agency_choices(HAI_PHONG)] == [
        "[031] BHXH TP. Hải Phòng",
        "BHXH Quận Hồng Bàng",
    ]
    assert af.agency_choices({}) == ()
    for choice in af.agency_choices(HCM):
        assert json.loads(json.dumps(choice.value)) == choice.value


@pytest.mark.parametrize(("typed", "code"), [("07919", "07919"), ("[07919] BHXH Quận 7", "07919")])
def test_an_agency_code_of_the_users_province_is_taken_as_typed(typed, code):
    result = af.parse_agency(typed, HCM)
    assert isinstance(result, Accepted), result
    assert result.value["code"] == code
    assert set(result.value) >= {"code", "name", "phone", "address"}


@pytest.mark.parametrize(
    ("typed", "where", "code"),
    [("quan 7", HCM, "07919"), ("q7", HCM, "07919"), ("hong bang", HAI_PHONG, "031-hong-bang")],
)
def test_an_agency_found_by_its_name_is_confirmed_before_it_is_used(typed, where, code):
    result = af.parse_agency(typed, where)
    assert isinstance(result, NeedsConfirmation), result
    assert result.value["code"] == code
    assert result.value["label"] in result.message
    _json_round_trip(result)


def test_an_office_of_another_province_is_never_taken_without_a_question():
    # An address in Hà Nội; "ba đình" has no office of its own in the directory.
    result = af.parse_agency("ba đình", HANOI_BA_DINH)
    assert not isinstance(result, Accepted)
    if isinstance(result, Ambiguous):  # the user's own offices lead the list
        assert result.choices[0].value["code"].startswith("001")
        assert "Thành phố Hà Nội" in result.message
    # A code from elsewhere is asked about, naming the user's province.
    elsewhere = af.parse_agency("07919", HANOI_BA_DINH)
    assert isinstance(elsewhere, NeedsConfirmation)
    assert "không thuộc Thành phố Hà Nội" in elsewhere.message


def test_agency_suggestions_start_near_the_ward_via_its_former_district():
    tan_hung = {**HCM, "ward": {"code": 27475, "name": "Phường Tân Hưng"}}
    labels = [c.label for c in af.agency_choices(tan_hung)]
    assert labels[0] == "[07919] BHXH Quận 7"
    assert labels.count("[07919] BHXH Quận 7") == 1


def test_agency_examples_come_from_the_users_province():
    assert "quận 7" not in af.agency_examples(HUE).lower()
    assert "07919" not in af.agency_examples(HUE)
    assert "046" in af.agency_examples(HUE)


def test_agency_value_carries_phone_and_address_from_the_circular():
    result = af.parse_agency("079", HCM)
    assert isinstance(result, Accepted)
    assert result.value["phone"] == "(028) 39.979.039"
    assert result.value["address"] == "117C Nguyễn Đình Chính P.15 Q.Phú Nhuận"


def test_agency_vague_search_offers_choices():
    result = af.parse_agency("binh", HCM)
    assert isinstance(result, Ambiguous)
    labels = [c.label for c in result.choices]
    # Offices of the user's own province come before the same word elsewhere.
    assert set(labels[:2]) == {"[07906] BHXH Quận Bình Thạnh", "[07907] BHXH Quận Tân Bình"}
    assert labels[2:] == ["[037] BHXH tỉnh Ninh Bình"]
    _json_round_trip(result)


@pytest.mark.parametrize("typed", ["xyz", "", "quan 99"])
def test_agency_rejection_has_an_example_from_the_province(typed):
    result = af.parse_agency(typed, HCM)
    assert isinstance(result, Rejected)
    assert "Ví dụ: «07901»" in result.message


def test_describe_agency_shows_only_what_is_known():
    q7 = af.parse_agency("07919", HCM).value
    assert af.describe_agency(q7) == (
        "Mã cơ quan: 07919\nCơ quan BHXH: BHXH Quận 7\nSố điện thoại: (028) 37850110 - 37850108"
    )
    hong_bang = af.parse_agency("hong bang", HAI_PHONG).value
    assert af.describe_agency(hong_bang) == "Cơ quan BHXH: BHXH Quận Hồng Bàng"
