"""The per-message exchanges on SQLite's own driver, with group commit.

SQLAlchemy's statement execution cost more than the SQLite work itself (~0.15 ms of a
~0.5 ms message), and a commit per message cost more than the writes (each commit appends
its pages to the WAL). Here the store's Core statements (`bot/statements.py`), compiled
for the driver, run on one sqlite3 connection; every save runs inside one open
transaction, and `commit` ends it for every save made since: under load, one commit
per event-loop turn instead of one per message.

The WAL is moved into the database file by a thread of its own (`Checkpointer`), not by
the commit that happens to cross SQLite's 1,000-page mark: that checkpoint syncs the WAL
and the database file (synchronous=NORMAL), and done by a commit it held the event loop
for 9-17 ms every few group commits (measured on the Telegram bench's script: ~25 us of
wall time per message, more than the statements themselves).

The compiled statements are kept below as text, so that a terminal chat on SQLite starts
without importing SQLAlchemy (a third of its cold start); a test compiles the Core
statements again and checks they still give exactly this text and these parameters.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

log = logging.getLogger(__name__)

# Saves committed between two background checkpoints: a save writes a few pages (its
# conversation's, the message id's), SQLite's own checkpoint comes every 1,000.
CHECKPOINT_EVERY = 300


class TurnLost(sqlite3.OperationalError):
    """The saves of a group commit's turn were rolled back: one of them failed midway."""


class SaveResult(enum.Enum):
    SAVED = "saved"
    DUPLICATE = "duplicate"  # the message id was already answered
    CONFLICT = "conflict"  # someone else wrote this conversation meanwhile


@dataclass(frozen=True)
class SqliteStatement:
    """A statement compiled for the sqlite3 driver: its SQL text, the names of its positional
    parameters in order, and the statement's own constants (a new row's version 1, a LIMIT),
    filled in by `args`."""

    sql: str
    order: tuple[str, ...]
    constants: tuple[tuple[str, Any], ...] = ()
    # `args(values) -> tuple`, as direct as can be (it runs on every message): an itemgetter.
    args: Callable[[dict[str, Any]], tuple] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        constants = dict(self.constants)
        args: Callable[[dict[str, Any]], tuple]
        if constants:
            pick = itemgetter(*self.order)
            args = lambda values: pick({**values, **constants})  # noqa: E731
        elif len(self.order) > 1:
            args = itemgetter(*self.order)
        else:
            (name,) = self.order
            args = lambda values: (values[name],)  # noqa: E731
        object.__setattr__(self, "args", args)


# bot/statements.py's BEGIN, ANY_OWED, MARK_SEEN, UNMARK_SEEN, CREATE, UPDATE and
# UPDATE_SINCE as SQLAlchemy compiles them for SQLite (tests/test_storage.py checks they are still the same).
_BEGIN = SqliteStatement(
    "SELECT conversation.state, conversation.version, (SELECT coalesce(seen_message.replies, '') AS coalesce_1 "
    '\nFROM seen_message \nWHERE seen_message."key" = ?) AS seen, conversation.seen AS seen_1 \nFROM conversation '
    "\nWHERE conversation.id = ?",
    ("key", "id"),
)
_ANY_OWED = SqliteStatement(
    "SELECT EXISTS (SELECT * \nFROM outbox \nWHERE outbox.conversation_id = ? AND outbox.sent_at IS NULL) AS anon_1",
    ("conversation_id",),
)
_MARK_SEEN = SqliteStatement(
    'INSERT INTO seen_message ("key", at, replies) VALUES (?, ?, ?)', ("b_key", "b_at", "b_replies")
)
_CREATE = SqliteStatement(
    "INSERT INTO conversation (id, channel, user_id, state, version, updated_at, seen, seen_since) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    ("b_id", "b_channel", "b_user_id", "b_state", "version", "b_at", "b_seen", "b_since"),
    (("version", 1),),
)
_UNMARK_SEEN = SqliteStatement('DELETE FROM seen_message WHERE seen_message."key" = ?', ("b_key",))
_UPDATE = SqliteStatement(
    "UPDATE conversation SET state=?, version=?, updated_at=?, seen=? WHERE conversation.id = ? "
    "AND conversation.version = ? AND conversation.seen = ?",
    ("b_state", "b_next_version", "b_at", "b_seen", "b_id", "b_expected", "b_seen_before"),
)
_UPDATE_SINCE = SqliteStatement(
    "UPDATE conversation SET state=?, version=?, updated_at=?, seen=?, seen_since=? WHERE conversation.id = ? "
    "AND conversation.version = ? AND conversation.seen = ?",
    ("b_state", "b_next_version", "b_at", "b_seen", "b_since", "b_id", "b_expected", "b_seen_before"),
)
STATEMENTS = {
    "BEGIN": _BEGIN,
    "ANY_OWED": _ANY_OWED,
    "MARK_SEEN": _MARK_SEEN,
    "UNMARK_SEEN": _UNMARK_SEEN,
    "CREATE": _CREATE,
    "UPDATE": _UPDATE,
    "UPDATE_SINCE": _UPDATE_SINCE,
}


# The second `sqlite_time` formatted last, and its text.
_this_second: tuple[int, str] = (0, "1970-01-01 00:00:00")


def sqlite_time(micros: int) -> str:
    """A time (microseconds since the epoch, UTC) as SQLAlchemy's SQLite dialect stores a
    datetime, so ORM reads of these rows agree: `datetime.replace(tzinfo=None).isoformat(" ",
    "microseconds")`, at a third of its cost (every save stamps its rows): the date and time
    of day are formatted once a second."""
    global _this_second
    second, fraction = divmod(micros, 1_000_000)
    cached = _this_second
    if cached[0] != second:  # one tuple, swapped whole: threads may call this too
        cached = _this_second = (
            second,
            datetime.fromtimestamp(second, UTC).replace(tzinfo=None).isoformat(" "),
        )
    return f"{cached[1]}.{fraction:06d}"


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
        self._lost = False  # saves of the turn were rolled back by a failed save: commit must say so
        self._unchecked = 0  # saves committed since the last checkpoint request

    def owned_here(self) -> bool:
        return threading.get_ident() == self._thread

    @property
    def pending(self) -> bool:
        return self._lost or self.connection.in_transaction

    def begin(self, conversation_id: str, key: str) -> tuple | None:
        return self.connection.execute(
            _BEGIN.sql, _BEGIN.args({"key": key, "id": conversation_id})
        ).fetchone()

    def owes_notices(self, conversation_id: str) -> bool:
        found = self.connection.execute(_ANY_OWED.sql, _ANY_OWED.args({"conversation_id": conversation_id}))
        return bool(found.fetchone()[0])

    def save(self, values: dict[str, Any], expected_version: int) -> SaveResult:
        """Write one conversation (`values`: the b_* parameters of statements.CREATE/UPDATE,
        b_at its time as `sqlite_time` gives it, b_key the message's seen_message key or None,
        b_since the new seen_since or None when it stays, b_moved the (key, at, None) rows of
        marks moving from the row to seen_message) inside the open transaction.

        No savepoint per save (two statements more, and SQLite copies every page a save
        touches into the savepoint's journal: ~6 of ~58 us a message, measured): each
        statement is atomic on its own, a refused save takes its seen mark back by hand, and
        a save that fails midway (an error SQLite did not confine to its statement, or any
        other exception, when it cannot be known what was written) rolls the whole turn back.
        """
        db = self.connection
        if not db.in_transaction:
            db.execute("BEGIN IMMEDIATE")  # take the write lock now, not halfway through
        key = values["b_key"]
        marked = False
        try:
            if key is not None and not _inserted(db, _MARK_SEEN, values):
                outcome = SaveResult.DUPLICATE
            else:
                marked = key is not None
                outcome = self._write(db, values, expected_version)
            if outcome is not SaveResult.SAVED:
                self._take_back(values, marked)  # this save only; the others of the turn stay
        except sqlite3.Error:
            # The failing statement changed nothing (SQLite backs it out), unless SQLite
            # rolled the whole transaction back (a full disk, an I/O error).
            if not (db.in_transaction and self._taken_back(values, marked)):
                self._lose_turn()
            raise
        except BaseException:
            self._lose_turn()
            raise
        if outcome is SaveResult.SAVED:
            if values["b_moved"]:
                self._move_marks(values["b_moved"])
            self._saves += 1
        return outcome

    def _move_marks(self, rows: list[tuple]) -> None:
        """The row's marks into seen_message, after the row was written without them: a
        failure here leaves a written row without its marks, so the turn is lost."""
        try:
            self.connection.executemany(_MARK_SEEN.sql, rows)
        except BaseException:
            self._lose_turn()
            raise

    @staticmethod
    def _write(db: sqlite3.Connection, values: dict[str, Any], expected_version: int) -> SaveResult:
        """The conversation's row: created, or updated if still at `expected_version`."""
        if expected_version == 0:
            if not _inserted(db, _CREATE, values):
                return SaveResult.CONFLICT  # created meanwhile by another worker
            return SaveResult.SAVED
        update = _UPDATE if values["b_since"] is None else _UPDATE_SINCE
        if db.execute(update.sql, update.args(values)).rowcount != 1:
            return SaveResult.CONFLICT
        return SaveResult.SAVED

    def _take_back(self, values: dict[str, Any], marked: bool) -> None:
        """Undo what a refused save wrote: its seen mark; or the transaction when it holds no
        other save (it holds the write lock)."""
        if self._saves == 0:
            self.connection.execute("ROLLBACK")
        elif marked:
            self.connection.execute(_UNMARK_SEEN.sql, _UNMARK_SEEN.args(values))

    def _taken_back(self, values: dict[str, Any], marked: bool) -> bool:
        """`_take_back` after an error; False when it failed too."""
        try:
            self._take_back(values, marked)
        except sqlite3.Error:
            return False
        return True

    def _lose_turn(self) -> None:
        """Roll back the open transaction: what a save left half-done must not be committed.
        The turn's other saves go with it, so the next `commit` raises instead of
        reporting them durable."""
        self._lost = self._lost or self._saves > 0
        self._saves = 0
        if self.connection.in_transaction:
            with contextlib.suppress(sqlite3.Error):  # the original error says more
                self.connection.execute("ROLLBACK")

    def commit(self) -> None:
        if self._lost:
            self._lose_turn()  # saves made after the failure too: the turn fails as a whole
            self._lost = False
            raise TurnLost("a save failed midway: this turn's saves were rolled back")
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
        try:
            self.commit()
        finally:
            self.checkpointer.stop()
            self.connection.close()


def _inserted(db: sqlite3.Connection, statement: SqliteStatement, values: dict[str, Any]) -> bool:
    try:
        db.execute(statement.sql, statement.args(values))
    except sqlite3.IntegrityError:
        return False
    return True
