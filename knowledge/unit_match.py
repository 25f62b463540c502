"""Which 2025 province or ward a parent means, from what they typed.

Accents optional, abbreviations ("hcm", "p.", "xã"), typos, the old name of a merged
province ("Bình Dương" -> Thành phố Hồ Chí Minh): confident for one clear hit, a few
candidates when unsure, nothing when nothing is close.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from functools import cache

from rapidfuzz import process

from . import vnau
from .text import collapse_spaces, fold, has_diacritics, nfc
from .units import (
    MAX_CANDIDATES,
    Unit,
    UnitMatch,
    accent_key,
    confident,
    name_key,
    new_province_codes,
    old_province_info,
    old_provinces,
    provinces_by_code,
    short_name,
    similarity,
    wards,
    words,
)

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
# The parts of a whole address typed on one line, or on several.
_PARTS = re.compile(r"[,;\n]")


@dataclass(frozen=True)
class _Alias:
    key: str  # folded (data keywords come without spaces)
    code: int
    old_name: str | None
    fuzzy: bool = True  # spaced names only: space-free keywords would skew the scores


def warm_up() -> None:
    """Build the province index and every province's ward index now."""
    _province_index()
    for p in provinces_by_code():
        _ward_index(p)


@cache
def _province_index() -> tuple[tuple[_Alias, ...], dict[str, tuple[_Alias, ...]]]:
    aliases: list[_Alias] = []
    for unit in provinces_by_code().values():
        short = fold(short_name(unit.name))
        for key in (fold(unit.name), short, f"tp {short}", f"tinh {short}"):
            aliases.append(_Alias(key, unit.code, None))
    for key, code in _EXTRA_PROVINCE_ALIASES.items():
        aliases.append(_Alias(key, code, None))
    new_data = vnau.data_json("parser_from_2025.json")["DICT_PROVINCE"]
    codes = new_province_codes()
    for new_key, info in new_data.items():
        for kw in info["provinceKeywords"]:
            aliases.append(_Alias(kw, codes[new_key], None, fuzzy=False))
    old_info = old_province_info()
    for old_key, (old_name, code) in old_provinces().items():
        new_name = provinces_by_code()[code].name
        label = (
            None if name_key(short_name(old_name)) == name_key(short_name(new_name)) else short_name(old_name)
        )
        aliases.append(_Alias(fold(old_name), code, label))
        aliases.append(_Alias(fold(short_name(old_name)), code, label))
        for kw in old_info[old_key][2]:
            aliases.append(_Alias(kw, code, label, fuzzy=False))
    by_key: dict[str, list[_Alias]] = defaultdict(list)
    for a in aliases:
        by_key[name_key(a.key)].append(a)
    spaced = tuple(a for a in aliases if a.fuzzy and len(a.key) > 3)
    return spaced, {k: tuple(v) for k, v in by_key.items()}


@cache
def _exact_province(key: str) -> UnitMatch:
    """The match of a name key some alias has, made once per key (the aliases never change)."""
    return _from_aliases(_province_index()[1][key])


def _from_aliases(hits: tuple[_Alias, ...]) -> UnitMatch:  # exact alias hits
    codes = sorted({a.code for a in hits})
    units = tuple(provinces_by_code()[c] for c in codes)
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
    parts = [fold(p) for p in _PARTS.split(nfc(text)) if fold(p)]
    for candidate in [folded, *reversed(parts)] if len(parts) > 1 else [folded]:
        stripped = _PROVINCE_PREFIX.sub("", candidate)
        for k in (name_key(candidate), name_key(stripped)):
            if k in by_key:
                return _exact_province(k)
    return _fuzzy_province(_PROVINCE_PREFIX.sub("", parts[-1] if parts else folded))


def _fuzzy_province(query: str) -> UnitMatch:
    if len(query) < 3:
        return UnitMatch()
    spaced, _ = _province_index()
    choices = [a.key for a in spaced]
    scored = process.extract(query, choices, scorer=similarity, limit=40, score_cutoff=70)
    best: dict[int, tuple[float, _Alias]] = {}
    for _, score, idx in scored:
        alias = spaced[idx]
        if alias.code not in best or score > best[alias.code][0]:
            best[alias.code] = (score, alias)
    ranked = sorted(best.values(), key=lambda item: -item[0])
    if not ranked:
        return UnitMatch()
    top_score, top = ranked[0]
    if confident(top_score, ranked[1][0] if len(ranked) > 1 else None):
        return UnitMatch((provinces_by_code()[top.code],), True, top.old_name)
    near = [a for score, a in ranked if score >= top_score - 12]
    return UnitMatch(tuple(provinces_by_code()[a.code] for a in near[:MAX_CANDIDATES]), False, None)


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
        for key in {fold(u.name), fold(short_name(u.name))}:
            exact[key].append(u)
    return _WardIndex(
        units, {k: tuple(v) for k, v in exact.items()}, tuple(fold(short_name(u.name)) for u in units)
    )


def split_ward_query(text: str) -> tuple[str, str | None]:
    """Fold and drop a leading 'phường/p./xã' word; returns (query, kind asked for)."""
    query = fold(text)
    m = _WARD_PREFIX.match(query)
    if m and query[m.end() :].strip():
        rest = query[m.end() :].strip()
        # "Phường 1" style names keep their word: the digits alone are no name.
        if not rest.isdigit():
            return rest, words()["ward_kind_by_prefix"].get(m.group(1))
    return query, None


def _prefer_accents(text: str, units: tuple[Unit, ...], kind: str | None) -> tuple[Unit, ...]:
    if kind:
        of_kind = tuple(u for u in units if u.kind == kind)
        units = of_kind or units
    if len(units) > 1 and has_diacritics(text):
        typed = accent_key(_split_ward_query_accented(text))
        same = tuple(u for u in units if typed in (accent_key(u.name), accent_key(short_name(u.name))))
        units = same or units
    return units


def _split_ward_query_accented(text: str) -> str:
    text = collapse_spaces(nfc(text))
    return _accented_ward_prefix().sub("", text)


@cache
def _accented_ward_prefix() -> re.Pattern[str]:
    return re.compile(r"^(" + "|".join(words()["typed_ward_prefixes"]) + r")\s+", re.IGNORECASE)


def match_ward(province_code: int, text: str) -> UnitMatch:
    """A 2025 ward of this province from what the user typed (accents optional, 'p.', 'xã'...)."""
    index = _ward_index(int(province_code))
    query, kind = split_ward_query(text)
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
    scored = process.extract(
        query, index.shorts, scorer=similarity, limit=MAX_CANDIDATES * 2, score_cutoff=72
    )
    if kind:
        scored = [s for s in scored if index.units[s[2]].kind == kind] or scored
    if not scored:
        return UnitMatch()
    if confident(scored[0][1], scored[1][1] if len(scored) > 1 else None):
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
    rows = vnau.query(
        "SELECT DISTINCT wardCode FROM admin_units_legacy WHERE provinceCode = ?", f"{province_code:02d}"
    )
    core_codes = {int(code) for (code,) in rows if str(code or "").isdigit()}
    phuong = [u for u in units if u.kind == words()["urban_ward_kind"]]
    core = [u for u in phuong if u.code in core_codes]
    return (core or phuong or list(units))[0]
