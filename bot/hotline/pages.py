"""The hotline's console pages: tickets (list, one ticket, take / reply / hand back),
handoff links with their QR code, and the home page's figures.

Every action and every ticket opened is written to the audit log with who did it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.config import Settings
from bot.console.auth import Staff
from bot.console.web import PREFIX, Console
from bot.hotline.desk import HotlineDesk, hotline_texts
from bot.hotline.handoffs import FLOWS, HandoffRefused, create_handoff, qr_svg
from bot.hotline.store import STATUSES, fields_of, ticket_json
from bot.schools.links import telegram_username

ROLES = ("hotline", "admin")


def _flow_labels() -> dict[str, str]:
    """What staff see for each guide a ticket or handoff is about (hotline texts.yaml)."""
    labels: dict[str, str] = hotline_texts().raw("flow_labels")
    return labels


class HotlinePages:
    def __init__(self, console: Console, desk: HotlineDesk, settings: Settings) -> None:
        self.console = console
        self.desk = desk
        self.store = desk.store
        self.settings = settings
        self._telegram_user: str | None = None  # the bot's username, asked once

    def mount(self) -> None:
        c = self.console
        c.add_templates(Path(__file__).with_name("templates"))
        texts = hotline_texts()
        c.add_nav(texts("nav.tickets"), PREFIX + "/tickets", ROLES)
        c.add_nav(texts("nav.handoffs"), PREFIX + "/handoffs", ROLES)
        c.add_panel("hotline_panel.html.j2", self._panel)
        c.route("GET", "/tickets", self.tickets, ROLES)
        c.route("GET", "/api/tickets", self.tickets_json, ROLES)
        c.route("GET", "/tickets/{id:\\d+}", self.ticket, ROLES)
        c.route("POST", "/tickets/{id:\\d+}/take", self.take, ROLES)
        c.route("POST", "/tickets/{id:\\d+}/reply", self.reply, ROLES)
        c.route("POST", "/tickets/{id:\\d+}/hand-back", self.hand_back, ROLES)
        c.route("GET", "/handoffs", self.handoff_form, ROLES)
        c.route("POST", "/handoffs", self.handoff_create, ROLES)

    async def _audit(self, staff: Staff, action: str, target: str, detail: str = "") -> None:
        await asyncio.to_thread(self.console.directory.audit, staff.username, action, target, detail)

    async def _panel(self, staff: Staff) -> dict[str, Any]:
        if staff.role not in ROLES:
            return {"hidden": True}
        stats = await asyncio.to_thread(self.store.stats)
        return {"hidden": False, **stats}

    # ------------------------------------------------------------ tickets

    async def tickets(self, request: web.Request, staff: Staff) -> web.StreamResponse:
        status = request.query.get("status") or None
        if status not in (None, *STATUSES):
            status = None
        rows = await asyncio.to_thread(self.store.tickets, status)
        return self.console.render(
            request, "tickets.html.j2", staff, tickets=list(reversed(rows)), shown=status, statuses=STATUSES
        )

    async def tickets_json(self, request: web.Request, staff: Staff) -> web.StreamResponse:
        status = request.query.get("status") or None
        rows = await asyncio.to_thread(self.store.tickets, status if status in STATUSES else None)
        return web.json_response([ticket_json(t) for t in rows])

    async def ticket(self, request: web.Request, staff: Staff) -> web.StreamResponse:
        ticket_id = int(request.match_info["id"])
        ticket = await asyncio.to_thread(self.store.get, ticket_id)
        if ticket is None:
            raise web.HTTPNotFound()
        messages = await asyncio.to_thread(self.store.messages, ticket_id)
        await self._audit(staff, "ticket_open", f"ticket:{ticket_id}", ticket.conversation)
        return self.console.render(
            request,
            "ticket.html.j2",
            staff,
            ticket=ticket,
            fields=fields_of(ticket),
            messages=messages,
            flow_label=_flow_labels().get(ticket.flow or "", ticket.flow or ""),
        )

    async def _act(self, request: web.Request, staff: Staff, action: str) -> web.StreamResponse:
        ticket_id = int(request.match_info["id"])
        if action == "take":
            done = await self.desk.take(ticket_id, staff)
        elif action == "reply":
            text = str((await request.post()).get("text", ""))
            done = await self.desk.reply(ticket_id, staff, text) if text.strip() else None
        else:
            done = await self.desk.hand_back(ticket_id, staff)
        if done is not None:
            await self._audit(staff, f"ticket_{action.replace('-', '_')}", f"ticket:{ticket_id}")
        raise web.HTTPSeeOther(f"{PREFIX}/tickets/{ticket_id}")

    async def take(self, request: web.Request, staff: Staff) -> web.StreamResponse:
        return await self._act(request, staff, "take")

    async def reply(self, request: web.Request, staff: Staff) -> web.StreamResponse:
        return await self._act(request, staff, "reply")

    async def hand_back(self, request: web.Request, staff: Staff) -> web.StreamResponse:
        return await self._act(request, staff, "hand-back")

    # ------------------------------------------------------------ handoffs

    def _handoff_page(self, request: web.Request, staff: Staff, **context: Any) -> web.Response:
        values = {"error": "", "result": None, "qr": {}, "form": {}, **context}
        return self.console.render(
            request, "handoff.html.j2", staff, flows=[(f, _flow_labels()[f]) for f in FLOWS], **values
        )

    async def handoff_form(self, request: web.Request, staff: Staff) -> web.StreamResponse:
        return self._handoff_page(request, staff)

    async def handoff_create(self, request: web.Request, staff: Staff) -> web.StreamResponse:
        form = await request.post()
        values = {k: str(form.get(k, "")) for k in ("note", "flow", "phone")}
        if self._telegram_user is None:
            self._telegram_user = await telegram_username(self.settings) or ""
        try:
            result = await asyncio.to_thread(
                create_handoff,
                self.settings,
                self.store,
                note=values["note"],
                flow=values["flow"] or None,
                phone=values["phone"] or None,
                staff=staff,
                base=str(request.url.origin()),
                telegram_user=self._telegram_user or None,
            )
        except HandoffRefused as exc:
            return self._handoff_page(request, staff, error=str(exc), form=values)
        await self._audit(staff, "handoff_create", values["flow"])
        qr = {channel: qr_svg(link) for channel, link in result["links"].items() if link}
        return self._handoff_page(request, staff, result=result, qr=qr)
