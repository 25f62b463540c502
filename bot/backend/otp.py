"""The stub's one-time codes: one live challenge per (purpose, subject) in the `stub_otp` table.

A code is stored only as a salted hash; a resend within a minute is refused, five wrong
codes lock the challenge. The caller owns the session (and commits it) and texts the code:
this room only decides and records.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlmodel import Session, select

from bot.backend.people import mask_phone
from bot.backend.store import OtpRow
from dialogs.ports import OtpCheck, OtpSent

OTP_DIGITS = 6
OTP_TTL_S = 300  # 5 minutes
OTP_RESEND_S = 60
OTP_MAX_ATTEMPTS = 5
OTP_LOCKOUT_S = 1800  # a locked challenge accepts a new code after 30 minutes


def random_otp() -> str:
    return f"{secrets.randbelow(10**OTP_DIGITS):0{OTP_DIGITS}d}"


def salted_hash(salt: str, secret: str) -> str:
    return hashlib.sha256(f"{salt}:{secret}".encode()).hexdigest()


def _challenge(s: Session, purpose: str, subject: str) -> OtpRow | None:
    query = select(OtpRow).where(OtpRow.purpose == purpose, OtpRow.subject == subject)
    return s.exec(query.with_for_update()).first()


def _refusal(row: OtpRow, phone: str, now: datetime) -> OtpSent | None:
    """Why no new code may be sent for this challenge now (locked, or the last one too fresh)."""
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
    return None


def issue(
    s: Session, purpose: str, subject: str, phone: str, now: datetime, new_code: Callable[[], str]
) -> tuple[OtpSent, str | None]:
    """(answer, code): a fresh code for the challenge, or None with the refusal in the answer."""
    row = _challenge(s, purpose, subject)
    if row is not None:
        refused = _refusal(row, phone, now)
        if refused is not None:
            return refused, None
    else:
        row = OtpRow(
            purpose=purpose, subject=subject, phone=phone, salt="", code_hash="", sent_at=now, expires_at=now
        )
    code = new_code()
    row.phone = phone
    row.salt = secrets.token_hex(8)
    row.code_hash = salted_hash(row.salt, code)
    row.sent_at = now
    row.expires_at = now + timedelta(seconds=OTP_TTL_S)
    row.attempts = 0
    row.locked_until = None
    row.verified_at = None
    s.add(row)
    sent = OtpSent(
        sent=True,
        reason="ok",
        retry_after_s=OTP_RESEND_S,
        expires_in_s=OTP_TTL_S,
        phone_masked=mask_phone(phone),
    )
    return sent, code


def check(
    s: Session, purpose: str, subject: str, code: str, now: datetime, lockout: timedelta
) -> tuple[OtpCheck, bool]:
    """(result, fresh): fresh is True only for the call that verified the challenge."""
    row = _challenge(s, purpose, subject)
    if row is None:
        return OtpCheck(ok=False, reason="none"), False
    code = re.sub(r"\s", "", code or "")
    matches = hmac.compare_digest(row.code_hash, salted_hash(row.salt, code))
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
        row.locked_until = now + lockout
        return OtpCheck(ok=False, reason="locked"), False
    return OtpCheck(ok=False, reason="wrong", attempts_left=OTP_MAX_ATTEMPTS - row.attempts), False
