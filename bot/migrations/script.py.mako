"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}
"""

from __future__ import annotations

# autogenerate writes column types as `sqlmodel.sql.sqltypes.AutoString()`: importing that
# module by its full name (not bare `sqlmodel`) lets the type checker resolve the attribute.
import sqlalchemy as sa  # noqa: F401 - a migration often needs them
import sqlmodel.sql.sqltypes  # noqa: F401
from alembic import op
${imports if imports else ""}
revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
