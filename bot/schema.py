"""The bot's tables: the one schema definition (sqlmodel), which alembic migrations follow.

Every table of the bot's own database is declared here, on `SQLModel.metadata` (the stub
backend's tables live in their own registry, `bot/backend/store.py`). A change here needs a
migration in `bot/migrations/versions/` (README: "Changing the schema"); a test fails while
the migrations and these models disagree.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Field, SQLModel

from bot.sealing import Sealed


def utcnow() -> datetime:
    return datetime.now(UTC)


class ConversationRow(SQLModel, table=True):
    __tablename__ = "conversation"

    id: str = Field(primary_key=True, max_length=200)
    channel: str = Field(index=True, max_length=40)
    user_id: str = Field(max_length=160)
    state: str
    version: int = 0
    updated_at: datetime = Field(default_factory=utcnow)
    # The message ids last answered in this conversation, "<at>\t<message id>\n" each, oldest
    # first, until SEEN_ROW_CHARS of them move to seen_message together (bot/storage.py): a mark
    # here rides on the row every save rewrites anyway, where a seen_message row of its own
    # dirtied an index page per message (ordered by conversation, not by time).
    seen: str = Field(default="", sa_column_kwargs={"server_default": ""})
    # When the oldest of them was answered (NULL when there are none): where the purge looks.
    seen_since: datetime | None = Field(default=None, index=True)


class SeenMessage(SQLModel, table=True):
    """A message id already answered ("conversation#message"), kept for a window and then
    purged; with the replies it got when the channel replays them (the web chat). Other
    answered ids are kept in their conversation's row first (`ConversationRow.seen`)."""

    __tablename__ = "seen_message"

    key: str = Field(primary_key=True, max_length=400)
    # Not indexed: an index on it cost ~25 % of the per-message store time (measured); the
    # hourly purge reads from the oldest rows and stops early instead (statements.PURGE_SEEN).
    at: datetime = Field(default_factory=utcnow)
    replies: str | None = None  # JSON, as bot.notifications.outbounds_to_payload


class DeclarationOwner(SQLModel, table=True):
    """Which conversation submitted a receipt: where to send the backend's decisions."""

    __tablename__ = "declaration_owner"

    receipt: str = Field(primary_key=True, max_length=64)
    conversation_id: str = Field(index=True, max_length=200)
    kind: str = Field(max_length=20)
    submitted_at: datetime = Field(default_factory=utcnow)
    reminder_due: datetime | None = None
    reminder_sent: bool = False
    reminders_stopped: bool = False


class OutboxItem(SQLModel, table=True):
    """One message owed to a user, kept until a worker has delivered it: the one durable
    queue of every pushing channel (Telegram, Zalo) and of the notices (decisions, reminders).

    `kind` "notice": a list of replies (`bot.notifications.outbounds_to_payload`) any channel
    renders, queued once by `key` ("event:17", "reminder:VSS-..."), marked sent and kept so
    the key stays taken. `kind` "message": one message a channel rendered and could not
    deliver yet (its own JSON), deleted once sent. A user's items go out oldest first; a
    worker sending one holds it with a lease (exactly one sends it; a dead worker's lease
    expires and another sends it). `payload` is sealed (it holds what people are told).
    """

    __tablename__ = "outbox"

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: str = Field(index=True, max_length=200)  # "telegram:123"; '' once deleted
    kind: str = Field(default="notice", max_length=10)  # notice | message
    key: str | None = Field(default=None, unique=True, max_length=200)
    payload: str
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = Field(default=None, index=True)
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=200)
    # A worker sending it holds it until then (exactly one sends; a dead worker's lease expires).
    lease_until: datetime | None = None
    lease_owner: str | None = Field(default=None, max_length=100)


class OfferedButtons(SQLModel, table=True):
    """The buttons last offered to a user of a channel whose taps come back as the label's
    text (Zalo): label -> payload, sealed JSON (labels can repeat what the user typed)."""

    __tablename__ = "offered_buttons"

    conversation_id: str = Field(primary_key=True, max_length=200)
    buttons: str


class ButtonToken(SQLModel, table=True):
    """A short id standing for a button payload too long for the channel (Telegram's 64-byte
    callback_data), readable by every worker. Payloads are the engine's own ("flow:…",
    "agency:…"), never what a user typed; the oldest go past a bound."""

    __tablename__ = "button_token"

    id: int | None = Field(default=None, primary_key=True)
    token: str = Field(unique=True, max_length=20)
    payload: str


class KeyValue(SQLModel, table=True):
    """Small durable markers (e.g. the last backend event seen)."""

    __tablename__ = "key_value"

    key: str = Field(primary_key=True, max_length=100)
    value: str


class School(SQLModel, table=True):
    """A school in the registry (`vssid-bot schools import`): whose links parents come from."""

    __tablename__ = "school"

    code: str = Field(primary_key=True, max_length=57)
    name: str = Field(max_length=200)
    province_code: int = Field(index=True)
    province: str = Field(max_length=100)
    ward_code: int
    ward: str = Field(max_length=100)
    contact: str = Field(default="", sa_type=Sealed)  # a person's name and phone, often
    pupils: int | None = None  # the headcount 100 % is measured against, when known
    updated_at: datetime = Field(default_factory=utcnow)


class SchoolFunnelEvent(SQLModel, table=True):
    """One step of the funnel reached from a school's link: an anonymous count.

    `key` is a hash of what makes the step happen once (a form's run, a receipt), so a step
    counts once however often it is reached; no conversation id, so `/delete` leaves it.
    """

    __tablename__ = "school_funnel_event"

    key: str = Field(primary_key=True, max_length=64)
    school: str = Field(index=True, max_length=57)
    kind: str = Field(max_length=20)  # individual | child
    stage: str = Field(max_length=20)  # started | summary | submitted | confirmed | approved | rejected
    receipt: str | None = Field(default=None, index=True, max_length=64)
    at: datetime = Field(default_factory=utcnow, index=True)


# ---------------------------------------------------------------- staff console (bot/console)


class StaffAccount(SQLModel, table=True):
    __tablename__ = "staff"

    username: str = Field(primary_key=True, max_length=64)
    display_name: str = Field(default="", max_length=120)
    role: str = Field(default="hotline", max_length=20)
    password_hash: str = Field(max_length=200)
    active: bool = True
    failed_logins: int = 0
    locked_until: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)


class StaffSession(SQLModel, table=True):
    __tablename__ = "staff_session"

    token_hash: str = Field(primary_key=True, max_length=64)
    username: str = Field(index=True, max_length=64)
    csrf: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime


class AuditEntry(SQLModel, table=True):
    __tablename__ = "staff_audit"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    username: str = Field(index=True, max_length=64)
    action: str = Field(max_length=40)
    target: str = Field(default="", max_length=200)
    detail: str = Field(default="", max_length=500)


# ---------------------------------------------------------------- hotline (bot/hotline)


class Handoff(SQLModel, table=True):
    __tablename__ = "handoff"

    token_hash: str = Field(primary_key=True, max_length=64)
    created_by: str = Field(default="", max_length=64)
    staff_name: str = Field(default="", max_length=120)
    note: str = Field(sa_type=Sealed)  # what staff wrote about the caller
    flow: str | None = Field(default=None, max_length=40)
    phone: str | None = Field(default=None, sa_type=Sealed)  # dropped once the link is used
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    used_at: datetime | None = None


class Ticket(SQLModel, table=True):
    __tablename__ = "ticket"

    id: int | None = Field(default=None, primary_key=True)
    status: str = Field(default="waiting", index=True, max_length=10)
    channel: str = Field(max_length=40)
    conversation: str = Field(index=True, max_length=200)
    flow: str | None = Field(default=None, max_length=40)
    step: str | None = Field(default=None, max_length=80)
    reason: str = Field(max_length=40)
    fields: str = Field(default="{}", sa_type=Sealed)  # masked JSON of what the form holds
    callback_phone: str | None = Field(default=None, sa_type=Sealed)
    held_by: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    first_reply_at: datetime | None = None
    closed_at: datetime | None = None
    overdue_told_at: datetime | None = None


class TicketMessage(SQLModel, table=True):
    __tablename__ = "ticket_message"

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(index=True)
    at: datetime = Field(default_factory=utcnow)
    author: str = Field(max_length=10)  # user | bot | staff
    staff: str | None = Field(default=None, max_length=64)
    text: str = Field(sa_type=Sealed)  # the transcript: masked numbers, but names and words as said


METADATA = SQLModel.metadata
