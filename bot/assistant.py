"""The assistant every channel talks to: storage + engine + the ports, with de-duplication.

`handle` runs one user action under a per-conversation lock (in-process ordering) and an
optimistic version check (across processes): a lost race runs the message again on the
fresh state. Side effects are safe to repeat (the backend submit is idempotent).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot import disk_cache
from bot.channels.locks import KeyedLocks
from bot.channels.texts import channel_text
from bot.config import Settings
from bot.crypto import Keyring, use_for_files
from bot.notifications import NotificationPump, outbounds_to_payload, payload_to_outbounds, take_notices_for
from bot.private import private_dir, secure_tree
from bot.ratelimit import ConversationRateLimit
from bot.schools.funnel import Mark as FunnelMark
from bot.schools.funnel import SchoolFunnel
from bot.schools.funnel import mark as funnel_mark
from bot.storage import ConversationStore, SaveResult
from dialogs.engine import Engine, Services
from dialogs.messages import Inbound, Outbound
from dialogs.state import ConversationState
from knowledge.agencies import AgencyDirectory

log = logging.getLogger(__name__)

MAX_CONFLICT_RETRIES = 8
# Net allocations between two collections of the youngest generation, once start-up is done.
YOUNG_COLLECTION_THRESHOLD = 10_000


@dataclass
class AssistantService:
    engine: Engine
    store: ConversationStore
    channels: dict[str, Any] = field(default_factory=dict)
    # One message of a conversation at a time (in-process ordering), in arrival order.
    _turns: KeyedLocks = field(default_factory=KeyedLocks)
    _closers: list[Any] = field(default_factory=list)
    _warmup: asyncio.Task | None = None
    _group_commit: list[asyncio.Future] | None = None  # who waits for this turn's commit
    limiter: ConversationRateLimit | None = None
    retention_days: int = 0  # photos and PDFs purged this many days after a decision (0: kept)
    cpu: Any = None  # the CpuPool photo checks and PDFs run in (None: the shared thread pool)
    funnel: SchoolFunnel | None = None
    # The hotline (bot/hotline/desk.py): sees every message before the engine when set.
    desk: Any = None
    # How long answered message ids are remembered (a redelivery later than this is new).
    seen_window: timedelta = timedelta(days=7)
    # The data dir: where the terminal's clear PDF copies live (bot/handout.py); None in tests
    # that build the service by hand.
    data_dir: Path | None = None

    def add_channel(self, channel: Any) -> None:
        """Channels register so notices (approval, reminders) can reach users on them."""
        self.channels[channel.name] = channel

    async def handle(self, inbound: Inbound, *, keep_replies: bool = False) -> list[Outbound]:
        """Answer one user action; a message id already answered gets [] or, when it was
        handled with `keep_replies` (the web chat: a retried POST), the same replies again,
        from the database: after a restart and on any worker."""
        conversation_id = inbound.conversation_id
        if self.limiter is not None:
            allowed, wait_s, first_refusal = self.limiter.take(conversation_id)
            if not allowed:
                log.info("rate limit: a message refused (%.0f s to wait)", wait_s)
                seconds = max(1, math.ceil(wait_s))
                return [Outbound(channel_text("rate_limited", seconds=seconds))] if first_refusal else []
        if not self._turns.try_take(conversation_id):  # its previous message is still running
            await self._turns.take(conversation_id)
        try:
            for _ in range(MAX_CONFLICT_RETRIES):
                seen, state, version = await self._db(self.store.begin, conversation_id, inbound.message_id)
                if seen is not None:
                    return payload_to_outbounds(seen) if keep_replies and seen else []
                before = funnel_mark(state)
                decide = self.desk.handle if self.desk is not None else self.engine.handle
                state, replies = await decide(state, inbound)
                pushable = inbound.channel in self.channels
                kept = json.dumps(outbounds_to_payload(replies), ensure_ascii=False) if keep_replies else None
                result, owed = await self._db(self._save, inbound, state, version, not pushable, kept)
                if result is SaveResult.SAVED:
                    if self.store.has_pending_commit:
                        await self._durable()
                    if self.funnel is not None and state.meta.get("school"):
                        await self._count_for_school(before, state)
                    # A channel that cannot push gets owed notices (decisions, reminders) with the reply.
                    return owed + replies
                if result is SaveResult.DUPLICATE:  # answered meanwhile by another worker
                    seen, _, _ = await self._db(self.store.begin, conversation_id, inbound.message_id)
                    return payload_to_outbounds(seen) if keep_replies and seen else []
                log.info("conversation write conflict; running the message again")
            raise RuntimeError("conversation kept changing under us; message not applied")
        finally:
            self._turns.release(conversation_id)

    async def _count_for_school(self, before: FunnelMark, state: Any) -> None:
        """The school funnel's steps this message reached (after the state is durable)."""
        assert self.funnel is not None
        steps = self.funnel.steps(before, state)
        if not steps:
            return
        # The pool's connection would wait behind the driver path's open transaction.
        self.store.commit_pending()
        try:
            await self._db(self.funnel.add, steps)
        except Exception:  # a lost count must not lose the user's reply
            log.exception("could not count a school funnel step")

    async def update_state(
        self, conversation_id: str, change: Callable[[ConversationState], Awaitable[list[Outbound]]]
    ) -> list[Outbound]:
        """Change a conversation from outside a message (staff took or handed back its ticket):
        in order with its messages, and on fresh state if another worker wrote meanwhile."""
        channel, _, user_id = conversation_id.partition(":")
        await self._turns.take(conversation_id)
        try:
            for _ in range(MAX_CONFLICT_RETRIES):
                _, state, version = await self._db(self.store.begin, conversation_id, None)
                replies = await change(state)
                result = await self._db(
                    self.store.save, conversation_id, channel, user_id, state, version, None
                )
                if result is SaveResult.SAVED:
                    return replies
            raise RuntimeError("conversation kept changing under us; change not applied")
        finally:
            self._turns.release(conversation_id)

    async def purge_seen(self) -> int:
        """Forget message ids older than the window (`VSSID_SEEN_MESSAGE_DAYS`)."""
        before = datetime.now(UTC) - self.seen_window
        return await asyncio.to_thread(self.store.purge_seen, before)

    async def _db(self, call: Any, *args: Any) -> Any:
        """Run a store call: inline for SQLite, in a thread for a server database.

        A thread hop costs more than a local SQLite read or WAL commit (measured ~0.2 ms per hop
        against ~0.1-0.3 ms of work), and every message makes two calls. A network database
        can stall, so it never runs on the event loop.
        """
        if self.store.is_local:
            return call(*args)
        return await asyncio.to_thread(call, *args)

    async def _durable(self) -> None:
        """Wait for the group commit of this turn's SQLite writes (when the store has one pending).

        Every conversation that saved during one event-loop turn waits for the same commit,
        scheduled once; nobody is answered before their state is on disk. Each waits on a
        future of its own (a cancelled one leaves the commit and the others alone, as
        `asyncio.shield` of one shared future did, at about half its cost per message).
        """
        loop = asyncio.get_running_loop()
        if self._group_commit is None:
            self._group_commit = []
            loop.call_soon(self._commit_group)
        waiter = loop.create_future()
        self._group_commit.append(waiter)
        await waiter

    def _commit_group(self) -> None:
        waiters, self._group_commit = self._group_commit, None
        assert waiters is not None
        try:
            self.store.commit_pending()
        except Exception as exc:
            log.exception("group commit failed; the messages of this turn were not saved")
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(exc)
        else:
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    def _save(
        self, inbound: Inbound, state: Any, version: int, take_notices: bool, kept: str | None
    ) -> tuple[SaveResult, list[Outbound]]:
        result = self.store.save(
            inbound.conversation_id,
            inbound.channel,
            inbound.user_id,
            state,
            version,
            inbound.message_id,
            defer_commit=True,
            replies=kept,
            keep=True,
        )
        owed = (
            take_notices_for(self.store, inbound.conversation_id)
            if take_notices and result is SaveResult.SAVED
            else []
        )
        return result, owed

    async def forget_user(self, conversation_id: str) -> None:
        """/delete: the stored conversation data, then what the user's channel keeps for them
        (replies parked in a pushing channel's outbox hold what they were told)."""
        if self.desk is not None:  # before the store's own deletion, which checkpoints the WAL
            await asyncio.to_thread(self.desk.store.forget_conversation, conversation_id)
        await asyncio.to_thread(self.store.forget_conversation, conversation_id)
        if self.data_dir is not None and self.store.keyring is not None:
            from bot.handout import forget_conversation

            await asyncio.to_thread(forget_conversation, self.data_dir, self.store.keyring, conversation_id)
        channel_name, _, user_id = conversation_id.partition(":")
        forget = getattr(self.channels.get(channel_name), "forget", None)
        if forget is not None:
            await forget(user_id)

    def start_notifications(
        self, interval_s: float = 5.0, *, first_round_after_s: float = 0.0
    ) -> NotificationPump:
        """Run the decision/reminder pump in the background until close(); its first round at
        once, or `first_round_after_s` later."""
        pump = NotificationPump(self, interval_s=interval_s)
        task = asyncio.create_task(pump.run(first_round_after_s), name="notifications")

        async def stop() -> None:
            pump.stop()
            await task

        self._closers.insert(0, stop)
        return pump

    def start_hotline_sweep(self, interval_s: float = 30.0) -> None:
        """Tell citizens whose ticket nobody took in time, every `interval_s`, until close()."""
        if self.desk is None:
            return
        stopping = asyncio.Event()

        async def loop() -> None:
            while not stopping.is_set():
                try:
                    await self.desk.sweep()
                except Exception:
                    log.exception("hotline sweep failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), timeout=interval_s)

        task = asyncio.create_task(loop(), name="hotline-sweep")

        async def stop() -> None:
            stopping.set()
            await task

        self._closers.insert(0, stop)

    async def close(self) -> None:
        if self._warmup is not None:
            await self._warmup
        for closer in reversed(self._closers):
            try:
                result = closer()
                if asyncio.iscoroutine(result):
                    await result
            except Exception:
                log.exception("error while closing")
        self.store.close()


def prepare_data_dir(settings: Settings) -> None:
    """Create the data directories or fail with a clear reason; whoever made them, the
    tree ends up 0700 directories and 0600 files (they hold ID photos and personal data)."""
    for directory in (settings.data_dir, settings.uploads_dir, settings.documents_dir):
        private_dir(directory)
    secure_tree(settings.data_dir)
    probe = settings.data_dir / ".write-test"
    probe.write_text("ok")
    probe.unlink()


async def build_assistant(settings: Settings, *, warm_up: bool = False, **overrides: Any) -> AssistantService:
    """The assistant on the configured parts; `overrides` replace Services fields (tests).

    `warm_up` loads the slow address data in the background and opens the backend and the
    database's SQLAlchemy side at once: right for a long-running server, wasted on a terminal
    session that may answer one line and exit (without it they are made on first use). `cpu`
    (a `bot.cpu.CpuPool`) runs photo checks and PDFs; without one they share a small thread pool.
    """
    prepare_data_dir(settings)
    # Operators may import their own agency list into the data dir (vssid-bot agencies import).
    AgencyDirectory.configure(settings.data_dir)
    keyring = settings.keyring()
    use_for_files(settings.data_dir, keyring)  # channels open the photos and PDFs they send
    cpu = overrides.pop("cpu", None)
    services = _services(settings, keyring, cpu, warm_up=warm_up, overrides=overrides)
    backend = services.backend
    store = ConversationStore(settings.sqlalchemy_url, keyring=keyring)
    limiter = None
    if settings.rate_limit_burst > 0 and settings.rate_limit_per_minute > 0:
        limiter = ConversationRateLimit(settings.rate_limit_burst, settings.rate_limit_per_minute)
    service = AssistantService(
        engine=Engine(services, flows=disk_cache.flows()),
        store=store,
        limiter=limiter,
        cpu=cpu,
        seen_window=timedelta(days=settings.seen_message_days),
        retention_days=settings.retention_days,
        data_dir=settings.data_dir,
    )
    if cpu is not None:
        service._closers.append(cpu.close)
    if warm_up:
        store.engine  # noqa: B018 - made now rather than on the event loop at the first ticket
    service.funnel = SchoolFunnel(lambda: store.engine, service.engine.flows)
    service.desk = _hotline_desk(settings, service, eager=warm_up)
    if services.forget_user is None:
        services.forget_user = service.forget_user
    if hasattr(backend, "close"):
        service._closers.append(backend.close)
    if warm_up:
        service._warmup = asyncio.create_task(_warm_up(service.engine), name="warm-up")
    return service


def _services(
    settings: Settings, keyring: Keyring, cpu: Any, *, warm_up: bool, overrides: dict[str, Any]
) -> Services:
    """The engine's ports on the configured parts; `overrides` replace any of them (tests)."""
    from bot.backend import make_backend
    from bot.documents import PdfDocumentRenderer
    from bot.photos import FilePhotoStore

    backend = overrides.pop("backend", None) or (
        make_backend(settings) if warm_up else make_backend(settings, lazy=True)
    )
    return Services(
        backend=backend,
        photos=overrides.pop("photos", None)
        or FilePhotoStore(settings.uploads_dir, cpu=cpu, keyring=keyring),
        documents=overrides.pop("documents", None)
        or PdfDocumentRenderer(settings.documents_dir, cpu=cpu, keyring=keyring),
        **overrides,
    )


def _hotline_desk(settings: Settings, service: AssistantService, *, eager: bool) -> Any:
    from bot.hotline.desk import HotlineDesk
    from bot.hotline.hours import OfficeHours

    def store() -> Any:
        from bot.hotline.store import HotlineStore

        return HotlineStore(service.store.engine)

    return HotlineDesk(
        service,
        store() if eager else store,
        hours=OfficeHours.parse(settings.office_hours),
        wait=timedelta(minutes=settings.hotline_wait_minutes),
    )


async def _warm_up(engine: Engine) -> None:
    # The old-address data takes about a second to load, the FAQ index (naive Bayes
    # included) about half a second: off the event loop, before the first question.
    from knowledge import admin_units  # here: a terminal chat does without it until an address

    await asyncio.to_thread(admin_units.preload)
    await asyncio.to_thread(_load_faq, engine)
    documents = engine.services.documents
    if hasattr(documents, "warm_up"):  # the PDF fonts cut and parsed before the first Tờ khai
        try:
            await documents.warm_up()
        except Exception:  # the first document will try again, and say what is wrong
            log.exception("PDF warm-up failed")
    freeze_long_lived_objects()


def _load_faq(engine: Engine) -> None:
    from bot.faq_cache import faq_index

    if engine.services.faq is None:
        engine.services.faq = faq_index(save_in_background=True)


def freeze_long_lived_objects() -> None:
    """Exclude what start-up loaded (address units, agencies, FAQ index, framework modules:
    ~300,000 objects) from the cyclic garbage collector's scans.

    They live as long as the process, yet every full collection walked them all, and a
    busy bot allocates enough for collections to be frequent: measured +15 % updates/s on
    the aiogram Telegram bench (no clear change on PTB's). Objects frozen here are still
    freed by reference counting.

    The youngest generation is then collected every 10,000 net allocations instead of
    700: a message allocates in bursts that mostly die by reference counting, and the
    collections found nothing to free (measured: 0 collected) yet cost ~15 % of the
    assistant's CPU time per message on the Telegram bench's script.
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, older, oldest)
