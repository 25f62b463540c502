"""The durable outbox: what the assistant owes users, in the main database, shared by workers.

One table (`bot.schema.OutboxItem`) holds the notices (decisions, reminders) and the
messages the pushing channels could not deliver yet; one claim path hands them out. A
worker takes a user's oldest unsent item with a lease (`claim`): no other worker takes it
meanwhile (one UPDATE; on PostgreSQL rows another worker is claiming are skipped, `FOR
UPDATE SKIP LOCKED`, on SQLite the writer lock serialises claims), a user's next item waits
until the one before it is sent (order per user whichever worker sends), and one killed
mid-send frees it when the lease ends. `done` ends an item, `release` hands it back.

Payloads are sealed with the data keys (they hold what people are told); the buttons last
offered on Zalo are too. Everything here is blocking: callers run it in a thread.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Update, and_, bindparam, delete, exists, func, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.engine import Engine as SqlEngine
from sqlalchemy.exc import IntegrityError

from bot.crypto import Keyring
from bot.schema import ButtonToken, KeyValue, OfferedButtons, OutboxItem, utcnow

OUTBOX = OutboxItem.__table__  # type: ignore[attr-defined]
OFFERED = OfferedButtons.__table__  # type: ignore[attr-defined]
TOKENS = ButtonToken.__table__  # type: ignore[attr-defined]
MARKERS = KeyValue.__table__  # type: ignore[attr-defined]

NOTICE = "notice"
MESSAGE = "message"
UPDATE = "update"  # an incoming update waiting to be answered (bot.channels.inbox)
MAX_ERROR = 200


@dataclass(frozen=True, slots=True)
class Item:
    """One claimed item, its payload opened: a list (of replies for a notice, of the
    channel's message specs for a message)."""

    id: int
    conversation_id: str
    kind: str
    key: str | None
    payload: Any

    @property
    def user_id(self) -> str:
        return self.conversation_id.partition(":")[2]


def claim_statement(
    limit: int, skip_locked: bool, prefixes: Sequence[str], conversation: bool, kinds: Sequence[str]
) -> Update:
    """Lease the oldest unsent item of up to `limit` conversations (those starting with
    `prefixes`, or the one bound as `conversation_id`; '' is a deleted user's) whose lease is
    free or expired and that no older unsent item of the same conversation holds back."""
    earlier = OUTBOX.alias("earlier")
    behind_another = (
        select(earlier.c.id)
        .where(
            earlier.c.conversation_id == OUTBOX.c.conversation_id,
            earlier.c.id < OUTBOX.c.id,
            earlier.c.sent_at.is_(None),
        )
        .exists()
    )
    if conversation:
        whose = OUTBOX.c.conversation_id == bindparam("one_conversation")
    else:
        whose = or_(
            OUTBOX.c.conversation_id == "", *(OUTBOX.c.conversation_id.startswith(p) for p in prefixes)
        )
    candidates = (
        select(OUTBOX.c.id)
        .where(
            OUTBOX.c.sent_at.is_(None),
            or_(OUTBOX.c.lease_until.is_(None), OUTBOX.c.lease_until < bindparam("now")),
            ~behind_another,
            whose,
            OUTBOX.c.kind.in_(list(kinds)),
        )
        .order_by(OUTBOX.c.id)
        .limit(limit)
    )
    if skip_locked:
        candidates = candidates.with_for_update(skip_locked=True)
    return (
        update(OUTBOX)
        .where(OUTBOX.c.id.in_(candidates.scalar_subquery()))
        .values(lease_until=bindparam("until"), lease_owner=bindparam("owner"))
        .returning(OUTBOX.c.id)
    )


class OutboxQueue:
    """The outbox table of one database, sealed with `keyring` (None: kept as written)."""

    def __init__(self, engine: SqlEngine, keyring: Keyring | None = None) -> None:
        self.engine = engine
        self.keyring = keyring
        self._postgres = engine.dialect.name == "postgresql"

    def seal(self, value: Any) -> str:
        text = json.dumps(value, ensure_ascii=False)
        return self.keyring.seal_text(text) if self.keyring is not None else text

    def open(self, value: str) -> Any:
        return json.loads(self.keyring.open_text(value) if self.keyring is not None else value)

    # ---- adding

    def enqueue_notice(
        self, key: str, conversation_id: str, payload: list[dict], marker: tuple[str, str] | None = None
    ) -> bool:
        """Queue a notice once (by key); optionally move a marker in the same transaction."""
        return self.enqueue(key, conversation_id, payload, NOTICE, marker)

    def enqueue(
        self, key: str, conversation_id: str, payload: Any, kind: str, marker: tuple[str, str] | None = None
    ) -> bool:
        """Queue an item once by `key` (False: the key was taken, by this call's twin on
        another worker too); optionally move a marker in the same transaction."""
        try:
            with self.engine.begin() as db:
                taken = db.execute(select(exists().where(OUTBOX.c.key == key))).scalar()
                if not taken:
                    db.execute(
                        insert(OUTBOX).values(
                            conversation_id=conversation_id,
                            kind=kind,
                            key=key,
                            payload=self.seal(payload),
                            created_at=utcnow(),
                            attempts=0,
                        )
                    )
                if marker is not None:
                    _set_marker(db, *marker)
        except IntegrityError:  # inserted by another worker between the look and the write
            return False
        return not taken

    def purge(self, kind: str, older_than: timedelta) -> int:
        """Forget items of `kind` done longer ago than `older_than` (answered updates)."""
        before = utcnow() - older_than
        with self.engine.begin() as db:
            return db.execute(
                delete(OUTBOX).where(
                    OUTBOX.c.kind == kind, OUTBOX.c.sent_at.is_not(None), OUTBOX.c.sent_at < before
                )
            ).rowcount

    def add_messages(self, conversation_id: str, specs: Sequence[Any], error: str) -> None:
        """Keep a channel's undelivered messages (its own JSON, sent in order) as one item after
        what the user already has waiting."""
        if not specs:
            return
        with self.engine.begin() as db:
            db.execute(
                insert(OUTBOX).values(
                    conversation_id=conversation_id,
                    kind=MESSAGE,
                    payload=self.seal(list(specs)),
                    created_at=utcnow(),
                    attempts=1,
                    last_error=error[:MAX_ERROR],
                )
            )

    # ---- the one claim path

    def claim(
        self,
        owner: str,
        lease: timedelta,
        *,
        prefixes: Sequence[str] = (),
        conversation_id: str | None = None,
        kinds: Sequence[str] = (NOTICE, MESSAGE),
        limit: int = 50,
    ) -> list[Item]:
        """Items for `owner` to send now, held for `lease` (see the module's docstring)."""
        if conversation_id is None and not prefixes:
            return []
        now = utcnow()
        statement = claim_statement(limit, self._postgres, prefixes, conversation_id is not None, kinds)
        values = {"now": now, "until": now + lease, "owner": owner, "one_conversation": conversation_id}
        with self.engine.begin() as db:
            ids = db.execute(statement, values).scalars().all()
            if not ids:
                return []
            rows = db.execute(
                select(OUTBOX.c.id, OUTBOX.c.conversation_id, OUTBOX.c.kind, OUTBOX.c.key, OUTBOX.c.payload)
                .where(OUTBOX.c.id.in_(ids))
                .order_by(OUTBOX.c.id)
            ).all()
        return [Item(r.id, r.conversation_id, r.kind, r.key, self.open(r.payload)) for r in rows]

    def done(self, item_id: int) -> None:
        """Delivered: a notice is marked sent (its key stays taken), a message goes."""
        with self.engine.begin() as db:
            db.execute(delete(OUTBOX).where(OUTBOX.c.id == item_id, OUTBOX.c.key.is_(None)))
            db.execute(
                update(OUTBOX)
                .where(OUTBOX.c.id == item_id)
                .values(sent_at=utcnow(), attempts=OUTBOX.c.attempts + 1, lease_until=None, lease_owner=None)
            )

    def release(self, item_id: int, error: str, rest: list | None = None) -> None:
        """Not delivered: free for the next try. `rest`: what is left of it to send (the part
        already delivered is not sent again), kept in its place in the user's order."""
        values: dict[str, Any] = {
            "attempts": OUTBOX.c.attempts + 1,
            "last_error": error[:MAX_ERROR],
            "lease_until": None,
            "lease_owner": None,
        }
        if rest is not None:
            values.update(kind=MESSAGE, payload=self.seal(rest))
        with self.engine.begin() as db:
            db.execute(update(OUTBOX).where(OUTBOX.c.id == item_id).values(values))

    # ---- reading

    def owes(self, conversation_id: str) -> bool:
        with self.engine.connect() as db:
            found = db.execute(
                select(
                    exists().where(OUTBOX.c.conversation_id == conversation_id, OUTBOX.c.sent_at.is_(None))
                )
            )
            return bool(found.scalar())

    def waiting(self, prefix: str, kind: str = MESSAGE) -> dict[str, int]:
        """Unsent items of `kind` per conversation starting with `prefix` (a message item may
        hold several messages)."""
        with self.engine.connect() as db:
            rows = db.execute(
                select(OUTBOX.c.conversation_id, func.count())
                .where(
                    OUTBOX.c.conversation_id.startswith(prefix),
                    OUTBOX.c.sent_at.is_(None),
                    OUTBOX.c.kind == kind,
                )
                .group_by(OUTBOX.c.conversation_id)
            ).all()
        return {row[0]: int(row[1]) for row in rows}

    def due(self, prefixes: Sequence[str], kind: str = MESSAGE) -> list[str]:
        """Conversations starting with one of `prefixes` that have an unsent item of `kind` free
        to take now (no lease, or its lease over), each once, in no order: a hint of whom to
        flush or sweep. Whether that item may go yet (an older unsent item, of any kind, holds
        it back) and in which order is `claim`'s to say."""
        now = utcnow()
        free = or_(OUTBOX.c.lease_until.is_(None), OUTBOX.c.lease_until < now)
        whose = or_(*(OUTBOX.c.conversation_id.startswith(p) for p in prefixes))
        with self.engine.connect() as db:
            rows = db.execute(
                select(OUTBOX.c.conversation_id)
                .where(OUTBOX.c.sent_at.is_(None), OUTBOX.c.kind == kind, free, whose)
                .distinct()
            ).all()
        return [row[0] for row in rows]

    def items(self, prefix: str, kind: str | None = MESSAGE) -> list[tuple[int, str, Any]]:
        """(id, conversation, payload) of what waits for conversations starting with `prefix`."""
        condition = and_(OUTBOX.c.conversation_id.startswith(prefix), OUTBOX.c.sent_at.is_(None))
        if kind is not None:
            condition = and_(condition, OUTBOX.c.kind == kind)
        with self.engine.connect() as db:
            rows = db.execute(
                select(OUTBOX.c.id, OUTBOX.c.conversation_id, OUTBOX.c.payload)
                .where(condition)
                .order_by(OUTBOX.c.id)
            ).all()
        return [(row[0], row[1], self.open(row[2])) for row in rows]

    def take_notices(self, conversation_id: str) -> list[Any]:
        """Every unsent notice of a conversation that cannot be pushed to, marked sent (they go
        out with the user's reply)."""
        with self.engine.begin() as db:
            rows = db.execute(
                select(OUTBOX.c.id, OUTBOX.c.payload)
                .where(OUTBOX.c.conversation_id == conversation_id, OUTBOX.c.sent_at.is_(None))
                .order_by(OUTBOX.c.id)
            ).all()
            if rows:
                db.execute(
                    update(OUTBOX)
                    .where(OUTBOX.c.id.in_([row[0] for row in rows]))
                    .values(sent_at=utcnow(), attempts=OUTBOX.c.attempts + 1)
                )
        return [self.open(row[1]) for row in rows]

    def drop_orphans(self) -> int:
        """A deleted user's notices (conversation '') are marked sent, never delivered."""
        with self.engine.begin() as db:
            return db.execute(
                update(OUTBOX)
                .where(OUTBOX.c.conversation_id == "", OUTBOX.c.sent_at.is_(None))
                .values(sent_at=utcnow())
            ).rowcount

    def forget(self, conversation_id: str) -> int:
        """Everything kept for one user goes (their data was deleted); how many items went."""
        with self.engine.begin() as db:
            gone = db.execute(delete(OUTBOX).where(OUTBOX.c.conversation_id == conversation_id)).rowcount
            db.execute(delete(OUTBOX).where(OUTBOX.c.conversation_id == f"in:{conversation_id}"))
            db.execute(delete(OFFERED).where(OFFERED.c.conversation_id == conversation_id))
        return gone

    # ---- buttons

    def set_offered(self, conversation_id: str, offered: dict[str, str]) -> None:
        with self.engine.begin() as db:
            db.execute(delete(OFFERED).where(OFFERED.c.conversation_id == conversation_id))
            db.execute(insert(OFFERED).values(conversation_id=conversation_id, buttons=self.seal(offered)))

    def get_offered(self, conversation_id: str) -> dict[str, str]:
        with self.engine.connect() as db:
            row = db.execute(
                select(OFFERED.c.buttons).where(OFFERED.c.conversation_id == conversation_id)
            ).first()
        return self.open(row[0]) if row else {}

    def put_tokens(self, pairs: Sequence[tuple[str, str]], capacity: int) -> None:
        with self.engine.begin() as db:
            for token, payload in pairs:
                db.execute(delete(TOKENS).where(TOKENS.c.token == token))
                db.execute(insert(TOKENS).values(token=token, payload=payload))
            newest = db.execute(select(func.max(TOKENS.c.id))).scalar() or 0
            db.execute(delete(TOKENS).where(TOKENS.c.id <= newest - capacity))

    def get_token(self, token: str) -> str | None:
        with self.engine.connect() as db:
            return db.execute(select(TOKENS.c.payload).where(TOKENS.c.token == token)).scalar()


def _set_marker(db: Connection, key: str, value: str) -> None:
    if db.execute(update(MARKERS).where(MARKERS.c.key == key).values(value=value)).rowcount == 0:
        db.execute(insert(MARKERS).values(key=key, value=value))


def lease_holder(name: str) -> str:
    """Names a lease's holder: this host and process, and `name` (one object of it)."""
    return f"{socket.gethostname()}:{os.getpid()}:{name}"[:100]


__all__ = ["MESSAGE", "NOTICE", "UPDATE", "Item", "OutboxQueue", "lease_holder"]
