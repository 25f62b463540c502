"""Provinces and wards as parents type them, and old (pre-2025) addresses converted."""

from __future__ import annotations

import json

import pytest

from knowledge import admin_units as au
from knowledge import units, vnau

HCM, HANOI, DA_NANG, HAI_PHONG, QUANG_NGAI, HUE = 79, 1, 48, 31, 51, 46


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("hcm", HCM),
        ("tp hcm", HCM),
        ("TP.HCM", HCM),
        ("tp ho chi minh", HCM),
        ("Thành phố Hồ Chí Minh", HCM),
        ("sai gon", HCM),
        ("Sài Gòn", HCM),
        ("sg", HCM),
        ("ho chi min", HCM),  # typo
        ("ha noi", HANOI),
        ("Hà Nội", HANOI),
        ("hn", HANOI),
        ("ha noj", HANOI),  # typo
        ("hue", HUE),
        ("da nang", DA_NANG),
        ("hai phong", HAI_PHONG),
        ("tinh quang ngai", QUANG_NGAI),
        ("Phường Tân Phong, Quận 7, TP HCM", HCM),  # a whole address: its last part
    ],
)
def test_province_aliases_match_one_province(typed, code):
    match = au.match_province(typed)
    assert match.unit is not None, typed
    assert match.unit.code == code


@pytest.mark.parametrize(
    ("typed", "code", "old_name"),
    [
        ("vung tau", HCM, "Bà Rịa - Vũng Tàu"),
        ("Bà Rịa - Vũng Tàu", HCM, "Bà Rịa - Vũng Tàu"),
        ("Bình Dương", HCM, "Bình Dương"),
        ("binh duong", HCM, "Bình Dương"),
        ("Quảng Nam", DA_NANG, "Quảng Nam"),
        ("Hải Dương", HAI_PHONG, "Hải Dương"),
        ("kon tum", QUANG_NGAI, "Kon Tum"),
    ],
)
def test_provinces_merged_in_2025_map_to_the_new_one_and_say_so(typed, code, old_name):
    match = au.match_province(typed)
    assert match.unit is not None and match.unit.code == code
    assert match.old_name == old_name


def test_old_to_new_province_mapping_comes_from_vietnamadminunits():
    # Every one of the 63 old provinces lands in one of the 34 new ones.
    old = units.old_provinces()
    assert len(old) == 63
    assert {code for _, code in old.values()} == {p.code for p in au.provinces()}
    assert "Tỉnh Bình Dương" in au.old_province_names(HCM)


def test_there_are_34_provinces():
    assert len(au.provinces()) == 34


@pytest.mark.parametrize("typed", ["quang", "binh"])
def test_a_vague_province_gives_a_short_candidate_list(typed):
    match = au.match_province(typed)
    assert match.unit is None
    assert 2 <= len(match.candidates) <= au.MAX_CANDIDATES


@pytest.mark.parametrize("typed", ["", "xyz", "ha", "12345"])
def test_nonsense_province_matches_nothing(typed):
    assert au.match_province(typed).candidates == ()


@pytest.mark.parametrize(
    ("province", "typed", "name"),
    [
        (HCM, "Tân Hưng", "Phường Tân Hưng"),
        (HCM, "tan hung", "Phường Tân Hưng"),
        (HCM, "p. tan hung", "Phường Tân Hưng"),
        (HCM, "P Tân Hưng", "Phường Tân Hưng"),
        (HCM, "phuong tan hung", "Phường Tân Hưng"),
        (HCM, "PHƯỜNG BẾN THÀNH", "Phường Bến Thành"),
        (HCM, "Thạnh An", "Xã Thạnh An"),  # accents decide between Thạnh An and Thanh An
        (HCM, "con dao", "Đặc khu Côn Đảo"),
        (HANOI, "hoan kiem", "Phường Hoàn Kiếm"),
        (HANOI, "ba dinh", "Phường Ba Đình"),
        (HUE, "thuan hoa", "Phường Thuận Hóa"),
        (HCM, "An Nhơn", "Phường An Nhơn"),  # the data spells it with two spaces
    ],
)
def test_ward_with_or_without_accents_and_prefix(province, typed, name):
    match = au.match_ward(province, typed)
    assert match.unit is not None, (typed, match)
    assert match.unit.name == name
    assert match.unit.province_code == province


def test_same_name_without_accents_is_ambiguous():
    match = au.match_ward(HCM, "thanh an")
    assert match.unit is None
    assert {u.name for u in match.candidates} == {"Xã Thanh An", "Xã Thạnh An"}


def test_a_typo_offers_the_intended_ward_first():
    match = au.match_ward(HCM, "tan hun")
    assert match.candidates and match.candidates[0].name == "Phường Tân Hưng"
    assert len(match.candidates) <= au.MAX_CANDIDATES


def test_ward_of_another_province_is_not_found():
    assert au.match_ward(HANOI, "ben thanh").unit is None


def _converter_target(old_key: str) -> list[str]:
    """What vietnamadminunits' own data says an old ward became (new ward keys)."""
    data = vnau.data_json("converter_2025.json")
    for table in data["DICT_PROVINCE_WARD_NO_DIVIDED"].values():
        for new_key, olds in table.items():
            if old_key in olds:
                return [new_key]
    for table in data["DICT_PROVINCE_WARD_DIVIDED"].values():
        if old_key in table:
            return [e["newWardKey"] for e in table[old_key]]
    return []


@pytest.mark.parametrize(
    "typed",
    ["Phường Tân Phong, Quận 7", "phuong tan phong, quan 7", "p tan phong q7", "P. Tân Phong, Q.7, TP.HCM"],
)
def test_old_address_tan_phong_quan_7_converts_to_tan_hung(typed):
    conv = au.convert_old_address(typed, HCM)
    assert conv is not None
    assert conv.old_label == "Phường Tân Phong, Quận 7"
    assert conv.province.code == HCM
    assert [w.name for w in conv.wards] == ["Phường Tân Hưng"]
    # Checked against the library's data, not against our own expectation only.
    assert _converter_target("thanhphohochiminh_quan7_phuongtanphong") == ["phuongtanhung"]


def test_old_ward_split_between_new_wards_returns_every_candidate():
    conv = au.convert_old_address("phuong 15 quan phu nhuan", HCM)
    assert conv is not None and conv.split
    assert {w.name for w in conv.wards} == {"Phường Phú Nhuận", "Phường Cầu Kiệu"}
    expected = _converter_target("thanhphohochiminh_quanphunhuan_phuong15")
    assert sorted(units.name_key(w.name) for w in conv.wards) == sorted(expected)


@pytest.mark.parametrize(
    ("typed", "province", "old_province", "ward"),
    [
        ("Phường Phú Lợi, TP Thủ Dầu Một", HCM, "Tỉnh Bình Dương", "Phường Phú Lợi"),
        ("phuong 1, tp vung tau", HCM, "Tỉnh Bà Rịa - Vũng Tàu", "Phường Vũng Tàu"),
        ("huyen con dao", HCM, "Tỉnh Bà Rịa - Vũng Tàu", "Đặc khu Côn Đảo"),
        ("huyen ly son", QUANG_NGAI, "Tỉnh Quảng Ngãi", "Đặc khu Lý Sơn"),
    ],
)
def test_old_addresses_of_merged_provinces_convert_within_the_chosen_province(
    typed, province, old_province, ward
):
    conv = au.convert_old_address(typed, province)
    assert conv is not None
    assert conv.old_province == old_province
    assert [w.name for w in conv.wards] == [ward]


def test_old_address_in_another_province_is_not_converted_there():
    assert au.convert_old_address("Phường Tân Phong, Quận 7", HANOI) is None
    elsewhere = au.convert_old_address_elsewhere("Phường Tân Phong, Quận 7", HANOI)
    assert elsewhere is not None and elsewhere.province.code == HCM


def test_old_ward_name_without_district():
    found = au.convert_old_ward_name(HCM, "tan phong")
    assert [(c.old_label, [w.name for w in c.wards]) for c in found] == [
        ("Phường Tân Phong, Quận 7", ["Phường Tân Hưng"])
    ]
    many = au.convert_old_ward_name(HCM, "Phường 15")
    assert len(many) > 1 and all(c.old_label.startswith("Phường 15, ") for c in many)


@pytest.mark.parametrize(
    ("typed", "expected"),
    [("Phường Tân Phong, Quận 7", True), ("p tan phong q7", True), ("tan hung", False), ("Bến Thành", False)],
)
def test_old_address_hint(typed, expected):
    assert au.looks_like_old_address(typed) is expected


def test_unit_values_are_json():
    unit = au.match_ward(HCM, "tan hung").unit
    assert json.loads(json.dumps(unit.as_value())) == {"code": unit.code, "name": "Phường Tân Hưng"}


def test_example_ward_is_a_real_ward_of_that_province():
    for p in au.provinces():
        example = au.example_ward(p.code)
        assert example is not None and example.province_code == p.code
        assert au.match_ward(p.code, example.name).unit == example
