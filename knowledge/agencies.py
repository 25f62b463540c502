"""The directory of social-insurance (BHXH) offices a declaration can be sent to.

The data lives in `agencies.csv` next to this module (one row per office: code, name,
phone, address, province_code, parent_code, source) so an officer can review it in a
spreadsheet. Phone and address are filled only where a cited source prints them.

Operators replace the directory with their own CSV: set `VSSID_AGENCIES_CSV`, or import
one into the data directory (`vssid-bot agencies import FILE.csv`, which validates it the
same way `AgencyDirectory.from_csv` does and reports every bad row by line number).

Codes: a province-level office uses the zero-padded 3-digit province code ("079"); a
district office uses the code the circulars print ("07919"). An office whose code no
source gives carries a local code "<province>-<slug>" ("031-hong-bang"), which is never
shown to users as if it were an official code.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator

from .text import collapse_spaces, fold, nfc

DEFAULT_CSV = Path(__file__).with_name("agencies.csv")
ENV_VAR = "VSSID_AGENCIES_CSV"
DATA_DIR_FILE = "agencies.csv"  # name of an imported directory inside the data dir

COLUMNS = ("code", "name", "phone", "address", "province_code", "parent_code", "source")
REQUIRED_COLUMNS = ("code", "name", "province_code")

_OFFICIAL_CODE = re.compile(r"^\d{3}(\d{2})?$")
_LOCAL_CODE = re.compile(r"^\d{3}-[a-z0-9]+(-[a-z0-9]+)*$")
_PHONE_CHARS = re.compile(r"^[0-9 .()+\-/,;]+$")


@dataclass(frozen=True)
class Agency:
    code: str
    name: str
    phone: str = ""
    address: str = ""
    province_code: int = 0
    parent_code: str = ""
    source: str = ""

    @property
    def official_code(self) -> bool:
        """False for local codes invented for offices no source gives a code for."""
        return bool(_OFFICIAL_CODE.match(self.code))

    @property
    def is_province_office(self) -> bool:
        return self.code == f"{self.province_code:03d}"

    def as_value(self) -> dict[str, str]:
        """The JSON-serialisable form the dialog engine stores."""
        return {"code": self.code, "name": self.name, "phone": self.phone, "address": self.address}


class AgencyCsvError(ValueError):
    """A CSV that cannot be used; `problems` lists "line N: what is wrong" for every bad row."""

    def __init__(self, path: str | Path, problems: list[str]) -> None:
        self.path = str(path)
        self.problems = problems
        super().__init__(f"{path}: {len(problems)} problem(s)\n" + "\n".join(problems))


def _label(agency: Agency) -> str:
    return f"[{agency.code}] {agency.name}" if agency.official_code else agency.name


# Words every name shares, or spellings of the same thing: folded so "bhxh quan 7",
# "bao hiem xa hoi q7" and "quận 7" meet "BHXH Quận 7".
_SEARCH_REWRITES = (
    (re.compile(r"\bbao hiem xa hoi\b"), " "),
    (re.compile(r"\bbhxh\b"), " "),
    (re.compile(r"\bq\s*(\d+)\b"), r"quan \1"),
    (re.compile(r"\btp\b"), "thanh pho"),
    (re.compile(r"\btx\b"), "thi xa"),
    (re.compile(r"\bh\b"), "huyen"),
)


def _search_key(text: str) -> str:
    key = fold(text)
    for pattern, repl in _SEARCH_REWRITES:
        key = pattern.sub(repl, key)
    return collapse_spaces(key)


_TYPE_WORDS = frozenset({"quan", "huyen", "thi", "xa", "thanh", "pho", "tinh"})


class AgencyDirectory:
    """An immutable, indexed set of agencies."""

    _default_cache: dict[str, AgencyDirectory] = {}  # noqa: RUF012 (class-level cache by path)

    def __init__(self, agencies: Iterable[Agency]) -> None:
        self._agencies: tuple[Agency, ...] = tuple(agencies)
        self._by_code = {a.code: a for a in self._agencies}
        self._keys = tuple(_search_key(a.name) for a in self._agencies)
        self._tokens = tuple(frozenset(k.split()) for k in self._keys)
        # Names without "quận/huyện/tỉnh...": typo matching compares what distinguishes them.
        self._bare_keys = tuple(" ".join(t for t in k.split() if t not in _TYPE_WORDS) for k in self._keys)

    # -- construction

    _data_dir: Path | None = None

    @classmethod
    def configure(cls, data_dir: str | Path | None) -> None:
        """Tell `default()` which data dir to look in (the bot calls this once at start-up,
        so the parsers, which only get text and values, see an imported directory)."""
        cls._data_dir = Path(data_dir) if data_dir is not None else None

    @classmethod
    def default(cls, data_dir: str | Path | None = None) -> AgencyDirectory:
        """The directory in use (cached): `$VSSID_AGENCIES_CSV`, else `<data_dir>/agencies.csv`
        when an operator imported one, else the packaged CSV."""
        path = cls.default_path(data_dir if data_dir is not None else cls._data_dir)
        key = str(path)
        if key not in cls._default_cache:
            cls._default_cache[key] = cls.from_csv(path)
        return cls._default_cache[key]

    @staticmethod
    def default_path(data_dir: str | Path | None = None) -> Path:
        env = os.environ.get(ENV_VAR, "").strip()
        if env:
            return Path(env).expanduser()
        if data_dir is not None and (Path(data_dir) / DATA_DIR_FILE).is_file():
            return Path(data_dir) / DATA_DIR_FILE
        return DEFAULT_CSV

    @classmethod
    def clear_cache(cls) -> None:
        cls._default_cache.clear()

    @classmethod
    def from_csv(cls, path: str | Path) -> AgencyDirectory:
        """Read and validate a CSV; raises AgencyCsvError listing every bad row."""
        with open(path, encoding="utf-8-sig", newline="") as f:
            return cls(parse_csv(f, str(path)))

    # -- queries

    def __iter__(self) -> Iterator[Agency]:
        return iter(self._agencies)

    def __len__(self) -> int:
        return len(self._agencies)

    def get(self, code: str) -> Agency | None:
        return self._by_code.get(str(code).strip())

    def for_province(self, province_code: int) -> list[Agency]:
        """The province office first, then its district offices, then any other office
        located there (e.g. a pre-2025 province's office), each group by code."""
        found = [a for a in self._agencies if a.province_code == int(province_code)]
        office = f"{int(province_code):03d}"

        def rank(a: Agency) -> tuple[int, bool, str]:
            group = 0 if a.code == office else 1 if a.parent_code == office else 2
            return group, not a.official_code, a.code

        return sorted(found, key=rank)

    def label(self, agency: Agency) -> str:
        """'[07919] BHXH Quận 7'; an office with a local code shows its name only."""
        return _label(agency)

    def search(self, text: str, limit: int = 6) -> list[Agency]:
        """Agencies matching what a user typed: a code ("07919", "[079]"), a name with or
        without accents ("quan 7", "q7", "bhxh quan 7", "hong bang"), best first."""
        raw = fold(text)
        if not raw:
            return []
        typed = collapse_spaces(nfc(text)).strip("[] ").lower()
        if typed in self._by_code:  # a code typed as is, local codes included
            return [self._by_code[typed]]
        digits = re.sub(r"\D", "", raw)
        if digits and digits == raw.replace(" ", ""):
            prefixed = [a for a in self._agencies if a.code.startswith(digits)]
            return sorted(prefixed, key=lambda a: a.code)[:limit]
        query = _search_key(text)
        q_tokens = set(query.split())
        if not q_tokens - _TYPE_WORDS:
            return []  # "bhxh", "quan": every office would match
        exact = [a for a, k in zip(self._agencies, self._keys, strict=True) if k == query]
        # Every typed word present: "quan 1" finds Quận 1, not Quận 12.
        contained = [
            a
            for a, toks in zip(self._agencies, self._tokens, strict=True)
            if q_tokens <= toks and a not in exact
        ]
        results = exact + sorted(contained, key=lambda a: (len(_search_key(a.name)), a.code))
        if not results:
            # A province typed the way people say it ("hcm", "sai gon", "Bình Dương").
            from .admin_units import match_province

            match = match_province(text)
            if match.unit is not None:
                results = self.for_province(match.unit.code)
        if not results and len(query) >= 3:
            # Typos: "hong bag".
            bare = " ".join(t for t in query.split() if t not in _TYPE_WORDS)
            from rapidfuzz import fuzz, process  # the first fuzzy look-up, not every start-up

            scored = process.extract(bare, self._bare_keys, scorer=fuzz.ratio, limit=limit, score_cutoff=80)
            results = [self._agencies[idx] for _, _, idx in scored]
        return results[:limit]


class AgencyRow(BaseModel):
    """One row of the agency CSV, cells already NFC and space-collapsed.

    Unknown columns are rejected (`extra="forbid"`); each check reports its own problem in
    the words an operator reads after "line N: ". Checks across rows (a code used twice)
    read the codes seen so far from the validation context.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str
    name: str
    province_code: int
    phone: str = ""
    address: str = ""
    parent_code: str = ""
    source: str = ""

    @field_validator("code")
    @classmethod
    def _code(cls, code: str, info: ValidationInfo) -> str:
        seen: dict[str, int] = (info.context or {}).get("seen", {})
        if not code:
            raise _problem("code is empty")
        if not (_OFFICIAL_CODE.match(code) or _LOCAL_CODE.match(code)):
            raise _problem(
                f"code {code!r} must be 3 digits (province office, e.g. 079), 5 digits "
                "(district office, e.g. 07919) or a local code like 031-hong-bang"
            )
        if code in seen:
            raise _problem(f"code {code} already used on line {seen[code]}")
        return code

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not name:
            raise _problem("name is empty")
        return name

    @field_validator("province_code", mode="before")
    @classmethod
    def _province(cls, raw: object) -> int:
        if not isinstance(raw, str) or not raw.isdigit():
            raise _problem(f"province_code {raw!r} must be a number, e.g. 79")
        province_code = int(raw)
        if province_code not in _province_codes():
            raise _problem(f"province_code {province_code} is not one of the 34 provinces (2025)")
        return province_code

    @field_validator("phone")
    @classmethod
    def _phone(cls, phone: str) -> str:
        if phone and (not _PHONE_CHARS.match(phone) or sum(ch.isdigit() for ch in phone) < 8):
            raise _problem(f"phone {phone!r} is not a phone number, e.g. (028) 39.979.039")
        return phone

    def agency(self) -> Agency:
        return Agency(**self.model_dump())


class _RowProblem(ValueError):
    """What is wrong with one cell, in the operator's words (pydantic keeps it in the error's ctx)."""


def _problem(text: str) -> _RowProblem:
    return _RowProblem(text)


def _row_problems(error: ValidationError) -> list[str]:
    """The operator's words for each failed check (pydantic's own words for anything else)."""
    found = []
    for item in error.errors():
        cause = item.get("ctx", {}).get("error")
        if isinstance(cause, _RowProblem):
            found.append(str(cause))
        else:
            found.append(f"{'.'.join(str(part) for part in item['loc'])}: {item['msg']}")
    return found


def _header(reader: csv.DictReader[str], name: str) -> list[str]:
    """The column names, stripped; the whole file is refused on a missing or unknown column."""
    header = [h.strip() for h in (reader.fieldnames or [])]
    problems: list[str] = []
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    unknown = [c for c in header if c not in COLUMNS]
    if missing:
        problems.append(f"line 1: missing column(s) {', '.join(missing)}; expected {','.join(COLUMNS)}")
    if unknown:
        problems.append(f"line 1: unknown column(s) {', '.join(unknown)}; expected {','.join(COLUMNS)}")
    if problems:
        raise AgencyCsvError(name, problems)
    return header


def parse_csv(lines: Iterable[str], name: str = "<csv>") -> list[Agency]:
    """Validate rows; collects every problem (line number + what is wrong) before raising."""
    reader = csv.DictReader(line for line in lines)
    reader.fieldnames = _header(reader, name)
    problems: list[str] = []
    rows: list[tuple[int, AgencyRow]] = []
    seen: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        cells = {k: collapse_spaces(nfc(v or "")) for k, v in row.items() if k is not None}
        if None in row:
            problems.append(f"line {line}: more cells than columns")
        if not any(cells.values()) or cells.get("code", "").startswith("#"):
            continue  # blank lines and comment rows are allowed
        try:
            checked = AgencyRow.model_validate(cells, context={"seen": seen})
        except ValidationError as error:
            problems.extend(f"line {line}: {p}" for p in _row_problems(error))
            continue
        seen[checked.code] = line
        rows.append((line, checked))
    problems += _parent_problems(rows)
    if not rows and not problems:
        problems.append("no agencies: the file has a header but no rows")
    if problems:
        raise AgencyCsvError(name, problems)
    return [checked.agency() for _, checked in rows]


def _parent_problems(rows: list[tuple[int, AgencyRow]]) -> list[str]:
    codes = {checked.code for _, checked in rows}
    problems = []
    for line, checked in rows:
        parent = checked.parent_code
        if not parent:
            continue
        if parent == checked.code:
            problems.append(f"line {line}: parent_code {parent} is the row itself")
        elif parent not in codes:
            problems.append(f"line {line}: parent_code {parent} is not a code in this file")
    return problems


@cache
def _province_codes() -> frozenset[int]:
    from vietnam_provinces import Province

    return frozenset(int(p.code) for p in Province.iter_all())
