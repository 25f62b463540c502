"""Button payloads: what a button sends back, one typed class per kind.

A payload travels as a short string ("opt:2", "confirm:yes") through every channel (Telegram
callback data, the web chat, the terminal's JSON lines): those strings are a contract. Each
class here formats and parses its own kind, so the rest of the code handles typed values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal


@dataclass(frozen=True)
class Payload:
    """A payload kind: `kind` is the text before the colon; `arg` what follows (may be empty)."""

    kind: ClassVar[str]

    def arg(self) -> str:
        return ""

    def format(self) -> str:
        arg = self.arg()
        return f"{self.kind}:{arg}" if arg else self.kind

    def __str__(self) -> str:
        return self.format()

    @classmethod
    def parse_arg(cls, arg: str) -> Payload | None:
        return cls()


@dataclass(frozen=True)
class _Named(Payload):
    """A payload carrying one name (a flow id, a step id, a command)."""

    name: str

    def arg(self) -> str:
        return self.name

    @classmethod
    def parse_arg(cls, arg: str) -> Payload | None:
        return cls(arg) if arg else None


@dataclass(frozen=True)
class _Indexed(Payload):
    """A payload carrying a position in a list the bot showed (0-based)."""

    index: int

    def arg(self) -> str:
        return str(self.index)

    @classmethod
    def parse_arg(cls, arg: str) -> Payload | None:
        # ASCII digits only: str.isdigit() is also true for "¹" or "٣", which int() refuses.
        return cls(int(arg)) if arg.isascii() and arg.isdigit() else None


@dataclass(frozen=True)
class StartFlow(_Named):
    """`flow:<id>`: start (or switch to) a flow."""

    kind: ClassVar[str] = "flow"


@dataclass(frozen=True)
class Nav(_Named):
    """`nav:<move>`: a global move (back, cancel, restart, help, menu, edit, skip)."""

    kind: ClassVar[str] = "nav"


@dataclass(frozen=True)
class RunCommand(_Named):
    """`cmd:<name>`: a command outside flows (status, mydata, delete)."""

    kind: ClassVar[str] = "cmd"


@dataclass(frozen=True)
class FaqEntry(_Named):
    """`faq:<entry id>`: show that FAQ entry's answer."""

    kind: ClassVar[str] = "faq"


@dataclass(frozen=True)
class PickChoice(_Indexed):
    """`pick:<i>`: the i-th of the choices listed for the step (state.pending)."""

    kind: ClassVar[str] = "pick"


@dataclass(frozen=True)
class ChooseOption(_Indexed):
    """`opt:<i>`: the i-th option of a choice step."""

    kind: ClassVar[str] = "opt"


@dataclass(frozen=True)
class Confirm(Payload):
    """`confirm:yes` / `confirm:no`: the answer to a yes/no question."""

    kind: ClassVar[str] = "confirm"
    yes: bool = True

    def arg(self) -> str:
        return "yes" if self.yes else "no"

    @classmethod
    def parse_arg(cls, arg: str) -> Payload | None:
        return cls(yes=arg == "yes")


@dataclass(frozen=True)
class SummaryOk(Payload):
    """`summary:ok`: the summary is right, go on."""

    kind: ClassVar[str] = "summary"

    def arg(self) -> str:
        return "ok"

    @classmethod
    def parse_arg(cls, arg: str) -> Payload | None:
        return cls()


@dataclass(frozen=True)
class Edit(Payload):
    """`edit`: list what can be edited; `edit:<step id>`: edit that step's answer."""

    kind: ClassVar[str] = "edit"
    step: str = ""

    def arg(self) -> str:
        return self.step

    @classmethod
    def parse_arg(cls, arg: str) -> Payload | None:
        return cls(arg)


@dataclass(frozen=True)
class Goto(_Named):
    """`goto:<step id>`: a side road the current step offers (the mã số BHXH look-up)."""

    kind: ClassVar[str] = "goto"


@dataclass(frozen=True)
class Keep(Payload):
    """`keep`: keep the answer already given at this step."""

    kind: ClassVar[str] = "keep"


@dataclass(frozen=True)
class Skip(Payload):
    """`skip`: leave an optional step empty."""

    kind: ClassVar[str] = "skip"


@dataclass(frozen=True)
class Escape(_Named):
    """`flag:<name>`: the way out a field's rule offered ("Tên tôi không có dấu")."""

    kind: ClassVar[str] = "flag"


@dataclass(frozen=True)
class Resend(Payload):
    """`resend`: send the step's OTP again."""

    kind: ClassVar[str] = "resend"


@dataclass(frozen=True)
class Retry(Payload):
    """`retry`: run the step's action again (the backend did not answer)."""

    kind: ClassVar[str] = "retry"


@dataclass(frozen=True)
class RegisterGuardianFirst(Payload):
    """`childfirst:register`: a guardian without an account registers first, then the child."""

    kind: ClassVar[str] = "childfirst"

    def arg(self) -> str:
        return "register"

    @classmethod
    def parse_arg(cls, arg: str) -> Payload | None:
        return cls()


@dataclass(frozen=True)
class Reminders(Payload):
    """`reminders:stop`: no reminder before the paper-form deadline."""

    kind: ClassVar[str] = "reminders"
    what: Literal["stop"] = "stop"

    def arg(self) -> str:
        return self.what

    @classmethod
    def parse_arg(cls, arg: str) -> Payload | None:
        return cls()


@dataclass(frozen=True)
class CardAction(Payload):
    """`card:<what>` (use, fix, fix:<i>, drop, type): an answer about what a card's QR read
    (dialogs/cardfill.py)."""

    kind: ClassVar[str] = "card"
    what: str = ""

    def arg(self) -> str:
        return self.what

    @classmethod
    def parse_arg(cls, arg: str) -> Payload | None:
        return cls(arg)


KINDS: dict[str, type[Payload]] = {
    cls.kind: cls
    for cls in (
        StartFlow,
        Nav,
        RunCommand,
        FaqEntry,
        PickChoice,
        ChooseOption,
        Confirm,
        SummaryOk,
        Edit,
        Goto,
        Keep,
        Skip,
        Escape,
        Resend,
        Retry,
        RegisterGuardianFirst,
        Reminders,
        CardAction,
    )
}


def parse(text: str) -> Payload | None:
    """The typed payload a button sent, or None for a string no button of ours sends."""
    kind, _, arg = text.partition(":")
    cls = KINDS.get(kind)
    return cls.parse_arg(arg) if cls is not None else None


YES = Confirm(yes=True)
NO = Confirm(yes=False)
