"""The per-message exchanges on SQLite's own driver, with group commit.

SQLAlchemy's statement execution cost more than the SQLite work itself (~0.15 ms of a
~0.5 ms message), and a commit per message cost more than the writes (each commit appends
its pages to the WAL). Here the store's Core statements (`bot/statements.py`), compiled
once for the driver, run on one sqlite3 connection; each save is a savepoint inside one
open transaction, and `commit` ends it for every save made since: under load, one commit
per event-loop turn instead of one per message.

The WAL is moved into the database file by a thread of its own (`Checkpointer`), not by
the commit that happens to cross SQLite's 1,000-page mark: that checkpoint syncs the WAL
and the database file (synchronous=NORMAL), and done by a commit it held the event loop
for 9-17 ms every few group commits (measured on the Telegram bench's script: ~25 us of
wall time per message, more than the statements themselves).
"""

from __future__ import annotations

import contextlib
import enum
import logging
import sqlite3
import threading
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from bot import statements as sql

log = logging.getLogger(__name__)

# Saves committed between two background checkpoints: a save writes a few pages (its
# conversation's, the message id's), SQLite's own checkpoint comes every 1,000.
CHECKPOINT_EVERY = 300


class SaveResult(enum.Enum):
    SAVED = "saved"
    DUPLICATE = "duplicate"  # the message id was already answered
    CONFLICT = "conflict"  # someone else wrote this conversation meanwhile


_BEGIN = sql.SqliteStatement(sql.BEGIN)
_ANY_OWED = sql.SqliteStatement(sql.ANY_OWED)
_MARK_SEEN = sql.SqliteStatement(sql.MARK_SEEN)
_CREATE = sql.SqliteStatement(sql.CREATE)
_UPDATE = sql.SqliteStatement(sql.UPDATE)


def sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA secure_delete=ON")  # deleted rows are zeroed in the file, not left in free pages
    cursor.close()


class Checkpointer:
    """`PRAGMA wal_checkpoint(PASSIVE)` on a connection and thread of its own, when asked
    (started on the first request). A passive checkpoint never waits for the writer nor the
    readers: what they still use is left for the next one."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        # Held during a checkpoint: a TRUNCATE checkpoint (after /delete) must not find this
        # one running, or it would return busy without emptying the WAL.
        self.lock = threading.Lock()

    def request(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
            self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        connection = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False, timeout=5)
        try:
            sqlite_pragmas(connection, None)
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._stopping:
                    return
                try:
                    with self.lock:
                        connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:  # the next request tries again; commits go on meanwhile
                    log.warning("background WAL checkpoint failed: %s", exc)
        finally:
            connection.close()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


class SqliteFastPath:
    """One sqlite3 connection in autocommit mode: transactions begin and end by the statements below only."""

    def __init__(self, path: str) -> None:
        self.connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=5)
        sqlite_pragmas(self.connection, None)
        # This connection's commits never checkpoint; the Checkpointer does, off the event loop.
        self.connection.execute("PRAGMA wal_autocheckpoint=0")
        self.checkpointer = Checkpointer(path)
        self._thread = threading.get_ident()
        self._saves = 0  # saves in the open transaction
        self._unchecked = 0  # saves committed since the last checkpoint request

    def _undo(self) -> None:
        """Undo the current save; end the transaction if it holds nothing else (it holds the write lock)."""
        db = self.connection
        db.execute("ROLLBACK TO message")
        db.execute("RELEASE message")
        if self._saves == 0:
            db.execute("ROLLBACK")

    def owned_here(self) -> bool:
        return threading.get_ident() == self._thread

    @property
    def pending(self) -> bool:
        return self.connection.in_transaction

    def begin(self, conversation_id: str, key: str) -> tuple | None:
        return self.connection.execute(
            _BEGIN.sql, _BEGIN.args({"key": key, "id": conversation_id})
        ).fetchone()

    def owes_notices(self, conversation_id: str) -> bool:
        found = self.connection.execute(_ANY_OWED.sql, _ANY_OWED.args({"conversation_id": conversation_id}))
        return bool(found.fetchone()[0])

    def save(self, values: dict[str, Any], expected_version: int, now: datetime) -> SaveResult:
        """Write one conversation (`values`: the b_* parameters of statements.CREATE/UPDATE,
        b_key the message's seen key or None) inside the open transaction."""
        db = self.connection
        values["b_at"] = sql.sqlite_time(now)
        if not db.in_transaction:
            db.execute("BEGIN IMMEDIATE")  # take the write lock now, not halfway through
        db.execute("SAVEPOINT message")
        try:
            outcome = self._write(db, values, expected_version)
        except BaseException:
            self._undo()
            raise
        if outcome is SaveResult.SAVED:
            db.execute("RELEASE message")
            self._saves += 1
        else:
            self._undo()  # this save only; the others of the turn stay
        return outcome

    @staticmethod
    def _write(db: sqlite3.Connection, values: dict[str, Any], expected_version: int) -> SaveResult:
        if values["b_key"] is not None and not _inserted(db, _MARK_SEEN, values):
            return SaveResult.DUPLICATE
        if expected_version == 0:
            if not _inserted(db, _CREATE, values):
                return SaveResult.CONFLICT  # created meanwhile by another worker
            return SaveResult.SAVED
        if db.execute(_UPDATE.sql, _UPDATE.args(values)).rowcount != 1:
            return SaveResult.CONFLICT
        return SaveResult.SAVED

    def commit(self) -> None:
        if not self.connection.in_transaction:
            return
        saves, self._saves = self._saves, 0
        try:
            self.connection.execute("COMMIT")
        except BaseException:
            if self.connection.in_transaction:
                self.connection.execute("ROLLBACK")
            raise
        self._unchecked += saves
        if self._unchecked >= CHECKPOINT_EVERY:
            self._unchecked = 0
            self.checkpointer.request()

    @contextlib.contextmanager
    def checkpoints_paused(self) -> Iterator[None]:
        """No background checkpoint runs meanwhile (any thread may ask)."""
        with self.checkpointer.lock:
            yield

    def close(self) -> None:
        self.commit()
        self.checkpointer.stop()
        self.connection.close()


def _inserted(db: sqlite3.Connection, statement: sql.SqliteStatement, values: dict[str, Any]) -> bool:
    try:
        db.execute(statement.sql, statement.args(values))
    except sqlite3.IntegrityError:
        return False
    return True
