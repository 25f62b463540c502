"""Conversation state that survives restarts, in SQL through sqlmodel.

SQLite file by default (WAL), any SQLAlchemy URL by setting (PostgreSQL for several
workers). A conversation row carries a version: a write that lost a race is refused
and the caller runs the message again on fresh state, so two messages from one user,
or two workers, never corrupt a form. Every inbound message id is recorded in the same
transaction as the state it produced, so a redelivered message is answered once.
"""

from __future__ import annotations

import contextlib
import functools
import os
from datetime import datetime, timedelta
from time import time_ns
from typing import TYPE_CHECKING, Any

from bot import migrate
from bot.crypto import Keyring
from bot.seen_marks import MarksRead, add_mark, mark_time, purge_row_marks, row_mark
from bot.sqlite_fast import SaveResult, SqliteFastPath, sqlite_pragmas, sqlite_time
from dialogs.state import ConversationState

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine as SqlEngine

    from bot.outbox import Item, OutboxQueue
    from bot.schema import DeclarationOwner

__all__ = ["ConversationStore", "SaveResult", "make_engine", "sqlite_file"]

# Still importable from here, from bot.schema when asked for: importing the models (sqlmodel,
# SQLAlchemy) was a third of a terminal chat's start-up, and its SQLite path never needs them.
_FROM_SCHEMA = {"ConversationRow", "DeclarationOwner", "KeyValue", "OutboxItem", "SeenMessage", "utcnow"}


def __getattr__(name: str) -> Any:
    if name in _FROM_SCHEMA:
        from bot import schema

        return getattr(schema, name)
    raise AttributeError(name)


# Conversation states kept in memory after a save, with the stored text they were saved as.
KEPT_STATES = 2048


def make_engine(url: str, keyring: Keyring | None = None) -> SqlEngine:
    """An engine on the bot's database; with `keyring`, its `Sealed` columns (the hotline's and
    the schools' personal fields, bot/schema.py) are sealed and opened with it."""
    from sqlalchemy import event
    from sqlmodel import create_engine

    from bot.private import private_sqlite
    from bot.sealing import use_keyring

    if url.startswith("sqlite"):
        private_sqlite(url)  # 0600 before SQLite creates it: the WAL and SHM files follow its mode
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 5}, hide_parameters=True
        )
        event.listen(engine, "connect", sqlite_pragmas)
    else:
        engine = create_engine(url, pool_pre_ping=True, hide_parameters=True)
    if keyring is not None:
        use_keyring(engine, keyring)
    return engine


def sqlite_file(url: str) -> str | None:
    """The file of a plain `sqlite:///<path>` URL (what the settings make for a data dir);
    None for any other URL (another database, a driver, options, in memory)."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or "?" in url:
        return None
    path = url[len(prefix) :]
    return path if path not in ("", ":memory:") else None


def _save_values(
    conversation_id: str, channel: str, user_id: str, expected_version: int, marks: str
) -> dict[str, Any]:
    """A save's parameters (statements.CREATE/UPDATE's b_*) but its state, replies and mark:
    the row's marks as they stay unless `add_mark` adds the message's."""
    return {
        "b_key": None,
        "b_id": conversation_id,
        "b_channel": channel,
        "b_user_id": user_id,
        "b_at": sqlite_time(time_ns() // 1000),  # what datetime.now gives, as SQLite keeps it
        "b_expected": expected_version,
        "b_next_version": expected_version + 1,
        "b_seen": marks,
        "b_seen_before": marks,
        "b_since": None,
        "b_moved": (),
    }


class ConversationStore:
    """Synchronous by design (short transactions). The assistant calls it inline for SQLite
    (driver path, group commit) and through a thread for a server database.

    A state saved with `keep=True` stays in memory beside the text it was stored as: the
    next `begin` for that conversation hands that object back instead of opening and
    validating the stored text (~0.06 ms a message), when the database still holds exactly
    that text (a sealed text has a random nonce: any other write, by any worker, differs).
    The object is handed out once (the engine changes it in place); only a save keeps it again.
    """

    # The test suite sets VSSID_CHECK_KEPT_STATES: every kept state handed back is checked
    # against what the stored text loads as.
    check_kept_states = bool(os.environ.get("VSSID_CHECK_KEPT_STATES"))

    def __init__(self, url: str, keyring: Keyring | None = None) -> None:
        # Conversation states and notices hold names, ID numbers, phones, addresses: sealed
        # with the data keys (bot/crypto.py) when a keyring is given (always, from the assistant).
        self.keyring = keyring
        self.url = url
        self._fast: SqliteFastPath | None = None
        self._kept: dict[str, tuple[str, ConversationState]] = {}  # oldest first
        self._read_marks = MarksRead(KEPT_STATES)  # what `begin` read, for the save after it
        path = sqlite_file(url)
        if path is not None and migrate.sqlite_at_head(path):
            # The common start on SQLite: the per-message path needs no SQLAlchemy engine yet.
            self._fast = SqliteFastPath(path)
            return
        migrate.upgrade(self.engine)
        if self.is_local and self.engine.url.database not in (None, "", ":memory:"):
            self._fast = SqliteFastPath(self.engine.url.database)

    @functools.cached_property
    def engine(self) -> SqlEngine:
        """SQLAlchemy's engine on the database, made on first use (the hotline, schools, notices,
        every server database)."""
        return make_engine(self.url, self.keyring)

    @functools.cached_property
    def outbox(self) -> OutboxQueue:
        """Notices and the pushing channels' undelivered messages: one queue, in this database."""
        from bot.outbox import OutboxQueue

        return OutboxQueue(self.engine, self.keyring)

    def seal(self, value: str) -> str:
        return self.keyring.seal_text(value) if self.keyring is not None else value

    def _sealed_state(self, state: ConversationState) -> str:
        """The state's JSON as stored: `seal(state.model_dump_json())`, sealed from the bytes
        pydantic writes (model_dump_json decodes them to a str that sealing encodes again)."""
        if self.keyring is None:
            return state.model_dump_json()
        # model_dump_json() is this, decoded.
        return self.keyring.seal_utf8(state.__pydantic_serializer__.to_json(state))

    def open(self, value: str) -> str:
        return self.keyring.open_text(value) if self.keyring is not None else value

    @functools.cached_property  # asked before every store call of a message
    def is_local(self) -> bool:
        """SQLite: a local file, each call well under a millisecond (no network, WAL, no fsync per commit)."""
        return self.url.startswith("sqlite")

    def close(self) -> None:
        if self._fast is not None:
            self._fast.close()
            self._fast = None
        if "engine" in self.__dict__:  # made (cached_property)
            self.engine.dispose()

    def _fast_path(self) -> SqliteFastPath | None:
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

    def begin(
        self, conversation_id: str, message_id: str | None
    ) -> tuple[str | None, ConversationState, int]:
        """One round trip before handling a message: None when the message is new, else the
        replies it got as kept by `save` ('' when none were); current state and version."""
        row = self._begin_row(conversation_id, message_id)
        if row is None:
            self._read_marks.remember(conversation_id, message_id, 0, "")
            return None, ConversationState(), 0
        stored, version, seen, marks = row
        if seen is not None:
            return self.open(seen) if seen else seen, ConversationState(), 0
        if marks and message_id is not None and (mark := row_mark(message_id)) and mark in marks:
            return "", ConversationState(), 0
        self._read_marks.remember(conversation_id, message_id, version, marks)
        return None, self._state(conversation_id, stored), version

    def _begin_row(self, conversation_id: str, message_id: str | None) -> Any:
        """statements.BEGIN's row: state, version, the replies kept in seen_message (NULL when
        the message is not there), the row's marks; None when there is no conversation yet."""
        key = f"{conversation_id}#{message_id}" if message_id is not None else ""
        fast = self._fast_path()
        if fast is not None:
            return fast.begin(conversation_id, key)
        from bot import statements as sql

        with self.engine.connect() as connection:
            return connection.execute(sql.BEGIN, {"id": conversation_id, "key": key}).first()

    def _marks_before(
        self, conversation_id: str, message_id: str | None, expected_version: int
    ) -> tuple[str, bool] | None:
        """The row's marks as a save of `message_id` at `expected_version` finds them, and
        whether `begin` found the message is not among them: as the `begin` of that message
        read them at that version (the save's update checks they are still these), else read
        now; None when the message was answered already (a save no `begin` of it came before)."""
        marks = self._read_marks.take(conversation_id, message_id, expected_version)
        if marks is not None:
            return marks, True
        row = self._begin_row(conversation_id, message_id)
        if row is None:
            return "", True
        return (row[3], False) if row[2] is None else None

    def _state(self, conversation_id: str, stored: str) -> ConversationState:
        kept = self._kept.pop(conversation_id, None)
        if kept is not None and kept[0] == stored:
            if self.check_kept_states:
                _check_kept(kept[1], self.open(stored))
            return kept[1]
        return ConversationState.model_validate_json(self.open(stored))

    def _keep(self, conversation_id: str, stored: str, state: ConversationState) -> None:
        kept = self._kept
        kept[conversation_id] = (stored, state)
        if len(kept) > KEPT_STATES:
            del kept[next(iter(kept))]

    def load(self, conversation_id: str) -> tuple[ConversationState, int]:
        _, state, version = self.begin(conversation_id, None)
        return state, version

    def seen(self, conversation_id: str, message_id: str) -> bool:
        return self.begin(conversation_id, message_id)[0] is not None

    def purge_seen(self, before: datetime) -> int:
        """Forget message ids recorded before `before` (kept for a window, not forever)."""
        from bot import statements as sql

        purged = 0
        while True:  # a batch per transaction: messages go on meanwhile
            self.commit_pending()
            with self.engine.begin() as connection:
                batch = connection.execute(sql.PURGE_SEEN, {"before": before}).rowcount
            purged += batch
            if batch < sql.PURGE_BATCH:
                return purged + purge_row_marks(self.engine, before, self.commit_pending)

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
        replies: str | None = None,
        keep: bool = False,
    ) -> SaveResult:
        """Write the state if nobody else did since `expected_version`, recording the message id with it.

        `defer_commit` (SQLite driver path only; elsewhere the write commits at once): the
        write stays in an open transaction that `commit_pending` ends, so that the writes of
        many conversations in one event-loop turn share one commit. The caller must not
        reply before `commit_pending` returned. `replies` (JSON) is kept with the message id,
        for `begin` to hand back when the same message comes again. `keep`: the caller
        will not touch `state` again, the next `begin` may hand it back (see the class).
        """
        declarations = state.meta.get("declarations") or []
        before = self._marks_before(conversation_id, message_id, expected_version)
        if before is None:
            return SaveResult.DUPLICATE
        marks, new = before
        values = _save_values(conversation_id, channel, user_id, expected_version, marks)
        values["b_replies"] = self.seal(replies) if replies else replies  # what the user was told
        if message_id is not None and not add_mark(values, conversation_id, message_id, replies, new):
            return SaveResult.DUPLICATE
        values["b_state"] = self._sealed_state(state)
        fast = self._fast_path()
        if fast is not None and not declarations:
            result = fast.save(values, expected_version)
            if not defer_commit:
                fast.commit()
        else:
            result = self._save_pooled(values, expected_version, declarations)
        if keep and result is SaveResult.SAVED:
            self._keep(conversation_id, values["b_state"], state)
        return result

    def _save_pooled(
        self, values: dict[str, Any], expected_version: int, declarations: list[dict]
    ) -> SaveResult:
        """`save` through SQLAlchemy: a server database, or a save that records declarations."""
        # The pool's connection would wait behind the driver path's open transaction.
        self.commit_pending()
        now = mark_time(values["b_at"])
        values["b_at"] = now
        if values["b_since"] is not None:
            values["b_since"] = now
        moved = values["b_moved"]
        values["b_moved"] = [{"b_key": key, "b_at": mark_time(at), "b_replies": None} for key, at, _ in moved]
        from bot import statements as sql

        with self.engine.connect() as connection:
            transaction = connection.begin()
            result = sql.save_with(connection, values, expected_version)
            if result is not SaveResult.SAVED:
                transaction.rollback()
                return result
            if declarations:
                self._record_owners(connection, values["b_id"], declarations, now)
            transaction.commit()
            return result

    def _record_owners(
        self, connection: Any, conversation_id: str, declarations: list[dict], now: datetime
    ) -> None:
        from sqlalchemy import insert, select

        from bot import statements as sql

        receipts = [d["receipt"] for d in declarations]
        known = set(
            connection.execute(select(sql.OWNER.c.receipt).where(sql.OWNER.c.receipt.in_(receipts)))
            .scalars()
            .all()
        )
        for record in declarations:
            if record["receipt"] not in known:
                connection.execute(
                    insert(sql.OWNER).values(
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
            return fast.owes_notices(conversation_id)
        from bot import statements as sql

        with self.engine.connect() as connection:
            return bool(connection.execute(sql.ANY_OWED, {"conversation_id": conversation_id}).scalar())

    def owner_of(self, receipt: str) -> DeclarationOwner | None:
        from sqlmodel import Session

        from bot.schema import DeclarationOwner

        with Session(self.engine) as session:
            return session.get(DeclarationOwner, receipt)

    def get_marker(self, key: str, default: str = "") -> str:
        from sqlmodel import Session

        from bot.schema import KeyValue

        with Session(self.engine) as session:
            row = session.get(KeyValue, key)
            return row.value if row else default

    def set_marker(self, key: str, value: str) -> None:
        from sqlmodel import Session

        from bot.schema import KeyValue

        with Session(self.engine) as session:
            session.merge(KeyValue(key=key, value=value))
            session.commit()

    def forget_conversation(self, conversation_id: str) -> None:
        """Everything kept about one user goes, except an anonymous count per declaration kind."""
        self._kept.pop(conversation_id, None)
        self._read_marks.forget(conversation_id)
        from sqlalchemy import delete, update
        from sqlmodel import Session

        from bot import statements as sql
        from bot.schema import KeyValue

        with Session(self.engine) as session:
            session.execute(delete(sql.SEEN).where(sql.SEEN.c.key.startswith(f"{conversation_id}#")))
            session.execute(
                update(sql.CONVERSATION)
                .where(sql.CONVERSATION.c.id == conversation_id)
                .values(seen="", seen_since=None)
            )
            session.execute(delete(sql.OUTBOX).where(sql.OUTBOX.c.conversation_id == conversation_id))
            # The updates recorded for several workers (bot/channels/inbox.py) hold what they typed.
            session.execute(delete(sql.OUTBOX).where(sql.OUTBOX.c.conversation_id == f"in:{conversation_id}"))
            session.execute(delete(sql.OFFERED).where(sql.OFFERED.c.conversation_id == conversation_id))
            session.execute(  # the receipt and kind stay, for statistics only
                update(sql.OWNER)
                .where(sql.OWNER.c.conversation_id == conversation_id)
                .values(conversation_id="")
            )
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
        fast = self._fast
        paused = fast.checkpoints_paused() if fast is not None else contextlib.nullcontext()
        with paused, self.engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    def statistics(self) -> dict[str, int]:
        from sqlmodel import Session, select

        from bot.schema import DeclarationOwner, KeyValue

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
        return self.outbox.enqueue_notice(key, conversation_id, payload, marker)

    def claim_notices(
        self, owner: str, prefixes: tuple[str, ...], lease: timedelta, *, limit: int = 50
    ) -> list[Item]:
        """Notices for this worker to send now (to conversations starting with `prefixes`),
        held for `lease`: no other worker takes them meanwhile; unmarked, they are free again
        when the lease ends (the worker died mid-send). The outbox's one claim path."""
        if not prefixes:
            return []
        self.commit_pending()
        return self.outbox.claim(owner, lease, prefixes=prefixes, kinds=("notice",), limit=limit)


def _check_kept(kept: ConversationState, stored: str) -> None:
    """A kept state must be what loading the stored text gives (JSON-only values)."""
    loaded = ConversationState.model_validate_json(stored)
    if kept != loaded:
        raise AssertionError(f"kept state differs from the stored one:\n{kept!r}\n{loaded!r}")
