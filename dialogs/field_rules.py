"""How a field's rule speaks: the reviewed texts (field_texts.yaml) and the small helpers
every rule in dialogs/fields.py and dialogs/contact_fields.py shares."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any

from dialogs.catalog import Catalog, catalog
from dialogs.parsing import ParseResult, Rejected
from knowledge.text import nfc

TEXTS_PATH = Path(__file__).with_name("field_texts.yaml")

Parser = Callable[[str, Mapping[str, Any]], ParseResult]


@dataclass(frozen=True)
class RejectedWithEscape(Rejected):
    """A refusal the user may overrule: show `button_label`; on press set values[flag] = True and re-parse."""

    button_label: str = ""
    flag: str = ""


@cache
def _catalog() -> Catalog:
    # Without an argument: `catalog(TEXTS_PATH)` hashes the path (a Python method) at every call.
    return catalog(TEXTS_PATH)


def texts() -> Mapping[str, Any]:
    """The reviewed texts and word lists, read once per process (edit the YAML, restart the bot)."""
    return _catalog().data


def say(section: str, key: str, **fill: Any) -> str:
    """Format one message; the section's `example*` entries and limits are always available as placeholders."""
    return _catalog().say(section, key, **fill)


def reject(section: str, key: str, **fill: Any) -> Rejected:
    return Rejected(say(section, key, **fill))


def today_of(values: Mapping[str, Any]) -> date:
    given = values.get("_today")
    if isinstance(given, datetime):
        return given.date()
    if isinstance(given, date):
        return given
    if isinstance(given, str):
        return date.fromisoformat(given)
    return date.today()


def quoted(chars: str) -> str:
    """The offending characters, each once, in order, for messages like “a”, “#”."""
    seen = dict.fromkeys(chars)
    return ", ".join(f"“{ch}”" for ch in list(seen)[:6])


# Separators people type inside numbers ("01 2345 6789", "091.234.5678", "0123-456-789").
_NUMBER_SEPARATORS = re.compile(r"[\s.\-]+")


def compact(text: str) -> str:
    return _NUMBER_SEPARATORS.sub("", nfc(text))
