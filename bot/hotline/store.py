"""The hotline's tables: handoff links (staff -> citizen) and tickets (citizen -> staff).

Tables `handoff`, `ticket`, `ticket_message`, in the conversations' database. A ticket
goes waiting -> held (a staff member took it) -> closed (handed back to the assistant).
A handoff token is stored as its SHA-256 only, used once, and expires.

What a ticket keeps of the citizen is masked: digits of ID numbers and phones are hidden
except the last three (`mask`), in the fields, the transcript and the messages. Only the
callback phone is kept whole, for the staff member who calls back. The note, the phone, the
fields, the callback phone and the transcript are sealed with the data keys (`Sealed`
columns, bot/sealing.py); /delete empties a conversation's tickets (`forget_conversation`).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import statistics
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, update
from sqlalchemy.engine import Engine as SqlEngine
from sqlmodel import Session, col, select

from bot import migrate
from bot.console.auth import aware, utcnow
from bot.schema import Handoff, Ticket, TicketMessage

OPEN = ("waiting", "held")
STATUSES = ("waiting", "held", "closed")
# A run of at least six digits, possibly grouped by spaces, dots or dashes ("0912 345 678").
_NUMBER = re.compile(r"\+?\d(?:[\d .-]*\d)?")


def mask(text: str) -> str:
    """ID numbers, phones and codes with every digit hidden but the last three."""

    def hide(match: re.Match[str]) -> str:
        run = match.group(0)
        digits = sum(c.isdigit() for c in run)
        if digits < 6:
            return run
        keep, out = 3, []
        for c in reversed(run):
            if c.isdigit():
                out.append(c if keep > 0 else "•")
                keep -= 1
            else:
                out.append(c)
        return "".join(reversed(out))

    return _NUMBER.sub(hide, text)


def mask_values(value: Any) -> Any:
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {k: mask_values(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_values(v) for v in value]
    return value


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Redeemed:
    """What `/start h-<token>` found: the handoff, or why it cannot be used."""

    handoff: Handoff | None
    refused: str = ""  # "unknown", "used" or "expired"


class HotlineStore:
    """Synchronous (short transactions); the async callers run it in a thread."""

    def __init__(self, engine: SqlEngine) -> None:
        self.engine = engine
        migrate.upgrade(engine)

    # ------------------------------------------------------------ handoffs

    def create_handoff(
        self,
        *,
        note: str,
        flow: str | None,
        phone: str | None,
        created_by: str,
        staff_name: str,
        ttl: timedelta,
        now: datetime | None = None,
    ) -> tuple[str, datetime]:
        now = now or utcnow()
        token = secrets.token_urlsafe(16)  # 22 characters: the whole link fits a Telegram payload
        expires = now + ttl
        with Session(self.engine) as session:
            session.add(
                Handoff(
                    token_hash=token_hash(token),
                    created_by=created_by,
                    staff_name=staff_name,
                    note=note,
                    flow=flow,
                    phone=phone,
                    created_at=now,
                    expires_at=expires,
                )
            )
            session.commit()
        return token, expires

    def redeem(self, token: str, now: datetime | None = None) -> Redeemed:
        """Use a token once: the first caller gets the handoff, every later one "used"."""
        now = now or utcnow()
        key = token_hash(token)
        with Session(self.engine) as session:
            row = session.get(Handoff, key)
            if row is None:
                return Redeemed(None, "unknown")
            if row.used_at is not None:
                return Redeemed(None, "used")
            if aware(row.expires_at) <= now:
                return Redeemed(None, "expired")
            found = Handoff.model_validate(row.model_dump())  # before the phone is dropped below
            taken = session.exec(  # type: ignore[call-overload]
                update(Handoff)
                .where(col(Handoff.token_hash) == key, col(Handoff.used_at).is_(None))
                .values(used_at=now, phone=None, note="")  # nothing of the caller kept once used
            )
            session.commit()
            if taken.rowcount != 1:
                return Redeemed(None, "used")
            return Redeemed(found)

    # ------------------------------------------------------------ tickets

    def open_ticket(self, ticket: Ticket, transcript: list[tuple[str, str]]) -> Ticket:
        with Session(self.engine) as session:
            session.add(ticket)
            session.flush()
            assert ticket.id is not None  # flushed: the database gave it its id
            for author, text in transcript:
                session.add(TicketMessage(ticket_id=ticket.id, author=author, text=mask(text)))
            session.commit()
            session.refresh(ticket)
            return ticket

    def has_open_ticket(self, conversation: str) -> bool:
        """Whether this conversation has an open ticket: asked on every web reply, so one
        indexed Core query for an id, without an ORM session or unsealing the ticket's fields."""
        query = (
            select(col(Ticket.id))
            .where(Ticket.conversation == conversation, col(Ticket.status).in_(OPEN))
            .limit(1)
        )
        with self.engine.connect() as connection:
            return connection.execute(query).first() is not None

    def open_ticket_of(self, conversation: str) -> Ticket | None:
        with Session(self.engine) as session:
            return session.exec(
                select(Ticket).where(Ticket.conversation == conversation, col(Ticket.status).in_(OPEN))
            ).first()

    def get(self, ticket_id: int) -> Ticket | None:
        with Session(self.engine) as session:
            return session.get(Ticket, ticket_id)

    def add_message(self, ticket_id: int, author: str, text: str, staff: str | None = None) -> None:
        with Session(self.engine) as session:
            session.add(TicketMessage(ticket_id=ticket_id, author=author, staff=staff, text=mask(text)))
            session.commit()

    def messages(self, ticket_id: int) -> list[TicketMessage]:
        with Session(self.engine) as session:
            return list(
                session.exec(
                    select(TicketMessage)
                    .where(TicketMessage.ticket_id == ticket_id)
                    .order_by(col(TicketMessage.id))
                ).all()
            )

    def change(self, ticket_id: int, **values: Any) -> Ticket | None:
        with Session(self.engine) as session:
            row = session.get(Ticket, ticket_id)
            if row is None:
                return None
            for key, value in values.items():
                setattr(row, key, value)
            session.commit()
            session.refresh(row)
            return row

    def forget_conversation(self, conversation: str, now: datetime | None = None) -> int:
        """/delete: the conversation's tickets lose their transcript, fields and callback phone
        and are closed; what stays (times, flow and step) only feeds the console's counts."""
        now = now or utcnow()
        with Session(self.engine) as session:
            tickets = session.exec(select(Ticket).where(Ticket.conversation == conversation)).all()
            for ticket in tickets:
                session.execute(delete(TicketMessage).where(col(TicketMessage.ticket_id) == ticket.id))
                ticket.fields, ticket.callback_phone, ticket.conversation = "{}", None, ""
                ticket.status, ticket.closed_at = "closed", ticket.closed_at or now
            session.commit()
        return len(tickets)

    def tickets(self, status: str | None = None, limit: int = 500) -> list[Ticket]:
        with Session(self.engine) as session:
            query = select(Ticket).order_by(col(Ticket.id).desc()).limit(limit)
            if status is not None:
                query = query.where(Ticket.status == status)
            return list(reversed(session.exec(query).all()))

    def overdue(self, older_than: datetime) -> list[Ticket]:
        """Waiting tickets nobody took in time, whose citizen was not told yet."""
        with Session(self.engine) as session:
            return list(
                session.exec(
                    select(Ticket).where(
                        Ticket.status == "waiting",
                        col(Ticket.overdue_told_at).is_(None),
                        Ticket.created_at <= older_than,
                    )
                ).all()
            )

    def stats(self) -> dict[str, Any]:
        """Counts only (no personal data): open tickets, median minutes to the first human
        reply, the steps where people ask for a person most."""
        with Session(self.engine) as session:
            open_count = session.exec(
                select(func.count()).select_from(Ticket).where(col(Ticket.status).in_(OPEN))
            ).one()
            waits = [
                (aware(first) - aware(created)).total_seconds() / 60
                for created, first in session.exec(
                    select(Ticket.created_at, Ticket.first_reply_at).where(
                        col(Ticket.first_reply_at).is_not(None)
                    )
                ).all()
                if first is not None  # the query's own condition, for the type checker
            ]
            steps = Counter(
                f"{flow or '-'} / {step or '-'}"
                for flow, step in session.exec(select(Ticket.flow, Ticket.step)).all()
            )
        return {
            "open": int(open_count),
            "median_minutes_to_first_reply": round(statistics.median(waits), 1) if waits else None,
            "top_steps": steps.most_common(10),
        }


def ticket_json(ticket: Ticket) -> dict[str, Any]:
    """The `vssid-bot tickets list --json` shape."""

    def iso(moment: datetime | None) -> str | None:
        return aware(moment).isoformat() if moment else None

    return {
        "id": ticket.id,
        "status": ticket.status,
        "channel": ticket.channel,
        "conversation": ticket.conversation,
        "step": ticket.step,
        "reason": ticket.reason,
        "created_at": iso(ticket.created_at),
        "first_reply_at": iso(ticket.first_reply_at),
    }


def fields_of(ticket: Ticket) -> dict[str, Any]:
    return json.loads(ticket.fields or "{}")
