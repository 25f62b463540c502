"""Pre-2025 addresses (63 provinces, districts, old wards) mapped to the 2025 units.

Through vietnamadminunits' legacy parser and its old -> new ward mapping (knowledge/vnau.py).
Importing that parser costs ~0.6 s (it pulls in geopy and shapely), so it is loaded lazily,
only when the text looks like an old district-based address or an old ward name;
`admin_units.preload()` lets a long-running process pay that cost at start-up.
We never call its `convert_address` with a street: for a split ward that function geocodes
the street over the network (ArcGIS) to guess; we return every candidate instead.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from functools import cache
from typing import Any

from . import vnau
from .text import collapse_spaces, fold, nfc
from .unit_match import split_ward_query
from .units import (
    OldAddressConversion,
    Unit,
    accent_key,
    name_key,
    new_province_codes,
    old_province_names,
    old_provinces,
    provinces_by_code,
    wards,
)

# Words that signal a pre-2025 address: a district (quận/huyện/thị xã/old city), or a comma list.
# A district word or "q7" in folded text (words of letters and digits, one space apart),
# searched with a space added at each end: a word's bounds are spaces, and the regex engine
# looks for them only where a space is instead of trying `\b` at every position.
_OLD_ADDRESS_HINT = re.compile(r" (?:quan|huyen|thi xa|tx|thi tran|tt) | q ?\d+ ")
_ISLAND_DISTRICTS = frozenset({"huyenbachlongvi", "huyenconco", "huyenhoangsa", "huyenlyson", "huyencondao"})


@dataclass(frozen=True)
class _Legacy:
    parse: Any  # vietnamadminunits.parser.parse_address
    no_divided: dict[str, dict[str, str]]  # new province key -> old "p_d_w" key -> new ward key
    divided: dict[str, dict[str, list[dict[str, Any]]]]
    wards_by_old_name: dict[
        str, dict[str, list[tuple[str, str, str]]]
    ]  # old prov -> short key -> [(d, w, label)]
    old_districts: dict[str, dict[str, str]]  # old province key -> district key -> district name


@cache
def _legacy() -> _Legacy:
    parser = vnau.legacy_parser()  # ~0.6 s on an idle machine: the package imports geopy and shapely
    conv = vnau.data_json("converter_2025.json")
    no_divided: dict[str, dict[str, str]] = {}
    for new_p, table in conv["DICT_PROVINCE_WARD_NO_DIVIDED"].items():
        no_divided[new_p] = {old: new_w for new_w, olds in table.items() for old in olds}
    by_name: dict[str, dict[str, list[tuple[str, str, str]]]] = defaultdict(lambda: defaultdict(list))
    districts: dict[str, dict[str, str]] = {}
    for old_p, dmap in parser.province_district.items():
        districts[old_p] = {d: info["district"] for d, info in dmap.items()}
    for old_p, dmap in parser.province_district_ward.items():
        for d, wmap in dmap.items():
            for w, info in wmap.items():
                # Some entries lack a short name (NaN in the source data). The package's own
                # keywords also list names absorbed before 2025, which would mislabel choices.
                names = [n for n in (info.get("ward"), info.get("wardShort")) if isinstance(n, str)]
                for label_key in {name_key(n) for n in names}:
                    by_name[old_p][label_key].append((d, w, info["ward"]))
    return _Legacy(
        parser.parse,
        no_divided,
        conv["DICT_PROVINCE_WARD_DIVIDED"],
        {p: dict(v) for p, v in by_name.items()},
        districts,
    )


def warm_up() -> None:
    """Import the legacy parser and build the conversion tables now."""
    _legacy()
    _former_districts()


@cache
def _former_districts() -> dict[int, tuple[str, ...]]:
    """2025 ward code -> the pre-2025 districts its old wards belonged to ("Quận 7")."""
    legacy = _legacy()
    found: dict[int, dict[str, int]] = defaultdict(dict)
    for new_p, code in new_province_codes().items():
        lookup = _new_ward_by_key(code)
        pairs = [(old, new_w) for old, new_w in legacy.no_divided.get(new_p, {}).items()]
        for old, entries in legacy.divided.get(new_p, {}).items():
            pairs += [(old, e["newWardKey"]) for e in entries]
        for old_key, new_w in pairs:
            old_p, old_d = old_key.split("_")[:2]
            unit = lookup.get(new_w) or lookup.get(name_key(new_w))
            name = legacy.old_districts.get(old_p, {}).get(old_d)
            if unit is not None and name:
                counts = found[unit.code]
                counts[name] = counts.get(name, 0) + 1
    return {w: tuple(sorted(c, key=lambda n: -c[n])) for w, c in found.items()}


def former_districts(ward_code: int) -> tuple[str, ...]:
    """The pre-2025 districts a 2025 ward was made from, most of its old wards first:
    Phường Tân Hưng (Hồ Chí Minh) -> ("Quận 7",). Empty when unknown."""
    return _former_districts().get(int(ward_code), ())


def looks_like_old_address(text: str) -> bool:
    """True when the text names a district (quận/huyện/thị xã, 'q7') or lists parts with commas."""
    return bool(_OLD_ADDRESS_HINT.search(f" {fold(text)} ") or "," in text)


@cache
def _new_ward_by_key(province_code: int) -> dict[str, Unit]:
    """vietnamadminunits ward keys ('phuongtanhung', sometimes accented) -> our Unit."""
    table: dict[str, Unit] = {}
    for u in wards(province_code):
        table.setdefault(name_key(u.name), u)
        table[accent_key(u.name)] = u
    return table


def _new_province_key(province_code: int) -> str | None:
    return next((k for k, c in new_province_codes().items() if c == province_code), None)


def _convert_keys(old_p: str, old_d: str, old_w: str) -> tuple[int, tuple[Unit, ...]] | None:
    """Old (province, district, ward) keys -> (new province code, candidate new wards)."""
    info = old_provinces().get(old_p)
    if info is None:
        return None
    code = info[1]
    new_p = _new_province_key(code)
    legacy = _legacy()
    old_key = f"{old_p}_{old_d}_{old_w}"
    new_keys: list[str] = []
    if new_p is not None:
        if old_key in legacy.no_divided.get(new_p, {}):
            new_keys = [legacy.no_divided[new_p][old_key]]
        else:
            entries = legacy.divided.get(new_p, {}).get(old_key, [])
            # Default ward first: the most likely one leads the list, but we still ask.
            entries = sorted(entries, key=lambda e: not e.get("isDefaultNewWard"))
            new_keys = [e["newWardKey"] for e in entries]
    lookup = _new_ward_by_key(code)
    units: list[Unit] = []
    for k in new_keys:
        u = lookup.get(k) or lookup.get(name_key(k))
        if u is not None and u not in units:
            units.append(u)
    return code, tuple(units)


def convert_old_address(text: str, province_code: int | None = None) -> OldAddressConversion | None:
    """Recognise a pre-2025 'ward, district(, province)' address and map it to 2025 units.

    With `province_code` (the province the user already chose) the old provinces merged
    into it are tried in turn, so "Phường Tân Phong, Quận 7" or "p tan phong q7" work
    without a province. Returns None when no old ward + district is recognised there.
    """
    text = collapse_spaces(nfc(text))
    if not text:
        return None
    legacy = _legacy()
    attempts = [text]
    if province_code is not None:
        attempts += [f"{text}, {name}" for name in old_province_names(province_code)]
    elsewhere: OldAddressConversion | None = None
    for attempt in attempts:
        unit = legacy.parse(attempt, mode="LEGACY", keep_street=False, level=3)
        island = unit.district_key in _ISLAND_DISTRICTS  # island districts had no wards
        if not (unit.province_key and unit.district_key and (unit.ward_key or island)):
            continue
        converted = _convert_keys(unit.province_key, unit.district_key, unit.ward_key or "")
        if converted is None:
            continue
        code, new_wards = converted
        result = OldAddressConversion(
            old_label=f"{unit.ward}, {unit.district}" if unit.ward else unit.district,
            old_province=unit.province,
            province=provinces_by_code()[code],
            wards=new_wards,
        )
        if province_code is None or code == int(province_code):
            return result
        elsewhere = elsewhere or result
    return elsewhere if province_code is None else None


def convert_old_address_elsewhere(text: str, province_code: int) -> OldAddressConversion | None:
    """The old address as typed, when it lies in another province than the chosen one."""
    result = convert_old_address(text)
    if result is not None and result.province.code != int(province_code):
        return result
    return None


def convert_old_ward_name(province_code: int, text: str) -> tuple[OldAddressConversion, ...]:
    """An old ward typed without its district ("Tân Phong" in Hồ Chí Minh): every old ward of
    that name in the provinces merged into this one, each converted. Empty when none."""
    legacy = _legacy()
    query, _ = split_ward_query(text)
    keys = [k for k in dict.fromkeys((name_key(text), query.replace(" ", ""))) if k and not k.isdigit()]
    if not keys:
        return ()
    results: list[OldAddressConversion] = []
    for old_p, (old_pname, code) in old_provinces().items():
        if code != int(province_code):
            continue
        names = legacy.wards_by_old_name.get(old_p, {})
        found = dict.fromkeys(hit for k in keys for hit in names.get(k, []))
        for d, w, label in found:
            converted = _convert_keys(old_p, d, w)
            if converted is None:
                continue
            district = legacy.old_districts.get(old_p, {}).get(d, "")
            results.append(
                OldAddressConversion(
                    old_label=f"{label}, {district}" if district else label,
                    old_province=old_pname,
                    province=provinces_by_code()[code],
                    wards=converted[1],
                )
            )
    return tuple(results)
