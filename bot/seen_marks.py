"""Answered message ids kept in their conversation's row first (`conversation.seen`).

Every save rewrites the conversation's row anyway; a `seen_message` row of its own per
message dirtied a page of that table's key index (keys ordered by conversation, not by time),
which the group commit wrote to the WAL: about one 4 KB page a message once the table holds a
few days of messages (measured: 2.14 WAL pages a message with 20,000 ids in the table, 1.12
with the marks in the rows). So a message id goes into its row's marks, one line
"<at>\\t<message id>\\n" each, oldest first (`at` as `sqlite_time` writes it), and they all
move to `seen_message` together once the row holds SEEN_ROW_CHARS of them (a batch of one
conversation's keys: one index page). `seen_since` is when the oldest was answered (NULL when
there is none): the purge looks there, by its index, which a save writes only when it
changes. Ids that keep the replies they got (the web chat) or that a row cannot hold go to
`seen_message` at once, as before.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bot.sqlite_fast import sqlite_time

# The row's marks move to seen_message when one more would pass this (~16 Telegram ids).
SEEN_ROW_CHARS = 512
# Longer ids, and ids holding a tab or a newline, go to seen_message at once.
ROW_MARK_CHARS = 100
_AT = len(sqlite_time(0))


class MarksRead:
    """The row's marks as each conversation's last `begin` read them, for the save that
    follows it: that save's update checks the row still holds exactly these, so it needs
    not read them again. Oldest first, at most `limit` (a `begin` with no save after it:
    the message was answered already, or it was a load)."""

    def __init__(self, limit: int) -> None:
        self._read: dict[str, tuple[str | None, int, str]] = {}  # id -> (message id, version, marks)
        self._limit = limit

    def remember(self, conversation_id: str, message_id: str | None, version: int, marks: str) -> None:
        """`begin` of `message_id` found the row at `version` with `marks`, the message not among them."""
        read = self._read
        read[conversation_id] = (message_id, version, marks)
        if len(read) > self._limit:
            del read[next(iter(read))]

    def take(self, conversation_id: str, message_id: str | None, version: int) -> str | None:
        """The marks the `begin` of this message read at this version (handed out once); None
        when the last `begin` of the conversation was of another message or version."""
        read = self._read.pop(conversation_id, None)
        if read is None or read[0] != message_id or read[1] != version:
            return None
        return read[2]

    def forget(self, conversation_id: str) -> None:
        self._read.pop(conversation_id, None)


def row_mark(message_id: str) -> str:
    """How `message_id` appears in a row's marks: "\\t<id>\\n"; '' when it cannot be kept there."""
    if len(message_id) > ROW_MARK_CHARS or "\t" in message_id or "\n" in message_id:
        return ""
    return f"\t{message_id}\n"


def mark_time(at: str) -> datetime:
    """A mark's time (sqlite_time's text) as the datetime SQLAlchemy binds."""
    return datetime.fromisoformat(at).replace(tzinfo=UTC)


def add_mark(
    values: dict[str, Any], conversation_id: str, message_id: str, replies: str | None, new: bool
) -> bool:
    """Record the message as answered in a save's `values` (b_seen, the row's marks; b_at, the
    save's time): in the row's marks, with b_since and b_moved when they change, or as b_key
    (seen_message) when it keeps `replies` or cannot be kept in the row. False when the row's
    marks hold it already (`new`: `begin` found they do not)."""
    marks = values["b_seen"]
    mark = row_mark(message_id)
    if not mark or replies:
        values["b_key"] = f"{conversation_id}#{message_id}"
        return True
    if not new and mark in marks:
        return False
    line = values["b_at"] + mark
    if not marks:
        values["b_seen"], values["b_since"] = line, values["b_at"]
    elif len(marks) + len(line) <= SEEN_ROW_CHARS:
        values["b_seen"] = marks + line
    else:
        moved = (row.split("\t", 1) for row in marks.splitlines())
        values["b_moved"] = [(f"{conversation_id}#{key}", at, None) for at, key in moved]
        values["b_seen"], values["b_since"] = line, values["b_at"]
    return True


def purge_row_marks(engine: Any, before: datetime, commit_pending: Any) -> int:
    """Drop the marks answered before `before` from the rows holding any, a batch of rows per
    transaction; a row only if no save changed its marks meanwhile (the next purge does it:
    and a save begun before the purge finds its marks changed and runs again)."""
    from sqlalchemy import update

    from bot import statements as sql

    cutoff = sqlite_time((before - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1))
    purged, after = 0, ""
    while True:
        commit_pending()
        with engine.begin() as connection:
            rows = connection.execute(sql.ROW_MARKS_BEFORE, {"before": before, "after": after}).all()
            for conversation_id, marks in rows:
                lines = marks.splitlines(keepends=True)
                young = [line for line in lines if line[:_AT] >= cutoff]
                change = (
                    update(sql.CONVERSATION)
                    .where(sql.CONVERSATION.c.id == conversation_id, sql.CONVERSATION.c.seen == marks)
                    .values(seen="".join(young), seen_since=mark_time(young[0][:_AT]) if young else None)
                )
                if connection.execute(change).rowcount == 1:
                    purged += len(lines) - len(young)
        if len(rows) < sql.PURGE_BATCH:
            return purged
        after = rows[-1][0]
