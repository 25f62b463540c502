"""The durable outbox the pushing channels (Zalo, Telegram) share.

Messages a messaging API did not accept are kept, in order per user, in a small SQLite
file in the data dir until a retry delivers them, so a restart never loses a reply. Each
item is a JSON description of one message (`spec`) that the channel alone knows how to
send. A channel may add tables of its own to the same file (`schema`): Zalo keeps the
buttons last offered to each user, Telegram the ids of long button payloads.

The file holds what people are told (personal data): it is created 0600, callers log
counts and error codes, never texts or user ids, deleted rows are overwritten in the file
(`secure_delete`), and a user's /delete drops everything kept for them (`forget`).

Every call opens a short-lived connection in a worker thread (`asyncio.to_thread`): the
outbox is touched only when a delivery failed or something was kept, never on the hot
path of a healthy channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from bot.crypto import Keyring, keyring_beside
from bot.private import private_file

T = TypeVar("T")

_OUTBOX_TABLE = (
    "CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL,"
    " spec TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, created_at REAL NOT NULL)"
)
_OUTBOX_INDEX = "CREATE INDEX IF NOT EXISTS outbox_user ON outbox (user_id, id)"


class Outbox:
    """Undelivered messages per user, oldest first, until the channel removes them."""

    # Extra CREATE statements a channel's subclass runs on the same file.
    schema: ClassVar[tuple[str, ...]] = ()
    # The subclass's tables keyed by a `user_id` column: `forget` empties them for the user too.
    user_tables: ClassVar[tuple[str, ...]] = ()

    def __init__(self, path: Path, keyring: Keyring | None = None) -> None:
        self.path = path
        # What people are told is sealed at rest with the data keys of the file's data dir.
        self.keyring = keyring or keyring_beside(path)
        private_file(path)  # SQLite gives its journal the same mode
        with self._db() as db:
            db.execute(_OUTBOX_TABLE)
            db.execute(_OUTBOX_INDEX)
            for statement in self.schema:
                db.execute(statement)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=10)
        # What is deleted (sent replies, a user's data on /delete) is zeroed in the file, not
        # left readable in free pages.
        db.execute("PRAGMA secure_delete = ON")
        return db

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """A connection for one unit of work, committed when the block succeeds."""
        with contextlib.closing(self._connect()) as db, db:
            yield db

    @staticmethod
    async def _run(call: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(call, *args)

    def seal_json(self, value: Any) -> str:
        return self.keyring.seal_text(json.dumps(value, ensure_ascii=False))

    def open_json(self, value: str) -> Any:
        return json.loads(self.keyring.open_text(value))

    # ---- the queue (blocking forms, for start-up and worker threads)

    def add_now(self, user_id: str, specs: list[dict], error: str) -> None:
        """Keep `specs` after what `user_id` already has waiting."""
        now = time.time()
        with self._db() as db:
            db.executemany(
                "INSERT INTO outbox (user_id, spec, attempts, last_error, created_at) VALUES (?, ?, 1, ?, ?)",
                [(user_id, self.seal_json(spec), error, now) for spec in specs],
            )

    def items_now(self, user_id: str | None = None) -> list[tuple[int, str, dict]]:
        """(id, user, spec) of what waits, oldest first; everyone's when `user_id` is None."""
        with contextlib.closing(self._connect()) as db:
            if user_id is None:
                rows = db.execute("SELECT id, user_id, spec FROM outbox ORDER BY id").fetchall()
            else:
                rows = db.execute(
                    "SELECT id, user_id, spec FROM outbox WHERE user_id = ? ORDER BY id", (user_id,)
                ).fetchall()
        return [(row[0], row[1], self.open_json(row[2])) for row in rows]

    def counts_now(self) -> dict[str, int]:
        """How many messages wait, per user."""
        with contextlib.closing(self._connect()) as db:
            rows = db.execute("SELECT user_id, COUNT(*) FROM outbox GROUP BY user_id").fetchall()
        return {row[0]: int(row[1]) for row in rows}

    def remove_now(self, item_id: int) -> None:
        with self._db() as db:
            db.execute("DELETE FROM outbox WHERE id = ?", (item_id,))

    def forget_now(self, user_id: str) -> int:
        """Drop everything kept for `user_id` (their data was deleted); how many messages went."""
        with self._db() as db:
            dropped = db.execute("DELETE FROM outbox WHERE user_id = ?", (user_id,)).rowcount
            for table in self.user_tables:
                db.execute(f"DELETE FROM {table} WHERE user_id = ?", (user_id,))  # noqa: S608 - a class constant
        return dropped

    def failed_now(self, item_id: int, error: str) -> None:
        with self._db() as db:
            db.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE id = ?", (error, item_id)
            )

    # ---- the queue, off the event loop

    async def add(self, user_id: str, specs: list[dict], error: str) -> None:
        await self._run(self.add_now, user_id, specs, error)

    async def items(self, user_id: str | None = None) -> list[tuple[int, str, dict]]:
        return await self._run(self.items_now, user_id)

    async def counts(self) -> dict[str, int]:
        return await self._run(self.counts_now)

    async def remove(self, item_id: int) -> None:
        await self._run(self.remove_now, item_id)

    async def failed(self, item_id: int, error: str) -> None:
        await self._run(self.failed_now, item_id, error)

    async def forget(self, user_id: str) -> int:
        return await self._run(self.forget_now, user_id)
