"""The conversation state the engine reads and writes; storage keeps it as JSON with a version."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


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


class ConversationState(BaseModel):
    flow: str | None = None
    step: str | None = None
    # Answers of the current flow, by field name. Names starting with "_" are the engine's notes.
    values: dict[str, Any] = Field(default_factory=dict)
    history: list[str] = Field(default_factory=list)
    pending: Pending | None = None
    editing: bool = False
    attempts: dict[str, int] = Field(default_factory=dict)
    last_rejected: str | None = None
    run_id: str | None = None
    # What outlives a flow: referral, handoff token, submitted declarations, confirmed guardian.
    meta: dict[str, Any] = Field(default_factory=dict)

    def get_value(self, path: str) -> Any:
        node: Any = self.values
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node

    def set_value(self, path: str, value: Any) -> None:
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
