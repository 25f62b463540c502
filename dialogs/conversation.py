"""What actions and commands see of the engine: a small public interface, and the registry
through which they are handed to it (filled explicitly by `dialogs.actions.register`).

Actions (dialogs/actions.py) import this module, never the engine: the engine imports the
actions to build its registry, so the dependency points one way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from dialogs.catalog import Catalog
from dialogs.flow import Flow, Step
from dialogs.messages import Button, Outbound
from dialogs.payloads import Payload
from dialogs.ports import DocumentRenderer, PhotoStore, RegistrationBackend
from dialogs.state import ConversationState, Pending, PendingType

if TYPE_CHECKING:
    from knowledge.faq.index import FaqIndex


@dataclass
class Services:
    """The outside world as the engine sees it; tests pass in-memory fakes."""

    backend: RegistrationBackend
    photos: PhotoStore
    documents: DocumentRenderer
    faq: FaqIndex | None = None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    # Hooks the assistant layer provides for data about the user outside the state (e.g. /delete).
    forget_user: Callable[[str], Awaitable[None]] | None = None


@dataclass
class Turn:
    """One exchange being built: the replies so far and who the user is."""

    conversation_id: str
    replies: list[Outbound] = field(default_factory=list)

    def say(self, text: str, buttons: list[Button] | tuple[Button, ...] = (), **extra: Any) -> None:
        if extra:
            self.replies.append(Outbound(text, tuple(buttons), **extra))
        elif text or buttons:
            self.replies.append(Outbound(text, tuple(buttons)))


class Conversation(Protocol):
    """The engine's moves an action may make."""

    services: Services
    texts: Catalog
    flows: dict[str, Flow]

    def flow(self, state: ConversationState) -> Flow | None: ...

    def step(self, state: ConversationState) -> Step | None: ...

    def context(self, state: ConversationState, **extra: Any) -> dict[str, Any]: ...

    def menu_buttons(self) -> list[Button]: ...

    async def ask(self, state: ConversationState, turn: Turn, prefix: str | None = None) -> None:
        """Ask the current step (again), `prefix` first."""

    async def reask(self, state: ConversationState, turn: Turn) -> None:
        """Ask the current step again, or show the menu outside a flow."""

    async def advance(self, state: ConversationState, turn: Turn, target: str | None = None) -> None:
        """Go on from the current step (to `target` when given)."""

    async def enter(self, state: ConversationState, turn: Turn, step: Step) -> None:
        """Make `step` current and ask or run it."""

    async def start_flow(self, state: ConversationState, turn: Turn, flow_id: str) -> None: ...

    def end_flow(self, state: ConversationState) -> None: ...


Action = Callable[[Conversation, ConversationState, Turn], Awaitable[Any]]
Command = Callable[[Conversation, ConversationState, Turn, str], Awaitable[None]]
ButtonAction = Callable[[Conversation, ConversationState, Turn, Payload], Awaitable[None]]
ConfirmAction = Callable[[Conversation, ConversationState, Turn, Pending, bool], Awaitable[None]]


@dataclass
class Registry:
    """Actions by the names flows give them, commands by name, the buttons and yes/no
    answers actions own. Filled explicitly (`dialogs.actions.register`), never on import."""

    actions: dict[str, Action] = field(default_factory=dict)
    commands: dict[str, Command] = field(default_factory=dict)
    buttons: dict[type[Payload], ButtonAction] = field(default_factory=dict)
    confirms: dict[PendingType, ConfirmAction] = field(default_factory=dict)
