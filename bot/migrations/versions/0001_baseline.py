"""Baseline: the tables `create_all` made before migrations existed.

A database made by those versions already has them: each table is created only where it
is missing, so such a database is simply brought under alembic with its rows untouched.

Revision ID: 0001
Revises:
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_STRING = sqlmodel.sql.sqltypes.AutoString


Table = tuple[str, list, list[tuple[str, str, bool]]]


def _tables() -> list[Table]:
    """(table, columns and constraints, indexes as (name, column, unique)), in creation order."""
    return _conversation_tables() + _notice_tables()


def _conversation_tables() -> list[Table]:
    return [
        (
            "conversation",
            [
                sa.Column("id", _STRING(length=200), nullable=False),
                sa.Column("channel", _STRING(length=40), nullable=False),
                sa.Column("user_id", _STRING(length=160), nullable=False),
                sa.Column("state", _STRING(), nullable=False),
                sa.Column("version", sa.Integer(), nullable=False),
                sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
                sa.PrimaryKeyConstraint("id"),
            ],
            [("ix_conversation_channel", "channel", False)],
        ),
        (
            "seen_message",
            [
                sa.Column("key", _STRING(length=400), nullable=False),
                sa.Column("at", sa.DateTime(timezone=True), nullable=False),
                sa.PrimaryKeyConstraint("key"),
            ],
            [],
        ),
        (
            "declaration_owner",
            [
                sa.Column("receipt", _STRING(length=64), nullable=False),
                sa.Column("conversation_id", _STRING(length=200), nullable=False),
                sa.Column("kind", _STRING(length=20), nullable=False),
                sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
                sa.Column("reminder_due", sa.DateTime(timezone=True), nullable=True),
                sa.Column("reminder_sent", sa.Boolean(), nullable=False),
                sa.Column("reminders_stopped", sa.Boolean(), nullable=False),
                sa.PrimaryKeyConstraint("receipt"),
            ],
            [("ix_declaration_owner_conversation_id", "conversation_id", False)],
        ),
    ]


def _notice_tables() -> list[Table]:
    return [
        (
            "notice",
            [
                sa.Column("id", sa.Integer(), nullable=False),
                sa.Column("key", _STRING(length=200), nullable=False),
                sa.Column("conversation_id", _STRING(length=200), nullable=False),
                sa.Column("payload", _STRING(), nullable=False),
                sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
                sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
                sa.Column("attempts", sa.Integer(), nullable=False),
                sa.PrimaryKeyConstraint("id"),
                sa.UniqueConstraint("key"),
            ],
            [
                ("ix_notice_conversation_id", "conversation_id", False),
                ("ix_notice_sent_at", "sent_at", False),
            ],
        ),
        (
            "key_value",
            [
                sa.Column("key", _STRING(length=100), nullable=False),
                sa.Column("value", _STRING(), nullable=False),
                sa.PrimaryKeyConstraint("key"),
            ],
            [],
        ),
    ]


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    for name, columns, indexes in _tables():
        if name in existing:
            continue
        op.create_table(name, *columns)
        for index, column, unique in indexes:
            op.create_index(index, name, [column], unique=unique)


def downgrade() -> None:
    for name, _, _ in reversed(_tables()):
        op.drop_table(name)
