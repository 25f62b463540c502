"""The per-message SQL of the conversation store, written once as SQLAlchemy Core statements.

Built once at import: constructing SQLAlchemy expressions on every message cost more than
running them on SQLite. On a server database they run through SQLAlchemy; on SQLite the
same statements run on the sqlite3 driver, compiled for it (`compile_for_sqlite`; kept as
text in bot/sqlite_fast.py).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, delete, exists, func, insert, literal_column, select, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import ClauseElement

from bot.schema import ConversationRow, DeclarationOwner, OfferedButtons, OutboxItem, SeenMessage
from bot.sqlite_fast import SaveResult, SqliteStatement

CONVERSATION = ConversationRow.__table__  # type: ignore[attr-defined]
SEEN = SeenMessage.__table__  # type: ignore[attr-defined]
OUTBOX = OutboxItem.__table__  # type: ignore[attr-defined]
OFFERED = OfferedButtons.__table__  # type: ignore[attr-defined]
OWNER = DeclarationOwner.__table__  # type: ignore[attr-defined]

# State, version and "was this message already answered?" in one round trip: `seen` is NULL
# for a message not in seen_message, else the replies it got ('' when not kept); then the
# marks kept in the row (bot/storage.py looks the message up there). A message id is only
# ever recorded together with a conversation row, so no row means not seen.
BEGIN = select(
    CONVERSATION.c.state,
    CONVERSATION.c.version,
    select(func.coalesce(SEEN.c.replies, literal_column("''")))
    .where(SEEN.c.key == bindparam("key"))
    .scalar_subquery()
    .label("seen"),
    CONVERSATION.c.seen,
).where(CONVERSATION.c.id == bindparam("id"))
# 1 when something waits in the outbox for the conversation, else 0 (no LIMIT: nothing bound but the id).
ANY_OWED = select(
    exists().where(OUTBOX.c.conversation_id == bindparam("conversation_id"), OUTBOX.c.sent_at.is_(None))
)
MARK_SEEN = insert(SEEN).values(key=bindparam("b_key"), at=bindparam("b_at"), replies=bindparam("b_replies"))
# A refused save's mark taken back, inside the turn's transaction (bot/sqlite_fast.py).
UNMARK_SEEN = delete(SEEN).where(SEEN.c.key == bindparam("b_key"))
# Message ids older than the window are forgotten (a redelivery that late is a new message),
# a batch at a time: rows lie about in the order they were written, so the scan finds the
# old ones first and stops at the batch's end (no index on `at`, which every message would pay).
PURGE_BATCH = 5000
PURGE_SEEN = delete(SEEN).where(
    SEEN.c.key.in_(
        select(SEEN.c.key).where(SEEN.c.at < bindparam("before")).limit(PURGE_BATCH).scalar_subquery()
    )
)
CREATE = insert(CONVERSATION).values(
    id=bindparam("b_id"),
    channel=bindparam("b_channel"),
    user_id=bindparam("b_user_id"),
    state=bindparam("b_state"),
    version=1,
    updated_at=bindparam("b_at"),
    seen=bindparam("b_seen"),
    seen_since=bindparam("b_since"),
)
# Written only if nobody wrote the row since `begin`: its version, and its marks (the purge
# drops old marks without a new version).
_UPDATE_WHERE = (
    CONVERSATION.c.id == bindparam("b_id"),
    CONVERSATION.c.version == bindparam("b_expected"),
    CONVERSATION.c.seen == bindparam("b_seen_before"),
)
_UPDATE_VALUES: dict[str, Any] = {
    "state": bindparam("b_state"),
    "version": bindparam("b_next_version"),
    "updated_at": bindparam("b_at"),
    "seen": bindparam("b_seen"),
}
UPDATE = update(CONVERSATION).where(*_UPDATE_WHERE).values(_UPDATE_VALUES)
# When the oldest mark changes (the first one, or the marks moved out): seen_since's index is
# written only then, not by every save.
UPDATE_SINCE = (
    update(CONVERSATION).where(*_UPDATE_WHERE).values({**_UPDATE_VALUES, "seen_since": bindparam("b_since")})
)
# Rows holding marks answered before `before`, a batch at a time (by id, after `after`).
ROW_MARKS_BEFORE = (
    select(CONVERSATION.c.id, CONVERSATION.c.seen)
    .where(CONVERSATION.c.seen_since < bindparam("before"), CONVERSATION.c.id > bindparam("after"))
    .order_by(CONVERSATION.c.id)
    .limit(PURGE_BATCH)
)


def save_with(connection: Connection, values: dict[str, Any], expected_version: int) -> SaveResult:
    """A conversation's save (`values`: as bot/storage.py makes them, its times datetimes and
    b_moved the MARK_SEEN rows of the marks leaving the row) through SQLAlchemy, in the
    caller's transaction: the same write as bot/sqlite_fast.py's `SqliteFastPath.save`."""
    try:
        if values["b_key"] is not None:
            connection.execute(MARK_SEEN, values)
    except IntegrityError:
        return SaveResult.DUPLICATE
    try:
        if expected_version == 0:
            connection.execute(CREATE, values)
        elif connection.execute(UPDATE if values["b_since"] is None else UPDATE_SINCE, values).rowcount != 1:
            return SaveResult.CONFLICT
    except IntegrityError:
        return SaveResult.CONFLICT
    if values["b_moved"]:
        connection.execute(MARK_SEEN, values["b_moved"])
    return SaveResult.SAVED


_SQLITE = sqlite.dialect(paramstyle="qmark")


def compile_for_sqlite(statement: ClauseElement) -> SqliteStatement:
    """A Core statement compiled for the sqlite3 driver (bot/sqlite_fast.py keeps the per-message
    ones compiled, as text)."""
    compiled = statement.compile(dialect=_SQLITE)
    constants = tuple((name, value) for name, value in compiled.params.items() if value is not None)
    order = tuple(getattr(compiled, "positiontup", None) or ())  # SQLCompiler: the qmark order
    return SqliteStatement(str(compiled), order, constants)
