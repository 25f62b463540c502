"""Where the flow files' `parser:` and `suggestions:` names are looked up.

The field rules live in dialogs/fields.py and dialogs/address_fields.py; this module only
maps names to functions (imported on first use) so the flow YAML stays plain data.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import cache
from typing import Any

from dialogs.parsing import Accepted, Choice, ParseResult
from dialogs.state import ConversationState

Parser = Callable[[str, Mapping[str, Any]], ParseResult]
# The choices a step offers as buttons (its `suggestions:`), from the conversation so far.
Suggestions = Callable[[ConversationState], Sequence[Choice]]


@cache
def _parsers() -> dict[str, Parser]:
    from dialogs import address_fields, fields

    registry: dict[str, Parser] = dict(fields.PARSERS)
    registry.update(
        province=address_fields.parse_province,
        ward=address_fields.parse_ward,
        street=address_fields.parse_street,
        agency=address_fields.parse_agency,
    )
    return registry


def parser(name: str) -> Parser:
    try:
        return _parsers()[name]
    except KeyError:
        raise KeyError(f"no parser named {name!r} (dialogs/fields.py PARSERS)") from None


@cache
def _suggestions() -> dict[str, Suggestions]:
    from dialogs import address_fields

    return {
        "agency_choices": lambda state: address_fields.agency_choices(state.values),
        "handoff_phone": handoff_phone,
    }


def handoff_phone(state: ConversationState) -> tuple[Choice, ...]:
    """The phone a hotline staff member noted on the call (a handoff link), offered to confirm."""
    phone = state.flags.handoff_phone
    if not isinstance(phone, str) or len(phone) != 10:
        return ()
    return (Choice(f"{phone[:4]} {phone[4:7]} {phone[7:]}", phone),)


def suggestions(name: str) -> Suggestions:
    return _suggestions()[name]


def yes_no(text: str) -> bool | None:
    result = parser("yes_no")(text, {})
    return result.value if isinstance(result, Accepted) else None
