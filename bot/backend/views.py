"""What the stub shows outside: a declaration's status, its decision events, the JSON listing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bot.backend.store import DeclarationRow, EventRow
from dialogs.ports import Declaration, DeclarationStatus, StatusEvent, Submission


def aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


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


def status_of(row: DeclarationRow) -> DeclarationStatus:
    # model_validate: the row's plain strings are checked against the status names here.
    return DeclarationStatus.model_validate(
        {
            "receipt": row.receipt or "",
            "kind": row.kind,
            "status": row.status,
            "reason": row.reason,
            "agency_code": row.agency_code,
            "full_name": row.full_name,
            "submitted_at": aware(row.submitted_at),
            "decided_at": aware(row.decided_at) if row.decided_at else None,
        }
    )


def event_of(row: EventRow) -> StatusEvent:
    return StatusEvent.model_validate(
        {
            "id": row.id or 0,
            "receipt": row.receipt,
            "status": row.status,
            "reason": row.reason,
            "at": aware(row.at),
        }
    )


def submission_of(row: DeclarationRow) -> Submission:
    """The answer to a repeated submit: the declaration the same idempotency key made."""
    return Submission.model_validate({"receipt": row.receipt or "", "status": row.status, "created": False})
