"""The school registry: a CSV checked whole before anything is stored, and the table it fills.

Columns `code,name,province,ward,contact` and optional `pupils` (the headcount 100 % is
measured against). Province and ward are the 2025 units (`knowledge/admin_units.py`), by
code or by name as written on official papers; a pre-2025 name or a guess is refused with
the unit to write instead.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy.engine import Engine as SqlEngine
from sqlmodel import Session, col, select

from bot.schema import School, utcnow
from bot.schools.texts import school_text
from knowledge import admin_units

COLUMNS = ("code", "name", "province", "ward", "contact")
OPTIONAL_COLUMNS = ("pupils",)
# The code travels in a deep link `school_<code>` (Telegram allows 64 characters of A-Za-z0-9_-).
CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,56}$")


class SchoolCsvError(ValueError):
    """A file that cannot be imported; `problems` lists "line N: what is wrong" for every bad row."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class SchoolRecord:
    code: str
    name: str
    province_code: int
    province: str
    ward_code: int
    ward: str
    contact: str
    pupils: int | None

    def as_json(self) -> dict:
        return asdict(self)


def _province(text: str) -> tuple[admin_units.Unit | None, str | None]:
    if text.isdigit():
        unit = admin_units.province(int(text))
        return unit, None if unit else school_text("csv.province_code_unknown", text=text)
    match = admin_units.match_province(text)
    unit = match.unit
    if unit is None or not match.exact:
        return None, school_text("csv.province_unknown", text=text)
    if match.old_name:
        return None, school_text("csv.province_before_2025", text=text, name=unit.name, code=unit.code)
    return unit, None


def _ward(province: admin_units.Unit, text: str) -> tuple[admin_units.Unit | None, str | None]:
    if text.isdigit():
        unit = admin_units.ward(int(text))
        if unit is None or unit.province_code != province.code:
            return None, school_text("csv.ward_code_unknown", text=text, province=province.name)
        return unit, None
    match = admin_units.match_ward(province.code, text)
    if match.unit is None or not match.exact:
        example = admin_units.example_ward(province.code)
        return None, school_text("csv.ward_unknown", text=text, province=province.name, example=example)
    return match.unit, None


def _pupils(text: str) -> tuple[int | None, str | None]:
    if not text:
        return None, None
    if not text.isdigit() or int(text) == 0:
        return None, school_text("csv.pupils_bad", text=text)
    return int(text), None


def _row(row: dict[str, str]) -> tuple[SchoolRecord | None, list[str]]:
    value = {k: (row.get(k) or "").strip() for k in (*COLUMNS, *OPTIONAL_COLUMNS)}
    problems = []
    if not CODE.match(value["code"]):
        problems.append(school_text("csv.code_bad", code=value["code"]))
    if not value["name"]:
        problems.append(school_text("csv.name_empty"))
    province, problem = _province(value["province"])
    ward = None
    if problem:
        problems.append(problem)
    elif province is not None:
        ward, problem = _ward(province, value["ward"])
        if problem:
            problems.append(problem)
    pupils, problem = _pupils(value["pupils"])
    if problem:
        problems.append(problem)
    if problems or province is None or ward is None:
        return None, problems
    record = SchoolRecord(
        value["code"],
        value["name"],
        province.code,
        province.name,
        ward.code,
        ward.name,
        value["contact"],
        pupils,
    )
    return record, []


def parse_csv(text: str) -> list[SchoolRecord]:
    """Every row checked; any problem anywhere raises `SchoolCsvError` with all of them."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise SchoolCsvError([f"line 1: missing column(s) {', '.join(missing)} (need {','.join(COLUMNS)})"])
    reader.fieldnames = header
    records: list[SchoolRecord] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        record, row_problems = _row(row)
        problems += [f"line {line}: {p}" for p in row_problems]
        if record is None:
            continue
        if record.code in seen:
            problems.append(f"line {line}: code «{record.code}» is already on line {seen[record.code]}")
        seen[record.code] = line
        records.append(record)
    if problems:
        raise SchoolCsvError(problems)
    if not records:
        raise SchoolCsvError(["line 2: the file has no schools"])
    return records


def read_csv(path: Path) -> list[SchoolRecord]:
    return parse_csv(path.read_text(encoding="utf-8"))


def _record(row: School) -> SchoolRecord:
    return SchoolRecord(
        row.code, row.name, row.province_code, row.province, row.ward_code, row.ward, row.contact, row.pupils
    )


class SchoolRegistry:
    """The `school` table: imported schools are added or updated; others stay."""

    def __init__(self, engine: SqlEngine) -> None:
        self.engine = engine

    def save(self, records: list[SchoolRecord]) -> None:
        with Session(self.engine) as session:
            for record in records:
                session.merge(School(**asdict(record), updated_at=utcnow()))
            session.commit()

    def get(self, code: str) -> SchoolRecord | None:
        with Session(self.engine) as session:
            row = session.get(School, code)
            return _record(row) if row else None

    def list(self, province: int | None = None, code: str | None = None) -> list[SchoolRecord]:
        query = select(School).order_by(
            col(School.province_code), col(School.ward), col(School.name), col(School.code)
        )
        if province is not None:
            query = query.where(School.province_code == province)
        if code is not None:
            query = query.where(School.code == code)
        with Session(self.engine) as session:
            return [_record(row) for row in session.exec(query)]
