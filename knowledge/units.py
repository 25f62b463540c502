"""Vietnam's administrative units as the address code sees them: the 2025 units, the
pre-2025 provinces they absorbed, and the keys names are compared by.

- vietnam-provinces (GPL-3.0): the authoritative list of the 34 provinces and their wards.
  Everything we return (codes, names) comes from it.
- vietnamadminunits (MIT), through knowledge/vnau.py: which old provinces each new one took in.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from rapidfuzz import fuzz

from knowledge import yamlfile

from . import vnau
from .text import collapse_spaces, fold, nfc

MAX_CANDIDATES = 6
_WORDS_PATH = Path(__file__).with_name("admin_units.yaml")


@cache
def words() -> dict[str, Any]:
    """Name prefixes and ward kinds (knowledge/admin_units.yaml)."""
    data: dict[str, Any] = yamlfile.safe_load(
        _WORDS_PATH.read_text(encoding="utf-8"), kept_as=str(_WORDS_PATH)
    )
    return data


@dataclass(frozen=True)
class Unit:
    """A 2025 unit: a province (then province_code == code) or a ward/xã/đặc khu."""

    code: int
    name: str
    kind: str  # "tỉnh", "thành phố trung ương", "phường", "xã", "đặc khu"
    province_code: int

    def as_value(self) -> dict[str, Any]:
        """The JSON-serialisable form the dialog engine stores."""
        return {"code": self.code, "name": self.name}


@dataclass(frozen=True)
class UnitMatch:
    """Result of a fuzzy lookup: one confident unit, a short candidate list, or nothing."""

    candidates: tuple[Unit, ...] = ()
    confident: bool = False
    # The pre-2025 name the text matched (e.g. "Bình Dương" for Thành phố Hồ Chí Minh), if any.
    old_name: str | None = None
    # True when the name matched as typed (accents and typos aside); False for a fuzzy guess.
    exact: bool = False

    @property
    def unit(self) -> Unit | None:
        return self.candidates[0] if self.confident and self.candidates else None


@dataclass(frozen=True)
class OldAddressConversion:
    """A pre-2025 address recognised and mapped to the 2025 units.

    `wards` has one unit when the old ward went whole into one new ward, several when it
    was split (the user must choose: we do not guess), none when only the province is known.
    """

    old_label: str  # "Phường Tân Phong, Quận 7"
    old_province: str  # "Thành phố Hồ Chí Minh" (the old province's name)
    province: Unit
    wards: tuple[Unit, ...]

    @property
    def split(self) -> bool:
        return len(self.wards) > 1

    @property
    def full_old_label(self) -> str:
        return f"{self.old_label}, {self.old_province}"


def short_name(name: str) -> str:
    """'Thành phố Hồ Chí Minh' -> 'Hồ Chí Minh', 'Phường Tân Hưng' -> 'Tân Hưng'."""
    for prefix in words()["name_prefixes"]:
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def name_key(text: str) -> str:
    """Space-free folded key, the form vietnamadminunits' keywords use."""
    return fold(text).replace(" ", "")


_NON_WORDS = re.compile(r"\W+")


def accent_key(text: str) -> str:
    """Lower-case key that keeps accents: 'Xã Thạnh An' and 'Xã Thanh An' differ."""
    return _NON_WORDS.sub("", nfc(text).lower())


def similarity(query: str, choice: str, **_: Any) -> float:
    """Whole-string similarity (typos), or a discounted partial one for a word typed in part
    ("quang" -> every Quảng...): the discount keeps a complete match ahead."""
    whole = fuzz.ratio(query, choice)
    if len(query) >= 4 and len(query) < len(choice):
        return max(whole, 0.9 * fuzz.partial_ratio(query, choice))
    return whole


def confident(top: float, second: float | None) -> bool:
    """One clear winner: close to what was typed and well ahead of the next, or alone."""
    if second is None:
        return top >= 78
    return top >= 85 and second <= top - 8


# ---------------------------------------------------------------- 2025 units (vietnam-provinces)


@cache
def provinces_by_code() -> dict[int, Unit]:
    from vietnam_provinces import Province

    return {
        int(p.code): Unit(int(p.code), collapse_spaces(p.name), p.division_type.value, int(p.code))
        for p in Province.iter_all()
    }


@cache
def _wards() -> dict[int, tuple[Unit, ...]]:
    from vietnam_provinces import Ward

    by_province: dict[int, list[Unit]] = defaultdict(list)
    for w in Ward.iter_all():
        by_province[int(w.province_code)].append(
            # The data has a few doubled spaces ("Phường  An Nhơn").
            Unit(int(w.code), collapse_spaces(w.name), w.division_type.value, int(w.province_code))
        )
    return {code: tuple(sorted(units, key=lambda u: u.code)) for code, units in by_province.items()}


def provinces() -> tuple[Unit, ...]:
    """The 34 provinces, in code order."""
    return tuple(sorted(provinces_by_code().values(), key=lambda u: u.code))


def province(code: int) -> Unit | None:
    return provinces_by_code().get(int(code))


def wards(province_code: int) -> tuple[Unit, ...]:
    return _wards().get(int(province_code), ())


def ward(code: int) -> Unit | None:
    code = int(code)
    for units in _wards().values():
        for u in units:
            if u.code == code:
                return u
    return None


# ------------------------------------------------- pre-2025 provinces (vietnamadminunits' data)


@cache
def new_province_codes() -> dict[str, int]:
    """vietnamadminunits new-province key ('thanhphohochiminh') -> our province code."""
    data = vnau.data_json("parser_from_2025.json")["DICT_PROVINCE"]
    return {k: int(v["provinceCode"]) for k, v in data.items()}


@cache
def old_province_info() -> dict[str, tuple[str, int, tuple[str, ...]]]:
    """Old (63-province) key -> (name, old code, alias keywords)."""
    rows = vnau.query(
        "SELECT DISTINCT provinceKey, province, provinceCode, provinceKeywords FROM admin_units_legacy"
    )
    return {k: (name, int(code), tuple(json.loads(kws or "[]"))) for k, name, code, kws in rows}


@cache
def old_provinces() -> dict[str, tuple[str, int]]:
    """Old (63-province) key -> (old name, new province code)."""
    old_info = old_province_info()
    mapping = vnau.data_json("converter_2025.json")["DICT_PROVINCE"]
    new_codes = new_province_codes()
    result: dict[str, tuple[str, int]] = {}
    for new_key, old_keys in mapping.items():
        for old_key in old_keys:
            result[old_key] = (old_info[old_key][0], new_codes[new_key])
    return result


def old_province_names(province_code: int) -> tuple[str, ...]:
    """Names of the pre-2025 provinces merged into this one (itself included when it existed)."""
    return tuple(sorted(name for name, code in old_provinces().values() if code == int(province_code)))
