"""Where a conversation meets a person: around `Engine.handle`, in the bot layer.

    desk.handle(state, inbound)   every user message goes through here instead of the engine:
        /start h-<token>  -> the staff member's note, then the named flow (a used, expired or
                             unknown token: one sentence, then the usual start)
        held ticket       -> the message goes to the ticket; the assistant stays silent
        «Gặp nhân viên», /human, "cho gặp người thật" -> a ticket (waiting)
        anything else     -> the engine; a person is offered after three failures at one
                             step or two unanswered questions in a row

    take / reply / hand_back   what staff do (console or shell); replies reach the citizen on
                               their own channel (`push`); handing back asks the same step again
    sweep                      tells citizens whose ticket nobody took in time

The conversation state says whether a person holds it (`meta["ticket"]`), so deciding
costs nothing per message; the ticket tables are the record staff read.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.channels.replies import outbounds_to_payload
from bot.hotline.hours import OfficeHours
from dialogs.catalog import Catalog, catalog
from dialogs.messages import Button, Inbound, Outbound
from dialogs.state import ConversationState, PendingType
from dialogs.texts import Texts
from knowledge.faq import message as faq_message
from knowledge.text import fold

if TYPE_CHECKING:
    from bot.console.auth import Staff
    from bot.hotline.store import HotlineStore, Ticket

# The ticket store (sqlmodel) is imported when a ticket is opened or read: every message goes
# through the desk, and a terminal chat on SQLite starts without SQLAlchemy.

log = logging.getLogger(__name__)

HUMAN_PAYLOADS = {"nav:human", "human"}
HANDOFF = re.compile(r"^(?:/start\s+)?h-([A-Za-z0-9_-]{16,64})$")
TRANSCRIPT_KEEP = 12
TRANSCRIPT_CHARS = 300
FAILURES_BEFORE_OFFER = 3


@cache
def hotline_texts() -> Catalog:
    return catalog(Path(__file__).with_name("texts.yaml"))


@cache
def _human_words() -> tuple[frozenset[str], re.Pattern[str]]:
    """What asks for a person, on folded text (letters, digits, single spaces): a whole
    message among `human_exact`, or a verb of `human_verbs` then one of `human_people`, whole
    words, searched with a space added at each end (no `\\b` tried at every position)."""
    texts = hotline_texts()
    verbs = "|".join(map(re.escape, texts.raw("human_verbs")))
    people = "|".join(map(re.escape, texts.raw("human_people")))
    return frozenset(texts.raw("human_exact")), re.compile(
        rf" (?:{verbs})(?: voi| sang| cho| den| qua)?(?: mot)? (?:{people}) "
    )


def asks_for_person(inbound: Inbound) -> bool:
    if inbound.button is not None:
        return inbound.button in HUMAN_PAYLOADS
    command = inbound.command
    if command is not None:
        return command[0] in {"human", "nhanvien", "tongdai"}
    if not inbound.text:
        return False
    folded = fold(inbound.text)
    exact, verb_and_person = _human_words()
    return folded in exact or verb_and_person.search(f" {folded} ") is not None


def handoff_token(inbound: Inbound) -> str | None:
    text = inbound.text
    if not text or "h-" not in text:  # every message is asked; a token is rarely there
        return None
    found = HANDOFF.match(text.strip())
    return found.group(1) if found else None


def _erasing(state: ConversationState, inbound: Inbound) -> bool:
    """/delete and its confirmation reach the assistant even while staff hold the conversation:
    a citizen can always have their data erased (the ticket is emptied with it)."""
    command = inbound.command
    pending = state.pending
    return (command is not None and command[0] == "delete") or (
        pending is not None and pending.type == PendingType.DELETE
    )


class HotlineDesk:
    def __init__(
        self,
        assistant: Any,
        store: HotlineStore | Callable[[], HotlineStore],
        *,
        hours: OfficeHours,
        wait: timedelta,
        texts: Texts | None = None,
    ) -> None:
        self.assistant = assistant
        self._store = store  # or a function that makes it, called when a ticket is first touched
        self.hours = hours
        self.wait = wait
        self.texts = texts or hotline_texts()
        # The assistant's two ways of saying it cannot answer. The second is a template: it is
        # rendered the first time a reply starts with its words (rendering imports jinja2, a
        # third of a terminal chat's set-up, for a `/start` that never needs it).
        self._faq_refusal = faq_message("refuse")
        unanswered = str(Texts.default().raw("question_unanswered")).lstrip()
        self._unanswered_start = (
            unanswered[: unanswered.find("{")].rstrip() if "{" in unanswered else unanswered
        )
        self._unanswered: str | None = None

    @property
    def store(self) -> HotlineStore:
        if callable(self._store):
            self._store = self._store()
        return self._store

    @property
    def engine(self) -> Any:
        return self.assistant.engine

    def now(self) -> datetime:
        return self.engine.services.clock()

    # ------------------------------------------------------------ every message

    async def handle(
        self, state: ConversationState, inbound: Inbound
    ) -> tuple[ConversationState, list[Outbound]]:
        token = handoff_token(inbound)
        if token is not None:
            return await self._handoff(state, inbound, token)
        ticket = state.meta.get("ticket")
        if ticket and ticket.get("status") == "held" and not _erasing(state, inbound):
            await asyncio.to_thread(self.store.add_message, ticket["id"], "user", self._as_text(inbound))
            return state, []
        if asks_for_person(inbound):
            return state, await self._open(state, inbound, "asked")
        state, replies = await self.engine.handle(state, inbound)
        self._remember(state, inbound, replies)
        if ticket and state.meta.get("ticket"):  # waiting (or held, /delete asked): staff see it
            await asyncio.to_thread(self._copy_to_ticket, ticket["id"], inbound, replies)
        offer = self._offer(state, replies)
        return state, replies + offer if offer else replies

    def _as_text(self, inbound: Inbound) -> str:
        if inbound.photo is not None:
            return self.texts("transcript_photo")
        if inbound.button is not None:
            return self.texts("transcript_button", payload=inbound.button)
        return (inbound.text or "")[:2000]

    def _remember(self, state: ConversationState, inbound: Inbound, replies: list[Outbound]) -> None:
        """The last exchanges, for the ticket's transcript (kept in the state, masked when copied)."""
        lines = state.meta.setdefault("transcript", [])
        lines.append(["user", self._as_text(inbound)[:TRANSCRIPT_CHARS]])
        for reply in replies:  # one or two: a loop, no generator
            if reply.text:
                lines.append(["bot", reply.text[:TRANSCRIPT_CHARS]])
        if len(lines) > TRANSCRIPT_KEEP:
            del lines[:-TRANSCRIPT_KEEP]

    def _copy_to_ticket(self, ticket_id: int, inbound: Inbound, replies: list[Outbound]) -> None:
        self.store.add_message(ticket_id, "user", self._as_text(inbound))
        for reply in replies:
            if reply.text:
                self.store.add_message(ticket_id, "bot", reply.text)

    def _is_refusal(self, text: str) -> bool:
        """One of the two refusals (compared as strings: a long reply is never hashed)."""
        if text == self._faq_refusal:
            return True
        if not text.startswith(self._unanswered_start):
            return False
        if self._unanswered is None:
            self._unanswered = Texts.default()("question_unanswered", example="")
        return text == self._unanswered

    def _offer(self, state: ConversationState, replies: list[Outbound]) -> list[Outbound]:
        """A person, offered once per reason and step, when the assistant is not helping."""
        meta = state.meta
        if meta.get("ticket"):
            return []
        unanswered = 0
        for reply in replies:  # one or two: a loop, no generator
            if self._is_refusal(reply.text):
                unanswered = meta.get("unanswered", 0) + 1
                break
        meta["unanswered"] = unanswered
        key = None
        step = state.step
        if unanswered >= 2:
            key, meta["unanswered"] = "offer_after_questions", 0
        elif step and state.attempts.get(step, 0) >= FAILURES_BEFORE_OFFER:
            key = "offer_after_failures"
        if key is None or meta.get("offered") == [key, step]:
            return []
        meta["offered"] = [key, step]
        return [Outbound(self.texts(key), (Button(self.texts("human_button"), "human"),))]

    # ------------------------------------------------------------ citizen -> staff

    async def _open(self, state: ConversationState, inbound: Inbound, reason: str) -> list[Outbound]:
        current = state.meta.get("ticket")
        if current:
            return [Outbound(self.texts("ticket_already_open", id=current["id"]))]
        from bot.hotline.store import Ticket, mask, mask_values

        phone = state.get_value("phone") or state.get_value("guardian.phone") or state.flags.handoff_phone
        ticket = Ticket(
            channel=inbound.channel,
            conversation=inbound.conversation_id,
            flow=state.flow,
            step=state.step,
            reason=reason,
            fields=json.dumps(mask_values(_visible(state.values)), ensure_ascii=False),
            callback_phone=phone if isinstance(phone, str) else None,
            created_at=self.now(),
        )
        transcript = [(a, t) for a, t in state.meta.get("transcript", [])]
        transcript.append(("user", self._as_text(inbound)))
        ticket = await asyncio.to_thread(self.store.open_ticket, ticket, transcript)
        state.meta["ticket"] = {"id": ticket.id, "status": "waiting"}
        state.meta["unanswered"] = 0
        log.info("ticket %s opened (%s, step %s)", ticket.id, inbound.channel, state.step)
        if self.hours.is_open(self.now()):
            text = self.texts("ticket_opened", id=ticket.id)
        else:
            shown = mask(ticket.callback_phone) if ticket.callback_phone else None
            text = self.texts(
                "ticket_opened_after_hours", id=ticket.id, hours=self.hours_label(), phone=shown
            )
        return [Outbound(text)]

    def hours_label(self) -> str:
        days = self.texts.raw("days")
        parts = []
        for group in self.hours.shifts_by_days():
            first, last = min(group[0]), max(group[0])
            label = days[first] if first == last else f"{days[first]}–{days[last]}"
            parts.append(f"{label} {', '.join(f'{a:%H:%M}-{b:%H:%M}' for a, b in group[1])}")
        return "; ".join(parts)

    def shown_name(self, staff: Staff) -> str:
        """How citizens see a staff member: their display name, never their login."""
        return staff.display_name or self.texts("staff_default_name")

    async def is_live(self, conversation_id: str) -> bool:
        """Is a ticket of this conversation open (a person may write at any moment)?"""
        return await asyncio.to_thread(self.store.has_open_ticket, conversation_id)

    # ------------------------------------------------------------ staff -> citizen

    async def push(self, conversation_id: str, replies: list[Outbound]) -> None:
        """On the citizen's own channel: pushed (Telegram, Zalo, whose own outboxes retry),
        or kept as a notice the web page (or the next reply) picks up."""
        if not replies:
            return
        channel_name, _, user_id = conversation_id.partition(":")
        channel = self.assistant.channels.get(channel_name)
        if channel is not None:
            try:
                await channel.send(user_id, replies)
                return
            except Exception:
                log.warning("a staff message could not be pushed now; kept as a notice")
        await asyncio.to_thread(
            self.assistant.store.enqueue_notice,
            f"hotline:{uuid.uuid4().hex}",
            conversation_id,
            outbounds_to_payload(replies),
        )

    async def _set_status(
        self, ticket: Ticket, status: str | None, replies_after: bool = False
    ) -> list[Outbound]:
        """Write the ticket's status into the conversation (None: no ticket any more)."""

        async def change(state: ConversationState) -> list[Outbound]:
            if status is None:
                state.meta.pop("ticket", None)
                state.meta.pop("offered", None)
                if replies_after:  # a message with nothing in it: the engine asks the step again
                    channel, _, user_id = ticket.conversation.partition(":")
                    _, replies = await self.engine.handle(state, Inbound(channel, user_id))
                    return replies
                return []
            state.meta["ticket"] = {"id": ticket.id, "status": status}
            return []

        return await self.assistant.update_state(ticket.conversation, change)

    async def take(self, ticket_id: int, staff: Staff) -> Ticket | None:
        ticket = await asyncio.to_thread(self.store.get, ticket_id)
        if ticket is None or ticket.status == "closed":
            return None
        if ticket.status == "held" and ticket.held_by == staff.username:
            return ticket
        ticket = await asyncio.to_thread(self.store.change, ticket_id, status="held", held_by=staff.username)
        if ticket is None:  # deleted meanwhile
            return None
        await self._set_status(ticket, "held")
        await self.push(
            ticket.conversation, [Outbound(self.texts("staff_joined", name=self.shown_name(staff)))]
        )
        return ticket

    async def reply(self, ticket_id: int, staff: Staff, text: str) -> Ticket | None:
        text = text.strip()
        ticket = await self.take(ticket_id, staff)
        if ticket is None or not text:
            return ticket
        await asyncio.to_thread(self.store.add_message, ticket_id, "staff", text, staff.username)
        if ticket.first_reply_at is None:
            changed = await asyncio.to_thread(self.store.change, ticket_id, first_reply_at=self.now())
            ticket = changed if changed is not None else ticket
        await self.push(
            ticket.conversation, [Outbound(self.texts("staff_says", name=self.shown_name(staff), text=text))]
        )
        return ticket

    async def hand_back(self, ticket_id: int, staff: Staff) -> Ticket | None:
        ticket = await asyncio.to_thread(self.store.get, ticket_id)
        if ticket is None or ticket.status == "closed":
            return None
        ticket = await asyncio.to_thread(self.store.change, ticket_id, status="closed", closed_at=self.now())
        if ticket is None:  # deleted meanwhile
            return None
        again = await self._set_status(ticket, None, replies_after=True)
        await self.push(
            ticket.conversation, [Outbound(self.texts("handed_back", name=self.shown_name(staff))), *again]
        )
        return ticket

    async def sweep(self) -> int:
        """Tell the citizens whose ticket waited longer than `wait` (once each)."""
        from bot.hotline.store import mask

        now = self.now()
        told = 0
        for ticket in await asyncio.to_thread(self.store.overdue, now - self.wait):
            shown = mask(ticket.callback_phone) if ticket.callback_phone else None
            text = self.texts("ticket_overdue", id=ticket.id, phone=shown)
            assert ticket.id is not None  # a stored ticket
            await asyncio.to_thread(self.store.change, ticket.id, overdue_told_at=now)
            await self.push(ticket.conversation, [Outbound(text)])
            told += 1
        return told

    # ------------------------------------------------------------ staff -> citizen, by link

    async def _handoff(
        self, state: ConversationState, inbound: Inbound, token: str
    ) -> tuple[ConversationState, list[Outbound]]:
        redeemed = await asyncio.to_thread(self.store.redeem, token, self.now())
        start = replace(inbound, text="/start")
        handoff = redeemed.handoff
        if handoff is None:
            state, replies = await self.engine.handle(state, start)
            return state, [Outbound(self.texts(f"handoff_{redeemed.refused}")), *replies]
        name = handoff.staff_name or self.texts("staff_default_name")
        greeting = self.texts("handoff_greeting", name=name, note=handoff.note)
        if handoff.flow in self.engine.flows:
            state, replies = await self.engine.handle(
                state, replace(inbound, text=None, button=f"flow:{handoff.flow}")
            )
        else:
            state, replies = await self.engine.handle(state, start)
        if handoff.phone and state.flow == handoff.flow:
            state.flags.handoff_phone = handoff.phone
            greeting += "\n" + self.texts("handoff_phone_hint")
        state.meta["handoff_by"] = handoff.created_by
        log.info("handoff link used (flow %s)", handoff.flow or "-")
        return state, [Outbound(greeting), *replies]


def _visible(values: dict[str, Any]) -> dict[str, Any]:
    """The form's fields without the engine's own notes (names starting with "_")."""
    return {k: v for k, v in values.items() if not k.startswith("_")}
