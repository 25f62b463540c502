"""The figures the console's schools page shows and exports: one row per school, roll-ups by
ward and by province, coverage against pupils, and the same rows as CSV and XLSX."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from bot.schools.funnel import STAGES
from bot.schools.texts import school_text

GROUPS = ("self", "children")
COUNT_COLUMNS = tuple(f"{group}_{stage}" for group in GROUPS for stage in STAGES)
EXPORT_COLUMNS = ("code", "name", "province", "ward", "pupils", *COUNT_COLUMNS, "coverage")


def coverage(children_confirmed: int, pupils: int | None) -> float | None:
    """Children registered and confirmed by OTP, as a share of the pupils (None: headcount unknown)."""
    return children_confirmed / pupils if pupils else None


def school_rows(schools: Iterable, report: list[dict]) -> list[dict]:
    """One flat row per school: registry columns, the twelve counts, coverage."""
    figures = {item["code"]: item for item in report}
    rows = []
    for school in schools:
        item = figures[school.code]
        row = {
            "code": school.code,
            "name": school.name,
            "province": school.province,
            "ward": school.ward,
            "pupils": school.pupils,
            **{f"{g}_{s}": item[g][s] for g in GROUPS for s in STAGES},
        }
        row["coverage"] = coverage(row["children_confirmed"], row["pupils"])
        rows.append(row)
    return rows


def roll_up(rows: list[dict], keys: tuple[str, ...]) -> list[dict]:
    """Sums by `keys` (("province",) or ("province", "ward")); pupils and coverage over the
    schools whose headcount is known."""
    groups: dict[tuple, dict] = {}
    for row in rows:
        key = tuple(row[k] for k in keys)
        total = groups.setdefault(
            key,
            {
                **dict(zip(keys, key, strict=True)),
                "schools": 0,
                "pupils": 0,
                "known": 0,
                **dict.fromkeys(COUNT_COLUMNS, 0),
            },
        )
        total["schools"] += 1
        for column in COUNT_COLUMNS:
            total[column] += row[column]
        if row["pupils"]:
            total["pupils"] += row["pupils"]
            total["known"] += row["children_confirmed"]
    result = []
    for total in groups.values():
        total["coverage"] = coverage(total.pop("known"), total["pupils"] or None)
        result.append(total)
    return sorted(result, key=lambda t: tuple(t[k] for k in keys))


def headers() -> list[str]:
    return [school_text(f"column.{column}") for column in EXPORT_COLUMNS]


def _cells(row: dict) -> list:
    cells = [row[c] for c in EXPORT_COLUMNS]
    cells[-1] = round(row["coverage"], 4) if row["coverage"] is not None else None
    return cells


def to_csv(rows: list[dict]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(headers())
    for row in rows:
        writer.writerow(["" if cell is None else cell for cell in _cells(row)])
    return ("\ufeff" + out.getvalue()).encode("utf-8")  # the BOM lets Excel read the accents


def to_xlsx(rows: list[dict]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    sheet.title = school_text("export.sheet")
    sheet.append(headers())
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append(_cells(row))
        sheet.cell(sheet.max_row, len(EXPORT_COLUMNS)).number_format = "0.0%"
    sheet.freeze_panes = "C2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
