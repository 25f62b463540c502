"""The social-insurance system, played by a stub with the real portal's habits.

It accepts any well-formed declaration (like dichvucong.baohiemxahoi.gov.vn), confirms it
by a 6-digit OTP "sent" as an SMS to an outbox, waits for the paper Tờ khai, and only at
approval checks the mã số BHXH and name against its (synthetic) people. Approval creates
the account and texts the first password; rejection texts the reason. Every decision is
an event the bot can poll to notify the user.

State lives in its own SQL tables (see store.py), so a stub run survives restarts and the
CLI (`vssid-bot sms`, `vssid-bot backend approve`) can read and act on what the bot did.
DB work is short and runs in a worker thread to keep the event loop free.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import string
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.backend import otp
from bot.backend.decisions import approval_problem
from bot.backend.errors import InvalidTransition, OperatorError, UnknownReceipt
from bot.backend.people import (
    SeedPerson,
    digits,
    load_people,
    load_texts,
    mask_code,
    mask_phone,
    normalize_phone,
)
from bot.backend.store import (
    AccountRow,
    DeclarationRow,
    EventRow,
    SmsRow,
    account_key,
    create_tables,
    is_memory_url,
    make_engine,
    use_keyring,
)
from bot.backend.views import aware, declaration_json, event_of, status_of, submission_of
from dialogs.catalog import render
from dialogs.ports import (
    BackendUnavailable,
    Declaration,
    DeclarationStatus,
    OtpCheck,
    OtpSent,
    StatusEvent,
    Submission,
)
from knowledge.text import fold

# Re-exported: callers and tests import the stub's errors and seed people from here.
__all__ = [
    "InvalidTransition",
    "OperatorError",
    "SeedPerson",
    "StubBackend",
    "UnknownReceipt",
    "declaration_json",
    "load_people",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

_PASSWORD_ALPHABET = "".join(c for c in string.ascii_letters + string.digits if c not in "0O1lI")


def _random_password() -> str:
    while True:
        pw = "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(8))
        if any(c.isdigit() for c in pw) and any(c.isalpha() for c in pw):
            return pw


def _store_keyring(url: str) -> Any:
    """The data keys of the data dir the store's file is in (a process-long key in memory)."""
    from bot.crypto import ephemeral_keyring, keyring_beside

    database = url.split(":///", 1)[1] if ":///" in url else ""
    if url.startswith("sqlite") and database and not is_memory_url(url):
        return keyring_beside(Path(database).expanduser())
    return ephemeral_keyring()


class StubBackend:
    """`RegistrationBackend` over its own SQL tables, plus operator actions and test hooks.

    `clock` returns the current time (aware, or naive meaning UTC) so tests can move time;
    `otp_generator` returns the next 6-digit code. The constructor creates the tables and
    seeds the accounts of people.yaml (quick, synchronous: call it at start-up).
    """

    def __init__(
        self,
        url: str | None = None,
        clock: Callable[[], datetime] | None = None,
        otp_generator: Callable[[], str] | None = None,
        *,
        people: list[SeedPerson] | None = None,
        password_generator: Callable[[], str] | None = None,
        lockout_s: int = otp.OTP_LOCKOUT_S,
        keyring: Any = None,
    ) -> None:
        if url is None:
            from bot.config import load_settings

            url = load_settings().backend_store_url
        self.url = url
        self._engine = make_engine(url)
        # bot.crypto.Keyring: names, phones, SMS texts and declarations sealed in the store.
        self._keyring = keyring or _store_keyring(url)
        use_keyring(self._engine, self._keyring)
        # One shared in-memory connection must not be used by two threads at once.
        self._lock = threading.Lock() if is_memory_url(url) else None
        self._clock = clock or (lambda: datetime.now(UTC))
        self._otp = otp_generator or otp.random_otp
        self._password = password_generator or _random_password
        self._lockout = timedelta(seconds=lockout_s)
        self._people = {p.social_insurance_code: p for p in (people if people is not None else load_people())}
        self._texts = load_texts()
        self._outage = False
        create_tables(self._engine)
        self._seed_accounts()

    # ----- test and operator hooks -------------------------------------------------

    def set_outage(self, on: bool) -> None:
        """While on, every call raises BackendUnavailable (the HTTP server answers 503)."""
        self._outage = on

    @property
    def outage(self) -> bool:
        return self._outage

    async def close(self) -> None:
        self._engine.dispose()

    # ----- RegistrationBackend ------------------------------------------------------

    async def submit(self, declaration: Declaration, idempotency_key: str) -> Submission:
        if not idempotency_key:
            raise ValueError("idempotency_key is required")
        return await self._run(self._submit, declaration, idempotency_key)

    async def send_declaration_otp(self, receipt: str) -> OtpSent:
        return await self._run(self._send_declaration_otp, receipt)

    async def verify_declaration_otp(self, receipt: str, code: str) -> OtpCheck:
        return await self._run(self._verify_declaration_otp, receipt, code)

    async def send_account_otp(self, social_insurance_code: str, phone: str) -> OtpSent:
        return await self._run(self._send_account_otp, digits(social_insurance_code), phone)

    async def verify_account_otp(self, social_insurance_code: str, code: str) -> OtpCheck:
        return await self._run(self._verify_account_otp, digits(social_insurance_code), code)

    async def status(self, receipt: str) -> DeclarationStatus | None:
        return await self._run(self._status, receipt)

    async def id_verified(self, id_number: str) -> bool:
        self._check_outage()
        wanted = digits(id_number)
        return any(p.id_verified and p.id_number == wanted for p in self._people.values())

    async def lookup_social_insurance_code(
        self, full_name: str, date_of_birth: date, province_code: int
    ) -> str | None:
        self._check_outage()
        key = fold(full_name)
        found = [
            p.social_insurance_code
            for p in self._people.values()
            if fold(p.full_name) == key
            and p.date_of_birth == date_of_birth
            and p.province_code == province_code
        ]
        # Two namesakes born the same day in one province: do not guess.
        return found[0] if len(found) == 1 else None

    async def events(self, after: int = 0, limit: int = 100) -> list[StatusEvent]:
        return await self._run(self._events, after, limit)

    # ----- operator actions (not part of the protocol) -------------------------------

    async def approve(self, receipt: str) -> DeclarationStatus:
        """Check the file against the people it knows; approve (account + password SMS) or reject."""
        return await self._run(self._approve, receipt)

    async def reject(self, receipt: str, reason: str) -> DeclarationStatus:
        if not reason or not reason.strip():
            raise ValueError("a rejection needs a reason the citizen can act on")
        return await self._run(self._reject, receipt, reason.strip())

    async def sms_outbox(self, phone: str | None = None) -> list[dict[str, str]]:
        return await self._run(self._sms_outbox, phone)

    async def list_declarations(self) -> list[dict[str, Any]]:
        return await self._run(self._list_declarations)

    # ----- plumbing ----------------------------------------------------------------

    def _check_outage(self) -> None:
        if self._outage:
            raise BackendUnavailable("the stub backend is in a simulated outage")

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        self._check_outage()
        return await asyncio.to_thread(self._call, fn, *args)

    def _call(self, fn: Callable[..., T], *args: Any) -> T:
        if self._lock is None:
            return fn(*args)
        with self._lock:
            return fn(*args)

    def _session(self) -> Session:
        return Session(self._engine, expire_on_commit=False)

    def _now(self) -> datetime:
        now = self._clock()
        # sqlmodel stores aware datetimes as UTC; a naive clock means UTC.
        return now.astimezone(UTC) if now.tzinfo else now.replace(tzinfo=UTC)

    def _sms(self, session: Session, phone: str, key: str, **params: Any) -> None:
        text = " ".join(render(self._texts["sms"][key], **params).split())
        session.add(SmsRow(phone=phone, phone_digest=self._digest(phone), text=text, sent_at=self._now()))
        log.info("sms %s queued to %s", key, mask_phone(phone))

    def _digest(self, phone: str) -> str:
        return self._keyring.digest(phone)

    def _reason(self, key: str, **params: Any) -> str:
        return render(self._texts["reasons"][key], **params)

    def _seed_accounts(self) -> None:
        now = self._now()
        with self._session() as s:
            for person in self._people.values():
                if (
                    person.has_account
                    and person.phone
                    and s.get(AccountRow, account_key(s, person.social_insurance_code)) is None
                ):
                    s.add(
                        AccountRow(
                            code_digest=account_key(s, person.social_insurance_code),
                            social_insurance_code=person.social_insurance_code,
                            phone=normalize_phone(person.phone),
                            full_name=person.full_name,
                            source="seed",
                            created_at=now,
                        )
                    )
            s.commit()

    def _declaration(self, s: Session, receipt: str, for_update: bool = False) -> DeclarationRow | None:
        query = select(DeclarationRow).where(DeclarationRow.receipt == receipt)
        if for_update:
            query = query.with_for_update()
        return s.exec(query).first()

    # ----- submit ------------------------------------------------------------------

    def _submit(self, decl: Declaration, key: str) -> Submission:
        now = self._now()
        by_key = select(DeclarationRow).where(DeclarationRow.idempotency_key == key)
        with self._session() as s:
            existing = s.exec(by_key).first()
            if existing is not None:
                return submission_of(existing)
            row = DeclarationRow(
                idempotency_key=key,
                kind=decl.kind,
                status="awaiting_otp",
                social_insurance_code=decl.social_insurance_code,
                full_name=decl.full_name,
                agency_code=decl.agency_code,
                payload=decl.model_dump_json(),
                submitted_at=now,
            )
            s.add(row)
            try:
                s.flush()
            except IntegrityError:
                # Lost a race with a concurrent submit of the same key (servers without
                # SQLite's write lock): the other one's declaration is the answer.
                s.rollback()
                existing = s.exec(by_key).one()
                return submission_of(existing)
            row.receipt = f"VSS-{now.year}-{row.id:06d}"
            self._issue_otp(s, "declaration", row.receipt, normalize_phone(decl.phone), now)
            s.commit()
            log.info("declaration %s submitted (%s)", row.receipt, decl.kind)
            return Submission(receipt=row.receipt, status="awaiting_otp", created=True)

    # ----- OTP ---------------------------------------------------------------------

    def _issue_otp(
        self, s: Session, purpose: str, subject: str, phone: str, now: datetime, shown: str = ""
    ) -> OtpSent:
        """`subject`: what the challenge is found by (a receipt, an account's key); `shown`: the
        code the SMS names (masked), when the subject is a hash."""
        sent, code = otp.issue(s, purpose, subject, phone, now, self._otp)
        if code is None:
            return sent
        minutes = otp.OTP_TTL_S // 60
        if purpose == "declaration":
            self._sms(s, phone, "declaration_otp", receipt=subject, code=code, minutes=minutes)
        else:
            self._sms(
                s, phone, "account_otp", code_masked=mask_code(shown or subject), code=code, minutes=minutes
            )
        return sent

    def _send_declaration_otp(self, receipt: str) -> OtpSent:
        now = self._now()
        with self._session() as s:
            row = self._declaration(s, receipt, for_update=True)
            if row is None:
                return OtpSent(sent=False, reason="unknown")
            if row.status != "awaiting_otp":
                return OtpSent(sent=False, reason="not_pending")
            decl = Declaration.model_validate_json(row.payload)
            result = self._issue_otp(s, "declaration", receipt, normalize_phone(decl.phone), now)
            s.commit()
            return result

    def _verify_declaration_otp(self, receipt: str, code: str) -> OtpCheck:
        now = self._now()
        with self._session() as s:
            row = self._declaration(s, receipt, for_update=True)
            if row is None:
                return OtpCheck(ok=False, reason="none")
            check, fresh = otp.check(s, "declaration", receipt, code, now, self._lockout)
            if fresh and row.status == "awaiting_otp":
                row.status = "received"
                row.received_at = now
                s.add(row)
                decl = Declaration.model_validate_json(row.payload)
                texts = self._texts
                params = {
                    "receipt": receipt,
                    "deadline_days": texts["paper_deadline_days"],
                    "agency_code": decl.agency_code,
                    "full_name": decl.full_name,
                    "link": render(texts["declaration_link"], receipt=receipt),
                }
                key = "received_child" if decl.kind == "child" else "received_individual"
                self._sms(s, normalize_phone(decl.phone), key, **params)
            s.commit()
            return check

    def _send_account_otp(self, code: str, phone: str) -> OtpSent:
        now = self._now()
        with self._session() as s:
            account = s.get(AccountRow, account_key(s, code))
            if account is None:
                return OtpSent(sent=False, reason="unknown")
            if normalize_phone(phone) != account.phone:
                return OtpSent(sent=False, reason="phone_mismatch")
            result = self._issue_otp(s, "account", account.code_digest, account.phone, now, shown=code)
            s.commit()
            return result

    def _verify_account_otp(self, code: str, otp_code: str) -> OtpCheck:
        now = self._now()
        with self._session() as s:
            check, _fresh = otp.check(s, "account", account_key(s, code), otp_code, now, self._lockout)
            s.commit()
            account = s.get(AccountRow, account_key(s, code)) if check.ok else None
            if account is not None:
                check = check.model_copy(update={"full_name": account.full_name})
            return check

    # ----- status and events -------------------------------------------------------

    def _status(self, receipt: str) -> DeclarationStatus | None:
        with self._session() as s:
            row = self._declaration(s, receipt)
            return status_of(row) if row else None

    def _events(self, after: int, limit: int) -> list[StatusEvent]:
        limit = max(1, min(limit, 1000))
        with self._session() as s:
            rows = s.exec(
                select(EventRow).where(col(EventRow.id) > after).order_by(col(EventRow.id)).limit(limit)
            ).all()
            return [event_of(r) for r in rows]

    # ----- decisions ---------------------------------------------------------------

    def _decide(
        self, s: Session, row: DeclarationRow, status: str, reason: str | None, now: datetime
    ) -> None:
        row.status = status
        row.reason = reason
        row.decided_at = now
        s.add(row)
        s.add(EventRow(receipt=row.receipt or "", status=status, reason=reason, at=now))

    def _awaiting_decision(self, s: Any, receipt: str, action: str) -> Any:
        """The declaration an operator decides on: it must exist and be waiting (status "received")."""
        row = self._declaration(s, receipt, for_update=True)
        if row is None:
            raise UnknownReceipt(receipt)
        if row.status != "received":
            raise InvalidTransition(receipt, row.status, action)
        return row

    def _approve(self, receipt: str) -> DeclarationStatus:
        now = self._now()
        with self._session() as s:
            row = self._awaiting_decision(s, receipt, "approve")
            decl = Declaration.model_validate_json(row.payload)
            phone = normalize_phone(decl.phone)
            problem = approval_problem(s, decl, now.date(), self._people, self._reason)
            if problem is not None:
                self._decide(s, row, "rejected", problem, now)
                self._sms(s, phone, "rejected", receipt=receipt, reason=problem.rstrip(". "))
            else:
                password = self._password()
                salt = secrets.token_hex(8)
                s.add(
                    AccountRow(
                        code_digest=account_key(s, decl.social_insurance_code),
                        social_insurance_code=decl.social_insurance_code,
                        phone=phone,
                        full_name=decl.full_name,
                        password_hash=f"{salt}${otp.salted_hash(salt, password)}",
                        source="approval",
                        created_at=now,
                    )
                )
                self._decide(s, row, "approved", None, now)
                self._sms(
                    s,
                    phone,
                    "approved",
                    receipt=receipt,
                    social_insurance_code=decl.social_insurance_code,
                    password=password,
                )
            s.commit()
            log.info("declaration %s %s", receipt, row.status)
            return status_of(row)

    def _reject(self, receipt: str, reason: str) -> DeclarationStatus:
        now = self._now()
        with self._session() as s:
            row = self._awaiting_decision(s, receipt, "reject")
            decl = Declaration.model_validate_json(row.payload)
            self._decide(s, row, "rejected", reason, now)
            self._sms(s, normalize_phone(decl.phone), "rejected", receipt=receipt, reason=reason.rstrip(". "))
            s.commit()
            log.info("declaration %s rejected by operator", receipt)
            return status_of(row)

    # ----- listings ----------------------------------------------------------------

    def _sms_outbox(self, phone: str | None) -> list[dict[str, str]]:
        query = select(SmsRow).order_by(col(SmsRow.id))
        if phone:
            query = query.where(SmsRow.phone_digest == self._digest(normalize_phone(phone)))
        with self._session() as s:
            return [
                {"phone": r.phone, "text": r.text, "sent_at": aware(r.sent_at).isoformat()}
                for r in s.exec(query)
            ]

    def _list_declarations(self) -> list[dict[str, Any]]:
        with self._session() as s:
            rows = s.exec(select(DeclarationRow).order_by(col(DeclarationRow.id))).all()
            return [
                declaration_json(r.receipt or "", r.status, Declaration.model_validate_json(r.payload))
                for r in rows
            ]
