"""What the engine needs from the outside world, as small interfaces plus the data they carry.

The engine is given implementations of these; `bot/` provides the real ones (stub
backend in-process or over HTTP, Pillow photo checks, PDF rendering) and tests can
run the whole registration in memory.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Literal, Protocol

from pydantic import BaseModel, Field

# The office expects the signed paper Tờ khai within 10 days of the online submission.
PAPER_FORM_DEADLINE = timedelta(days=10)


# Vietnam has used UTC+7 without daylight saving since 1975: a fixed offset needs no tzdata.
VIETNAM_TIME = timezone(timedelta(hours=7), "ICT")


def vietnam_date(moment: datetime) -> date:
    """The day on a Vietnamese calendar at `moment` (a naive moment is UTC, as our clocks give)."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(VIETNAM_TIME).date()


def paper_deadline(submitted: date | datetime) -> str:
    """The last day to hand in the paper Tờ khai, as a parent reads dates: dd/mm/yyyy.

    A moment counts from its day in Vietnam: between 17:00 and 24:00 UTC it is already the
    next day there, and the chat, the PDF, /status and the reminders must all say one date."""
    day = vietnam_date(submitted) if isinstance(submitted, datetime) else submitted
    return (day + PAPER_FORM_DEADLINE).strftime("%d/%m/%Y")


DeclarationKind = Literal["individual", "child"]
IdKind = Literal["cccd", "cmnd", "passport"]
PhotoKind = Literal["portrait", "id_front", "id_back", "passport", "birth_certificate"]
DeclarationStatusName = Literal["awaiting_otp", "received", "approved", "rejected"]
Relationship = Literal["con_de", "con_nuoi", "giam_ho"]


class Address(BaseModel):
    province_code: int
    province: str
    ward_code: int
    ward: str
    street: str


class Declaration(BaseModel):
    """Tờ khai (Mẫu 01): what the citizen declares. Child declarations carry the guardian's code."""

    kind: DeclarationKind = "individual"
    social_insurance_code: str
    full_name: str
    id_kind: IdKind | None = None
    id_number: str | None = None
    phone: str
    email: str | None = None
    address: Address
    agency_code: str
    # photo kind -> stored file path (never the bytes: the backend gets what the portal would)
    photos: dict[str, str] = Field(default_factory=dict)
    date_of_birth: date | None = None
    relationship: Relationship | None = None
    guardian_social_insurance_code: str | None = None
    # The guardian's name as their VssID account (or their own declaration just sent) has it.
    guardian_full_name: str | None = None
    # The school whose link the citizen came from (`/start school_<code>`), or None.
    school: str | None = None


class Submission(BaseModel):
    receipt: str
    status: DeclarationStatusName
    created: bool  # False when the idempotency key matched an earlier submit


class OtpSent(BaseModel):
    sent: bool
    # ok | too_soon (wait retry_after_s) | locked | unknown (no such receipt/account) | phone_mismatch
    reason: Literal["ok", "too_soon", "locked", "unknown", "phone_mismatch", "not_pending"] = "ok"
    retry_after_s: int = 0
    expires_in_s: int = 0
    phone_masked: str | None = None


class OtpCheck(BaseModel):
    ok: bool
    reason: Literal["ok", "wrong", "expired", "locked", "none"] = "ok"
    attempts_left: int = 0
    # A verified account OTP: the account holder's name as the backend has it (the guardian
    # named on a child's Tờ khai); None for declaration OTPs and failures.
    full_name: str | None = None


class DeclarationStatus(BaseModel):
    receipt: str
    kind: DeclarationKind
    status: DeclarationStatusName
    reason: str | None = None
    agency_code: str
    full_name: str
    submitted_at: datetime
    decided_at: datetime | None = None


class StatusEvent(BaseModel):
    """A decision on a declaration, in the order the backend made them (for notifications)."""

    id: int
    receipt: str
    status: DeclarationStatusName
    reason: str | None = None
    at: datetime


class RegistrationBackend(Protocol):
    """The social-insurance system as the assistant sees it. Every method may raise BackendUnavailable."""

    async def submit(self, declaration: Declaration, idempotency_key: str) -> Submission: ...

    async def send_declaration_otp(self, receipt: str) -> OtpSent: ...

    async def verify_declaration_otp(self, receipt: str, code: str) -> OtpCheck: ...

    async def send_account_otp(self, social_insurance_code: str, phone: str) -> OtpSent:
        """Confirm an existing VssID account holder (a guardian) by an OTP to their registered phone."""
        ...

    async def verify_account_otp(self, social_insurance_code: str, code: str) -> OtpCheck: ...

    async def status(self, receipt: str) -> DeclarationStatus | None: ...

    async def id_verified(self, id_number: str) -> bool:
        """True when the ID is already verified against the national population database."""
        ...

    async def lookup_social_insurance_code(
        self, full_name: str, date_of_birth: date, province_code: int
    ) -> str | None: ...

    async def events(self, after: int = 0, limit: int = 100) -> list[StatusEvent]: ...


class BackendUnavailable(Exception):
    """The backend could not be reached after retries; the user's input is kept, try again later."""


class StoredPhoto(BaseModel):
    path: str
    width: int
    height: int
    # The number in the QR code of a chip CCCD's front, when the photo shows one (cross-check).
    id_number_on_card: str | None = None
    # The texts of the QR codes read on it (the chip CCCD's front): the form can be filled from them.
    qr_texts: list[str] = Field(default_factory=list)


class PhotoRejected(Exception):
    """A photo that cannot be used; `code` selects the Vietnamese explanation in the texts file."""

    def __init__(self, code: str, **params: object) -> None:
        super().__init__(code)
        self.code = code
        self.params = params


class PhotoStore(Protocol):
    async def store(self, owner: str, kind: str, data: bytes) -> StoredPhoto:
        """Check and store a photo; raises PhotoRejected with the reason."""
        ...

    async def read_qr(self, data: bytes) -> list[str]:
        """The QR texts in a photo that is not kept (a BHYT card); raises PhotoRejected."""
        ...

    async def delete_owner(self, owner: str) -> int: ...


class DocumentRenderer(Protocol):
    async def declaration_pdf(self, receipt: str, declaration: Declaration, agency: dict) -> Path: ...
