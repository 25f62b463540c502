"""What a field parser can answer. Parsers are pure: text (plus the values so far) in, one of these out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Accepted:
    """The value to store. `notice` is a Vietnamese remark shown to the user (e.g. "took the last 10 digits")."""

    value: Any
    notice: str | None = None


@dataclass(frozen=True)
class Rejected:
    """What is wrong and an example of what is right, in Vietnamese. The step is asked again."""

    message: str


@dataclass(frozen=True)
class Choice:
    label: str
    value: Any


@dataclass(frozen=True)
class Ambiguous:
    """Several plausible values: the user picks one (buttons). `message` introduces the list."""

    message: str
    choices: tuple[Choice, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class NeedsConfirmation:
    """A value we inferred (e.g. an old address converted to the 2025 ward): the user says yes or no."""

    value: Any
    message: str


ParseResult = Accepted | Rejected | Ambiguous | NeedsConfirmation
