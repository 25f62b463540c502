"""Seen-message ids: the replies they got (replayed to a retried web message on any worker).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 08:31:20.466556
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("seen_message", schema=None) as batch_op:
        batch_op.add_column(sa.Column("replies", sqlmodel.sql.sqltypes.AutoString(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("seen_message", schema=None) as batch_op:
        batch_op.drop_column("replies")
