"""Messages the assistant owes users outside any exchange: decisions and the paper-form reminder.

The pump reads the backend's decision events after a durable marker and queues one notice
per event (the marker moves in the same transaction), queues at most one reminder per
declaration, and then delivers queued notices: pushed on channels that can push
(Telegram, Zalo), or handed over with the user's next reply (terminal, web chat).
A notice is marked sent only after the channel accepted it, so a crash re-sends rather
than loses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.channels.replies import outbounds_to_payload, payload_to_outbounds
from dialogs.messages import Button, Outbound
from dialogs.ports import BackendUnavailable, paper_deadline
from dialogs.texts import Texts, agency_label

if TYPE_CHECKING:
    from bot.outbox import Item
    from bot.schema import DeclarationOwner

# The database side (sqlmodel, the outbox, retention) is imported by the rounds that use it:
# a terminal chat that answers a line and leaves never makes one (see `run`).

__all__ = ["NotificationPump", "outbounds_to_payload", "payload_to_outbounds", "take_notices_for"]

log = logging.getLogger(__name__)

EVENT_MARKER = "notifications:last_event"
# The office expects the signed Tờ khai within 10 days; remind on day 7 if it has not arrived.
REMINDER_AFTER = timedelta(days=7)
PURGE_EVERY = timedelta(hours=1)
# How long a worker holds the notices it is sending: one killed mid-send frees them by then.
NOTICE_LEASE = timedelta(minutes=2)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class NotificationPump:
    def __init__(self, assistant: Any, *, interval_s: float = 5.0, texts: Texts | None = None) -> None:
        self.assistant = assistant
        self.store = assistant.store
        self.backend = assistant.engine.services.backend
        self.interval_s = interval_s
        self.texts = texts or Texts.default()
        self._stopping = asyncio.Event()
        self._next_purge = 0.0

    @functools.cached_property
    def worker(self) -> str:
        """This pump's name as the holder of the notices it leases."""
        from bot.outbox import lease_holder

        return lease_holder(f"pump-{id(self):x}")

    # ------------------------------------------------------------ collecting

    async def collect_events(self) -> int:
        from bot.retention import record_decision

        after = int(await asyncio.to_thread(self.store.get_marker, EVENT_MARKER, "0"))
        try:
            events = await self.backend.events(after=after, limit=100)
        except BackendUnavailable:
            return 0
        queued = 0
        for event in events:
            owner = await asyncio.to_thread(self.store.owner_of, event.receipt)
            replies = (
                await self._decision_notice(owner, event)
                if owner and event.status in {"approved", "rejected"}
                else []
            )
            if owner and event.status in {"approved", "rejected"}:
                await asyncio.to_thread(record_decision, self.store, event.receipt, event.at)
            marker = (EVENT_MARKER, str(event.id))
            if replies:
                queued += await asyncio.to_thread(
                    self.store.enqueue_notice,
                    f"event:{event.id}",
                    owner.conversation_id,
                    outbounds_to_payload(replies),
                    marker,
                )
            else:  # a decision on a declaration not made through us (or deleted): just move on
                await asyncio.to_thread(self.store.set_marker, *marker)
        return queued

    async def _record(self, owner: DeclarationOwner) -> dict:
        state, _ = await asyncio.to_thread(self.store.load, owner.conversation_id)
        record: dict[str, Any] = next(
            (d for d in state.meta.get("declarations", []) if d["receipt"] == owner.receipt), {}
        )
        return {"record": record, "meta": state.meta}

    async def _decision_notice(self, owner: DeclarationOwner, event: Any) -> list[Outbound]:
        found = await self._record(owner)
        record, agency = found["record"], found["record"].get("agency") or {}
        context = {
            "receipt": event.receipt,
            "full_name": record.get("full_name", ""),
            "reason": event.reason or "",
            "agency": agency_label(agency),
            "agency_phone": agency.get("phone"),
            "agency_address": agency.get("address"),
        }
        if event.status == "approved":
            return [
                Outbound(
                    self.texts("notices.approved", **context),
                    (Button(self.texts("notices.account_help_button"), "flow:account_help"),),
                )
            ]
        again = "flow:child_registration" if owner.kind == "child" else "flow:registration"
        return [
            Outbound(
                self.texts("notices.rejected", **context),
                (
                    Button(self.texts("notices.register_again_button"), again),
                    Button(self.texts("notices.status_button"), "cmd:status"),
                ),
            )
        ]

    async def collect_reminders(self) -> int:
        now = _aware(self.assistant.engine.services.clock())
        due = await asyncio.to_thread(self._due_reminders, now)
        queued = 0
        for owner in due:
            found = await self._record(owner)
            stopped = found["meta"].get("reminders_stopped")
            try:
                status = await self.backend.status(owner.receipt)
            except BackendUnavailable:
                continue
            if not stopped and status is not None and status.status == "received":
                record, agency = found["record"], found["record"].get("agency") or {}
                submitted = _aware(owner.submitted_at)
                text = self.texts(
                    "notices.reminder",
                    receipt=owner.receipt,
                    full_name=record.get("full_name", ""),
                    agency=agency_label(agency),
                    agency_address=agency.get("address"),
                    deadline=paper_deadline(submitted),
                )
                buttons = (
                    Button(self.texts("notices.stop_reminders"), "reminders:stop"),
                    Button(self.texts("notices.status_button"), "cmd:status"),
                )
                queued += await asyncio.to_thread(
                    self.store.enqueue_notice,
                    f"reminder:{owner.receipt}",
                    owner.conversation_id,
                    outbounds_to_payload([Outbound(text, buttons)]),
                )
            await asyncio.to_thread(self._mark_reminded, owner.receipt)
        return queued

    def _due_reminders(self, now: datetime) -> list[DeclarationOwner]:
        from sqlmodel import Session, col, select

        from bot.schema import DeclarationOwner

        with Session(self.store.engine) as session:
            rows = session.exec(
                select(DeclarationOwner).where(col(DeclarationOwner.reminder_sent).is_(False))
            ).all()
            return [r for r in rows if _aware(r.submitted_at) + REMINDER_AFTER <= now and r.conversation_id]

    def _mark_reminded(self, receipt: str) -> None:
        from sqlmodel import Session

        from bot.schema import DeclarationOwner

        with Session(self.store.engine) as session:
            row = session.get(DeclarationOwner, receipt)
            if row is not None:
                row.reminder_sent = True
                session.commit()

    # ------------------------------------------------------------ delivering

    async def deliver(self) -> int:
        """Send what this worker can claim of the outbox: each user's oldest notice, again
        while there are more (a user's next one is claimable once the one before it is sent);
        then have each pushing channel send the messages it kept that are free to take (left
        by a worker that died, or whose retry is due)."""
        sent, failed = 0, False
        # Only notices for the channels that push from here; the others (terminal, web chat)
        # are handed over with the user's next reply. A deleted user's notices have no channel.
        prefixes = tuple(f"{name}:" for name in self.assistant.channels)
        while not failed:
            claimed = await asyncio.to_thread(self.store.claim_notices, self.worker, prefixes, NOTICE_LEASE)
            if not claimed:
                break
            for notice in claimed:
                if await self._send(notice):
                    sent += bool(notice.conversation_id)
                else:
                    failed = True
        await self._flush_channels(prefixes)
        return sent

    async def _flush_channels(self, prefixes: tuple[str, ...]) -> None:
        if not prefixes:
            return
        for conversation_id in await asyncio.to_thread(self.store.outbox.due, prefixes):
            channel_name, _, user_id = conversation_id.partition(":")
            flush = getattr(self.assistant.channels.get(channel_name), "flush", None)
            if flush is not None:
                await flush(user_id)

    async def _send(self, notice: Item) -> bool:
        """Deliver one claimed notice (a deleted user's is dropped) and mark it; False when the
        channel refused it (retried later)."""
        outbox = self.store.outbox
        if notice.conversation_id:
            channel_name, _, user_id = notice.conversation_id.partition(":")
            try:
                await self.assistant.channels[channel_name].send(
                    user_id, payload_to_outbounds(notice.payload)
                )
            except Exception:
                log.warning("notice %s not delivered yet; will retry", notice.id)
                await asyncio.to_thread(outbox.release, notice.id, "channel refused")
                return False
        await asyncio.to_thread(outbox.done, notice.id)
        return True

    async def poll_once(self) -> int:
        from bot.retention import purge_expired

        await self.collect_events()
        await self.collect_reminders()
        now = self.assistant.engine.services.clock()
        await purge_expired(self.assistant, now, getattr(self.assistant, "retention_days", 0))
        return await self.deliver()

    async def purge_now_and_then(self) -> None:
        """Forget old message ids, at most once every PURGE_EVERY (and at start)."""
        now = time.monotonic()
        if now < self._next_purge:
            return
        self._next_purge = now + PURGE_EVERY.total_seconds()
        purged = await self.assistant.purge_seen()
        if purged:
            log.info("forgot %d message ids older than the window", purged)

    async def run(self, first_round_after_s: float = 0.0) -> None:
        """A round every `interval_s` until `stop`, the first one `first_round_after_s` after start."""
        if first_round_after_s > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=first_round_after_s)
        while not self._stopping.is_set():
            try:
                await self.poll_once()
                await self.purge_now_and_then()
            except Exception:
                log.exception("notification round failed")
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=self.interval_s)
            except TimeoutError:
                pass

    def stop(self) -> None:
        self._stopping.set()


def take_notices_for(store: Any, conversation_id: str) -> list[Outbound]:
    """Pending notices of one conversation, marked sent: for channels that cannot push."""
    if not store.owes_notices(conversation_id):  # the common case: one cheap query
        return []
    store.commit_pending()  # the connection below must not wait behind a deferred commit
    return [
        r for payload in store.outbox.take_notices(conversation_id) for r in payload_to_outbounds(payload)
    ]
