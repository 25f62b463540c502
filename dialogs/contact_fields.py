"""The contact fields' rules: the mobile phone (it receives the OTP SMS) and the optional email."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dialogs.field_rules import quoted, reject, say, texts
from dialogs.parsing import Accepted, NeedsConfirmation, ParseResult, Rejected
from knowledge.text import collapse_spaces, fold, nfc

if TYPE_CHECKING:
    import phonenumbers

# phonenumbers and rapidfuzz are imported by the first phone number or e-mail address read:
# a start-up (a terminal chat's `/start`) reads none.

EMAIL_SUGGESTION_DECLINED_FLAG = "_email_suggestion_declined"


# ---------------------------------------------------------------------------------------------
# số điện thoại


_PHONE_ALLOWED = re.compile(r"[0-9+().\-\s]*")


def _national(number: phonenumbers.PhoneNumber) -> str:
    return "0" + str(number.national_number)


def _old_mobile(digits: str) -> ParseResult | None:
    """Pre-2018 11-digit mobiles (0168..., 0123...) -> their 10-digit number, to be confirmed."""
    if len(digits) == 12 and digits.startswith("841"):
        digits = "0" + digits[2:]
    if len(digits) != 11 or not digits.startswith("01"):
        return None
    new_prefix = texts()["phone"]["old_prefixes"].get(digits[:4])
    if new_prefix is None:
        return None
    converted = new_prefix + digits[4:]
    import phonenumbers

    parsed = phonenumbers.parse(converted, "VN")
    if phonenumbers.number_type(parsed) != phonenumbers.PhoneNumberType.MOBILE:
        return None
    message = say("phone", "old_prefix", old_prefix=digits[:4], new_prefix=new_prefix, phone=converted)
    return NeedsConfirmation(converted, message)


def parse_phone(text: str, values: Mapping[str, Any]) -> ParseResult:
    """A Vietnamese mobile number (it must receive the OTP SMS), stored as "0xxxxxxxxx"."""
    typed = collapse_spaces(nfc(text))
    mobile = _plain_mobile(typed)
    return Accepted(mobile) if mobile is not None else _typed_phone(typed)


# "0987 654 321", "0987.654.321", "0987-654-321": ten digits from a 0 that is no "00" (an
# international prefix), separated by single marks.
_PLAIN_NATIONAL = re.compile(r"0[1-9](?:[ .\-]?[0-9])+")


def _plain_mobile(typed: str) -> str | None:
    """Most numbers typed: a national number of ten digits that is a mobile, read without
    phonenumbers' parsing (its number type alone says), as `_typed_phone` would accept it.
    None for anything else (`_typed_phone` then reads it)."""
    if not _PLAIN_NATIONAL.fullmatch(typed):
        return None
    digits = typed.replace(" ", "").replace(".", "").replace("-", "")
    if len(digits) != 10:
        return None
    import phonenumbers

    number = phonenumbers.PhoneNumber(country_code=84, national_number=int(digits[1:]))
    return digits if phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.MOBILE else None


def _typed_phone(typed: str) -> ParseResult:
    """What a typed number is: accepted (a mobile), to confirm (an old 11-digit mobile), or
    refused saying why."""
    section = "phone"
    digits = _phone_digits(typed)
    if isinstance(digits, Rejected):
        return digits
    old = None if typed.startswith("+") and not typed.startswith("+84") else _old_mobile(digits)
    if old is not None:
        return old
    import phonenumbers

    try:
        parsed = phonenumbers.parse(typed, "VN")
    except phonenumbers.NumberParseException as error:
        if error.error_type == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE:
            return reject(section, "not_vietnamese", phone=typed)
        return reject(section, "too_long" if len(digits) > 10 else "too_short", count=len(digits))
    if parsed.country_code != 84:
        shown = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
        return reject(section, "not_vietnamese", phone=shown)
    return _vietnamese_mobile(parsed)


def _phone_digits(typed: str) -> str | Rejected:
    """The digits of what was typed, or why it cannot be a phone number at all."""
    section = "phone"
    if not typed:
        return reject(section, "empty")
    if not _PHONE_ALLOWED.fullmatch(typed) or "+" in typed[1:]:
        # Anything but digits and separators, or a "+" that is not the leading one.
        wrong = "".join(ch for ch in typed if not _PHONE_ALLOWED.fullmatch(ch)) or "+"
        return reject(section, "bad_chars", chars=quoted(wrong))
    digits = "".join(ch for ch in typed if ch.isdigit())
    return digits or reject(section, "empty")


def _vietnamese_mobile(parsed: phonenumbers.PhoneNumber) -> ParseResult:
    """A +84 number: accepted when it is a valid mobile, else what kind of number it is."""
    import phonenumbers
    from phonenumbers import PhoneNumberType

    section = "phone"
    national = _national(parsed)
    if not phonenumbers.is_valid_number(parsed):
        if len(national) < 10:
            return reject(section, "too_short", count=len(national))
        if len(national) > 10:
            return reject(section, "too_long", count=len(national))
        return reject(section, "invalid", phone=_shown(parsed))
    kind = phonenumbers.number_type(parsed)
    if kind == PhoneNumberType.MOBILE:
        return Accepted(national)
    if kind in (PhoneNumberType.FIXED_LINE, PhoneNumberType.FIXED_LINE_OR_MOBILE):
        return reject(section, "landline", phone=_shown(parsed))
    return reject(section, "not_mobile", phone=_shown(parsed))


def _shown(parsed: phonenumbers.PhoneNumber) -> str:
    """The number as a refusal shows it (formatted only then: a mobile is taken as typed)."""
    import phonenumbers

    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)


# ---------------------------------------------------------------------------------------------
# email


_EMAIL_LOCAL = re.compile(r"[A-Za-z0-9._%+\-]+")
_EMAIL_DOMAIN = re.compile(r"(?:[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?\.)+[a-z]{2,}")
_EMAIL_ALLOWED = re.compile(r"[A-Za-z0-9._%+\-@]")


def _suggest_domain(domain: str) -> str | None:
    known = texts()["email"]["known_domains"]
    if domain in known:
        return None
    # Damerau-Levenshtein counts a swap ("gmial") as one slip, like a thumb on a phone keyboard.
    from rapidfuzz.distance import DamerauLevenshtein

    distance, best = min((DamerauLevenshtein.distance(domain, k), k) for k in known)
    return best if distance <= 2 else None


def parse_email(text: str, values: Mapping[str, Any]) -> ParseResult:
    """Optional email: a practical local@domain.tld shape, domain lower-cased; typos of big providers offered back."""
    section = "email"
    cfg = texts()[section]
    typed = nfc(text).strip()
    if not typed:
        return reject(section, "empty")
    if fold(typed) in cfg["skip_words"]:
        return Accepted(None, notice=cfg["skipped_notice"])
    if any(ch.isspace() for ch in typed):
        return reject(section, "spaces")
    ats = typed.count("@")
    if ats == 0:
        return reject(section, "no_at")
    if ats > 1:
        return reject(section, "many_at", count=ats)
    wrong = "".join(ch for ch in typed if not _EMAIL_ALLOWED.fullmatch(ch))
    if wrong:
        return reject(section, "bad_chars", chars=quoted(wrong))
    local, domain = typed.split("@")
    domain = domain.lower()
    if not _EMAIL_LOCAL.fullmatch(local) or local.startswith(".") or local.endswith(".") or ".." in local:
        return reject(section, "bad_local")
    if not _EMAIL_DOMAIN.fullmatch(domain):
        return reject(section, "bad_domain", domain=domain)
    address = f"{local}@{domain}"
    suggestion = None if values.get(EMAIL_SUGGESTION_DECLINED_FLAG) else _suggest_domain(domain)
    if suggestion is not None:
        corrected = f"{local}@{suggestion}"
        return NeedsConfirmation(corrected, say(section, "typo", suggestion=corrected, email=address))
    return Accepted(address)
