"""Vietnam's administrative units (2025 two-level: 34 provinces -> phường/xã/đặc khu),
matched fuzzily from what a parent types, plus conversion of pre-2025 addresses.

Sources:
- vietnam-provinces (GPL-3.0): the authoritative list of the 34 provinces and their wards.
  Everything we return (codes, names) comes from it.
- vietnamadminunits (MIT): aliases of the 63 old provinces, the old (province, district,
  ward) parser, and the old -> new ward mapping. We wrap its data; we never type it by hand.

Importing vietnamadminunits' parser costs ~0.6 s (it pulls in geopy and shapely), so it is
loaded lazily, only when the text looks like an old district-based address or an old ward
name; `preload()` lets a long-running process pay that cost at start-up, off the hot path.
Province matching only reads two small JSON files and its SQLite copy of the data (once).
We never call its `convert_address` with a street: for a split ward that function geocodes
the street over the network (ArcGIS) to guess; we return every candidate instead.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sqlite3
import threading
from collections import defaultdict
from contextlib import closing
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from rapidfuzz import fuzz, process

from .text import collapse_spaces, fold, has_diacritics, nfc

MAX_CANDIDATES = 6

# Aliases people type that no data file carries (abbreviations, the old name of HCM).
_EXTRA_PROVINCE_ALIASES: dict[str, int] = {
    "sai gon": 79,
    "sg": 79,
    "tphcm": 79,
    "tp hcm": 79,
    "hcmc": 79,
    "thanh pho hcm": 79,
    "hn": 1,
    "tphn": 1,
    "tp hn": 1,
    "hp": 31,
    "tphp": 31,
    "tp hp": 31,
}

# Type words that may precede a province or ward name; folded.
_PROVINCE_PREFIX = re.compile(r"^(thanh pho|tinh|tp|t p)\s+")
_WARD_PREFIX = re.compile(r"^(phuong|p|xa|x|dac khu|dk|thi tran|tt)\s+")
_WARD_KIND_BY_PREFIX = {
    "phuong": "phường",
    "p": "phường",
    "xa": "xã",
    "x": "xã",
    "dac khu": "đặc khu",
    "dk": "đặc khu",
}
# Words that signal a pre-2025 address: a district (quận/huyện/thị xã/old city), or a comma list.
_OLD_ADDRESS_HINT = re.compile(r"\b(quan|huyen|thi xa|tx|thi tran|tt)\b|\bq\s?\d+\b|,")


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


# ---------------------------------------------------------------- 2025 units (vietnam-provinces)


def _short(name: str) -> str:
    """'Thành phố Hồ Chí Minh' -> 'Hồ Chí Minh', 'Phường Tân Hưng' -> 'Tân Hưng'."""
    for prefix in ("Thành phố ", "Tỉnh ", "Phường ", "Xã ", "Đặc khu "):
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def _key(text: str) -> str:
    """Space-free folded key, the form vietnamadminunits' keywords use."""
    return fold(text).replace(" ", "")


def _accent_key(text: str) -> str:
    """Lower-case key that keeps accents: 'Xã Thạnh An' and 'Xã Thanh An' differ."""
    return re.sub(r"\W+", "", nfc(text).lower())


@cache
def _provinces() -> dict[int, Unit]:
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
    return tuple(sorted(_provinces().values(), key=lambda u: u.code))


def province(code: int) -> Unit | None:
    return _provinces().get(int(code))


def wards(province_code: int) -> tuple[Unit, ...]:
    return _wards().get(int(province_code), ())


def ward(code: int) -> Unit | None:
    code = int(code)
    for units in _wards().values():
        for u in units:
            if u.code == code:
                return u
    return None


# ------------------------------------------------------- vietnamadminunits data (read lazily)


def _vnau_data_dir() -> Path:
    # find_spec locates the package without executing its __init__ (which loads everything).
    spec = importlib.util.find_spec("vietnamadminunits")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("vietnamadminunits is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


@cache
def _vnau_json(name: str) -> dict[str, Any]:
    with open(_vnau_data_dir() / name, encoding="utf-8") as f:
        return json.load(f)


@cache
def _vnau_province_codes() -> dict[str, int]:
    """vietnamadminunits new-province key ('thanhphohochiminh') -> our province code."""
    data = _vnau_json("parser_from_2025.json")["DICT_PROVINCE"]
    return {key: int(v["provinceCode"]) for key, v in data.items()}


def _vnau_query(sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Read the package's SQLite copy of its data: much cheaper than its 2.6 MB legacy JSON
    when all we need is the old provinces' names or ward codes."""
    with closing(sqlite3.connect(f"file:{_vnau_data_dir() / 'dataset.db'}?mode=ro", uri=True)) as conn:
        return conn.execute(sql, params).fetchall()


@cache
def _old_province_info() -> dict[str, tuple[str, int, tuple[str, ...]]]:
    """Old (63-province) key -> (name, old code, alias keywords)."""
    rows = _vnau_query(
        "SELECT DISTINCT provinceKey, province, provinceCode, provinceKeywords FROM admin_units_legacy"
    )
    return {key: (name, int(code), tuple(json.loads(kws or "[]"))) for key, name, code, kws in rows}


@cache
def _old_provinces() -> dict[str, tuple[str, int]]:
    """Old (63-province) key -> (old name, new province code)."""
    old_info = _old_province_info()
    mapping = _vnau_json("converter_2025.json")["DICT_PROVINCE"]
    new_codes = _vnau_province_codes()
    result: dict[str, tuple[str, int]] = {}
    for new_key, old_keys in mapping.items():
        for old_key in old_keys:
            result[old_key] = (old_info[old_key][0], new_codes[new_key])
    return result


def old_province_names(province_code: int) -> tuple[str, ...]:
    """Names of the pre-2025 provinces merged into this one (itself included when it existed)."""
    return tuple(sorted(name for name, code in _old_provinces().values() if code == int(province_code)))


# ------------------------------------------------------------------------- province matching


@dataclass(frozen=True)
class _Alias:
    key: str  # folded (data keywords come without spaces)
    code: int
    old_name: str | None
    fuzzy: bool = True  # spaced names only: space-free keywords would skew the scores


@cache
def _province_index() -> tuple[tuple[_Alias, ...], dict[str, tuple[_Alias, ...]]]:
    aliases: list[_Alias] = []
    for unit in _provinces().values():
        short = fold(_short(unit.name))
        for key in (fold(unit.name), short, f"tp {short}", f"tinh {short}"):
            aliases.append(_Alias(key, unit.code, None))
    for key, code in _EXTRA_PROVINCE_ALIASES.items():
        aliases.append(_Alias(key, code, None))
    new_data = _vnau_json("parser_from_2025.json")["DICT_PROVINCE"]
    codes = _vnau_province_codes()
    for new_key, info in new_data.items():
        for kw in info["provinceKeywords"]:
            aliases.append(_Alias(kw, codes[new_key], None, fuzzy=False))
    old_info = _old_province_info()
    for old_key, (old_name, code) in _old_provinces().items():
        new_name = _provinces()[code].name
        label = None if _key(_short(old_name)) == _key(_short(new_name)) else _short(old_name)
        aliases.append(_Alias(fold(old_name), code, label))
        aliases.append(_Alias(fold(_short(old_name)), code, label))
        for kw in old_info[old_key][2]:
            aliases.append(_Alias(kw, code, label, fuzzy=False))
    by_key: dict[str, list[_Alias]] = defaultdict(list)
    for a in aliases:
        by_key[_key(a.key)].append(a)
    spaced = tuple(a for a in aliases if a.fuzzy and len(a.key) > 3)
    return spaced, {k: tuple(v) for k, v in by_key.items()}


def _from_aliases(hits: tuple[_Alias, ...]) -> UnitMatch:  # exact alias hits
    codes = sorted({a.code for a in hits})
    units = tuple(_provinces()[c] for c in codes)
    if len(units) == 1:
        # Prefer "matched the current name" over "matched an old name" when both hit.
        old = None if any(a.old_name is None for a in hits) else hits[0].old_name
        return UnitMatch(units, True, old, exact=True)
    return UnitMatch(units[:MAX_CANDIDATES], False, None, exact=True)


def match_province(text: str) -> UnitMatch:
    """'hcm', 'tp ho chi minh', 'sai gon', 'vung tau', 'Bình Dương', 'ha noi', typos...

    Confident for one hit, a few candidates when unsure, empty when nothing is close.
    A whole address ("..., Quận 7, TP HCM") is matched on its last comma part.
    """
    folded = fold(text)
    if not folded:
        return UnitMatch()
    _, by_key = _province_index()
    parts = [fold(p) for p in re.split(r"[,;\n]", nfc(text)) if fold(p)]
    for candidate in [folded, *reversed(parts)] if len(parts) > 1 else [folded]:
        stripped = _PROVINCE_PREFIX.sub("", candidate)
        for k in (_key(candidate), _key(stripped)):
            if k in by_key:
                return _from_aliases(by_key[k])
    return _fuzzy_province(_PROVINCE_PREFIX.sub("", parts[-1] if parts else folded))


def _score(query: str, choice: str, **_: Any) -> float:
    """Whole-string similarity (typos), or a discounted partial one for a word typed in part
    ("quang" -> every Quảng...): the discount keeps a complete match ahead."""
    whole = fuzz.ratio(query, choice)
    if len(query) >= 4 and len(query) < len(choice):
        return max(whole, 0.9 * fuzz.partial_ratio(query, choice))
    return whole


def _confident(top: float, second: float | None) -> bool:
    """One clear winner: close to what was typed and well ahead of the next, or alone."""
    if second is None:
        return top >= 78
    return top >= 85 and second <= top - 8


def _fuzzy_province(query: str) -> UnitMatch:
    if len(query) < 3:
        return UnitMatch()
    spaced, _ = _province_index()
    choices = [a.key for a in spaced]
    scored = process.extract(query, choices, scorer=_score, limit=40, score_cutoff=70)
    best: dict[int, tuple[float, _Alias]] = {}
    for _, score, idx in scored:
        alias = spaced[idx]
        if alias.code not in best or score > best[alias.code][0]:
            best[alias.code] = (score, alias)
    ranked = sorted(best.values(), key=lambda item: -item[0])
    if not ranked:
        return UnitMatch()
    top_score, top = ranked[0]
    if _confident(top_score, ranked[1][0] if len(ranked) > 1 else None):
        return UnitMatch((_provinces()[top.code],), True, top.old_name)
    near = [a for score, a in ranked if score >= top_score - 12]
    return UnitMatch(tuple(_provinces()[a.code] for a in near[:MAX_CANDIDATES]), False, None)


# ----------------------------------------------------------------------------- ward matching


@dataclass(frozen=True)
class _WardIndex:
    units: tuple[Unit, ...]
    exact: dict[str, tuple[Unit, ...]]  # folded short name and folded full name -> units
    shorts: tuple[str, ...]  # folded short names, aligned with units


@cache
def _ward_index(province_code: int) -> _WardIndex:
    units = wards(province_code)
    exact: dict[str, list[Unit]] = defaultdict(list)
    for u in units:
        for key in {fold(u.name), fold(_short(u.name))}:
            exact[key].append(u)
    return _WardIndex(
        units, {k: tuple(v) for k, v in exact.items()}, tuple(fold(_short(u.name)) for u in units)
    )


def _split_ward_query(text: str) -> tuple[str, str | None]:
    """Fold and drop a leading 'phường/p./xã' word; returns (query, kind asked for)."""
    query = fold(text)
    m = _WARD_PREFIX.match(query)
    if m and query[m.end() :].strip():
        rest = query[m.end() :].strip()
        # "Phường 1" style names keep their word: the digits alone are no name.
        if not rest.isdigit():
            return rest, _WARD_KIND_BY_PREFIX.get(m.group(1))
    return query, None


def _prefer_accents(text: str, units: tuple[Unit, ...], kind: str | None) -> tuple[Unit, ...]:
    if kind:
        of_kind = tuple(u for u in units if u.kind == kind)
        units = of_kind or units
    if len(units) > 1 and has_diacritics(text):
        typed = _accent_key(_split_ward_query_accented(text))
        same = tuple(u for u in units if typed in (_accent_key(u.name), _accent_key(_short(u.name))))
        units = same or units
    return units


def _split_ward_query_accented(text: str) -> str:
    text = collapse_spaces(nfc(text))
    return re.sub(r"^(phường|p\.?|xã|x\.?|đặc khu)\s+", "", text, flags=re.IGNORECASE)


def match_ward(province_code: int, text: str) -> UnitMatch:
    """A 2025 ward of this province from what the user typed (accents optional, 'p.', 'xã'...)."""
    index = _ward_index(int(province_code))
    query, kind = _split_ward_query(text)
    if not query:
        return UnitMatch()
    hits = index.exact.get(query) or index.exact.get(fold(text))
    if hits:
        hits = _prefer_accents(text, hits, kind)
        return UnitMatch(hits[:MAX_CANDIDATES], len(hits) == 1, exact=True)
    return _fuzzy_ward(index, query, kind)


def _fuzzy_ward(index: _WardIndex, query: str, kind: str | None) -> UnitMatch:
    if len(query) < 3:
        return UnitMatch()
    scored = process.extract(query, index.shorts, scorer=_score, limit=MAX_CANDIDATES * 2, score_cutoff=72)
    if kind:
        scored = [s for s in scored if index.units[s[2]].kind == kind] or scored
    if not scored:
        return UnitMatch()
    if _confident(scored[0][1], scored[1][1] if len(scored) > 1 else None):
        return UnitMatch((index.units[scored[0][2]],), True)
    near = [i for _, score, i in scored if score >= scored[0][1] - 12]
    return UnitMatch(tuple(index.units[i] for i in near[:MAX_CANDIDATES]), False)


@cache
def example_ward(province_code: int) -> Unit | None:
    """A real ward of the province for "Ví dụ: ..." in messages: the first phường (by code)
    of the province's historic core (the old province with the same code, e.g. Phường Tân
    Định for Hồ Chí Minh, not a ward of the former Bình Dương), else its first phường."""
    units = wards(province_code)
    if not units:
        return None
    rows = _vnau_query(
        "SELECT DISTINCT wardCode FROM admin_units_legacy WHERE provinceCode = ?", f"{province_code:02d}"
    )
    core_codes = {int(code) for (code,) in rows if str(code or "").isdigit()}
    phuong = [u for u in units if u.kind == "phường"]
    core = [u for u in phuong if u.code in core_codes]
    return (core or phuong or list(units))[0]


# ------------------------------------------------------------- pre-2025 addresses (lazy, heavy)

_LOAD_LOCK = threading.Lock()
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
    with _LOAD_LOCK:
        # ~0.6 s on an idle machine: the package imports geopy and shapely.
        from vietnamadminunits.parser import parse_address, parser_legacy

    conv = _vnau_json("converter_2025.json")
    no_divided: dict[str, dict[str, str]] = {}
    for new_p, table in conv["DICT_PROVINCE_WARD_NO_DIVIDED"].items():
        no_divided[new_p] = {old: new_w for new_w, olds in table.items() for old in olds}
    legacy = {
        "DICT_PROVINCE_DISTRICT": parser_legacy.DICT_PROVINCE_DISTRICT,
        "DICT_PROVINCE_DISTRICT_WARD_NO_ACCENTED": parser_legacy.DICT_PROVINCE_DISTRICT_WARD_NO_ACCENTED,
    }
    by_name: dict[str, dict[str, list[tuple[str, str, str]]]] = defaultdict(lambda: defaultdict(list))
    districts: dict[str, dict[str, str]] = {}
    for old_p, dmap in legacy["DICT_PROVINCE_DISTRICT"].items():
        districts[old_p] = {d: info["district"] for d, info in dmap.items()}
    for old_p, dmap in legacy["DICT_PROVINCE_DISTRICT_WARD_NO_ACCENTED"].items():
        for d, wmap in dmap.items():
            for w, info in wmap.items():
                # Some entries lack a short name (NaN in the source data). The package's own
                # keywords also list names absorbed before 2025, which would mislabel choices.
                names = [n for n in (info.get("ward"), info.get("wardShort")) if isinstance(n, str)]
                for label_key in {_key(n) for n in names}:
                    by_name[old_p][label_key].append((d, w, info["ward"]))
    return _Legacy(
        parse_address,
        no_divided,
        conv["DICT_PROVINCE_WARD_DIVIDED"],
        {p: dict(v) for p, v in by_name.items()},
        districts,
    )


def preload() -> None:
    """Load every index now (call once at start-up, e.g. in a thread) so no user waits ~0.6 s."""
    _province_index()
    for p in _provinces():
        _ward_index(p)
    _legacy()
    _former_districts()


@cache
def _former_districts() -> dict[int, tuple[str, ...]]:
    """2025 ward code -> the pre-2025 districts its old wards belonged to ("Quận 7")."""
    legacy = _legacy()
    found: dict[int, dict[str, int]] = defaultdict(dict)
    for new_p, code in _vnau_province_codes().items():
        lookup = _new_ward_by_key(code)
        pairs = [(old, new_w) for old, new_w in legacy.no_divided.get(new_p, {}).items()]
        for old, entries in legacy.divided.get(new_p, {}).items():
            pairs += [(old, e["newWardKey"]) for e in entries]
        for old_key, new_w in pairs:
            old_p, old_d = old_key.split("_")[:2]
            unit = lookup.get(new_w) or lookup.get(_key(new_w))
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
    return bool(_OLD_ADDRESS_HINT.search(fold(text)) or "," in text)


@cache
def _new_ward_by_key(province_code: int) -> dict[str, Unit]:
    """vietnamadminunits ward keys ('phuongtanhung', sometimes accented) -> our Unit."""
    table: dict[str, Unit] = {}
    for u in wards(province_code):
        table.setdefault(_key(u.name), u)
        table[_accent_key(u.name)] = u
    return table


def _new_province_key(province_code: int) -> str | None:
    return next((k for k, c in _vnau_province_codes().items() if c == province_code), None)


def _convert_keys(old_p: str, old_d: str, old_w: str) -> tuple[int, tuple[Unit, ...]] | None:
    """Old (province, district, ward) keys -> (new province code, candidate new wards)."""
    info = _old_provinces().get(old_p)
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
        u = lookup.get(k) or lookup.get(_key(k))
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
            province=_provinces()[code],
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
    query, _ = _split_ward_query(text)
    keys = [k for k in dict.fromkeys((_key(text), query.replace(" ", ""))) if k and not k.isdigit()]
    if not keys:
        return ()
    results: list[OldAddressConversion] = []
    for old_p, (old_pname, code) in _old_provinces().items():
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
                    province=_provinces()[code],
                    wards=converted[1],
                )
            )
    return tuple(results)
