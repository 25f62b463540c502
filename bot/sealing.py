"""Database columns sealed with the data keys: `Sealed` text and `use_keyring`.

A `Sealed` column holds `enc1:…` text (bot/crypto.py) in the database and gives the plain
value back on reads, for the engine `use_keyring` gave the keys to. An engine without keys
(a unit test's scratch database) reads and writes plain text, and a plain value written
before sealing was on reads as it is (`keys rotate` seals it).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, Text
from sqlalchemy.types import TypeDecorator


class Sealed(TypeDecorator):
    """Text sealed with the engine's data keys (`use_keyring`); plain when the engine has none."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        keyring = getattr(dialect, "vssid_keyring", None)
        return keyring.seal_text(value) if keyring is not None and value is not None else value

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        keyring = getattr(dialect, "vssid_keyring", None)
        return keyring.open_text(value) if keyring is not None and value is not None else value


def use_keyring(engine: Engine, keyring: Any) -> None:
    """Seal the `Sealed` columns of this engine's tables with `keyring` (bot.crypto.Keyring)."""
    engine.dialect.vssid_keyring = keyring  # type: ignore[attr-defined]


def sealed_columns(table: Any) -> list[str]:
    """The names of a table's sealed columns (what `keys rotate` re-seals)."""
    return [c.name for c in table.columns if isinstance(c.type, Sealed)]
