"""A pushing channel's part of the outbox (`bot.outbox`), in the main database.

Messages a messaging API did not accept are kept, in order per user, until a retry
delivers them, so neither a restart nor a worker's death loses a reply, and exactly one
worker sends each (leases). Each item is a list of JSON descriptions of messages (specs)
that the channel alone knows how to send; a notice queued for the user is taken in the
same order and rendered by the channel (`kind` "notice").

What is kept holds what people are told (personal data): sealed with the data keys,
callers log counts and error codes, never texts or user ids, and a user's /delete drops
everything kept for them (`forget`).

Every call runs in a worker thread (`asyncio.to_thread`): the outbox is touched only when
a delivery failed or something was kept, never on the hot path of a healthy channel.

Upgrading: the per-channel SQLite files of earlier versions (`telegram-outbox.sqlite3`,
`zalo-outbox.sqlite3` in the data dir) are moved into the database on the first start
(`move_old_file`) and deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sqlite3
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.exc import SQLAlchemyError

from bot import migrate
from bot.crypto import keyring_beside
from bot.outbox import MESSAGE, Item, OutboxQueue, lease_holder
from bot.storage import make_engine

log = logging.getLogger(__name__)

T = TypeVar("T")

# What a failing database raises: callers that can go on without it catch these.
STORE_ERRORS = (SQLAlchemyError, sqlite3.Error, OSError)
# How long a worker holds the item it is sending: one killed mid-send frees it by then.
SEND_LEASE = timedelta(minutes=2)


def queue_of(assistant: Any, database_url: str, data_dir: Path) -> OutboxQueue:
    """The assistant's outbox; a stand-in assistant without a store (tests, benches) gets
    the main database of `database_url` (migrated), sealed with `data_dir`'s keys."""
    queue = getattr(getattr(assistant, "store", None), "outbox", None)
    if isinstance(queue, OutboxQueue):
        return queue
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    return OutboxQueue(engine, keyring_beside(data_dir / "vssid.sqlite3"))


class Outbox:
    """One channel's undelivered messages per user, oldest first, until the channel sends them."""

    def __init__(self, queue: OutboxQueue, channel: str) -> None:
        self.queue = queue
        self.channel = channel
        self.owner = lease_holder(f"{channel}-{id(self):x}")

    @property
    def path(self) -> Path | None:
        """The database file it is kept in, on SQLite (None on a server database)."""
        url = self.queue.engine.url
        return Path(url.database) if url.get_backend_name() == "sqlite" and url.database else None

    def conversation(self, user_id: str) -> str:
        return f"{self.channel}:{user_id}"

    @staticmethod
    async def _run(call: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(call, *args)

    # ---- blocking forms (start-up, tests, worker threads)

    def add_now(self, user_id: str, specs: list[dict], error: str) -> None:
        """Keep `specs` after what `user_id` already has waiting."""
        self.queue.add_messages(self.conversation(user_id), specs, error)

    def items_now(self, user_id: str | None = None) -> list[tuple[int, str, dict]]:
        """(item id, user, spec) of every message waiting, oldest first; everyone's when
        `user_id` is None."""
        prefix = self.conversation(user_id) if user_id is not None else f"{self.channel}:"
        found: list[tuple[int, str, dict]] = []
        for item_id, conversation_id, specs in self.queue.items(prefix):
            user = conversation_id.partition(":")[2]
            if user_id is None or user == user_id:
                found.extend((item_id, user, spec) for spec in specs)
        return found

    def counts_now(self) -> dict[str, int]:
        """How many items wait, per user."""
        waiting = self.queue.waiting(f"{self.channel}:")
        return {conversation.partition(":")[2]: count for conversation, count in waiting.items()}

    def claim_now(self, user_id: str) -> Item | None:
        """The user's oldest item (a kept message or a notice), held for this channel until
        `done` or `release`; None when nothing waits or another worker holds it."""
        taken = self.queue.claim(self.owner, SEND_LEASE, conversation_id=self.conversation(user_id), limit=1)
        return taken[0] if taken else None

    def forget_now(self, user_id: str) -> int:
        """Drop everything kept for `user_id` (their data was deleted); how many items went."""
        return self.queue.forget(self.conversation(user_id))

    # ---- off the event loop

    async def add(self, user_id: str, specs: list[dict], error: str) -> None:
        await self._run(self.add_now, user_id, specs, error)

    async def items(self, user_id: str | None = None) -> list[tuple[int, str, dict]]:
        return await self._run(self.items_now, user_id)

    async def counts(self) -> dict[str, int]:
        return await self._run(self.counts_now)

    async def claim(self, user_id: str) -> Item | None:
        return await self._run(self.claim_now, user_id)

    async def done(self, item_id: int) -> None:
        await self._run(self.queue.done, item_id)

    async def release(self, item_id: int, error: str, rest: list[dict] | None = None) -> None:
        await self._run(self.queue.release, item_id, error, rest)

    async def waiting(self, user_id: str) -> bool:
        """Does a kept message still wait for the user (whoever holds it)?"""
        found = await self._run(self.queue.waiting, self.conversation(user_id), MESSAGE)
        return self.conversation(user_id) in found

    async def forget(self, user_id: str) -> int:
        return await self._run(self.forget_now, user_id)


# ---------------------------------------------------------------- upgrading an old data dir


def move_old_file(path: Path, outbox: Outbox) -> int:
    """Move what an earlier version kept in its per-channel file into the database, then
    delete the file; how many messages moved. Workers starting together: the one that
    renames the file moves it, the others find nothing."""
    taken = path.with_name(path.name + ".moving")  # left by a worker stopped while moving it: again
    if path.exists():
        with contextlib.closing(sqlite3.connect(path, timeout=10)) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # what the WAL holds, into the file itself
        with contextlib.suppress(FileNotFoundError):
            os.replace(path, taken)
    if not taken.exists():
        return 0
    keyring = keyring_beside(path)
    with contextlib.closing(sqlite3.connect(taken, timeout=10)) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        moved = 0
        if "outbox" in tables:
            for user_id, spec in db.execute("SELECT user_id, spec FROM outbox ORDER BY id").fetchall():
                outbox.add_now(user_id, [json.loads(keyring.open_text(spec))], "kept before the upgrade")
                moved += 1
        if "offered" in tables:
            for user_id, buttons in db.execute("SELECT user_id, buttons FROM offered").fetchall():
                outbox.queue.set_offered(outbox.conversation(user_id), json.loads(keyring.open_text(buttons)))
        if "callbacks" in tables:
            pairs = db.execute("SELECT token, payload FROM callbacks ORDER BY id").fetchall()
            outbox.queue.put_tokens([(t, p) for t, p in pairs], capacity=max(len(pairs), 1))
    for leftover in (
        taken,
        Path(f"{taken}-wal"),
        Path(f"{taken}-shm"),
        Path(f"{path}-wal"),
        Path(f"{path}-shm"),
    ):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()
    if moved:
        log.info("%s: %d kept message(s) moved from %s into the database", outbox.channel, moved, path.name)
    return moved
