"""The console's schools page (`/staff/schools`): a chart per school, roll-ups by ward and
by province, coverage against pupils, the days left to the district's deadline, and the
same figures as CSV and XLSX. Admins see every school (or one province's); a `school`
account sees its own school only. No script: the charts are inline SVG."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy.engine import Engine as SqlEngine

from bot.documents import today_in_vietnam
from bot.schools import accounts
from bot.schools.deadline import days_left, get_deadline, set_deadline
from bot.schools.figures import STAGES, roll_up, school_rows, to_csv, to_xlsx
from bot.schools.funnel import SchoolFunnel
from bot.schools.registry import SchoolRegistry
from bot.schools.report import school_report
from bot.schools.texts import school_text
from dialogs.ports import BackendUnavailable
from knowledge import admin_units

ROLES = ("admin", "school")
COLORS = {"self": "#1f6fb2", "children": "#e07b00"}
KEYS = ("province", "ward")  # the roll-up tables' keys, labelled like the export's columns


@dataclass(frozen=True)
class Bar:
    y: int
    width: int
    value: int
    group: str
    group_label: str
    color: str


@dataclass(frozen=True)
class ChartRow:
    y: int  # the label's baseline
    label: str
    bars: tuple[Bar, ...]


class Chart:
    """Per funnel step, two bars (self, children) scaled to the page's largest count."""

    width = 440
    left = 140
    row = 22

    def __init__(self, rows: list[dict]) -> None:
        counts = [row[f"{g}_{s}"] for row in rows for g in COLORS for s in STAGES]
        self.largest = max(counts, default=0) or 1
        self.height = self.row * len(STAGES) + 4

    def rows(self, row: dict) -> list[ChartRow]:
        span = self.width - self.left - 30
        result = []
        for i, stage in enumerate(STAGES):
            top = i * self.row + 2
            bars = tuple(
                Bar(
                    y=top + j * 9,
                    width=round(span * row[f"{group}_{stage}"] / self.largest),
                    value=row[f"{group}_{stage}"],
                    group=group,
                    group_label=school_text(f"group.{group}"),
                    color=COLORS[group],
                )
                for j, group in enumerate(COLORS)
            )
            result.append(ChartRow(top + 12, school_text(f"stage.{stage}"), bars))
        return result


class SchoolPages:
    def __init__(self, console: Any, engine: SqlEngine, backend: Any = None) -> None:
        self.console = console
        self.engine = engine
        self.backend = backend
        self.funnel = SchoolFunnel(engine, {})

    def mount(self) -> None:
        from bot.console.web import PREFIX

        c = self.console
        c.add_templates(Path(__file__).with_name("templates"))
        c.add_nav(school_text("nav.schools"), PREFIX + "/schools", ROLES)
        c.route("GET", "/schools", self.page, ROLES)
        c.route("GET", "/schools/export.csv", self.export_csv, ROLES)
        c.route("GET", "/schools/export.xlsx", self.export_xlsx, ROLES)
        c.route("POST", "/schools/deadline", self.deadline, ("admin",))

    # ------------------------------------------------------------ what the viewer may see

    def _scope(self, request: web.Request, staff: Any) -> tuple[int | None, str | None, bool]:
        """(province, school code, not linked): a school account is pinned to its school."""
        if staff.role == "school":
            code = accounts.school_of(self.engine, staff.username)
            return None, code, code is None
        province = request.query.get("province", "")
        return (int(province) if province.isdigit() else None), None, False

    async def _rows(self, request: web.Request, staff: Any) -> tuple[list[dict], int | None, bool]:
        if self.backend is not None:
            try:
                await self.funnel.collect_decisions(self.backend, db=_in_thread)
            except BackendUnavailable:
                pass  # approvals and rejections catch up on the next visit
        province, code, not_linked = await asyncio.to_thread(self._scope, request, staff)
        if not_linked:
            return [], province, True

        def read() -> list[dict]:
            schools = SchoolRegistry(self.engine).list(province=province, code=code)
            return school_rows(schools, school_report(self.engine, province=province, code=code))

        return await asyncio.to_thread(read), province, False

    # ------------------------------------------------------------ pages

    async def page(self, request: web.Request, staff: Any, deadline_error: str = "") -> web.StreamResponse:
        rows, province, not_linked = await self._rows(request, staff)
        deadline = await asyncio.to_thread(get_deadline, self.engine)
        return self.console.render(
            request,
            "schools.html.j2",
            staff,
            status=400 if deadline_error else 200,
            rows=rows,
            not_linked=not_linked,
            chart=Chart(rows),
            colors=COLORS,
            rollups=[
                (
                    school_text("rollup.by_ward"),
                    "by-ward",
                    ("province", "ward"),
                    roll_up(rows, ("province", "ward")),
                ),
                (
                    school_text("rollup.by_province"),
                    "by-province",
                    ("province",),
                    roll_up(rows, ("province",)),
                ),
            ],
            key_labels={k: school_text(f"column.{k}") for k in KEYS},
            deadline=deadline,
            days_left=days_left(deadline, today_in_vietnam()),
            deadline_error=deadline_error,
            province=province,
            provinces=[(u.code, u.name) for u in admin_units.provinces()],
            query=f"?province={province}" if province is not None else "",
        )

    async def _export(self, request: web.Request, staff: Any, kind: str) -> web.StreamResponse:
        rows, _, _ = await self._rows(request, staff)
        if kind == "csv":
            body, content_type = to_csv(rows), "text/csv; charset=utf-8"
        else:
            body = await asyncio.to_thread(to_xlsx, rows)
            content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        name = f"vssid-truong-{today_in_vietnam().isoformat()}.{kind}"
        await asyncio.to_thread(
            self.console.directory.audit, staff.username, "schools_export", kind, f"{len(rows)} schools"
        )
        return web.Response(
            body=body,
            headers={
                "Content-Type": content_type,
                "Content-Disposition": f'attachment; filename="{name}"',
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
            },
        )

    async def export_csv(self, request: web.Request, staff: Any) -> web.StreamResponse:
        return await self._export(request, staff, "csv")

    async def export_xlsx(self, request: web.Request, staff: Any) -> web.StreamResponse:
        return await self._export(request, staff, "xlsx")

    async def deadline(self, request: web.Request, staff: Any) -> web.StreamResponse:
        from bot.console.web import PREFIX

        value = str((await request.post()).get("deadline", "")).strip()
        try:
            day = date.fromisoformat(value) if value else None
        except ValueError:
            return await self.page(request, staff, deadline_error=school_text("deadline.bad", value=value))
        await asyncio.to_thread(set_deadline, self.engine, day)
        await asyncio.to_thread(
            self.console.directory.audit, staff.username, "schools_deadline", "schools", value or "cleared"
        )
        raise web.HTTPSeeOther(PREFIX + "/schools")


async def _in_thread(call: Any, *args: Any) -> Any:
    return await asyncio.to_thread(call, *args)
