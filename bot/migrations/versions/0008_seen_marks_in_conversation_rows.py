"""Answered message ids kept in their conversation's row first (`conversation.seen`, moved to
seen_message SEEN_IN_ROW at a time); `seen_since`, indexed, is when the oldest of them was
answered (where the purge looks). Marks already in seen_message stay there, found and purged
as before.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 18:50:00
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("seen", sqlmodel.sql.sqltypes.AutoString(), server_default="", nullable=False)
        )
        batch_op.add_column(sa.Column("seen_since", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.create_index(batch_op.f("ix_conversation_seen_since"), ["seen_since"], unique=False)


def downgrade() -> None:
    # The schema before kept every mark in seen_message: the rows' marks move there first.
    conversation = sa.table("conversation", sa.column("id"), sa.column("seen"))
    seen = sa.table("seen_message", sa.column("key"), sa.column("at", sqlmodel.sql.sqltypes.UTCDateTime()))
    bind = op.get_bind()
    for conversation_id, marks in bind.execute(sa.select(conversation).where(conversation.c.seen != "")):
        rows = []
        for line in marks.splitlines():
            at, _, message_id = line.partition("\t")
            rows.append(
                {
                    "key": f"{conversation_id}#{message_id}",
                    "at": datetime.fromisoformat(at).replace(tzinfo=UTC),
                }
            )
        bind.execute(sa.insert(seen), rows)
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_conversation_seen_since"))
        batch_op.drop_column("seen_since")
        batch_op.drop_column("seen")
