"""Alembic's environment: always run through `bot.migrate`, which hands over a connection."""

from __future__ import annotations

from alembic import context

from bot.schema import METADATA

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=METADATA,
    render_as_batch=True,  # SQLite alters a table by copying it
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
