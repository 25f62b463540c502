"""One outbox in the main database: the notices move into `outbox` (kind "notice", in their
order, leases and all), beside the pushing channels' undelivered messages; the buttons last
offered on Zalo and the ids of Telegram's long buttons move out of per-channel files into
`offered_buttons` and `button_token` (the files' rows are moved by the channels at start).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 10:32:57.932840
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_STRING = sqlmodel.sql.sqltypes.AutoString
_COMMON = (
    "conversation_id",
    "key",
    "payload",
    "created_at",
    "sent_at",
    "attempts",
    "lease_until",
    "lease_owner",
)


def upgrade() -> None:
    op.create_table(
        "button_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token", _STRING(length=20), nullable=False),
        sa.Column("payload", _STRING(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token"),
    )
    op.create_table(
        "offered_buttons",
        sa.Column("conversation_id", _STRING(length=200), nullable=False),
        sa.Column("buttons", _STRING(), nullable=False),
        sa.PrimaryKeyConstraint("conversation_id"),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", _STRING(length=200), nullable=False),
        sa.Column("kind", _STRING(length=10), nullable=False),
        sa.Column("key", _STRING(length=200), nullable=True),
        sa.Column("payload", _STRING(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", _STRING(length=200), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", _STRING(length=100), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outbox_conversation_id"), ["conversation_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_outbox_sent_at"), ["sent_at"], unique=False)
    # Every notice, sent or not, in its order (new ids follow the old order): unsent ones are
    # delivered from here, sent ones keep their key taken (a decision is never told twice).
    columns = ", ".join(_COMMON)
    op.execute(
        f"INSERT INTO outbox (kind, {columns}) SELECT 'notice', {columns} FROM notice ORDER BY id"  # noqa: S608 - constants
    )
    with op.batch_alter_table("notice", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notice_conversation_id"))
        batch_op.drop_index(batch_op.f("ix_notice_sent_at"))
    op.drop_table("notice")


def downgrade() -> None:
    op.create_table(
        "notice",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", _STRING(length=200), nullable=False),
        sa.Column("conversation_id", _STRING(length=200), nullable=False),
        sa.Column("payload", _STRING(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", _STRING(length=100), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    with op.batch_alter_table("notice", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notice_sent_at"), ["sent_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_notice_conversation_id"), ["conversation_id"], unique=False)
    # Only notices fit there; a channel's kept messages are lost on a downgrade.
    columns = ", ".join(_COMMON)
    op.execute(
        f"INSERT INTO notice ({columns}) SELECT {columns} FROM outbox WHERE kind = 'notice' ORDER BY id"  # noqa: S608 - constants
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_sent_at"))
        batch_op.drop_index(batch_op.f("ix_outbox_conversation_id"))
    op.drop_table("outbox")
    op.drop_table("offered_buttons")
    op.drop_table("button_token")
