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
import hashlib
import hmac
import logging
import math
import re
import secrets
import string
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import phonenumbers
import yaml
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from bot.backend.store import (
    AccountRow,
    DeclarationRow,
    EventRow,
    OtpRow,
    SmsRow,
    create_tables,
    is_memory_url,
    make_engine,
    use_keyring,
)
from dialogs.ports import (
    BackendUnavailable,
    Declaration,
    DeclarationStatus,
    IdKind,
    OtpCheck,
    OtpSent,
    Relationship,
    StatusEvent,
    Submission,
)
from knowledge.text import fold

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
PEOPLE_PATH = HERE / "people.yaml"
TEXTS_PATH = HERE / "texts.yaml"

OTP_DIGITS = 6
OTP_TTL_S = 300  # 5 minutes
OTP_RESEND_S = 60
OTP_MAX_ATTEMPTS = 5
OTP_LOCKOUT_S = 1800  # a locked challenge accepts a new code after 30 minutes
ADULT_AGE = 18

T = TypeVar("T")


class OperatorError(Exception):
    """An operator action (approve/reject) that cannot be done; the message says why."""


class UnknownReceipt(OperatorError, LookupError):
    def __init__(self, receipt: str) -> None:
        super().__init__(f"No declaration with receipt {receipt!r}.")
        self.receipt = receipt


class InvalidTransition(OperatorError, ValueError):
    def __init__(self, receipt: str, status: str, action: str) -> None:
        hint = {
            "awaiting_otp": "it has not been confirmed by OTP yet",
            "approved": "it was already approved",
            "rejected": "it was already rejected",
        }.get(status, f"its status is {status}")
        super().__init__(f"Cannot {action} {receipt}: {hint}; only a 'received' declaration can be decided.")
        self.receipt = receipt
        self.status = status


class Guardian(BaseModel):
    social_insurance_code: str
    relationship: Relationship


class SeedPerson(BaseModel):
    """A person the stub's database knows (people.yaml)."""

    social_insurance_code: str
    full_name: str
    date_of_birth: date
    province_code: int
    id_kind: IdKind | None = None
    id_number: str | None = None
    phone: str | None = None
    has_account: bool = False
    id_verified: bool = False
    guardian: Guardian | None = None


def load_people(path: Path = PEOPLE_PATH) -> list[SeedPerson]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [SeedPerson.model_validate(item) for item in data["people"]]


@cache
def load_texts(path: Path = TEXTS_PATH) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def normalize_phone(phone: str) -> str:
    """National 10-digit form `0xxxxxxxxx` for a valid VN number; bare digits otherwise."""
    try:
        parsed = phonenumbers.parse(phone, "VN")
    except phonenumbers.NumberParseException:
        return re.sub(r"\D", "", phone)
    if parsed.country_code == 84 and phonenumbers.is_valid_number(parsed):
        return "0" + phonenumbers.national_significant_number(parsed)
    return re.sub(r"\D", "", phone)


def mask_phone(phone: str) -> str:
    """`0901000101` -> `090****101`: enough for the user to recognise their number."""
    if len(phone) < 7:
        return "*" * len(phone)
    return phone[:3] + "*" * (len(phone) - 6) + phone[-3:]


def mask_code(code: str) -> str:
    return code[:2] + "*" * max(len(code) - 4, 0) + code[-2:] if len(code) > 4 else "****"


def _digits(text: str) -> str:
    return re.sub(r"\s|\.", "", text).upper()


def _random_otp() -> str:
    return f"{secrets.randbelow(10**OTP_DIGITS):0{OTP_DIGITS}d}"


_PASSWORD_ALPHABET = "".join(c for c in string.ascii_letters + string.digits if c not in "0O1lI")


def _random_password() -> str:
    while True:
        pw = "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(8))
        if any(c.isdigit() for c in pw) and any(c.isalpha() for c in pw):
            return pw


def _hash(salt: str, secret: str) -> str:
    return hashlib.sha256(f"{salt}:{secret}".encode()).hexdigest()


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _age(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def declaration_json(receipt: str, status: str, decl: Declaration) -> dict[str, Any]:
    """The shape of `vssid-bot declarations --json` (one object per declaration)."""
    item: dict[str, Any] = {
        "receipt": receipt,
        "kind": decl.kind,
        "status": status,
        "social_insurance_code": decl.social_insurance_code,
        "full_name": decl.full_name,
        "id_kind": decl.id_kind,
        "id_number": decl.id_number,
        "phone": decl.phone,
        "email": decl.email,
        "address": {
            "province": decl.address.province,
            "ward": decl.address.ward,
            "street": decl.address.street,
        },
        "agency_code": decl.agency_code,
        "photos": list(decl.photos),
        "school": decl.school,
    }
    if decl.kind == "child":
        item["guardian_social_insurance_code"] = decl.guardian_social_insurance_code
        item["date_of_birth"] = decl.date_of_birth.isoformat() if decl.date_of_birth else None
        item["relationship"] = decl.relationship
    return item


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
        lockout_s: int = OTP_LOCKOUT_S,
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
        self._otp = otp_generator or _random_otp
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
        return await self._run(self._send_account_otp, _digits(social_insurance_code), phone)

    async def verify_account_otp(self, social_insurance_code: str, code: str) -> OtpCheck:
        return await self._run(self._verify_account_otp, _digits(social_insurance_code), code)

    async def status(self, receipt: str) -> DeclarationStatus | None:
        return await self._run(self._status, receipt)

    async def id_verified(self, id_number: str) -> bool:
        self._check_outage()
        wanted = _digits(id_number)
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
        text = " ".join(self._texts["sms"][key].format(**params).split())
        session.add(SmsRow(phone=phone, phone_digest=self._digest(phone), text=text, sent_at=self._now()))
        log.info("sms %s queued to %s", key, mask_phone(phone))

    def _digest(self, phone: str) -> str:
        return self._keyring.digest(phone)

    def _reason(self, key: str, **params: Any) -> str:
        return self._texts["reasons"][key].format(**params)

    def _seed_accounts(self) -> None:
        now = self._now()
        with self._session() as s:
            for person in self._people.values():
                if (
                    person.has_account
                    and person.phone
                    and s.get(AccountRow, person.social_insurance_code) is None
                ):
                    s.add(
                        AccountRow(
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
                return Submission(receipt=existing.receipt or "", status=existing.status, created=False)
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
                return Submission(receipt=existing.receipt or "", status=existing.status, created=False)
            row.receipt = f"VSS-{now.year}-{row.id:06d}"
            self._issue_otp(s, "declaration", row.receipt, normalize_phone(decl.phone), now)
            s.commit()
            log.info("declaration %s submitted (%s)", row.receipt, decl.kind)
            return Submission(receipt=row.receipt, status="awaiting_otp", created=True)

    # ----- OTP ---------------------------------------------------------------------

    def _issue_otp(self, s: Session, purpose: str, subject: str, phone: str, now: datetime) -> OtpSent:
        row = s.exec(
            select(OtpRow).where(OtpRow.purpose == purpose, OtpRow.subject == subject).with_for_update()
        ).first()
        if row is not None:
            if row.locked_until is not None and now < row.locked_until:
                wait = math.ceil((row.locked_until - now).total_seconds())
                return OtpSent(sent=False, reason="locked", retry_after_s=wait)
            resend_at = row.sent_at + timedelta(seconds=OTP_RESEND_S)
            if row.verified_at is None and now < resend_at:
                wait = math.ceil((resend_at - now).total_seconds())
                valid = max(0, math.floor((row.expires_at - now).total_seconds()))
                return OtpSent(
                    sent=False,
                    reason="too_soon",
                    retry_after_s=wait,
                    expires_in_s=valid,
                    phone_masked=mask_phone(phone),
                )
        else:
            row = OtpRow(
                purpose=purpose,
                subject=subject,
                phone=phone,
                salt="",
                code_hash="",
                sent_at=now,
                expires_at=now,
            )
        code = self._otp()
        row.phone = phone
        row.salt = secrets.token_hex(8)
        row.code_hash = _hash(row.salt, code)
        row.sent_at = now
        row.expires_at = now + timedelta(seconds=OTP_TTL_S)
        row.attempts = 0
        row.locked_until = None
        row.verified_at = None
        s.add(row)
        minutes = OTP_TTL_S // 60
        if purpose == "declaration":
            self._sms(s, phone, "declaration_otp", receipt=subject, code=code, minutes=minutes)
        else:
            self._sms(s, phone, "account_otp", code_masked=mask_code(subject), code=code, minutes=minutes)
        return OtpSent(
            sent=True,
            reason="ok",
            retry_after_s=OTP_RESEND_S,
            expires_in_s=OTP_TTL_S,
            phone_masked=mask_phone(phone),
        )

    def _check_otp(
        self, s: Session, purpose: str, subject: str, code: str, now: datetime
    ) -> tuple[OtpCheck, bool]:
        """(result, fresh): fresh is True only for the call that verified the challenge."""
        row = s.exec(
            select(OtpRow).where(OtpRow.purpose == purpose, OtpRow.subject == subject).with_for_update()
        ).first()
        if row is None:
            return OtpCheck(ok=False, reason="none"), False
        code = re.sub(r"\s", "", code or "")
        matches = hmac.compare_digest(row.code_hash, _hash(row.salt, code))
        if row.verified_at is not None:
            # A retried request (the first answer was lost) must not turn success into failure.
            if matches and now < row.expires_at:
                return OtpCheck(ok=True, reason="ok", attempts_left=OTP_MAX_ATTEMPTS - row.attempts), False
            return OtpCheck(ok=False, reason="none"), False
        if row.locked_until is not None and now < row.locked_until:
            return OtpCheck(ok=False, reason="locked"), False
        if now >= row.expires_at:
            return OtpCheck(ok=False, reason="expired"), False
        if matches:
            row.verified_at = now
            s.add(row)
            return OtpCheck(ok=True, reason="ok", attempts_left=OTP_MAX_ATTEMPTS - row.attempts), True
        row.attempts += 1
        s.add(row)
        if row.attempts >= OTP_MAX_ATTEMPTS:
            row.locked_until = now + self._lockout
            return OtpCheck(ok=False, reason="locked"), False
        return OtpCheck(ok=False, reason="wrong", attempts_left=OTP_MAX_ATTEMPTS - row.attempts), False

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
            check, fresh = self._check_otp(s, "declaration", receipt, code, now)
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
                    "link": texts["declaration_link"].format(receipt=receipt),
                }
                key = "received_child" if decl.kind == "child" else "received_individual"
                self._sms(s, normalize_phone(decl.phone), key, **params)
            s.commit()
            return check

    def _send_account_otp(self, code: str, phone: str) -> OtpSent:
        now = self._now()
        with self._session() as s:
            account = s.get(AccountRow, code)
            if account is None:
                return OtpSent(sent=False, reason="unknown")
            if normalize_phone(phone) != account.phone:
                return OtpSent(sent=False, reason="phone_mismatch")
            result = self._issue_otp(s, "account", code, account.phone, now)
            s.commit()
            return result

    def _verify_account_otp(self, code: str, otp: str) -> OtpCheck:
        now = self._now()
        with self._session() as s:
            check, _fresh = self._check_otp(s, "account", code, otp, now)
            s.commit()
            return check

    # ----- status and events -------------------------------------------------------

    @staticmethod
    def _status_of(row: DeclarationRow) -> DeclarationStatus:
        return DeclarationStatus(
            receipt=row.receipt or "",
            kind=row.kind,  # type: ignore[arg-type]
            status=row.status,  # type: ignore[arg-type]
            reason=row.reason,
            agency_code=row.agency_code,
            full_name=row.full_name,
            submitted_at=_aware(row.submitted_at),
            decided_at=_aware(row.decided_at) if row.decided_at else None,
        )

    def _status(self, receipt: str) -> DeclarationStatus | None:
        with self._session() as s:
            row = self._declaration(s, receipt)
            return self._status_of(row) if row else None

    def _events(self, after: int, limit: int) -> list[StatusEvent]:
        limit = max(1, min(limit, 1000))
        with self._session() as s:
            rows = s.exec(
                select(EventRow).where(EventRow.id > after).order_by(EventRow.id).limit(limit)
            ).all()
            return [
                StatusEvent(
                    id=r.id or 0, receipt=r.receipt, status=r.status, reason=r.reason, at=_aware(r.at)
                )  # type: ignore[arg-type]
                for r in rows
            ]

    # ----- decisions ---------------------------------------------------------------

    def _approval_problem(self, s: Session, decl: Declaration, today: date) -> str | None:
        """The reason to refuse the file, or None: the checks the office makes at approval."""
        code = decl.social_insurance_code
        person = self._people.get(code)
        account = s.get(AccountRow, code)
        if person is None and account is None:
            return self._reason("unknown_code", code=code)
        known_name = person.full_name if person else account.full_name  # type: ignore[union-attr]
        if fold(decl.full_name) != fold(known_name):
            return self._reason("name_mismatch", code=code)
        if account is not None:
            return self._reason("already_has_account", code=code)
        if person is not None:
            if decl.id_number and person.id_number and _digits(decl.id_number) != person.id_number:
                return self._reason("id_mismatch", code=code)
            if decl.date_of_birth and decl.date_of_birth != person.date_of_birth:
                return self._reason("dob_mismatch", code=code)
        if decl.kind == "child":
            guardian = decl.guardian_social_insurance_code or ""
            if not guardian or s.get(AccountRow, guardian) is None:
                return self._reason("guardian_without_account", code=guardian or "?")
            born = decl.date_of_birth or (person.date_of_birth if person else None)
            if born is not None and _age(born, today) >= ADULT_AGE:
                return self._reason("child_not_minor")
        return None

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
            problem = self._approval_problem(s, decl, now.date())
            if problem is not None:
                self._decide(s, row, "rejected", problem, now)
                self._sms(s, phone, "rejected", receipt=receipt, reason=problem.rstrip(". "))
            else:
                password = self._password()
                salt = secrets.token_hex(8)
                s.add(
                    AccountRow(
                        social_insurance_code=decl.social_insurance_code,
                        phone=phone,
                        full_name=decl.full_name,
                        password_hash=f"{salt}${_hash(salt, password)}",
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
            return self._status_of(row)

    def _reject(self, receipt: str, reason: str) -> DeclarationStatus:
        now = self._now()
        with self._session() as s:
            row = self._awaiting_decision(s, receipt, "reject")
            decl = Declaration.model_validate_json(row.payload)
            self._decide(s, row, "rejected", reason, now)
            self._sms(s, normalize_phone(decl.phone), "rejected", receipt=receipt, reason=reason.rstrip(". "))
            s.commit()
            log.info("declaration %s rejected by operator", receipt)
            return self._status_of(row)

    # ----- listings ----------------------------------------------------------------

    def _sms_outbox(self, phone: str | None) -> list[dict[str, str]]:
        query = select(SmsRow).order_by(SmsRow.id)
        if phone:
            query = query.where(SmsRow.phone_digest == self._digest(normalize_phone(phone)))
        with self._session() as s:
            return [
                {"phone": r.phone, "text": r.text, "sent_at": _aware(r.sent_at).isoformat()}
                for r in s.exec(query)
            ]

    def _list_declarations(self) -> list[dict[str, Any]]:
        with self._session() as s:
            rows = s.exec(select(DeclarationRow).order_by(DeclarationRow.id)).all()
            return [
                declaration_json(r.receipt or "", r.status, Declaration.model_validate_json(r.payload))
                for r in rows
            ]
