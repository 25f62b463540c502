"""Retention: a declaration's photos and PDF are purged N days after its decision.

Once the office has approved or rejected a declaration, the pictures of the ID card and
the Tờ khai PDF have done their job. The notification pump records each decision it sees
(`record_decision`, a `decided:<receipt>` marker with the decision time) and, every round,
purges what is older than `VSSID_RETENTION_DAYS` (`purge_expired`): the declaration's PDF
and the owner's photos written before the decision (a registration started since keeps its
own). The marker then reads `purged`. 0 days turns retention off.
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlmodel import Session, select

from bot.handout import forget_document
from bot.schema import KeyValue

log = logging.getLogger(__name__)

PREFIX = "decided:"
PURGED = "purged"
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_-]+")


def record_decision(store: Any, receipt: str, at: datetime) -> None:
    if store.get_marker(PREFIX + receipt) != PURGED:
        store.set_marker(PREFIX + receipt, _aware(at).isoformat())


def _due(store: Any, cutoff: datetime) -> list[tuple[str, datetime]]:
    with Session(store.engine) as session:
        rows = session.exec(select(KeyValue).where(KeyValue.key.startswith(PREFIX))).all()
    due = []
    for row in rows:
        if row.value == PURGED:
            continue
        decided = _aware(datetime.fromisoformat(row.value))
        if decided <= cutoff:
            due.append((row.key.removeprefix(PREFIX), decided))
    return due


async def purge_expired(assistant: Any, now: datetime, retention_days: int) -> int:
    """Delete the photos and PDFs of declarations decided more than `retention_days` ago."""
    if retention_days <= 0:
        return 0
    store, services = assistant.store, assistant.engine.services
    total = 0
    for receipt, decided in await asyncio.to_thread(
        _due, store, _aware(now) - timedelta(days=retention_days)
    ):
        removed = 0
        owner = await asyncio.to_thread(store.owner_of, receipt)
        documents = getattr(services.documents, "out_dir", None)
        if documents is not None:
            pdf = Path(documents) / f"to-khai-{_SAFE_NAME.sub('_', receipt).strip('_')}.pdf"
            if pdf.exists():
                pdf.unlink()
                removed += 1
            if getattr(assistant, "data_dir", None) is not None:
                removed += forget_document(assistant.data_dir, pdf.name)  # the terminal's clear copies
        delete_before = getattr(services.photos, "delete_owner_before", None)
        if owner is not None and owner.conversation_id and delete_before is not None:
            removed += await delete_before(owner.conversation_id, decided.timestamp())
        await asyncio.to_thread(store.set_marker, PREFIX + receipt, PURGED)
        log.info("retention: declaration %s purged (%d files)", receipt, removed)
        total += removed
    return total


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
