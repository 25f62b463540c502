"""The funnel per school: which steps conversations started from a school's link reach.

Read from the bot layer, without the dialogs knowing: before a message the assistant takes
a `Mark` of the conversation (flow, run, step, receipt, confirmed declarations), after it
`SchoolFunnel.record` compares and counts what the message reached — a registration form
started, the summary reached, the declaration submitted, OTP-confirmed. The office's
decisions (approved, rejected) are read from the backend's events by `collect_decisions`.

Each step is counted once per form (a hash of the form's run id or the receipt is the row's
key), and a row holds no conversation id: `/delete` leaves the counts as they were.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from dialogs.state import ConversationState

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine as SqlEngine

    from bot.schema import SchoolFunnelEvent

# The database side (sqlmodel, bot.schema) is imported when a count is written or read: the
# assistant takes a `Mark` of every message, and most conversations come from no school.

log = logging.getLogger(__name__)

STAGES = ("started", "summary", "submitted", "confirmed", "approved", "rejected")
KINDS = ("individual", "child")
EVENT_MARKER = "schools:last_event"


class Mark(NamedTuple):
    """Taken before every message: a tuple (a third of a frozen dataclass's making)."""

    flow: str | None
    run_id: str | None
    step: str | None
    receipt: str | None
    confirmed: int


@dataclass(frozen=True)
class FunnelStep:
    key: str  # what makes it happen once, hashed before it is stored
    school: str
    kind: str
    stage: str
    receipt: str | None = None
    at: datetime | None = None


def mark(state: ConversationState) -> Mark:
    declarations = state.meta.get("declarations")
    return Mark(
        state.flow, state.run_id, state.step, state.flags.receipt, len(declarations) if declarations else 0
    )


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class SchoolFunnel:
    """Counts per school; `flows` maps a flow id to its flow (its `kind` and steps)."""

    def __init__(self, engine: SqlEngine | Callable[[], SqlEngine], flows: Mapping[str, Any]) -> None:
        """`engine`, or a function that gives it when a count is first written or read."""
        self._engine = engine
        self.flows = flows

    @property
    def engine(self) -> SqlEngine:
        if callable(self._engine):
            self._engine = self._engine()
        return self._engine

    def _form(self, state: ConversationState) -> tuple[str | None, Any]:
        flow = self.flows.get(state.flow) if state.flow else None
        kind = getattr(flow, "kind", None)
        return (kind, flow) if kind in KINDS else (None, None)

    def steps(self, before: Mark, state: ConversationState) -> list[FunnelStep]:
        """What this message reached, for the conversation's school (none without one)."""
        school = state.meta.get("school")
        if not school:
            return []
        found: list[FunnelStep] = []
        kind, flow = self._form(state)
        if kind and state.run_id:
            if state.run_id != before.run_id:
                found.append(FunnelStep(f"run:{state.run_id}:started", school, kind, "started"))
            at_summary = state.step in flow.index and flow.step(state.step).kind == "summary"
            if at_summary and (state.step != before.step or state.run_id != before.run_id):
                found.append(FunnelStep(f"run:{state.run_id}:summary", school, kind, "summary"))
            receipt = state.flags.receipt
            if receipt and receipt != before.receipt:
                found.append(FunnelStep(f"receipt:{receipt}:submitted", school, kind, "submitted", receipt))
        for record in (state.meta.get("declarations") or [])[before.confirmed :]:
            receipt = record["receipt"]
            found.append(
                FunnelStep(f"receipt:{receipt}:confirmed", school, record["kind"], "confirmed", receipt)
            )
        return found

    def record(self, before: Mark, state: ConversationState) -> int:
        """Count what the message reached; returns how many steps were new."""
        return self.add(self.steps(before, state))

    def add(self, steps: list[FunnelStep]) -> int:
        from sqlalchemy.exc import IntegrityError
        from sqlmodel import Session

        from bot.schema import SchoolFunnelEvent

        added = 0
        for step in steps:
            row = SchoolFunnelEvent(
                key=_hash(step.key),
                school=step.school,
                kind=step.kind,
                stage=step.stage,
                receipt=step.receipt,
                at=step.at or datetime.now(UTC),
            )
            with Session(self.engine) as session:
                if session.get(SchoolFunnelEvent, row.key) is not None:
                    continue
                session.add(row)
                try:
                    session.commit()
                except IntegrityError:  # counted meanwhile by another worker
                    continue
            added += 1
        return added

    # ------------------------------------------------------------ the office's decisions

    def _submitted(self, receipt: str) -> SchoolFunnelEvent | None:
        from sqlmodel import Session, select

        from bot.schema import SchoolFunnelEvent

        with Session(self.engine) as session:
            query = select(SchoolFunnelEvent).where(
                SchoolFunnelEvent.receipt == receipt, SchoolFunnelEvent.stage == "submitted"
            )
            return session.exec(query).first()

    def _marker(self, value: int | None = None) -> int:
        from sqlmodel import Session

        from bot.schema import KeyValue

        with Session(self.engine) as session:
            row = session.get(KeyValue, EVENT_MARKER)
            if value is None:
                return int(row.value) if row else 0
            session.merge(KeyValue(key=EVENT_MARKER, value=str(value)))
            session.commit()
            return value

    async def collect_decisions(self, backend: Any, *, db: Any = None) -> int:
        """Count the approvals and rejections of declarations from school links, from the
        backend's events after the last one read. `db(call, *args)` runs a database call
        (default: inline). Returns how many were new."""
        run = db or (lambda call, *args: _inline(call, *args))
        after = await run(self._marker)
        added = 0
        while True:
            events = await backend.events(after=after, limit=100)
            for event in events:
                if event.status in ("approved", "rejected"):
                    added += await run(self._decision, event)
                after = event.id
            if events:
                await run(self._marker, after)
            if len(events) < 100:
                return added

    def _decision(self, event: Any) -> int:
        submitted = self._submitted(event.receipt)
        if submitted is None:
            return 0
        key = f"receipt:{event.receipt}:{event.status}"
        step = FunnelStep(key, submitted.school, submitted.kind, event.status, event.receipt, event.at)
        return self.add([step])


async def _inline(call: Any, *args: Any) -> Any:
    return call(*args)
