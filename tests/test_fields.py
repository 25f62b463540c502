"""What a parent sees when typing each field: accepted values, and errors that say what is wrong.

Error messages are checked against the template they must come from (dialogs/field_texts.yaml),
not against literal wording, so a reviewer can reword a message without breaking these tests;
the details the user typed (counts, wrong characters, dates) are checked literally.
All numbers, names and addresses are synthetic.
"""

from __future__ import annotations

import json
import os
import re
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialogs import fields
from dialogs.fields import (
    EMAIL_SUGGESTION_DECLINED_FLAG,
    NAME_WITHOUT_ACCENTS_FLAG,
    PARSERS,
    RejectedWithEscape,
)
from dialogs.parsing import Accepted, Ambiguous, NeedsConfirmation, Rejected
from knowledge.text import fold, has_diacritics

TODAY = "2025-06-01"
TEXTS = fields.texts()

# Template keys that are not error messages (notices, confirmations, labels, shared fragments).
NOT_REJECTIONS = {
    "bhyt_notice",
    "forms",
    "accepted_cccd",
    "accepted_cmnd",
    "accepted_passport",
    "mismatch_cccd",
    "mismatch_cmnd",
    "mismatch_passport",
    "old_prefix",
    "skipped_notice",
    "typo",
    "ambiguous",
}


def parse(name: str, text: str, **values):
    return PARSERS[name](text, {"_today": TODAY, **values})


def template_pattern(section: str, key: str) -> re.Pattern[str]:
    """The template as a regex: literal text must match exactly, each {{ placeholder }} is anything."""
    literals = re.split(r"\{\{.*?\}\}", TEXTS[section][key])
    return re.compile("(.+?)".join(map(re.escape, literals)), re.DOTALL)


def came_from(message: str, section: str, key: str) -> bool:
    return template_pattern(section, key).fullmatch(message) is not None


# --- good inputs: (parser, typed, stored value) ------------------------------------------------

GOOD = [
    ("social_insurance_code", "0123456789", "0123456789"),
    ("social_insurance_code", "01 2345 6789", "0123456789"),
    ("social_insurance_code", "012.345.6789", "0123456789"),
    ("social_insurance_code", "0123-456-789", "0123456789"),
    ("social_insurance_code", "  7912345678 ", "7912345678"),
    ("social_insurance_code", "HS4790123456789", "0123456789"),
    ("social_insurance_code", "HS 4 79 0123456789", "0123456789"),
    ("social_insurance_code", "gd4010123456789", "0123456789"),
    ("social_insurance_code", "TE1790987654321", "0987654321"),
    ("full_name", "nguyễn văn AN", "Nguyễn Văn An"),
    ("full_name", "  trần   thị   bích  ", "Trần Thị Bích"),
    ("full_name", "đặng đình đức", "Đặng Đình Đức"),
    ("full_name", "LÊ HOÀNG YẾN NHI", "Lê Hoàng Yến Nhi"),
    # The same name as keyboards in decomposed mode send it (NFD), stored composed (NFC).
    ("full_name", "Pha\u0323m Thu Hu\u031bo\u031b\u0300ng", "Phạm Thu Hường"),
    ("full_name", "Pha\u0323m Minh Tu\u00e2\u0301n", "Phạm Minh Tuấn"),
    ("id_number", "079090001234", {"kind": "cccd", "number": "079090001234"}),
    ("id_number", "001 185 012 345", {"kind": "cccd", "number": "001185012345"}),
    ("id_number", "096.307.654.321", {"kind": "cccd", "number": "096307654321"}),
    ("id_number", "271234567", {"kind": "cmnd", "number": "271234567"}),
    ("id_number", "c1234567", {"kind": "passport", "number": "C1234567"}),
    ("id_number", "AB 1234567", {"kind": "passport", "number": "AB1234567"}),
    ("phone", "0912 345 678", "0912345678"),
    ("phone", "+84 912345678", "0912345678"),
    ("phone", "84912345678", "0912345678"),
    ("phone", "091.234.5678", "0912345678"),
    ("phone", "+84 (0) 912 345 678", "0912345678"),
    ("phone", "0861-234-567", "0861234567"),
    ("phone", "0321234567", "0321234567"),
    ("email", "ten.ban@gmail.com", "ten.ban@gmail.com"),
    ("email", "  Ten.Ban@GMAIL.COM ", "Ten.Ban@gmail.com"),
    ("email", "phu.huynh+lop5@truong.edu.vn", "phu.huynh+lop5@truong.edu.vn"),
    ("email", "ten@yahoo.com.vn", "ten@yahoo.com.vn"),
    ("email", "ten@mail.com", "ten@mail.com"),
    ("email", "bỏ qua", None),
    ("email", "Không có", None),
    ("date_of_birth", "05/09/2015", "2015-09-05"),
    ("date_of_birth", "5-9-2015", "2015-09-05"),
    ("date_of_birth", "05.09.2015", "2015-09-05"),
    ("date_of_birth", "2015-09-05", "2015-09-05"),
    ("date_of_birth", "ngày 5 tháng 9 năm 2015", "2015-09-05"),
    ("date_of_birth", "05092015", "2015-09-05"),
    ("date_of_birth", "3/9/15", "2015-09-03"),  # a child is under 18: never 1915
    ("date_of_birth", "050915", "2015-09-05"),
    ("date_of_birth", "1/1/08", "2008-01-01"),
    ("date_of_birth", "29/02/2016", "2016-02-29"),
    ("date_of_birth", "01/06/2025", "2025-06-01"),  # born today
    ("date_of_birth", "02/06/2007", "2007-06-02"),  # turns 18 tomorrow: still a child
    ("birth_date", "20/11/1988", "1988-11-20"),  # an adult: the look-up is for anyone
    ("birth_date", "ngày 5 tháng 9 năm 1950", "1950-09-05"),
    ("relationship", "con đẻ", "con_de"),
    ("relationship", "con de", "con_de"),
    ("relationship", "Con ruột", "con_de"),
    ("relationship", "con_de", "con_de"),
    ("relationship", "con nuôi", "con_nuoi"),
    ("relationship", "CON NUOI", "con_nuoi"),
    ("relationship", "giám hộ", "giam_ho"),
    ("relationship", "người được giám hộ", "giam_ho"),
    ("relationship", "nguoi duoc giam ho", "giam_ho"),
    ("relationship", "giam_ho", "giam_ho"),
    ("otp_code", "123456", "123456"),
    ("otp_code", " 123 456 ", "123456"),
    ("otp_code", "000999", "000999"),
]
GOOD += [
    ("yes_no", word, True)
    for word in ["có", "co", "OK", "ok", "đúng", "dung", "vâng", "uh", "yes", "1", "Có."]
]
GOOD += [("yes_no", word, False) for word in ["không", "khong", "ko", "k", "sai", "no", "0", "Không!"]]


@pytest.mark.parametrize(("name", "typed", "expected"), GOOD)
def test_good_input_is_stored_normalised(name, typed, expected):
    result = parse(name, typed)
    assert isinstance(result, Accepted), result
    assert result.value == expected
    json.dumps(result.value)


# --- bad inputs: (parser, typed, template key, details the message must show) ------------------

BAD = [
    ("social_insurance_code", "", "empty", []),
    ("social_insurance_code", "01234abc89", "letters", ["“A”", "“B”", "“C”"]),
    ("social_insurance_code", "0123/456/789", "letters", ["“/”"]),
    ("social_insurance_code", "tôi ko có thẻ bhyt", "no_digits", ["chưa gõ chữ số nào", "tra cứu"]),
    ("social_insurance_code", "Đặng Văn Hùng", "no_digits", ["10 số cuối trên thẻ BHYT"]),
    ("social_insurance_code", "12345", "digit_count", ["5 chữ số"]),
    ("social_insurance_code", "01234567890", "digit_count", ["11 chữ số"]),
    ("social_insurance_code", "4790123456789", "digit_count", ["13 chữ số"]),
    ("social_insurance_code", "HS7790123456789", "bhyt_benefit", ["“7”"]),
    ("social_insurance_code", "HS0790123456789", "bhyt_benefit", ["“0”"]),
    ("social_insurance_code", "HS479012345678", "bhyt_length", ["14 ký tự"]),
    ("social_insurance_code", "HS47901234567B9", "bhyt_structure", []),
    ("social_insurance_code", "HSA790123456789", "bhyt_structure", []),
    ("full_name", "   ", "empty", []),
    ("full_name", "Nguyễn Văn 4n", "digits", ["“4”"]),
    ("full_name", "Nguyễn-Văn An", "symbols", ["“-”"]),
    ("full_name", "Nguyễn Văn D'An", "symbols", ["“'”"]),
    ("full_name", "Nguyễn 李", "symbols", ["“李”"]),
    ("full_name", "Nguyễn", "single_word", ["“Nguyễn”"]),
    ("full_name", "Nguyễn Văn Thị Hoàng Minh Ánh Ngọc Bảo Châu", "too_many_words", ["9 chữ"]),
    ("full_name", "Nguyễn Thịiiiiiiiiiiiiiiiiiiiiiiiii Hoàngggggggggggggggggggggg", "too_long", ["62 ký tự"]),
    ("full_name", "nguyen van an", "no_accents", ["Nguyen Van An"]),
    ("id_number", "", "empty", ["079090001234", "271234567", "C1234567"]),
    ("id_number", "000090001234", "cccd_province", ["“000”"]),
    ("id_number", "099090001234", "cccd_province", ["“099”"]),
    ("id_number", "003090001234", "cccd_province", ["“003”"]),
    ("id_number", "079290001234", "cccd_future", ["2090"]),
    ("id_number", "079330001234", "cccd_future", ["2030"]),
    ("id_number", "079590001234", "cccd_future", ["2190"]),
    ("id_number", "079990001234", "cccd_too_old", ["1890"]),
    ("id_number", "0123456789", "wrong_length", ["10 chữ số", "079090001234", "271234567", "C1234567"]),
    ("id_number", "12345678901", "wrong_length", ["11 chữ số", "079090001234", "271234567", "C1234567"]),
    ("id_number", "C123456", "passport_shape", ["1 chữ cái và 6 chữ số"]),
    ("id_number", "ABC1234567", "passport_shape", ["3 chữ cái và 7 chữ số"]),
    ("id_number", "0790900012A4", "bad_shape", ["079090001234", "271234567", "C1234567"]),
    ("id_number", "07909#0001234", "bad_chars", ["“#”"]),
    ("phone", "", "empty", []),
    ("phone", "028 3812 3456", "landline", ["028 3812 3456"]),
    ("phone", "024 3123 4567", "landline", ["024 3123 4567"]),
    ("phone", "+84 24 3123 4567", "landline", ["024 3123 4567"]),
    ("phone", "091234567", "too_short", ["9 chữ số"]),
    ("phone", "0912 345", "too_short", ["7 chữ số"]),
    ("phone", "09123456789", "too_long", ["11 chữ số"]),
    ("phone", "+1 202 555 0143", "not_vietnamese", ["+1 202-555-0143"]),
    ("phone", "+999 123456", "not_vietnamese", []),
    ("phone", "1900 1234", "not_mobile", ["1900 1234"]),
    ("phone", "0912abc678", "bad_chars", ["“a”", "“b”", "“c”"]),
    ("phone", "09+12345678", "bad_chars", ["“+”"]),
    ("phone", "0112345678", "invalid", []),
    ("email", "", "empty", []),
    ("email", "ten ban@gmail.com", "spaces", []),
    ("email", "tenban.gmail.com", "no_at", []),
    ("email", "a@b@c.com", "many_at", ["2 dấu @"]),
    ("email", "tên@gmail.com", "bad_chars", ["“ê”"]),
    ("email", ".ten@gmail.com", "bad_local", []),
    ("email", "ten..ban@gmail.com", "bad_local", []),
    ("email", "@gmail.com", "bad_local", []),
    ("email", "ten@localhost", "bad_domain", ["“localhost”"]),
    ("email", "ten@abc.c", "bad_domain", ["“abc.c”"]),
    ("email", "ten@-abc.vn", "bad_domain", []),
    ("date_of_birth", "", "empty", []),
    ("date_of_birth", "5/9/30", "two_digit_year", ["1930", "2030"]),  # neither is a child's year
    ("date_of_birth", "31/02/2015", "bad_day", ["28 ngày", "ngày 31"]),
    ("date_of_birth", "29/02/2015", "bad_day", ["28 ngày", "ngày 29"]),
    ("date_of_birth", "31/04/2016", "bad_day", ["30 ngày", "ngày 31"]),
    ("date_of_birth", "00/04/2016", "bad_day", ["ngày 0"]),
    ("date_of_birth", "13/13/2015", "bad_month", ["tháng 13"]),
    ("date_of_birth", "09/25/2015", "bad_month", ["tháng 25"]),
    ("date_of_birth", "9/2015", "missing_part", []),
    ("date_of_birth", "05/09/201", "bad_year", ["201"]),
    ("date_of_birth", "05/09/1850", "bad_year", ["1850"]),
    ("date_of_birth", "hôm qua", "bad_format", ["hôm qua"]),
    ("date_of_birth", "05/09/2015 10:30", "bad_format", []),
    ("date_of_birth", "01/01/2030", "future", ["01/01/2030", "01/06/2025"]),
    ("date_of_birth", "02/06/2025", "future", ["02/06/2025"]),
    ("date_of_birth", "15/03/2006", "adult", ["15/03/2006"]),  # a 19-year-old
    ("date_of_birth", "01/06/2007", "adult", ["01/06/2007"]),  # 18 today
    ("birth_date", "", "empty", []),
    ("birth_date", "20/11/88", "two_digit_year", ["1988"]),
    ("birth_date", "30/02/1988", "bad_day", ["29 ngày", "ngày 30"]),
    ("birth_date", "20/13/1988", "bad_month", ["tháng 13"]),
    ("birth_date", "11/1988", "missing_part", []),
    ("birth_date", "20/11/188", "bad_year", ["188"]),
    ("birth_date", "tháng trước", "bad_format", ["tháng trước"]),
    ("birth_date", "01/01/2030", "future", ["01/01/2030"]),
    ("relationship", "anh trai", "unknown", ["“anh trai”"]),
    ("relationship", " ", "empty", []),
    ("otp_code", "", "empty", []),
    ("otp_code", "12345", "wrong_count", ["5 chữ số"]),
    ("otp_code", "1234567", "wrong_count", ["7 chữ số"]),
    ("otp_code", "12a456", "not_digits", ["“a”"]),
    ("yes_no", "để mình xem", "unknown", []),
    ("yes_no", "", "unknown", []),
]
# A child's name (typed by the parent) follows the same rules with the same words.
BAD += [("child_full_name", typed, key, details) for name, typed, key, details in BAD if name == "full_name"]


# The user picked the kind of ID first: (picked, typed, template key, detail shown).
BAD_FOR_PICKED_KIND = [
    ("cccd", "12345678901", "cccd_length", "11 chữ số"),
    ("cmnd", "12345678", "cmnd_length", "8 chữ số"),
    ("passport", "1234567890", "passport_shape", "0 chữ cái và 10 chữ số"),
    ("cccd", "A12345678", "digits_only", "CCCD"),
]


@pytest.mark.parametrize(("name", "typed", "key", "details"), BAD)
def test_bad_input_says_what_is_wrong(name, typed, key, details):
    result = parse(name, typed)
    assert isinstance(result, Rejected), result
    assert came_from(result.message, name, key), result.message
    for detail in details:
        assert detail in result.message


@pytest.mark.parametrize(("name", "typed", "key", "details"), BAD)
def test_every_error_shows_an_example_in_vietnamese_with_accents(name, typed, key, details):
    message = parse(name, typed).message
    assert "Ví dụ" in message
    assert has_diacritics(message)


def test_every_error_message_in_the_texts_file_is_exercised():
    """A message nobody can trigger is either dead or untested; both deserve a look."""
    triggered = {(name, key) for name, _typed, key, _details in BAD}
    triggered |= {("id_number", key) for _picked, _typed, key, _detail in BAD_FOR_PICKED_KIND}
    defined = {
        (section, key)
        for section in PARSERS
        for key, value in TEXTS[section].items()
        if isinstance(value, str) and not key.startswith("example") and key not in NOT_REJECTIONS
    }
    assert defined - triggered == set()


def test_error_messages_are_distinct_per_mistake():
    """Letters, a wrong count and a malformed card code are three different explanations."""
    messages = {
        parse("social_insurance_code", typed).message
        for typed in ["01234abc89", "12345", "HS7790123456789", "HS479012345678", "HS47901234567B9"]
    }
    assert len(messages) == 5


# --- mã số BHXH from the BHYT card ----------------------------------------------------------------


def test_bhyt_card_code_gives_its_last_ten_digits_and_says_so():
    result = parse("social_insurance_code", "HS 4 79 0123456789")
    assert result == Accepted(
        "0123456789", notice=fields.say("social_insurance_code", "bhyt_notice", code="0123456789")
    )
    assert "0123456789" in result.notice
    assert parse("social_insurance_code", "0123456789").notice is None


# --- names without accents ----------------------------------------------------------------------


def test_name_without_accents_offers_the_escape_button():
    result = parse("full_name", "nguyen van an")
    assert isinstance(result, RejectedWithEscape)
    assert result.button_label == TEXTS["name_no_accents_button"] == "Tên tôi không có dấu"
    assert result.flag == NAME_WITHOUT_ACCENTS_FLAG
    assert result.button_label in result.message


def test_a_childs_name_without_accents_offers_the_childs_escape_button():
    result = parse("child_full_name", "le minh khang")
    assert isinstance(result, RejectedWithEscape)
    assert result.button_label == "Tên của con không có dấu" and result.button_label in result.message
    assert "Tên tôi" not in result.message


def test_pressing_the_escape_button_accepts_the_name_as_typed_but_capitalised():
    assert parse("full_name", "nguyen van AN", **{NAME_WITHOUT_ACCENTS_FLAG: True}) == Accepted(
        "Nguyen Van An"
    )


def test_escape_does_not_excuse_digits():
    result = parse("full_name", "nguyen van 4n", **{NAME_WITHOUT_ACCENTS_FLAG: True})
    assert isinstance(result, Rejected)


def test_name_with_some_accents_is_accepted():
    assert parse("full_name", "Le Thị Hoa") == Accepted("Le Thị Hoa")


# --- ID kinds -------------------------------------------------------------------------------------


def test_inferred_kind_is_named_in_the_notice():
    cccd = parse("id_number", "079090001234")
    cmnd = parse("id_number", "271234567")
    passport = parse("id_number", "C1234567")
    assert "CCCD" in cccd.notice and "Hồ Chí Minh" in cccd.notice
    assert "CMND" in cmnd.notice
    assert "hộ chiếu" in passport.notice


@pytest.mark.parametrize(
    ("picked", "typed", "kind", "key"),
    [
        ("cccd", "271234567", "cmnd", "mismatch_cmnd"),
        ("passport", "079090001234", "cccd", "mismatch_cccd"),
        ("cmnd", "C1234567", "passport", "mismatch_passport"),
    ],
)
def test_a_valid_number_of_another_kind_than_picked_is_explained_and_confirmed(picked, typed, kind, key):
    result = parse("id_number", typed, id_kind=picked)
    assert isinstance(result, NeedsConfirmation)
    assert result.value == {"kind": kind, "number": typed}
    assert came_from(result.message, "id_number", key)
    assert TEXTS["id_number"]["kind_names"][picked] in result.message


def test_brief_wording_for_cmnd_typed_after_picking_cccd():
    message = parse("id_number", "271234567", id_kind="cccd").message
    assert message.startswith("Bạn chọn CCCD nhưng số bạn nhập có 9 chữ số — đó là số CMND cũ")


@pytest.mark.parametrize(("picked", "typed", "key", "detail"), BAD_FOR_PICKED_KIND)
def test_wrong_number_for_the_picked_kind_explains_that_kind(picked, typed, key, detail):
    result = parse("id_number", typed, id_kind=picked)
    assert isinstance(result, Rejected)
    assert came_from(result.message, "id_number", key), result.message
    assert detail in result.message


def test_picked_kind_matching_the_number_is_plainly_accepted():
    result = parse("id_number", "079090001234", id_kind="cccd")
    assert result.value == {"kind": "cccd", "number": "079090001234"}


def test_cccd_birth_year_is_judged_against_the_given_today():
    # 4th digit 2 = born in the 2000s; "25" = 2025: fine in 2025, impossible in 2024.
    assert isinstance(parse("id_number", "001225012345"), Accepted)
    result = PARSERS["id_number"]("001225012345", {"_today": date(2024, 12, 31)})
    assert isinstance(result, Rejected) and "2025" in result.message


def test_cccd_province_codes_are_the_63_codes_of_the_pre_2025_provinces():
    import vietnamadminunits

    path = os.path.join(os.path.dirname(vietnamadminunits.__file__), "data", "parser_legacy.json")
    with open(path, encoding="utf-8") as handle:
        legacy = json.load(handle)["DICT_PROVINCE"].values()
    expected = {"0" + p["provinceCode"]: p["provinceShort"] for p in legacy}
    ours = TEXTS["cccd_province_codes"]
    assert set(ours) == set(expected)
    for code, name in ours.items():
        # Names may be longer than the library's ("Thừa Thiên Huế" for "Huế", "TP. Hồ Chí Minh").
        assert fold(expected[code]) in fold(name), code


# --- phone ----------------------------------------------------------------------------------------


def test_landline_message_explains_it_cannot_receive_the_otp_sms():
    message = parse("phone", "028 3812 3456").message
    assert "OTP" in message and "SMS" in message


@pytest.mark.parametrize(
    ("typed", "converted"),
    [("01681234567", "0381234567"), ("+84 168 123 4567", "0381234567"), ("0123 456 7890", "0834567890")],
)
def test_old_eleven_digit_mobile_is_converted_and_confirmed(typed, converted):
    result = parse("phone", typed)
    assert isinstance(result, NeedsConfirmation)
    assert result.value == converted
    assert converted in result.message


# --- email ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "suggested"),
    [
        ("ten@gmail.con", "ten@gmail.com"),
        ("ten@gmial.com", "ten@gmail.com"),
        ("ten@gmai.com", "ten@gmail.com"),
        ("Ten@Yaho.com", "Ten@yahoo.com"),
        ("ten@hotmial.com", "ten@hotmail.com"),
    ],
)
def test_provider_typo_is_offered_back_corrected(typed, suggested):
    result = parse("email", typed)
    assert isinstance(result, NeedsConfirmation)
    assert result.value == suggested
    assert suggested in result.message


def test_declined_typo_suggestion_takes_the_address_as_typed():
    result = parse("email", "ten@gmial.com", **{EMAIL_SUGGESTION_DECLINED_FLAG: True})
    assert result == Accepted("ten@gmial.com")


def test_unrelated_domains_are_not_questioned():
    assert parse("email", "ke.toan@congty-abc.com.vn") == Accepted("ke.toan@congty-abc.com.vn")


# --- child's date of birth ------------------------------------------------------------------------


def test_adult_child_is_told_to_register_themselves():
    message = parse("date_of_birth", "15/03/2006").message
    assert "18 tuổi" in message and "CCCD" in message


def test_today_defaults_to_the_real_date():
    assert isinstance(PARSERS["date_of_birth"]("01/01/2999", {}), Rejected)
    assert isinstance(PARSERS["date_of_birth"](date.today().strftime("%d/%m/%Y"), {}), Accepted)


# --- relationship ---------------------------------------------------------------------------------


def test_bare_con_asks_which_kind_of_child():
    result = parse("relationship", "con")
    assert isinstance(result, Ambiguous)
    assert [c.value for c in result.choices] == ["con_de", "con_nuoi"]
    assert [c.label for c in result.choices] == ["Con đẻ", "Con nuôi"]


# --- the texts file itself ------------------------------------------------------------------------


def _examples():
    for section in PARSERS:
        for key, value in TEXTS[section].items():
            if key.startswith("example"):
                yield section, key, value


@pytest.mark.parametrize(("section", "key", "example"), list(_examples()))
def test_every_example_shown_to_users_is_itself_accepted(section, key, example):
    # Judged against the real date: the example must stay right for as long as it is shown.
    assert isinstance(PARSERS[section](example, {}), Accepted), (section, key, example)


# --- arbitrary input --------------------------------------------------------------------------------

VALUE_SETS = st.fixed_dictionaries(
    {},
    optional={
        "id_kind": st.sampled_from(["cccd", "cmnd", "passport", "other"]),
        NAME_WITHOUT_ACCENTS_FLAG: st.booleans(),
        EMAIL_SUGGESTION_DECLINED_FLAG: st.booleans(),
        "_today": st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)),
    },
)


@settings(max_examples=150, deadline=None)
@given(name=st.sampled_from(sorted(PARSERS)), text=st.text(max_size=80), values=VALUE_SETS)
def test_any_text_gets_an_answer_never_a_crash(name, text, values):
    result = PARSERS[name](text, values)
    assert isinstance(result, Accepted | Rejected | Ambiguous | NeedsConfirmation)
    if isinstance(result, Accepted | NeedsConfirmation):
        json.dumps(result.value)
    if isinstance(result, Rejected):
        assert "Ví dụ" in result.message


@settings(max_examples=100, deadline=None)
@given(
    name=st.sampled_from(["social_insurance_code", "id_number", "phone", "otp_code", "date_of_birth"]),
    text=st.text(alphabet="0123456789 .-/+abcHS", max_size=20),
)
def test_number_like_text_gets_an_answer_never_a_crash(name, text):
    result = PARSERS[name](text, {"_today": TODAY})
    if isinstance(result, Rejected):
        assert "Ví dụ" in result.message and has_diacritics(result.message)
