"""Conversation state that survives restarts, in SQL through sqlmodel.

SQLite file by default (WAL), any SQLAlchemy URL by setting (PostgreSQL for several
workers). A conversation row carries a version: a write that lost a race is refused
and the caller runs the message again on fresh state, so two messages from one user,
or two workers, never corrupt a form. Every inbound message id is recorded in the same
transaction as the state it produced, so a redelivered message is answered once.
"""

from __future__ import annotations

import enum
import json
import sqlite3
import threading
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, event, insert, update
from sqlalchemy.engine import Engine as SqlEngine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, create_engine, select

from bot import migrate
from bot.crypto import Keyring
from bot.private import private_sqlite
from bot.schema import ConversationRow, DeclarationOwner, KeyValue, Notice, SeenMessage, utcnow
from dialogs.state import ConversationState

__all__ = [
    "ConversationRow",
    "ConversationStore",
    "DeclarationOwner",
    "KeyValue",
    "Notice",
    "SaveResult",
    "SeenMessage",
    "make_engine",
    "utcnow",
]


_CONVERSATION = ConversationRow.__table__
_SEEN = SeenMessage.__table__
_OWNER = DeclarationOwner.__table__
_NOTICE = Notice.__table__

# The per-message statements, built once: constructing SQLAlchemy expressions on every
# message cost more than running them on SQLite.
# State, version and "was this message already answered?" in one round trip. A message id is
# only ever recorded together with a conversation row, so no row means not seen.
_SQL_BEGIN = select(
    _CONVERSATION.c.state,
    _CONVERSATION.c.version,
    select(_SEEN.c.key).where(_SEEN.c.key == bindparam("key")).scalar_subquery().label("seen"),
).where(_CONVERSATION.c.id == bindparam("id"))
_SQL_ANY_OWED = (
    select(_NOTICE.c.id)
    .where(_NOTICE.c.conversation_id == bindparam("conversation_id"), _NOTICE.c.sent_at.is_(None))
    .limit(1)
)
_SQL_MARK_SEEN = insert(_SEEN).values(key=bindparam("b_key"), at=bindparam("b_at"))
_SQL_CREATE = insert(_CONVERSATION).values(
    id=bindparam("b_id"),
    channel=bindparam("b_channel"),
    user_id=bindparam("b_user_id"),
    state=bindparam("b_state"),
    version=1,
    updated_at=bindparam("b_at"),
)
_SQL_UPDATE = (
    update(_CONVERSATION)
    .where(_CONVERSATION.c.id == bindparam("b_id"), _CONVERSATION.c.version == bindparam("b_expected"))
    .values(state=bindparam("b_state"), version=bindparam("b_next_version"), updated_at=bindparam("b_at"))
)


# The same two exchanges in plain SQL, for SQLite's own driver (see ConversationStore).
_RAW_BEGIN = (
    "SELECT state, version, (SELECT key FROM seen_message WHERE key = ?) FROM conversation WHERE id = ?"
)
_RAW_MARK_SEEN = "INSERT INTO seen_message (key, at) VALUES (?, ?)"
_RAW_CREATE = (
    "INSERT INTO conversation (id, channel, user_id, state, version, updated_at) VALUES (?, ?, ?, ?, 1, ?)"
)
_RAW_ANY_OWED = "SELECT 1 FROM notice WHERE conversation_id = ? AND sent_at IS NULL LIMIT 1"
_RAW_UPDATE = "UPDATE conversation SET state = ?, version = ?, updated_at = ? WHERE id = ? AND version = ?"


def _sqlite_time(moment: datetime) -> str:
    """A datetime as SQLAlchemy's SQLite dialect stores it, so ORM reads of these rows agree."""
    return moment.replace(tzinfo=None).isoformat(" ", "microseconds")


class SaveResult(enum.Enum):
    SAVED = "saved"
    DUPLICATE = "duplicate"  # the message id was already answered
    CONFLICT = "conflict"  # someone else wrote this conversation meanwhile


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA secure_delete=ON")  # deleted rows are zeroed in the file, not left in free pages
    cursor.close()


def make_engine(url: str) -> SqlEngine:
    if url.startswith("sqlite"):
        private_sqlite(url)  # 0600 before SQLite creates it: the WAL and SHM files follow its mode
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 5}, hide_parameters=True
        )
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(url, pool_pre_ping=True, hide_parameters=True)
    return engine


class _SqliteFastPath:
    """The per-message exchanges on SQLite's own driver, with group commit.

    SQLAlchemy's statement execution cost more than the SQLite work itself (~0.15 ms of
    a ~0.5 ms message), and a commit per message cost more than the writes (each commit
    appends its pages to the WAL). Here each save is a savepoint inside one open
    transaction, and `commit` ends it for every save made since: under load, one commit
    per event-loop turn instead of one per message.
    """

    def __init__(self, path: str) -> None:
        # Autocommit mode: transactions are begun and ended by the statements below only.
        self.connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=5)
        _sqlite_pragmas(self.connection, None)
        self._thread = threading.get_ident()
        self._saves = 0  # saves in the open transaction

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

    def save(
        self,
        conversation_id: str,
        channel: str,
        user_id: str,
        seen_key: str | None,
        payload: str,
        expected_version: int,
        now: datetime,
    ) -> SaveResult:
        db = self.connection
        at = _sqlite_time(now)
        if not db.in_transaction:
            db.execute("BEGIN IMMEDIATE")  # take the write lock now, not halfway through
        db.execute("SAVEPOINT message")
        try:
            outcome = SaveResult.SAVED
            if seen_key is not None and not _inserted(db, _RAW_MARK_SEEN, (seen_key, at)):
                outcome = SaveResult.DUPLICATE
            elif expected_version == 0:
                if not _inserted(db, _RAW_CREATE, (conversation_id, channel, user_id, payload, at)):
                    outcome = SaveResult.CONFLICT  # created meanwhile by another worker
            else:
                update = (payload, expected_version + 1, at, conversation_id, expected_version)
                if db.execute(_RAW_UPDATE, update).rowcount != 1:
                    outcome = SaveResult.CONFLICT
        except BaseException:
            self._undo()
            raise
        if outcome is SaveResult.SAVED:
            db.execute("RELEASE message")
            self._saves += 1
        else:
            self._undo()  # this save only; the others of the turn stay
        return outcome

    def commit(self) -> None:
        if not self.connection.in_transaction:
            return
        self._saves = 0
        try:
            self.connection.execute("COMMIT")
        except BaseException:
            if self.connection.in_transaction:
                self.connection.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self.commit()
        self.connection.close()


def _inserted(db: sqlite3.Connection, statement: str, values: tuple) -> bool:
    try:
        db.execute(statement, values)
    except sqlite3.IntegrityError:
        return False
    return True


class ConversationStore:
    """Synchronous by design (short transactions). The assistant calls it inline for SQLite
    (driver path, group commit) and through a thread for a server database."""

    def __init__(self, url: str, keyring: Keyring | None = None) -> None:
        # Conversation states and notices hold names, ID numbers, phones, addresses: sealed
        # with the data keys (bot/crypto.py) when a keyring is given (always, from the assistant).
        self.keyring = keyring
        self.engine = make_engine(url)
        migrate.upgrade(self.engine)
        self._fast: _SqliteFastPath | None = None
        if self.is_local and self.engine.url.database not in (None, "", ":memory:"):
            self._fast = _SqliteFastPath(self.engine.url.database)

    def seal(self, value: str) -> str:
        return self.keyring.seal_text(value) if self.keyring is not None else value

    def open(self, value: str) -> str:
        return self.keyring.open_text(value) if self.keyring is not None else value

    @property
    def is_local(self) -> bool:
        """SQLite: a local file, each call well under a millisecond (no network, WAL, no fsync per commit)."""
        return self.engine.dialect.name == "sqlite"

    def close(self) -> None:
        if self._fast is not None:
            self._fast.close()
            self._fast = None
        self.engine.dispose()

    def _fast_path(self) -> _SqliteFastPath | None:
        """The driver path, on the thread that opened it only (a sqlite3 connection and its
        open transaction must not be shared across threads); other threads use the pool."""
        fast = self._fast
        return fast if fast is not None and fast.owned_here() else None

    def commit_pending(self) -> None:
        """Make every deferred save durable now (see `save(defer_commit=True)`)."""
        fast = self._fast_path()
        if fast is not None:
            fast.commit()

    @property
    def has_pending_commit(self) -> bool:
        fast = self._fast_path()
        return fast is not None and fast.pending

    # ------------------------------------------------------------ conversations

    # The two calls below run once per user message: on SQLite the driver path above, on
    # other databases SQLAlchemy Core on one connection, no ORM session (measured: 0.37 +
    # 0.94 ms with sessions, a fraction of that without).

    def begin(self, conversation_id: str, message_id: str | None) -> tuple[bool, ConversationState, int]:
        """One round trip before handling a message: already answered? current state and version."""
        key = f"{conversation_id}#{message_id}" if message_id is not None else ""
        fast = self._fast_path()
        if fast is not None:
            row = fast.connection.execute(_RAW_BEGIN, (key, conversation_id)).fetchone()
        else:
            with self.engine.connect() as connection:
                row = connection.execute(_SQL_BEGIN, {"id": conversation_id, "key": key}).first()
        if row is None:
            return False, ConversationState(), 0
        state, version, seen = row
        if seen is not None:
            return True, ConversationState(), 0
        return False, ConversationState.model_validate_json(self.open(state)), version

    def load(self, conversation_id: str) -> tuple[ConversationState, int]:
        _, state, version = self.begin(conversation_id, None)
        return state, version

    def seen(self, conversation_id: str, message_id: str) -> bool:
        return self.begin(conversation_id, message_id)[0]

    def save(
        self,
        conversation_id: str,
        channel: str,
        user_id: str,
        state: ConversationState,
        expected_version: int,
        message_id: str | None,
        *,
        defer_commit: bool = False,
    ) -> SaveResult:
        """Write the state if nobody else did since `expected_version`, recording the message id with it.

        `defer_commit` (SQLite driver path only; elsewhere the write commits at once): the
        write stays in an open transaction that `commit_pending` ends, so that the writes of
        many conversations in one event-loop turn share one commit. The caller must not
        reply before `commit_pending` returned.
        """
        payload = self.seal(state.model_dump_json())
        now = utcnow()
        declarations = state.meta.get("declarations") or []
        fast = self._fast_path()
        if fast is not None and not declarations:
            seen_key = f"{conversation_id}#{message_id}" if message_id is not None else None
            result = fast.save(conversation_id, channel, user_id, seen_key, payload, expected_version, now)
            if not defer_commit:
                fast.commit()
            return result
        # The pool's connection would wait behind the driver path's open transaction.
        self.commit_pending()
        with self.engine.connect() as connection:
            transaction = connection.begin()
            try:
                if message_id is not None:
                    connection.execute(
                        _SQL_MARK_SEEN, {"b_key": f"{conversation_id}#{message_id}", "b_at": now}
                    )
            except IntegrityError:
                transaction.rollback()
                return SaveResult.DUPLICATE
            try:
                if expected_version == 0:
                    connection.execute(
                        _SQL_CREATE,
                        {
                            "b_id": conversation_id,
                            "b_channel": channel,
                            "b_user_id": user_id,
                            "b_state": payload,
                            "b_at": now,
                        },
                    )
                else:
                    result = connection.execute(
                        _SQL_UPDATE,
                        {
                            "b_id": conversation_id,
                            "b_expected": expected_version,
                            "b_state": payload,
                            "b_next_version": expected_version + 1,
                            "b_at": now,
                        },
                    )
                    if result.rowcount != 1:
                        transaction.rollback()
                        return SaveResult.CONFLICT
            except IntegrityError:
                transaction.rollback()
                return SaveResult.CONFLICT
            if declarations:
                self._record_owners(connection, conversation_id, declarations, now)
            transaction.commit()
            return SaveResult.SAVED

    def _record_owners(
        self, connection: Any, conversation_id: str, declarations: list[dict], now: datetime
    ) -> None:
        receipts = [d["receipt"] for d in declarations]
        known = set(
            connection.execute(select(_OWNER.c.receipt).where(_OWNER.c.receipt.in_(receipts))).scalars().all()
        )
        for record in declarations:
            if record["receipt"] not in known:
                connection.execute(
                    insert(_OWNER).values(
                        receipt=record["receipt"],
                        conversation_id=conversation_id,
                        kind=record["kind"],
                        submitted_at=now,
                        reminder_sent=False,
                        reminders_stopped=False,
                    )
                )

    # ------------------------------------------------------------ notices

    def owes_notices(self, conversation_id: str) -> bool:
        """Is any notice for this conversation still unsent? (asked after every web/Zalo reply)"""
        fast = self._fast_path()
        if fast is not None:
            return fast.connection.execute(_RAW_ANY_OWED, (conversation_id,)).fetchone() is not None
        with self.engine.connect() as connection:
            found = connection.execute(_SQL_ANY_OWED, {"conversation_id": conversation_id}).first()
            return found is not None

    def owner_of(self, receipt: str) -> DeclarationOwner | None:
        with Session(self.engine) as session:
            return session.get(DeclarationOwner, receipt)

    def get_marker(self, key: str, default: str = "") -> str:
        with Session(self.engine) as session:
            row = session.get(KeyValue, key)
            return row.value if row else default

    def set_marker(self, key: str, value: str) -> None:
        with Session(self.engine) as session:
            session.merge(KeyValue(key=key, value=value))
            session.commit()

    def forget_conversation(self, conversation_id: str) -> None:
        """Everything kept about one user goes, except an anonymous count per declaration kind."""
        with Session(self.engine) as session:
            for row in session.exec(
                select(SeenMessage).where(SeenMessage.key.startswith(f"{conversation_id}#"))
            ):
                session.delete(row)
            for row in session.exec(select(Notice).where(Notice.conversation_id == conversation_id)):
                session.delete(row)
            for row in session.exec(
                select(DeclarationOwner).where(DeclarationOwner.conversation_id == conversation_id)
            ):
                row.conversation_id = ""  # the receipt and kind stay, for statistics only
            counter = session.get(KeyValue, "stats:deleted_users")
            count = int(counter.value) + 1 if counter else 1
            session.merge(KeyValue(key="stats:deleted_users", value=str(count)))
            # The conversation row itself is overwritten with an empty state by the same exchange.
            session.commit()
        self.checkpoint()

    def checkpoint(self) -> None:
        """SQLite: move the WAL into the database file and empty it, so what was just deleted
        (zeroed there by secure_delete) is not still readable in the WAL's old frames."""
        if not self.is_local:
            return
        self.commit_pending()
        with self.engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    def statistics(self) -> dict[str, int]:
        with Session(self.engine) as session:
            kinds = [row.kind for row in session.exec(select(DeclarationOwner))]
            deleted = session.get(KeyValue, "stats:deleted_users")
        return {
            "declarations_individual": kinds.count("individual"),
            "declarations_child": kinds.count("child"),
            "deleted_users": int(deleted.value) if deleted else 0,
        }

    def enqueue_notice(
        self, key: str, conversation_id: str, payload: list[dict], marker: tuple[str, str] | None = None
    ) -> bool:
        """Queue a notice once (by key); optionally move a marker in the same transaction."""
        with Session(self.engine) as session:
            exists = session.exec(select(Notice).where(Notice.key == key)).first()
            if exists is None:
                session.add(
                    Notice(
                        key=key,
                        conversation_id=conversation_id,
                        payload=self.seal(json.dumps(payload, ensure_ascii=False)),
                    )
                )
            if marker is not None:
                row = session.get(KeyValue, marker[0])
                if row is None:
                    session.add(KeyValue(key=marker[0], value=marker[1]))
                else:
                    row.value = marker[1]
            session.commit()
            return exists is None

    def pending_notices(self, limit: int = 50) -> list[Notice]:
        with Session(self.engine) as session:
            rows = session.exec(
                select(Notice).where(Notice.sent_at.is_(None)).order_by(Notice.id).limit(limit)
            ).all()
            session.expunge_all()  # plain payloads for the caller, never written back
        for row in rows:
            row.payload = self.open(row.payload)
        return list(rows)

    def mark_notice(self, notice_id: int, sent: bool) -> None:
        with Session(self.engine) as session:
            row = session.get(Notice, notice_id)
            if row is None:
                return
            if sent:
                row.sent_at = utcnow()
            row.attempts += 1
            session.commit()
