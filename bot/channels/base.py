"""What every channel is given and what it offers back.

A channel turns its updates into `Inbound`, calls `Assistant.handle`, and renders the
`Outbound` list. The assistant may also push messages later (approval notices,
reminders) through `Channel.send`.
"""

from __future__ import annotations

from typing import Protocol

from dialogs.messages import Inbound, Outbound


class Assistant(Protocol):
    async def handle(self, inbound: Inbound, *, keep_replies: bool = False) -> list[Outbound]:
        """Answer one user action. De-duplicates by (channel, user, message_id): a redelivery
        gets [], or the same replies again when the first was handled with `keep_replies`."""
        ...


class Channel(Protocol):
    name: str  # "telegram", "zalo", "web", "terminal": the Inbound.channel it produces

    async def start(self) -> None: ...

    async def stop(self) -> None:
        """Stop taking updates, let in-flight ones finish, then return."""
        ...

    async def send(self, user_id: str, replies: list[Outbound]) -> None:
        """Push messages the user did not ask for just now (notifications, reminders)."""
        ...
