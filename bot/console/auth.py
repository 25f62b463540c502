"""Staff accounts, sessions and the audit log (tables `staff`, `staff_session`, `staff_audit`).

Passwords are hashed with argon2id (argon2-cffi, OWASP's minimum parameters: 19 MiB, two
passes). A session is a random token in an HttpOnly cookie; only its SHA-256 is stored, so
a copy of the database opens no session. Each session carries its own CSRF token.
Five wrong passwords within the lock window lock the account for `LOCK_FOR`, even
against the right password; a disabled account cannot log in and loses its sessions.

Synchronous (short transactions): the web layer calls it in a thread.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete
from sqlalchemy.engine import Engine as SqlEngine
from sqlmodel import Session, col, select

from bot import migrate
from bot.schema import AuditEntry, StaffAccount, StaffSession, utcnow

ROLES = ("hotline", "admin", "school")
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
MIN_PASSWORD = 8
MAX_FAILURES = 5
LOCK_FOR = timedelta(minutes=15)
SESSION_TTL = timedelta(hours=12)

_HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)


@cache
def _dummy_hash() -> str:
    """Verified against when the username is unknown, so both cases take the same time."""
    return _HASHER.hash("not-a-password-of-anyone")


def aware(moment: datetime) -> datetime:
    """SQLite gives naive datetimes back; everything here is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class StaffError(ValueError):
    """A refused account change; the message says what to do (English: shell and logs)."""


@dataclass(frozen=True)
class Staff:
    """Who is logged in, as the pages see them."""

    username: str
    display_name: str
    role: str
    csrf: str = ""

    @property
    def name(self) -> str:
        return self.display_name or self.username


@dataclass(frozen=True)
class LoginResult:
    staff: Staff | None = None
    token: str = ""
    refused: str = ""  # "wrong", "locked" or "disabled"
    minutes_left: int = 0


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class StaffDirectory:
    def __init__(self, engine: SqlEngine) -> None:
        self.engine = engine
        migrate.upgrade(engine)  # the tables are bot/schema.py's, moved by alembic

    # ------------------------------------------------------------ accounts

    def add(self, username: str, password: str, role: str = "hotline", display_name: str = "") -> None:
        if not USERNAME.match(username):
            raise StaffError(
                "a username is 2-64 lower-case letters, digits, '.', '_' or '-' (example: lan.nguyen)"
            )
        if role not in ROLES:
            raise StaffError(f"role must be one of {', '.join(ROLES)}")
        if len(password) < MIN_PASSWORD:
            raise StaffError(f"the password needs at least {MIN_PASSWORD} characters")
        with Session(self.engine) as session:
            if session.get(StaffAccount, username) is not None:
                raise StaffError(f"staff account {username!r} already exists")
            session.add(
                StaffAccount(
                    username=username,
                    display_name=display_name.strip(),
                    role=role,
                    password_hash=_HASHER.hash(password),
                )
            )
            session.commit()

    def accounts(self) -> list[dict[str, Any]]:
        with Session(self.engine) as session:
            rows = session.exec(select(StaffAccount).order_by(StaffAccount.username)).all()
            return [
                {
                    "username": r.username,
                    "display_name": r.display_name,
                    "role": r.role,
                    "active": r.active,
                    "created_at": aware(r.created_at).isoformat(),
                }
                for r in rows
            ]

    def get(self, username: str) -> Staff | None:
        with Session(self.engine) as session:
            row = session.get(StaffAccount, username)
            return Staff(row.username, row.display_name, row.role) if row and row.active else None

    def disable(self, username: str) -> bool:
        with Session(self.engine) as session:
            row = session.get(StaffAccount, username)
            if row is None:
                return False
            row.active = False
            session.exec(delete(StaffSession).where(col(StaffSession.username) == username))  # type: ignore[call-overload]
            session.commit()
            return True

    # ------------------------------------------------------------ login and sessions

    def login(self, username: str, password: str, now: datetime | None = None) -> LoginResult:
        now = now or utcnow()
        with Session(self.engine) as session:
            row = session.get(StaffAccount, username)
            if row is None:
                _verify(_dummy_hash(), password)
                return LoginResult(refused="wrong")
            if not row.active:
                return LoginResult(refused="disabled")
            if row.locked_until is not None and aware(row.locked_until) > now:
                left = aware(row.locked_until) - now
                return LoginResult(refused="locked", minutes_left=max(1, -(-int(left.total_seconds()) // 60)))
            if not _verify(row.password_hash, password):
                row.failed_logins += 1
                locked = row.failed_logins >= MAX_FAILURES
                if locked:
                    row.locked_until = now + LOCK_FOR
                    row.failed_logins = 0
                session.commit()
                if locked:
                    return LoginResult(refused="locked", minutes_left=int(LOCK_FOR.total_seconds() // 60))
                return LoginResult(refused="wrong")
            row.failed_logins = 0
            row.locked_until = None
            if _HASHER.check_needs_rehash(row.password_hash):
                row.password_hash = _HASHER.hash(password)
            token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
            session.add(
                StaffSession(
                    token_hash=_token_hash(token), username=username, csrf=csrf, expires_at=now + SESSION_TTL
                )
            )
            session.commit()
            return LoginResult(staff=Staff(row.username, row.display_name, row.role, csrf), token=token)

    def session(self, token: str, now: datetime | None = None) -> Staff | None:
        """The staff member behind a session cookie, or None (unknown, expired, disabled)."""
        if not token:
            return None
        now = now or utcnow()
        with Session(self.engine) as session:
            found = session.exec(
                select(StaffSession, StaffAccount)
                .join(StaffAccount, StaffAccount.username == StaffSession.username)  # type: ignore[arg-type]
                .where(StaffSession.token_hash == _token_hash(token))
            ).first()
            if found is None:
                return None
            row, account = found
            if aware(row.expires_at) <= now or not account.active:
                return None
            return Staff(account.username, account.display_name, account.role, row.csrf)

    def logout(self, token: str) -> None:
        with Session(self.engine) as session:
            session.exec(delete(StaffSession).where(col(StaffSession.token_hash) == _token_hash(token)))  # type: ignore[call-overload]
            session.commit()

    # ------------------------------------------------------------ audit log

    def audit(self, username: str, action: str, target: str = "", detail: str = "") -> None:
        with Session(self.engine) as session:
            session.add(AuditEntry(username=username, action=action, target=target, detail=detail[:500]))
            session.commit()

    def audit_entries(self, limit: int = 1000) -> list[dict[str, Any]]:
        """Oldest first (the last `limit` entries)."""
        with Session(self.engine) as session:
            rows = session.exec(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)).all()  # type: ignore[union-attr]
        return [
            {
                "at": aware(r.at).isoformat(),
                "staff": r.username,
                "action": r.action,
                "target": r.target,
                "detail": r.detail,
            }
            for r in reversed(rows)
        ]


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
