"""What the QR codes on a parent's two cards say: the chip CCCD and the BHYT (health insurance) card.

Pure text parsing, no image work (bot/cardscan.py finds and decodes the QR in a photo).

Chip CCCD front, QR text (the card's own layout, newer cards may add fields after these):
    ``id number|old CMND number|full name|ddmmyyyy birth|gender|permanent address|ddmmyyyy issued``
    e.g. ``001090900123|123456789|Nguyễn Văn An|01021990|Nam|Số 1, Phường X, Quận Y, Hà Nội|15062021``

BHYT card, QR text: fields separated by ``|``, the name and the address hex-encoded UTF-8,
the whole text ending with ``$``:
    ``card code|hex name|dd/mm/yyyy birth (or yyyy)|gender 1/2|hex address|clinic|from|to|...|$``
The card code is the 15-character one (``HS4790123456789``: object, benefit level, province,
then the 10-digit mã số BHXH), or on newer cards the 10-digit mã số BHXH itself.

A text that is neither raises `NotACard`; one that is a card but cannot be trusted raises
`CardPayloadError` with a `code` the dialog layer turns into a Vietnamese message:
``field_count`` (too few fields), ``bad_date``, ``bad_hex`` (not hex, or not UTF-8 once
decoded), ``bad_number`` (the ID or the card code is not well formed), ``empty_name``.
Nothing is checked against the field rules here (accents, province and century digits):
the dialogs run each value through its field's rule like a typed answer.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Literal

from knowledge import yamlfile

CardKind = Literal["cccd", "bhyt"]

CCCD_MIN_FIELDS = 7  # id, old id, name, birth, gender, address, issue date
BHYT_MIN_FIELDS = 5  # code, name, birth, gender, address (then clinic, validity, ... and "$")
_CCCD_NUMBER = re.compile(r"\d{12}")
_BHYT_CODE = re.compile(r"[A-Z]{2}[1-5]\d{12}")
_SOCIAL_INSURANCE_CODE = re.compile(r"\d{10}")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")
_CARDS_PATH = Path(__file__).with_name("cards.yaml")
_BHYT_GENDER: dict[str, str] = yamlfile.safe_load(
    _CARDS_PATH.read_text(encoding="utf-8"), kept_as=str(_CARDS_PATH)
)["bhyt_genders"]


class NotACard(ValueError):
    """The QR holds something else (a web link, a payment code): not a CCCD or BHYT card."""


class CardPayloadError(ValueError):
    """A card's QR that cannot be used; `code` names what is wrong (see the module docstring)."""

    def __init__(self, kind: CardKind, code: str, **params: object) -> None:
        super().__init__(f"{kind}: {code}")
        self.kind = kind
        self.code = code
        self.params = params


@dataclass(frozen=True)
class CccdCard:
    id_number: str
    old_id_number: str | None
    full_name: str
    date_of_birth: date | None  # never None from parse_cccd
    gender: str
    address: str
    issue_date: date | None
    kind: CardKind = "cccd"


@dataclass(frozen=True)
class BhytCard:
    card_code: str  # as printed: 15 characters, or the 10-digit mã số BHXH on newer cards
    social_insurance_code: str  # the card code's last 10 digits
    full_name: str | None
    date_of_birth: date | None  # None when the card carries the year only
    birth_year: int | None
    gender: str | None
    address: str | None
    kind: CardKind = "bhyt"


Card = CccdCard | BhytCard


def card_kind(text: str) -> CardKind | None:
    """Which card a QR text claims to come from, before checking it; None: neither."""
    text = text.strip()
    head = text.split("|", 1)[0].strip().upper()
    if "|" not in text:
        return None
    if text.endswith("$") or _BHYT_CODE.fullmatch(head):
        return "bhyt"
    if _CCCD_NUMBER.fullmatch(head):
        return "cccd"
    return None


def parse_card(text: str) -> Card:
    """The card a QR text describes; raises NotACard or CardPayloadError."""
    kind = card_kind(text)
    if kind == "cccd":
        return parse_cccd(text)
    if kind == "bhyt":
        return parse_bhyt(text)
    raise NotACard("not a CCCD or BHYT QR")


def cccd_fields(text: str) -> CccdCard | None:
    """A CCCD QR's fields as they are (unreadable dates None); None when it is no CCCD QR."""
    fields = [f.strip() for f in unicodedata.normalize("NFC", text.strip()).split("|")]
    if len(fields) < CCCD_MIN_FIELDS or not _CCCD_NUMBER.fullmatch(fields[0]):
        return None
    number, old, name, born, gender, address, issued = fields[:CCCD_MIN_FIELDS]
    return CccdCard(
        id_number=number,
        old_id_number=old or None,
        full_name=_one_line(name),
        date_of_birth=_ddmmyyyy(born),
        gender=gender,
        address=_one_line(address),
        issue_date=_ddmmyyyy(issued),
    )


def parse_cccd(text: str) -> CccdCard:
    """A CCCD QR fit to fill a form: every field there, a 12-digit number, a name, a real birth date."""
    card = cccd_fields(text)
    if card is None:
        found = len(text.split("|"))
        if found < CCCD_MIN_FIELDS:
            raise CardPayloadError("cccd", "field_count", found=found, expected=CCCD_MIN_FIELDS)
        raise CardPayloadError("cccd", "bad_number")
    if not card.full_name:
        raise CardPayloadError("cccd", "empty_name")
    if card.date_of_birth is None:
        # The issue date is shown to nobody and used for nothing: only the birth date must be readable.
        raise CardPayloadError("cccd", "bad_date", field="date_of_birth")
    return card


def parse_bhyt(text: str) -> BhytCard:
    body = text.strip()
    body = body[:-1] if body.endswith("$") else body
    fields = [f.strip() for f in body.split("|")]
    if fields and not fields[-1]:
        fields.pop()  # "...|$": the separator before the end mark
    if len(fields) < BHYT_MIN_FIELDS:
        raise CardPayloadError("bhyt", "field_count", found=len(fields), expected=BHYT_MIN_FIELDS)
    code = fields[0].upper().replace(" ", "")
    if not (_BHYT_CODE.fullmatch(code) or _SOCIAL_INSURANCE_CODE.fullmatch(code)):
        raise CardPayloadError("bhyt", "bad_number")
    name = _hex_text(fields[1], "full_name")
    if not name:
        raise CardPayloadError("bhyt", "empty_name")
    birth, year = _bhyt_birth(fields[2])
    return BhytCard(
        card_code=code,
        social_insurance_code=code[-10:],
        full_name=name,
        date_of_birth=birth,
        birth_year=year,
        gender=_BHYT_GENDER.get(fields[3]),
        address=_hex_text(fields[4], "address") or None,
    )


def _hex_text(field: str, which: str) -> str:
    if not field:
        return ""
    if not _HEX.fullmatch(field):
        raise CardPayloadError("bhyt", "bad_hex", field=which)
    try:
        decoded = bytes.fromhex(field).decode("utf-8")
    except UnicodeDecodeError:
        raise CardPayloadError("bhyt", "bad_hex", field=which) from None
    return _one_line(unicodedata.normalize("NFC", decoded))


def _bhyt_birth(field: str) -> tuple[date | None, int | None]:
    if re.fullmatch(r"\d{4}", field):
        year = int(field)
        if 1900 <= year <= 2200:
            return None, year
        raise CardPayloadError("bhyt", "bad_date", field="date_of_birth")
    try:
        born = datetime.strptime(field, "%d/%m/%Y").date()
    except ValueError:
        raise CardPayloadError("bhyt", "bad_date", field="date_of_birth") from None
    return born, born.year


def _ddmmyyyy(value: str) -> date | None:
    if not re.fullmatch(r"\d{8}", value):
        return None
    try:
        return datetime.strptime(value, "%d%m%Y").date()
    except ValueError:
        return None


def _one_line(text: str) -> str:
    return " ".join(text.split())


@dataclass(frozen=True)
class CardRead:
    """What a photo showed: a card (`card`), a card's QR that cannot be used (`error`), or a QR
    that is no card's (`other_qr`); all None/False: no QR could be read at all."""

    card: Card | None = None
    error: CardPayloadError | None = None
    other_qr: bool = False

    @property
    def found_qr(self) -> bool:
        return self.card is not None or self.error is not None or self.other_qr


def interpret(texts: list[str]) -> CardRead:
    """The first card among QR texts; else the first card's error; else whether any QR was there."""
    result = CardRead()
    for text in texts:
        try:
            return CardRead(card=parse_card(text))
        except CardPayloadError as error:
            result = CardRead(error=error)
        except NotACard:
            if result.error is None:
                result = CardRead(other_qr=True)
    return result
