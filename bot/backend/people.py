"""The people the stub's social-insurance system knows (people.yaml), and how it writes them.

Synthetic people only. The helpers normalise and mask phones and codes the way the real
portal shows them in SMS and answers.
"""

from __future__ import annotations

import re
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import phonenumbers
from pydantic import BaseModel

from dialogs.ports import IdKind, Relationship
from knowledge import yamlfile

HERE = Path(__file__).resolve().parent
PEOPLE_PATH = HERE / "people.yaml"
TEXTS_PATH = HERE / "texts.yaml"

ADULT_AGE = 18


class Guardian(BaseModel):
    social_insurance_code: str
    relationship: Relationship


class SeedPerson(BaseModel):
    """A person the stub's database knows (people.yaml)."""

    social_insurance_code: str
    full_name: str
    date_of_birth: date
    province_code: int
    id_kind: IdKind | None = None
    id_number: str | None = None
    phone: str | None = None
    has_account: bool = False
    id_verified: bool = False
    guardian: Guardian | None = None


def load_people(path: Path = PEOPLE_PATH) -> list[SeedPerson]:
    data = yamlfile.safe_load(path.read_text(encoding="utf-8"))
    return [SeedPerson.model_validate(item) for item in data["people"]]


@cache
def load_texts(path: Path = TEXTS_PATH) -> dict[str, Any]:
    """The SMS texts and refusal reasons (texts.yaml)."""
    texts: dict[str, Any] = yamlfile.safe_load(path.read_text(encoding="utf-8"))
    return texts


def normalize_phone(phone: str) -> str:
    """National 10-digit form `0xxxxxxxxx` for a valid VN number; bare digits otherwise."""
    try:
        parsed = phonenumbers.parse(phone, "VN")
    except phonenumbers.NumberParseException:
        return re.sub(r"\D", "", phone)
    if parsed.country_code == 84 and phonenumbers.is_valid_number(parsed):
        return "0" + phonenumbers.national_significant_number(parsed)
    return re.sub(r"\D", "", phone)


def mask_phone(phone: str) -> str:
    """`0901000101` -> `090****101`: enough for the user to recognise their number."""
    if len(phone) < 7:
        return "*" * len(phone)
    return phone[:3] + "*" * (len(phone) - 6) + phone[-3:]


def mask_code(code: str) -> str:
    return code[:2] + "*" * max(len(code) - 4, 0) + code[-2:] if len(code) > 4 else "****"


def digits(text: str) -> str:
    """A code or ID number as typed, without spaces and dots (`079 123.456` -> `079123456`)."""
    return re.sub(r"\s|\.", "", text).upper()


def age(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))
