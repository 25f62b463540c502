"""Parsers of the registration flow's address steps (province, ward, street) and of the
agency step. Pure functions `(text, values) -> ParseResult`; every value they return is
plain JSON (dicts of str/int) because the engine stores it.

The words live in address_texts.yaml; the data and matching in knowledge.admin_units and
knowledge.agencies.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from dialogs.catalog import Catalog, catalog
from dialogs.parsing import Accepted, Ambiguous, Choice, NeedsConfirmation, ParseResult, Rejected
from knowledge import admin_units
from knowledge.agencies import Agency, AgencyDirectory
from knowledge.text import collapse_spaces, nfc

TEXTS_PATH = Path(__file__).with_name("address_texts.yaml")
_TYPED_MAX = 40  # how much of the user's text we echo back
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@cache
def _catalog() -> Catalog:
    # Without an argument: `catalog(TEXTS_PATH)` hashes the path (a Python method) at every call.
    return catalog(TEXTS_PATH)


def texts() -> Mapping[str, Any]:
    """The reviewed texts and word lists, read once per process (edit the YAML, restart the bot)."""
    return _catalog().data


def _say(section: str, key: str, **fill: Any) -> str:
    return _catalog().say(section, key, **fill)


def _clean(text: str) -> str:
    return collapse_spaces(_CONTROL.sub(" ", nfc(text or "")))


def _typed(text: str) -> str:
    return text if len(text) <= _TYPED_MAX else text[: _TYPED_MAX - 1] + "…"


def _directory() -> AgencyDirectory:
    return AgencyDirectory.default()


# ----------------------------------------------------------------------------------- province


def _province_choice(unit: admin_units.Unit) -> Choice:
    return Choice(unit.name, unit.as_value())


def parse_province(text: str, values: Mapping[str, Any]) -> ParseResult:
    """'hcm', 'sai gon', 'Bình Dương' (merged into Hồ Chí Minh in 2025), typos -> the 2025 province."""
    typed = _clean(text)
    if not typed:
        return Rejected(_say("province", "empty"))
    match = admin_units.match_province(typed)
    if match.unit is not None:
        unit = match.unit
        notice = None
        if match.old_name:
            notice = _say("province", "merged_notice", old=match.old_name, new=unit.name)
        elif "," in typed:
            notice = _say("province", "address_notice", new=unit.name)
        return Accepted(unit.as_value(), notice)
    if match.candidates:
        return Ambiguous(
            _say("province", "ambiguous", typed=_typed(typed)),
            tuple(_province_choice(u) for u in match.candidates),
        )
    return Rejected(_say("province", "not_found", typed=_typed(typed)))


# --------------------------------------------------------------------------------------- ward


def _chosen_province(values: Mapping[str, Any]) -> admin_units.Unit | None:
    chosen = values.get("province")
    if isinstance(chosen, Mapping) and chosen.get("code") is not None:
        try:
            return admin_units.province(int(chosen["code"]))
        except (TypeError, ValueError):
            return None
    return None


def _example_ward(province_code: int) -> str:
    unit = admin_units.example_ward(province_code)
    return f"«{unit.name if unit else texts()['ward']['fallback_ward']}»"


def _ward_choice(unit: admin_units.Unit) -> Choice:
    return Choice(unit.name, unit.as_value())


def _from_conversion(conv: admin_units.OldAddressConversion, province: admin_units.Unit) -> ParseResult:
    if len(conv.wards) == 1:
        new = conv.wards[0]
        message = _say("ward", "converted", old=conv.old_label, new=new.name, province=province.name)
        return NeedsConfirmation(new.as_value(), message)
    if conv.wards:
        return Ambiguous(
            _say("ward", "converted_split", old=conv.old_label),
            tuple(_ward_choice(u) for u in conv.wards[: admin_units.MAX_CANDIDATES]),
        )
    return Rejected(
        _say(
            "ward",
            "old_no_ward",
            old=conv.old_label,
            province=province.name,
            example=_example_ward(province.code),
        )
    )


def _from_old_names(
    typed: str, convs: tuple[admin_units.OldAddressConversion, ...], province: admin_units.Unit
) -> ParseResult | None:
    """An old ward name typed without its district: convert when the data allows."""
    convs = tuple(c for c in convs if c.wards)
    if not convs:
        return None
    if len(convs) == 1:
        return _from_conversion(convs[0], province)
    choices: list[Choice] = []
    for conv in convs:
        for unit in conv.wards:
            label = _say("ward", "old_name_choice_label", new=unit.name, old=conv.old_label)
            choices.append(Choice(label, unit.as_value()))
    if len(choices) > admin_units.MAX_CANDIDATES:
        return Rejected(
            _say(
                "ward",
                "old_name_too_many",
                typed=_typed(typed),
                old_example=convs[0].old_label,
                example=_example_ward(province.code),
            )
        )
    return Ambiguous(
        _say("ward", "old_name_choices", typed=_typed(typed), province=province.name), tuple(choices)
    )


def parse_ward(text: str, values: Mapping[str, Any]) -> ParseResult:
    """A 2025 phường/xã/đặc khu of the chosen province; an old district-based address
    ("Phường Tân Phong, Quận 7", "p tan phong q7") is converted and confirmed."""
    province = _chosen_province(values)
    if province is None:
        return Rejected(_say("ward", "no_province"))
    example = _example_ward(province.code)
    typed = _clean(text)
    if not typed:
        return Rejected(_say("ward", "empty", province=province.name, example=example))
    query: str | ParseResult = typed
    if admin_units.looks_like_old_address(typed):
        query = _old_address(typed, province, example)
    if not isinstance(query, str):
        return query
    found = _ward_named(query, province)
    if found is not None:
        return found
    return Rejected(_say("ward", "not_found", typed=_typed(typed), province=province.name, example=example))


def _old_address(typed: str, province: admin_units.Unit, example: str) -> str | ParseResult:
    """A comma list or a district in it: the converted ward, a ward of another province
    (refused, naming it), or what to look up as a ward ("Tân Hưng, TP HCM" -> "Tân Hưng")."""
    conv = admin_units.convert_old_address(typed, province.code)
    if conv is not None:
        return _from_conversion(conv, province)
    first = typed.split(",")[0].strip()
    first_match = admin_units.match_ward(province.code, first) if first else admin_units.UnitMatch()
    if not first_match.exact:
        elsewhere = admin_units.convert_old_address_elsewhere(typed, province.code)
        if elsewhere is not None:
            return Rejected(
                _say(
                    "ward",
                    "other_province",
                    old=elsewhere.old_label,
                    other=elsewhere.province.name,
                    province=province.name,
                    example=example,
                )
            )
    return first or typed


def _ward_named(query: str, province: admin_units.Unit) -> ParseResult | None:
    """The ward `query` names: an exact name first, then an old ward's name, then a close one."""
    match = admin_units.match_ward(province.code, query)
    if match.unit is not None and match.exact:
        return Accepted(match.unit.as_value())
    if match.exact and match.candidates:
        return _ambiguous_ward(query, province, match.candidates)
    old = _from_old_names(query, admin_units.convert_old_ward_name(province.code, query), province)
    if old is not None:
        return old
    if match.unit is not None:
        return Accepted(match.unit.as_value())
    return _ambiguous_ward(query, province, match.candidates) if match.candidates else None


def _ambiguous_ward(
    query: str, province: admin_units.Unit, candidates: Sequence[admin_units.Unit]
) -> Ambiguous:
    return Ambiguous(
        _say("ward", "ambiguous", province=province.name, typed=_typed(query)),
        tuple(_ward_choice(u) for u in candidates),
    )


# ------------------------------------------------------------------------------------- street


def parse_street(text: str, values: Mapping[str, Any]) -> ParseResult:
    """House number, street, tổ/xóm, khu phố/thôn: free text, NFC, single-spaced."""
    street = _clean(text)
    limits = texts()["street"]
    if not street:
        return Rejected(_say("street", "empty"))
    if not any(ch.isalnum() for ch in street):
        return Rejected(_say("street", "no_letters"))
    if len(street) < int(limits["min_length"]):
        return Rejected(_say("street", "too_short", typed=street))
    if len(street) > int(limits["max_length"]):
        return Rejected(_say("street", "too_long", length=len(street)))
    return Accepted(street)


# ------------------------------------------------------------------------------------- agency


def _agency_value(agency: Agency) -> dict[str, str]:
    value = agency.as_value()
    # The display label: offices with a local code show their name only.
    value["label"] = _directory().label(agency)
    return value


def _agency_choice(agency: Agency) -> Choice:
    return Choice(_directory().label(agency), _agency_value(agency))


def _chosen_ward_code(values: Mapping[str, Any]) -> int | None:
    chosen = values.get("ward")
    if isinstance(chosen, Mapping) and chosen.get("code") is not None:
        try:
            return int(chosen["code"])
        except (TypeError, ValueError):
            return None
    return None


def _offices_near(values: Mapping[str, Any]) -> list[Agency]:
    """The offices of the chosen province, those of the ward's former district(s) first
    (Tân Hưng, once in Quận 7 -> BHXH Quận 7), then the province office, then the rest."""
    province = _chosen_province(values)
    if province is None:
        return []
    offices = _directory().for_province(province.code)
    ward = _chosen_ward_code(values)
    near: list[str] = []
    for district in admin_units.former_districts(ward) if ward is not None else ():
        near += [a.code for a in _directory().search(district) if a.province_code == province.code]
    return sorted(offices, key=lambda a: near.index(a.code) if a.code in near else len(near))


def agency_choices(values: Mapping[str, Any]) -> tuple[Choice, ...]:
    """Offices of the chosen province, nearest to the ward first (see _offices_near)."""
    return tuple(_agency_choice(a) for a in _offices_near(values))


def agency_examples(values: Mapping[str, Any]) -> str:
    """Two things to type at the agency step, taken from the user's own province."""
    offices = [a for a in _offices_near(values) if a.official_code]
    district = next((a for a in offices if not a.is_province_office), None)
    if district is not None:
        return f"«{district.code}», «{district.name}»"
    if offices:
        return f"«{offices[0].code}», «{offices[0].name}»"
    return texts()["agency"]["examples_default"]


_OFFICIAL_CODE = re.compile(r"\d{3}(\d{2})?")
_LEADING_CODE = re.compile(r"^\s*\[\s*([0-9a-z-]+)\s*\]", re.IGNORECASE)


def _typed_code(typed: str) -> Agency | None:
    """An office named by its code ("07919", "[07919] BHXH Quận 7"): exact, not a guess."""
    directory = _directory()
    leading = _LEADING_CODE.match(typed)
    if leading:
        return directory.get(leading.group(1).lower())
    bare = typed.strip("[] ").lower()
    return directory.get(bare) if _OFFICIAL_CODE.fullmatch(bare) else None


def _confirm_agency(agency: Agency, province: admin_units.Unit | None) -> NeedsConfirmation:
    elsewhere = province is not None and agency.province_code != province.code
    key = "confirm_elsewhere" if elsewhere else "confirm"
    extra = {"province": province.name} if elsewhere and province is not None else {}
    return NeedsConfirmation(
        _agency_value(agency), _say("agency", key, label=_directory().label(agency), **extra)
    )


def parse_agency(text: str, values: Mapping[str, Any]) -> ParseResult:
    """A typed search: 'quan 7', 'q7', '07919', '[07919] BHXH Quận 7', 'hong bang'.

    Only an office's exact code, in the user's own province, is taken as typed; anything
    found by its name is a guess and is confirmed first ("ba đình" must never silently
    become an office in another province), and offices of the user's province come first."""
    typed = _clean(text)
    province = _chosen_province(values)
    if not typed:
        return Rejected(_say("agency", "empty", examples=agency_examples(values)))
    coded = _typed_code(typed)
    if coded is not None:
        if province is None or coded.province_code == province.code:
            return Accepted(_agency_value(coded))
        return _confirm_agency(coded, province)
    found = _directory().search(typed, limit=admin_units.MAX_CANDIDATES)
    if province is not None:
        found.sort(key=lambda a: a.province_code != province.code)
        if found and found[0].province_code != province.code:
            # Nothing of theirs matched: offer their own offices first, the match after.
            own = _offices_near(values)[: admin_units.MAX_CANDIDATES - len(found)]
            message = _say("agency", "none_in_province", typed=_typed(typed), province=province.name)
            return Ambiguous(message, tuple(_agency_choice(a) for a in [*own, *found]))
    if len(found) == 1:
        return _confirm_agency(found[0], province)
    if found:
        return Ambiguous(
            _say("agency", "ambiguous", typed=_typed(typed)), tuple(_agency_choice(a) for a in found)
        )
    return Rejected(_say("agency", "not_found", typed=_typed(typed), examples=agency_examples(values)))


def describe_agency(agency: Mapping[str, Any]) -> str:
    """'Mã cơ quan: 07919 / Cơ quan BHXH: BHXH Quận 7 / Số điện thoại: ...', known lines only.

    A local code (an office no source gives a code for) is not shown as if it were official."""
    lines = []
    code = str(agency.get("code") or "")
    if _OFFICIAL_CODE.fullmatch(code):
        lines.append(_say("agency", "line_code", code=code))
    for key in ("name", "phone", "address"):
        if agency.get(key):
            lines.append(_say("agency", f"line_{key}", **{key: agency[key]}))
    return "\n".join(lines)
