"""The date the district set for reaching every pupil (one for the whole registry)."""

from __future__ import annotations

from datetime import date

from sqlalchemy.engine import Engine as SqlEngine
from sqlmodel import Session

from bot.schema import KeyValue

KEY = "schools:deadline"


def get_deadline(engine: SqlEngine) -> date | None:
    with Session(engine) as session:
        row = session.get(KeyValue, KEY)
        return date.fromisoformat(row.value) if row and row.value else None


def set_deadline(engine: SqlEngine, day: date | None) -> None:
    with Session(engine) as session:
        session.merge(KeyValue(key=KEY, value=day.isoformat() if day else ""))
        session.commit()


def days_left(deadline: date | None, today: date) -> int | None:
    return (deadline - today).days if deadline else None
