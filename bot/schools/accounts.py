"""Which school a `school` staff account speaks for: it sees that school's figures only.

Kept beside the registry (a marker per account) rather than on the staff table, so the
console's accounts stay as they are; `vssid-bot schools assign USER CODE` sets it.
"""

from __future__ import annotations

from sqlalchemy.engine import Engine as SqlEngine
from sqlmodel import Session

from bot.schema import KeyValue, School

PREFIX = "schools:staff:"


def school_of(engine: SqlEngine, username: str) -> str | None:
    with Session(engine) as session:
        row = session.get(KeyValue, PREFIX + username)
        return row.value if row and row.value else None


def assign(engine: SqlEngine, username: str, code: str) -> None:
    with Session(engine) as session:
        session.merge(KeyValue(key=PREFIX + username, value=code))
        session.commit()


def assign_problem(engine: SqlEngine, role: str | None, code: str) -> str | None:
    """Why `code` cannot be given to an account of `role` (None: it can)."""
    if role != "school":
        return f"only an account with the role school is tied to a school (this one is {role or 'unknown'})"
    with Session(engine) as session:
        if session.get(School, code) is None:
            return f"no school with the code «{code}»: see `vssid-bot schools list`, or import it first"
    return None
