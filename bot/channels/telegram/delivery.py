"""Replies -> Bot API calls: retries, keyboards' retirement, and replies parked until the
Bot API is reachable (in the outbox of the main database, so neither a restart nor a
worker's death loses one, and exactly one worker sends each)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.channels.outbox import STORE_ERRORS
from bot.channels.replies import payload_to_outbounds
from bot.crypto import open_file
from bot.outbox import MESSAGE, Item
from bot.retry import TELEGRAM, GaveUp, RetryPolicy, retrying
from dialogs.messages import Outbound

from .api import BotApi
from .codec import CallbackCodec, TelegramOutbox
from .rendering import Op, render

log = logging.getLogger("bot.channels.telegram")

Undelivered = GaveUp  # a call still failed after the retry policy: what is left gets parked


@dataclass(slots=True)
class _Live:
    """Keyboards of the latest question in one chat: only these may be pressed."""

    batch: int
    message_ids: set[int] = field(default_factory=set)


class Delivery:
    """Sends rendered replies one chat at a time; the scheduling (`_enqueue`) is the subclass's."""

    def __init__(self, api: BotApi, retry: RetryPolicy | None, store: TelegramOutbox | None) -> None:
        self.api = api
        self.retry = retry or TELEGRAM
        self.store = store
        self.codec = CallbackCodec(store=store)
        # Parked replies: on disk (chat -> how many rows `store` holds) or, without a store
        # or when writing failed, in memory. A reply is in one place only, never both.
        self._parked: dict[int, int] = {}
        self._held: dict[int, deque[Op]] = {}
        self._retry_timers: dict[int, asyncio.TimerHandle] = {}
        self._live: dict[int, _Live] = {}
        self._batches = 0
        self.closed = False
        if store is not None:
            self._count_kept(store)

    def _count_kept(self, store: TelegramOutbox) -> None:
        # Read before any update can arrive (a webhook may post before `start`), so a
        # chat's new answers queue behind what it was owed before the restart.
        kept = store.items_now()
        for _, chat, spec in kept:
            self._parked[int(chat)] = self._parked.get(int(chat), 0) + 1
            with contextlib.suppress(AttributeError, TypeError, ValueError):  # batch ids stay unique
                self._batches = max(self._batches, int(spec.get("batch") or 0))
        if kept:
            log.info("telegram: %d chats have replies kept from before the restart", len(self._parked))

    def _enqueue(self, chat_id: int, job: Callable[[], Awaitable[None]]) -> None:
        raise NotImplementedError

    def _drop_owed(self, chat_id: int) -> int:
        """Forget what waits in memory for the chat (timer, held replies); how many went."""
        timer = self._retry_timers.pop(chat_id, None)
        if timer is not None:
            timer.cancel()
        self._parked.pop(chat_id, None)
        return len(self._held.pop(chat_id, ()))

    def _stop_timers(self) -> None:
        for timer in self._retry_timers.values():
            timer.cancel()
        self._retry_timers.clear()

    def _render(self, replies: Sequence[Outbound]) -> list[Op]:
        self._batches += 1
        return render(replies, self._batches, self.codec.encode)

    async def _deliver(self, chat_id: int, replies: Sequence[Outbound]) -> None:
        ops = self._render(replies)
        if self.codec.dirty:  # new long-payload ids: on disk before a user can press them
            await self.codec.save()
        if chat_id in self._parked or chat_id in self._held:  # something older waits: keep the order
            await self._park(chat_id, ops, "queued behind earlier undelivered replies")
            return
        await self._send_ops(chat_id, deque(ops))

    async def _send_ops(self, chat_id: int, ops: deque[Op]) -> None:
        while ops:
            error = await self._send_one(chat_id, ops[0])
            if error is not None:
                await self._park(chat_id, list(ops), error)
                return
            ops.popleft()

    async def _send_one(self, chat_id: int, op: Op) -> str | None:
        """Send one message with the retry policy; the error's name when it must wait for later.

        A message Telegram refuses for good (blocked bot, bad file) is dropped with a warning:
        retrying cannot help, and the ones after it can still go.
        """
        try:
            message_id = await self._send_op(chat_id, op)
        except Undelivered as exc:
            return type(exc.__cause__ or exc).__name__
        except Exception as exc:
            if self.api.classify(exc) is None:
                raise
            log.warning("telegram %s dropped for chat %s: %s", op.kind, _pseudonym(chat_id), exc)
            return None
        if message_id is not None and op.keyboard is not None:
            live = self._live.get(chat_id)
            if live is None or live.batch != op.batch:
                # A new question supersedes the unanswered one (typed instead of tapped):
                # take its buttons away so the chat shows only what can still be used.
                for old in sorted(live.message_ids) if live else ():
                    await self._best_effort(self.api.remove_keyboard(chat_id, old))
                live = self._live[chat_id] = _Live(op.batch)
            live.message_ids.add(message_id)
        return None

    async def _send_op(self, chat_id: int, op: Op) -> int | None:
        if op.kind == "text":
            return await self._call(lambda: self.api.send_text(chat_id, op.text or "", op.keyboard))
        assert op.path is not None
        try:
            data = await asyncio.to_thread(open_file, op.path)
        except OSError as exc:
            # Gone from the data dir (e.g. the user's data was deleted meanwhile): retrying
            # cannot bring it back, and it must not hold back the messages after it.
            log.error("telegram %s for chat %s skipped: %s", op.kind, _pseudonym(chat_id), type(exc).__name__)
            return None
        send = self.api.send_document if op.kind == "document" else self.api.send_photo
        name = op.path.name
        return await self._call(lambda: send(chat_id, data, name, op.text, op.keyboard))

    def _call(self, make: Callable[[], Awaitable[Any]]) -> Awaitable[Any]:
        """One Bot API call with the retry policy: 429 waited out, network errors backed off
        (`retrying`'s coroutine itself, not one more around it: every reply makes one)."""
        return retrying(make, self.retry, self.api.classify, name="telegram call")

    async def _park(self, chat_id: int, ops: Sequence[Op], error: str) -> None:
        """Keep `ops` after whatever the chat already has waiting, and retry them later."""
        if not ops:
            return
        log.warning("telegram: %d replies parked for chat %s (%s)", len(ops), _pseudonym(chat_id), error)
        # Into the outbox, unless some are already held in memory (they are older: order first).
        if self.store is not None and chat_id not in self._held:
            try:
                await self.store.add(str(chat_id), [op.spec() for op in ops], error)
            except STORE_ERRORS as exc:
                log.error(
                    "telegram: the outbox could not keep replies (%s); held in memory", type(exc).__name__
                )
            else:
                self._parked[chat_id] = self._parked.get(chat_id, 0) + len(ops)
                ops = ()
        if ops:
            self._held.setdefault(chat_id, deque()).extend(ops)
        self._schedule_retry(chat_id)

    def _retry_parked(self, chat_id: int) -> None:
        self._retry_timers.pop(chat_id, None)
        if chat_id in self._parked or chat_id in self._held:
            self._enqueue(chat_id, lambda: self._flush_outbox(chat_id))

    async def _flush_outbox(self, chat_id: int) -> None:
        """Send what waits for this chat, oldest first; runs in the chat's worker."""
        if chat_id not in self._parked and chat_id not in self._held:
            return
        timer = self._retry_timers.pop(chat_id, None)
        if timer is not None:
            timer.cancel()
        if chat_id in self._parked and not await self._flush_stored(chat_id):
            self._schedule_retry(chat_id)
            return
        held = self._held.pop(chat_id, None)
        if held:
            await self._send_ops(chat_id, held)  # what fails again is parked again, in order

    async def _flush_stored(self, chat_id: int) -> bool:
        """The chat's items of the outbox, each taken with a lease and ended once sent; False
        when some must wait (the Bot API still fails, or another worker is sending them)."""
        assert self.store is not None
        try:
            while (item := await self.store.claim(str(chat_id))) is not None:
                if not await self._send_item(chat_id, item):
                    break
            left = len(await self.store.items(str(chat_id)))
        except STORE_ERRORS as exc:
            log.error("telegram: the outbox could not be read: %s", type(exc).__name__)
            return False
        if left:
            self._parked[chat_id] = left
            return False
        self._parked.pop(chat_id, None)
        return True

    async def _send_item(self, chat_id: int, item: Item) -> bool:
        """Send one claimed item (kept messages, or a notice rendered now); False when a message
        must wait: it and the rest stay in the item's place."""
        assert self.store is not None
        if item.kind == MESSAGE:
            specs = list(item.payload)
        else:
            specs = [op.spec() for op in self._render(payload_to_outbounds(item.payload))]
            if self.codec.dirty:
                await self.codec.save()
        for index, spec in enumerate(specs):
            error = await self._send_spec(chat_id, spec)
            if error is not None:
                await self.store.release(item.id, error, specs[index:] if index else None)
                return False
        try:
            await self.store.done(item.id)
        except STORE_ERRORS as exc:
            log.error("telegram: a sent reply could not be removed from the outbox: %s", type(exc).__name__)
        return True

    async def _send_spec(self, chat_id: int, spec: dict) -> str | None:
        """One kept message; the error's name when it must wait. One that cannot be read or
        fails for a reason of ours is dropped: it would fail the same way every time and
        hold back everything the chat is sent after it."""
        try:
            op = Op.from_spec(spec)
        except (KeyError, TypeError, ValueError) as exc:
            log.error(
                "telegram: an unreadable outbox item for chat %s dropped: %s",
                _pseudonym(chat_id),
                type(exc).__name__,
            )
            return None
        try:
            return await self._send_one(chat_id, op)
        except Exception:
            log.exception("telegram: an outbox item for chat %s dropped", _pseudonym(chat_id))
            return None

    def _schedule_retry(self, chat_id: int) -> None:
        if chat_id not in self._retry_timers and not self.closed:
            loop = asyncio.get_running_loop()
            self._retry_timers[chat_id] = loop.call_later(
                self.retry.outbox_retry_s, self._retry_parked, chat_id
            )

    def pending(self, chat_id: int) -> int:
        """How many rendered messages wait for the Bot API to come back (for tests and health)."""
        return self._parked.get(chat_id, 0) + len(self._held.get(chat_id, ()))

    async def _best_effort(self, call: Awaitable[Any]) -> None:
        """Spinner answers and keyboard removals: one try, never fatal (the live set already
        refuses stale presses, so a keyboard left on screen cannot replay a step)."""
        try:
            await call
        except Exception as exc:
            if self.api.classify(exc) is None:
                raise
            log.info("telegram housekeeping call failed: %s", type(exc).__name__)


def _pseudonym(chat_id: int) -> str:
    """Chat ids are personal data: logs carry a short hash instead."""
    return hashlib.blake2s(str(chat_id).encode(), digest_size=4).hexdigest()
