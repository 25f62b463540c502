"""Field parsers: what the user typed (plus the values collected so far) -> a ParseResult.

Every parser has the signature ``(text: str, values: Mapping[str, Any]) -> ParseResult`` and is
pure: no I/O, no clock except through ``values["_today"]``, no logging (the inputs are personal
data). Flows name parsers through :data:`PARSERS`. Every Vietnamese sentence comes from
``field_texts.yaml`` next to this file, so a social-insurance officer can review and edit the
wording without touching Python; every :class:`Rejected` message says what is wrong and shows
an example introduced by "Ví dụ". The phone and email rules are in dialogs/contact_fields.py,
the texts and helpers every rule shares in dialogs/field_rules.py; PARSERS names them all.

Contract with the engine (keys it may put into ``values``; all optional):

``_today``
    The date to judge "in the future" and "under 18" against: a ``datetime.date`` or an ISO
    string "YYYY-MM-DD". Absent -> ``date.today()``. Tests and replays pin it.
``id_kind``
    "cccd" | "cmnd" | "passport" when the user picked the kind of ID before typing the
    number. A valid number of another kind then comes back as :class:`NeedsConfirmation`
    whose value carries the inferred kind; the stored kind is ``value["kind"]``, not ``id_kind``.
``_name_without_accents_ok`` (:data:`NAME_WITHOUT_ACCENTS_FLAG`)
    A name typed without any diacritic is refused with a :class:`RejectedWithEscape` whose
    ``button_label`` is the top-level ``name_no_accents_button`` ("Tên tôi không có dấu"). When the
    user presses that button the engine sets this flag to True and parses the same text
    again, which is then accepted. The engine should clear the flag once the field is stored,
    so a child's name typed later is checked again.
``_email_suggestion_declined`` (:data:`EMAIL_SUGGESTION_DECLINED_FLAG`)
    ``email`` answers a near-miss of a common provider ("ten@gmial.com") with a
    NeedsConfirmation holding the corrected address. If the user says no, the engine sets
    this flag and asks again; the address is then taken as typed.

Value shapes (all JSON-serialisable): social_insurance_code "0123456789"; full_name "Nguyễn Văn
An"; id_number {"kind": "cccd"|"cmnd"|"passport", "number": "..."}; phone "0912345678"; email
"ten.ban@gmail.com" or None (the user typed "bỏ qua"/"không có"); date_of_birth, birth_date "YYYY-MM-DD";
relationship "con_de"|"con_nuoi"|"giam_ho"; otp_code "123456"; yes_no True/False.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from datetime import date
from typing import Any

from dialogs.contact_fields import EMAIL_SUGGESTION_DECLINED_FLAG as EMAIL_SUGGESTION_DECLINED_FLAG
from dialogs.contact_fields import parse_email, parse_phone
from dialogs.field_rules import TEXTS_PATH as TEXTS_PATH
from dialogs.field_rules import Parser, compact, quoted, reject, say, texts, today_of
from dialogs.field_rules import RejectedWithEscape as RejectedWithEscape
from dialogs.parsing import Accepted, Ambiguous, Choice, NeedsConfirmation, ParseResult, Rejected
from knowledge.text import collapse_spaces, fold, has_diacritics, nfc, strip_diacritics

NAME_WITHOUT_ACCENTS_FLAG = "_name_without_accents_ok"
ID_KINDS = ("cccd", "cmnd", "passport")


# ---------------------------------------------------------------------------------------------
# mã số BHXH


_BHYT_CARD = re.compile(r"[A-Z]{2}[0-9]{13}")


def parse_social_insurance_code(text: str, values: Mapping[str, Any]) -> ParseResult:
    """10 digits, or an old 15-character BHYT card code whose last 10 digits are the mã số BHXH."""
    section = "social_insurance_code"
    raw = compact(text).upper()
    if not raw:
        return reject(section, "empty")
    if raw.isascii() and raw.isdigit():
        if len(raw) == 10:
            return Accepted(raw)
        return reject(section, "digit_count", count=len(raw))
    if not any(ch.isascii() and ch.isdigit() for ch in raw):
        # "tôi ko có thẻ bhyt" is not a malformed card code: no number was typed at all.
        return reject(section, "no_digits")
    if len(raw) >= 2 and raw[:2].isascii() and raw[:2].isalpha():
        # Starts like a BHYT card code: object code (2 letters), benefit level, province, 10 digits.
        if len(raw) != 15:
            return reject(section, "bhyt_length", count=len(raw))
        if not _BHYT_CARD.fullmatch(raw):
            return reject(section, "bhyt_structure")
        if raw[2] not in "12345":
            return reject(section, "bhyt_benefit", digit=raw[2])
        code = raw[-10:]
        return Accepted(code, notice=say(section, "bhyt_notice", code=code))
    wrong = "".join(ch for ch in raw if not (ch.isascii() and ch.isdigit()))
    return reject(section, "letters", chars=quoted(wrong))


# ---------------------------------------------------------------------------------------------
# họ và tên


def _is_name_letter(ch: str) -> bool:
    # Latin letters with Vietnamese marks only: strip the marks and an ASCII letter must remain.
    bare = strip_diacritics(ch)
    return ch.isalpha() and len(bare) == 1 and bare.isascii() and bare.isalpha()


class _NotInNames(dict):
    """str.translate table deleting the name letters and the space: what is left of a name
    is what `parse_full_name` refuses (most names leave nothing, read in one pass)."""

    def __missing__(self, codepoint: int) -> str | None:
        char = chr(codepoint)
        left = None if char == " " or _is_name_letter(char) else char
        if codepoint < 0x2000:  # Latin and Vietnamese: the table stays small whatever users type
            self[codepoint] = left
        return left


_NOT_IN_NAMES = _NotInNames()


def parse_full_name(
    text: str, values: Mapping[str, Any], button_key: str = "name_no_accents_button"
) -> ParseResult:
    """Vietnamese full name with diacritics, stored NFC, single-spaced, each word capitalised."""
    section = "full_name"
    cfg = texts()[section]
    name = collapse_spaces(nfc(text))
    if not name:
        return reject(section, "empty")
    if name.translate(_NOT_IN_NAMES):  # a digit or a symbol: which, digits first
        digits = "".join(ch for ch in name if ch.isdigit())
        if digits:
            return reject(section, "digits", chars=quoted(digits))
        strange = "".join(ch for ch in name if ch != " " and not _is_name_letter(ch))
        return reject(section, "symbols", chars=quoted(strange))
    words = name.split(" ")
    if len(words) < 2:
        return reject(section, "single_word", name=name)
    if len(words) > cfg["max_words"]:
        return reject(section, "too_many_words", count=len(words))
    if len(name) > cfg["max_chars"]:
        return reject(section, "too_long", count=len(name))
    proper = " ".join(word[:1].upper() + word[1:].lower() for word in words)
    if not has_diacritics(proper) and not values.get(NAME_WITHOUT_ACCENTS_FLAG):
        button = texts()[button_key]
        return RejectedWithEscape(
            say(section, "no_accents", name=proper, button=button),
            button_label=button,
            flag=NAME_WITHOUT_ACCENTS_FLAG,
        )
    return Accepted(proper)


def parse_child_full_name(text: str, values: Mapping[str, Any]) -> ParseResult:
    """A child's full name (typed by the parent): the escape button speaks of the child's name."""
    return parse_full_name(text, values, "child_name_no_accents_button")


# ---------------------------------------------------------------------------------------------
# CCCD / CMND / hộ chiếu


_PASSPORT = re.compile(r"[A-Z]{1,2}[0-9]{7}")
# 4th CCCD digit -> century of birth (even: male, odd: female), per the CCCD numbering rules.
_CCCD_CENTURY = {
    "0": 1900,
    "1": 1900,
    "2": 2000,
    "3": 2000,
    "4": 2100,
    "5": 2100,
    "6": 2200,
    "7": 2200,
    "8": 1800,
    "9": 1800,
}
_OLDEST_AGE = 120


def cccd_birth_year(number: str) -> int:
    """The year of birth a 12-digit CCCD number carries (4th digit: century, 5th-6th: year)."""
    return _CCCD_CENTURY[number[3]] + int(number[4:6])


def _kind_of(number: str) -> str | None:
    if number.isdigit():
        return {12: "cccd", 9: "cmnd"}.get(len(number))
    return "passport" if _PASSPORT.fullmatch(number) else None


def _check_cccd(number: str, today: date) -> Rejected | str:
    """The province name for a plausible CCCD, or why it cannot be one."""
    section = "id_number"
    province = texts()["cccd_province_codes"].get(number[:3])
    if province is None:
        return reject(section, "cccd_province", code=number[:3])
    year = cccd_birth_year(number)
    if year > today.year:
        return reject(section, "cccd_future", year=year)
    if year < today.year - _OLDEST_AGE:
        return reject(section, "cccd_too_old", year=year)
    return province


def _id_wrong_form(number: str, picked: str | None) -> Rejected:
    """Why `number` is no ID at all, phrased for the kind the user picked if they did."""
    section = "id_number"
    forms = say(section, "forms")
    digits = sum(ch.isdigit() for ch in number)
    letters = sum(ch.isalpha() for ch in number)
    if picked == "passport" or (picked is None and letters and number[:1].isalpha()):
        return reject(section, "passport_shape", letters=letters, digits=digits)
    if picked in ("cccd", "cmnd"):
        if letters:
            example = texts()[section][f"example_{picked}"]
            return reject(
                section, "digits_only", kind=texts()[section]["kind_names"][picked], example=example
            )
        return reject(section, f"{picked}_length", count=digits)
    if number.isdigit():
        return reject(section, "wrong_length", count=digits, forms=forms)
    return reject(section, "bad_shape", forms=forms)


def parse_id_number(text: str, values: Mapping[str, Any]) -> ParseResult:
    """CCCD (12 digits), old CMND (9 digits) or passport (1-2 letters + 7 digits)."""
    section = "id_number"
    cfg = texts()[section]
    number = compact(text).upper()
    picked = values.get("id_kind") if values.get("id_kind") in ID_KINDS else None
    if not number:
        return reject(section, "empty", forms=say(section, "forms"))
    if not (number.isascii() and number.isalnum()):
        wrong = "".join(ch for ch in number if not (ch.isascii() and ch.isalnum()))
        return reject(section, "bad_chars", chars=quoted(wrong), forms=say(section, "forms"))
    kind = _kind_of(number)
    if kind is None:
        return _id_wrong_form(number, picked)
    notice_fill: dict[str, Any] = {"number": number}
    if kind == "cccd":
        checked = _check_cccd(number, today_of(values))
        if isinstance(checked, Rejected):
            return checked
        notice_fill["province"] = checked
    value = {"kind": kind, "number": number}
    if picked is not None and picked != kind:
        return NeedsConfirmation(
            value, say(section, f"mismatch_{kind}", picked=cfg["kind_names"][picked], number=number)
        )
    return Accepted(value, notice=say(section, f"accepted_{kind}", **notice_fill))


# ---------------------------------------------------------------------------------------------
# ngày sinh (con)


# Words parents write around a date: "ngày 5 tháng 9 năm 2015", "sinh ngày 05/09/2015".
_DATE_WORDS = {"ngay", "thang", "nam", "sinh"}


def _date_parts(text: str) -> list[str] | None:
    tokens = [t for t in fold(text).split(" ") if t and t not in _DATE_WORDS]
    if not all(t.isascii() and t.isdigit() for t in tokens):
        return None
    if len(tokens) == 1 and len(tokens[0]) in (6, 8):
        # "05092015" / "050915": day, month, year written together.
        run = tokens[0]
        return [run[:2], run[2:4], run[4:]]
    return tokens


def _show(day: date) -> str:
    return day.strftime("%d/%m/%Y")


def _child_century(year_s: str, values: Mapping[str, Any]) -> str | None:
    """A child is under 18: of "15" only 2015 (never 1915) can be meant; None if both could be."""
    today = today_of(values)
    years = [y for y in (1900 + int(year_s), 2000 + int(year_s)) if today.year - 18 <= y <= today.year]
    return str(years[0]) if len(years) == 1 else None


def _birth_date(text: str, values: Mapping[str, Any], section: str) -> date | Rejected:
    """A real date of birth, not in the future (day/month/year, 4-digit year)."""
    fields = _date_fields(text, values, section)
    if isinstance(fields, Rejected):
        return fields
    year, month, day = fields
    if not 1 <= month <= 12:
        return reject(section, "bad_month", month=month)
    days = calendar.monthrange(year, month)[1]
    if not 1 <= day <= days:
        return reject(section, "bad_day", day=day, month=month, year=year, days=days)
    born = date(year, month, day)
    today = today_of(values)
    if born > today:
        return reject(section, "future", date=_show(born), today=_show(today))
    return born


def _date_fields(text: str, values: Mapping[str, Any], section: str) -> tuple[int, int, int] | Rejected:
    """Year, month and day as typed (day first, or year first with 4 digits), the year in full."""
    if not text.strip():
        return reject(section, "empty")
    parts = _date_parts(text)
    if parts is not None and len(parts) in (1, 2):
        return reject(section, "missing_part")
    if parts is None or len(parts) != 3:
        return reject(section, "bad_format", text=collapse_spaces(text)[:40])
    year_s, month_s, day_s = parts if len(parts[0]) == 4 else parts[::-1]
    if len(day_s) > 2 or len(month_s) > 2:
        return reject(section, "bad_format", text=collapse_spaces(text)[:40])
    if len(year_s) <= 2:
        full_year = _child_century(year_s, values) if section == "date_of_birth" else None
        if full_year is None:
            return reject(section, "two_digit_year", year=year_s.zfill(2))
        year_s = full_year
    if len(year_s) != 4 or int(year_s) < 1900:
        return reject(section, "bad_year", year=year_s)
    return int(year_s), int(month_s), int(day_s)


def parse_date_of_birth(text: str, values: Mapping[str, Any]) -> ParseResult:
    """A child's real date of birth, not in the future and under 18 today; stored "YYYY-MM-DD"."""
    born = _birth_date(text, values, "date_of_birth")
    if isinstance(born, Rejected):
        return born
    today = today_of(values)
    age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    if age >= 18:
        return reject("date_of_birth", "adult", date=_show(born))
    return Accepted(born.isoformat())


def parse_birth_date(text: str, values: Mapping[str, Any]) -> ParseResult:
    """Anyone's date of birth (the mã số BHXH look-up), not in the future; stored "YYYY-MM-DD"."""
    born = _birth_date(text, values, "birth_date")
    return born if isinstance(born, Rejected) else Accepted(born.isoformat())


# ---------------------------------------------------------------------------------------------
# quan hệ, OTP, có/không


def parse_relationship(text: str, values: Mapping[str, Any]) -> ParseResult:
    """Con đẻ / con nuôi / người được giám hộ -> "con_de" | "con_nuoi" | "giam_ho"."""
    section = "relationship"
    cfg = texts()[section]
    key = fold(text)  # fold turns the payloads' "_" into spaces, so "con_de" matches "con de"
    if not key:
        return reject(section, "empty")
    for value, words in cfg["synonyms"].items():
        if key in words or key == fold(value):
            return Accepted(value)
    if key in cfg["ambiguous_words"]:
        labels = cfg["labels"]
        choices = tuple(Choice(labels[v], v) for v in ("con_de", "con_nuoi"))
        return Ambiguous(cfg["ambiguous"], choices)
    return reject(section, "unknown", text=collapse_spaces(text)[:40])


def parse_otp_code(text: str, values: Mapping[str, Any]) -> ParseResult:
    """The 6-digit code from the SMS; spaces tolerated."""
    section = "otp_code"
    code = "".join(nfc(text).split())
    if not code:
        return reject(section, "empty")
    wrong = "".join(ch for ch in code if not (ch.isascii() and ch.isdigit()))
    if wrong:
        return reject(section, "not_digits", chars=quoted(wrong))
    if len(code) != 6:
        return reject(section, "wrong_count", count=len(code))
    return Accepted(code)


def yes_no_word(folded: str) -> bool | None:
    """True/False for a folded yes or no word ("co", "ok", "ko", "k"...), None for anything else."""
    cfg = texts()["yes_no"]
    if folded in cfg["yes_words"]:
        return True
    if folded in cfg["no_words"]:
        return False
    return None


def parse_yes_no(text: str, values: Mapping[str, Any]) -> ParseResult:
    """Có/không in the ways people type it ("co", "ok", "vâng", "ko", "k", "0"...)."""
    answer = yes_no_word(fold(text))
    return reject("yes_no", "unknown") if answer is None else Accepted(answer)


def example(parser: str) -> str | None:
    """The correct input a parser's messages show ("0912345678" for the phone), if it has one."""
    section = texts().get(parser)
    value = section.get("example") if isinstance(section, dict) else None
    return str(value) if value is not None else None


PARSERS: dict[str, Parser] = {
    "social_insurance_code": parse_social_insurance_code,
    "full_name": parse_full_name,
    "child_full_name": parse_child_full_name,
    "id_number": parse_id_number,
    "phone": parse_phone,
    "email": parse_email,
    "date_of_birth": parse_date_of_birth,
    "birth_date": parse_birth_date,
    "relationship": parse_relationship,
    "otp_code": parse_otp_code,
    "yes_no": parse_yes_no,
}
"""Parsers by the name a flow file uses for them."""
