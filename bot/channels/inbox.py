"""Updates of the webhook channels (Telegram in webhook mode, Zalo), in order per user
whichever worker receives them, and a redelivered one answered once.

Behind a load balancer one user's updates land on different workers, and a messaging
platform redelivers an update it thinks went unanswered, possibly to another worker. On a
server database (several workers) each update is written to the outbox table before it
is acknowledged (`take`: kind "update", keyed by the platform's id, so a redelivery is
recognised by every worker), and answered from there (`drain`): a worker takes the user's
oldest unanswered update with a lease, the same claim path as the outbox's, so the next
one waits until it is answered, whoever took it. A worker that dies mid-answer frees it
when the lease ends; every worker sweeps for such updates now and then. On SQLite (one
process) the channels answer in memory as before: nothing here is used.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from bot.channels.locks import KeyedLocks
from bot.outbox import UPDATE, OutboxQueue, lease_holder

log = logging.getLogger(__name__)

# How long a worker holds the update it answers: one killed meanwhile frees it by then.
ANSWER_LEASE = timedelta(minutes=2)
SWEEP_EVERY_S = 5.0
# Answered updates are kept this long, so a redelivery that late is still recognised.
KEEP_ANSWERED = timedelta(days=1)

Handler = Callable[[str, Any], Awaitable[None]]


class Inbox:
    """One channel's updates, in the outbox table under conversations `in:<channel>:<user>`."""

    def __init__(self, queue: OutboxQueue, channel: str, handle: Handler) -> None:
        self.queue = queue
        self.channel = channel
        self.handle = handle
        self.owner = lease_holder(f"in-{channel}-{id(self):x}")
        self._prefix = f"in:{channel}:"
        self._draining = KeyedLocks()
        self._tasks: set[asyncio.Task] = set()
        self._stopping = asyncio.Event()
        self._sweeper: asyncio.Task | None = None

    def conversation(self, user_id: str) -> str:
        return self._prefix + user_id

    async def take(self, user_id: str, update_id: str, payload: Any) -> bool:
        """Record one update before it is acknowledged; False when it was already recorded
        (a redelivery: already answered, or being answered)."""
        key = f"{self.channel}:{update_id}"
        return await asyncio.to_thread(self.queue.enqueue, key, self.conversation(user_id), payload, UPDATE)

    def kick(self, user_id: str) -> None:
        """Answer what waits for the user, in the background (`idle` waits for it)."""
        task = asyncio.create_task(self.drain(user_id), name=f"{self.channel}-inbox")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, user_id: str) -> None:
        """Answer the user's updates oldest first while this worker can take them."""
        conversation = self.conversation(user_id)

        async def answer_all() -> None:
            while True:
                taken = await asyncio.to_thread(
                    self.queue.claim,
                    self.owner,
                    ANSWER_LEASE,
                    conversation_id=conversation,
                    kinds=(UPDATE,),
                    limit=1,
                )
                if not taken:
                    return
                try:
                    await self.handle(user_id, taken[0].payload)
                except Exception:
                    # It would fail the same way again and hold back the user's next updates.
                    log.exception("%s: an update could not be answered", self.channel)
                await asyncio.to_thread(self.queue.done, taken[0].id)

        await self._draining.run(user_id, answer_all)

    async def sweep(self) -> None:
        """Answer updates nobody is answering (their worker died, or raced this one)."""
        due = await asyncio.to_thread(self.queue.due, (self._prefix,), UPDATE)
        for conversation in due:
            self.kick(conversation.removeprefix(self._prefix))
        await asyncio.to_thread(self.queue.purge, UPDATE, KEEP_ANSWERED)

    def start(self) -> None:
        self._stopping.clear()
        self._sweeper = asyncio.create_task(self._sweep_loop(), name=f"{self.channel}-inbox-sweep")

    async def _sweep_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.sweep()
            except Exception:
                log.exception("%s: sweeping the inbox failed", self.channel)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), SWEEP_EVERY_S)

    async def idle(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def stop(self) -> None:
        self._stopping.set()
        if self._sweeper is not None:
            await self._sweeper
            self._sweeper = None
        await self.idle()
