"""The report the district asks for: counts per school, never a name, ID number or phone.

`[{"code", "name", "self": {stage: n}, "children": {stage: n}}]` for the registered schools
(optionally one province's), counting the steps reached since a date (Vietnam time).
"""

from __future__ import annotations

from datetime import date, datetime, time

from sqlalchemy import func
from sqlalchemy.engine import Engine as SqlEngine
from sqlmodel import Session, col, select

from bot.schema import SchoolFunnelEvent
from bot.schools.funnel import STAGES
from bot.schools.registry import SchoolRegistry
from dialogs.ports import VIETNAM_TIME

GROUPS = {"individual": "self", "child": "children"}


def _empty() -> dict[str, int]:
    return dict.fromkeys(STAGES, 0)


def counts(
    engine: SqlEngine, codes: list[str], since: date | None = None
) -> dict[str, dict[str, dict[str, int]]]:
    """code -> {"self": {stage: n}, "children": {stage: n}}, every code present."""
    result = {code: {"self": _empty(), "children": _empty()} for code in codes}
    if not codes:
        return result
    table = SchoolFunnelEvent
    query = (
        select(table.school, table.kind, table.stage, func.count())
        .where(col(table.school).in_(codes))
        .group_by(table.school, table.kind, table.stage)
    )
    if since is not None:
        query = query.where(table.at >= datetime.combine(since, time(), VIETNAM_TIME))
    with Session(engine) as session:
        for school, kind, stage, n in session.exec(query):
            group = GROUPS.get(kind)
            if group and stage in STAGES:
                result[school][group][stage] = n
    return result


def school_report(
    engine: SqlEngine, province: int | None = None, since: date | None = None, code: str | None = None
) -> list[dict]:
    schools = SchoolRegistry(engine).list(province=province, code=code)
    figures = counts(engine, [s.code for s in schools], since)
    return [{"code": s.code, "name": s.name, **figures[s.code]} for s in schools]
