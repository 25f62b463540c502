"""Alembic migrations of the bot's database; `bot.migrate.upgrade` runs them at start-up."""
