"""Sealed columns: the hotline's notes, phones, ticket fields and transcripts and a school's
contact hold `enc1:…` text (bot/sealing.py), longer than the values they seal: TEXT.

Rows written before stay readable as they are (a plain value opens as itself);
`vssid-bot keys rotate` seals them.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 10:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# (table, column, type before, nullable)
COLUMNS = (
    ("school", "contact", sqlmodel.sql.sqltypes.AutoString(length=200), False),
    ("handoff", "note", sqlmodel.sql.sqltypes.AutoString(length=500), False),
    ("handoff", "phone", sqlmodel.sql.sqltypes.AutoString(length=20), True),
    ("ticket", "fields", sqlmodel.sql.sqltypes.AutoString(), False),
    ("ticket", "callback_phone", sqlmodel.sql.sqltypes.AutoString(length=20), True),
    ("ticket_message", "text", sqlmodel.sql.sqltypes.AutoString(), False),
)


def upgrade() -> None:
    for table, column, before, nullable in COLUMNS:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(column, existing_type=before, type_=sa.Text(), existing_nullable=nullable)


def downgrade() -> None:
    for table, column, before, nullable in COLUMNS:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(column, existing_type=sa.Text(), type_=before, existing_nullable=nullable)
