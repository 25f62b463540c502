"""The stub backend's own tables: what the social-insurance system would hold.

They live in their own SQLModel registry (and, by default, their own SQLite file) so the
bot's `create_all` never creates them in the bot's database: the stub stands for a
separate system, and the bot must only reach it through `RegistrationBackend`.

Datetimes are aware (sqlmodel stores them as UTC and gives them back aware, even on SQLite).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, UniqueConstraint, event, inspect, text
from sqlalchemy.orm import registry
from sqlalchemy.pool import StaticPool
from sqlmodel import Field, Session, SQLModel, create_engine

from bot.private import private_sqlite
from bot.sealing import Sealed, use_keyring

__all__ = ["Sealed", "account_key", "use_keyring"]


class StubModel(SQLModel, registry=registry()):
    """Base of the stub's tables; `StubModel.metadata` holds only them."""


def account_key(s: Any, code: str) -> str:
    """The key an account (and its OTP challenge) is found by: a keyed hash of the mã số BHXH
    under the store's data keys (bot/crypto.py), never the code itself; the code when the
    engine has no keys (a unit test's scratch store)."""
    keyring = getattr(s.get_bind().dialect, "vssid_keyring", None)
    return keyring.digest("account:" + code) if keyring is not None else code


class DeclarationRow(StubModel, table=True):
    __tablename__ = "stub_declaration"

    id: int | None = Field(default=None, primary_key=True)
    # Filled right after the insert from the row id, hence nullable (NULLs never clash in UNIQUE).
    receipt: str | None = Field(default=None, unique=True, index=True, max_length=32)
    # The retry guard: a second submit with the same key finds this row instead of inserting.
    idempotency_key: str = Field(unique=True, max_length=200)
    kind: str = Field(max_length=16)
    status: str = Field(max_length=16, index=True)
    reason: str | None = Field(default=None, sa_type=Sealed)
    social_insurance_code: str = Field(sa_type=Sealed)  # a person's identifier: no look-ups by it
    full_name: str = Field(sa_type=Sealed)
    agency_code: str = Field(max_length=16)
    payload: str = Field(sa_type=Sealed)  # the Declaration as JSON, exactly as submitted
    submitted_at: datetime
    received_at: datetime | None = None
    decided_at: datetime | None = None


class OtpRow(StubModel, table=True):
    """One live challenge per (purpose, subject); a resend replaces the code in place."""

    __tablename__ = "stub_otp"
    __table_args__ = (UniqueConstraint("purpose", "subject"),)

    id: int | None = Field(default=None, primary_key=True)
    purpose: str = Field(max_length=16)  # "declaration" (subject = receipt) | "account" (subject = code)
    subject: str = Field(max_length=64)  # a receipt, or account_key(code)
    phone: str = Field(sa_type=Sealed)
    salt: str = Field(max_length=32)
    code_hash: str = Field(max_length=64)
    sent_at: datetime
    expires_at: datetime
    attempts: int = 0
    locked_until: datetime | None = None
    verified_at: datetime | None = None


class AccountRow(StubModel, table=True):
    """A VssID account: the username is the mã số BHXH, OTPs go to the registered phone."""

    __tablename__ = "stub_account"

    code_digest: str = Field(primary_key=True, max_length=64)  # account_key(code)
    social_insurance_code: str = Field(sa_type=Sealed)
    phone: str = Field(sa_type=Sealed)
    full_name: str = Field(sa_type=Sealed)
    password_hash: str | None = None
    source: str = Field(default="seed", max_length=16)  # "seed" | "approval"
    created_at: datetime


class SmsRow(StubModel, table=True):
    __tablename__ = "stub_sms"

    id: int | None = Field(default=None, primary_key=True)
    phone: str = Field(sa_type=Sealed)
    # Keyed hash of the phone (bot.crypto.Keyring.digest): `sms --phone` looks it up.
    phone_digest: str = Field(default="", index=True, max_length=64)
    text: str = Field(sa_type=Sealed)
    sent_at: datetime


class EventRow(StubModel, table=True):
    """Decisions in the order they were made; the id is the cursor `events(after=...)` pages by."""

    __tablename__ = "stub_event"

    id: int | None = Field(default=None, primary_key=True)
    receipt: str = Field(max_length=32)
    status: str = Field(max_length=16)
    reason: str | None = Field(default=None, sa_type=Sealed)  # an officer's words about the file
    at: datetime


def is_memory_url(url: str) -> bool:
    return url in ("sqlite://", "sqlite:///:memory:")


def make_engine(url: str) -> Engine:
    """Engine for the stub's store; SQLite gets WAL, a busy timeout and write-locking transactions.

    SQLite transactions start with BEGIN IMMEDIATE so each read-modify-write (OTP attempts,
    approval) holds the write lock from its first read: two workers or a CLI approve running
    beside the HTTP server can never interleave inside one of them.
    """
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True, hide_parameters=True)
    if is_memory_url(url):
        engine = create_engine(
            url, connect_args={"check_same_thread": False}, poolclass=StaticPool, hide_parameters=True
        )
    else:
        private_sqlite(url)  # 0600 before SQLite creates it: the WAL and SHM files follow its mode
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, hide_parameters=True
        )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own BEGIN is deferred).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if not is_memory_url(url):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")  # safe with WAL; a commit need not wait for fsync
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):  # type: ignore[no-untyped-def]
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def create_tables(engine: Engine) -> None:
    StubModel.metadata.create_all(engine)
    # A store made before phones were hashed gains the column (empty: such rows match no phone).
    columns = {c["name"] for c in inspect(engine).get_columns("stub_sms")}
    if "phone_digest" not in columns:
        with engine.begin() as connection:
            connection.execute(text("ALTER TABLE stub_sms ADD COLUMN phone_digest VARCHAR(64) DEFAULT ''"))
    _upgrade_accounts(engine)


def _upgrade_accounts(engine: Engine) -> None:
    """A store made before codes were sealed: accounts are found by `account_key` from now on.

    The old table (keyed by the code in clear) is read, dropped and made again; its rows go
    back sealed. Declarations' codes stay readable as they were (a plain value opens as
    itself) until `vssid-bot keys rotate` seals them.
    """
    if "code_digest" in {c["name"] for c in inspect(engine).get_columns("stub_account")}:
        return
    with engine.begin() as connection:
        old = connection.execute(
            text(
                "SELECT social_insurance_code, phone, full_name, password_hash, source, created_at FROM stub_account"
            )
        ).all()
        connection.execute(text("DROP TABLE stub_account"))
        if engine.dialect.name == "postgresql":  # SQLite does not enforce lengths
            connection.execute(
                text("ALTER TABLE stub_declaration ALTER COLUMN social_insurance_code TYPE TEXT")
            )
            connection.execute(text("ALTER TABLE stub_otp ALTER COLUMN subject TYPE VARCHAR(64)"))
    StubModel.metadata.create_all(engine)
    keyring = getattr(engine.dialect, "vssid_keyring", None)

    def opened(value: str) -> str:  # read raw above: sealed text, to be sealed once, not twice
        return keyring.open_text(value) if keyring is not None else value

    with Session(engine) as s:
        for code, phone, full_name, password_hash, source, created_at in old:
            s.add(
                AccountRow(
                    code_digest=account_key(s, code),
                    social_insurance_code=code,
                    phone=opened(phone),
                    full_name=opened(full_name),
                    password_hash=password_hash,
                    source=source,
                    created_at=_moment(created_at),
                )
            )
        s.commit()


def _moment(value: Any) -> datetime:
    """A datetime read raw (SQLite gives text) as an aware one."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
