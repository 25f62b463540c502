"""The databases storage tests run on: SQLite always, PostgreSQL when VSSID_TEST_POSTGRES_URL is set."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

POSTGRES_URL = os.environ.get("VSSID_TEST_POSTGRES_URL", "")
# Parametrise a fixture with these and pass `request.param` to `empty_database_url`.
KINDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def empty_database_url(kind: str, tmp_path: Path) -> str:
    """A database with no tables at all: a new SQLite file in tmp_path, or the PostgreSQL
    test database emptied (skips the test when VSSID_TEST_POSTGRES_URL is unset)."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'bot.sqlite3'}"
    if not POSTGRES_URL:
        pytest.skip("VSSID_TEST_POSTGRES_URL not set (CI sets it)")
    engine = create_engine(POSTGRES_URL)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return POSTGRES_URL
