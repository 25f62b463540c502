"""The conversation state the engine reads and writes; storage keeps it as JSON with a version."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field, model_validator


class PendingType(StrEnum):
    """What the bot is waiting on: a pick from a list, or a yes/no about something."""

    CHOICES = "choices"  # a pick from `choices`
    CONFIRM = "confirm"  # "is this value right?" (an inferred value)
    QUESTION_OR_VALUE = "question_or_value"  # "is this question really the value?"
    CARD_NUMBER = "card_number"  # the card's QR disagrees with the typed ID number
    CANCEL = "cancel"
    RESTART = "restart"
    SWITCH = "switch"  # leave this flow for another
    DELETE = "delete"  # forget everything about the user


class Pending(BaseModel):
    """Something the user must answer before the step goes on: a pick from a list, a yes/no."""

    type: PendingType
    step: str | None = None
    choices: list[dict[str, Any]] = Field(default_factory=list)  # {"label", "value"}
    value: Any = None


class Flags(BaseModel):
    """The engine's own notes about the current flow, kept apart from the user's answers."""

    # A way out a field's rule offered ("my name really has no accents"), not yet pressed.
    offered_escape: str | None = None
    # Ways out pressed: the parser reads them (by their names) for one answer only.
    escapes: list[str] = Field(default_factory=list)
    # The citizen's ID number is verified against the population database: no ID photos.
    id_verified: bool | None = None
    # The mã số BHXH a look-up filled in (dropped again when a later look-up finds nothing).
    looked_up_code: str | None = None
    # Sent, or sent without an answer: nothing on the form may change any more.
    submit_attempted: bool = False
    receipt: str | None = None
    # What a card's QR gave, shown for confirmation and not yet used (dialogs/cardfill.py).
    card_proposal: dict[str, Any] | None = None
    # The cards already used in this flow, and the fields they filled (skipped in the usual order).
    cards_used: list[str] = Field(default_factory=list)
    card_filled: list[str] = Field(default_factory=list)
    # The phone hotline staff noted on a handoff link: offered as a button at the phone step.
    handoff_phone: str | None = None
    # The day the paper form is due (dd/mm/yyyy), for the flow's last word.
    paper_deadline: str | None = None


# Where flags lived before they had a place of their own: underscore keys among the values.
LEGACY_FLAG_KEYS = {
    "_offered_flag": "offered_escape",
    "_id_verified": "id_verified",
    "_looked_up_code": "looked_up_code",
    "_submit_attempted": "submit_attempted",
    "_receipt": "receipt",
    "_card": "card_proposal",
    "_cards_used": "cards_used",
    "_card_filled": "card_filled",
    "_handoff_phone": "handoff_phone",
    "_paper_deadline": "paper_deadline",
}

_LEGACY_KEYS = frozenset({*LEGACY_FLAG_KEYS, "_flag_set"})


class ConversationState(BaseModel):
    flow: str | None = None
    step: str | None = None
    # Answers of the current flow, by field name; the engine's own notes are in `flags`.
    values: dict[str, Any] = Field(default_factory=dict)
    flags: Flags = Field(default_factory=Flags)
    history: list[str] = Field(default_factory=list)
    pending: Pending | None = None
    editing: bool = False
    attempts: dict[str, int] = Field(default_factory=dict)
    last_rejected: str | None = None
    run_id: str | None = None
    # What outlives a flow: referral, handoff token, submitted declarations, confirmed guardian.
    meta: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _flags_out_of_values(cls, data: Any) -> Any:
        """State stored before `flags` existed kept them among the values as "_name" keys."""
        # Only these keys move: flows may name fields "_lookup_…" (kept off the summary).
        if not isinstance(data, dict) or not isinstance(data.get("values"), dict):
            return data
        values = data["values"]
        if _LEGACY_KEYS.isdisjoint(values):  # every state stored since: read on every load
            return data
        values = dict(values)
        flags = dict(data.get("flags") or {})
        for old, new in LEGACY_FLAG_KEYS.items():
            if old in values:
                flags[new] = values.pop(old)
        pressed = values.pop("_flag_set", None)  # a way out pressed, stored under its own name
        if pressed and values.pop(pressed, None):
            flags["escapes"] = [*(flags.get("escapes") or []), pressed]
        return {**data, "values": values, "flags": flags}

    def parse_values(self) -> dict[str, Any]:
        """What a field parser reads: the answers, plus the ways out the user pressed."""
        if not self.flags.escapes:
            return self.values
        return {**self.values, **dict.fromkeys(self.flags.escapes, True)}

    def get_value(self, path: str) -> Any:
        if "." not in path:  # most fields are top-level names: no list made by split
            return self.values.get(path)
        node: Any = self.values
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node

    def set_value(self, path: str, value: Any) -> None:
        if "." not in path:
            self.values[path] = value
            return
        parts = path.split(".")
        node = self.values
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value

    def drop_value(self, path: str) -> None:
        parts = path.split(".")
        node: Any = self.values
        for part in parts[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
            if node is None:
                return
        if isinstance(node, dict):
            node.pop(parts[-1], None)
