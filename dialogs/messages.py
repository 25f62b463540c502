"""The one conversation contract between channels and the engine.

Every channel turns what the user did into an `Inbound` and renders the list of
`Outbound` the engine answers with. Nothing here knows about Telegram, Zalo or HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Button:
    """A choice offered to the user. `payload` comes back as `Inbound.button`."""

    label: str
    payload: str


@dataclass(frozen=True)
class Inbound:
    """One thing the user did: typed text (commands included), pressed a button or sent a photo.

    `user_id` is channel-scoped; `message_id` identifies the delivery so a redelivered
    message is answered once (None: the channel cannot tell, never de-duplicated).
    """

    channel: str
    user_id: str
    message_id: str | None = None
    text: str | None = None
    button: str | None = None
    photo: bytes | None = None

    @property
    def conversation_id(self) -> str:
        return f"{self.channel}:{self.user_id}"

    @property
    def command(self) -> tuple[str, str] | None:
        """`/start abc` -> ("start", "abc"); None when the text is not a command."""
        if not self.text or not self.text.startswith("/"):
            return None
        head, _, arg = self.text[1:].strip().partition(" ")
        name = head.split("@", 1)[0].lower()  # Telegram groups send /start@botname
        if not name or not name.replace("_", "").isalnum():
            return None
        return name, arg.strip()


@dataclass(frozen=True)
class Outbound:
    """One message from the assistant. Channels degrade gracefully (numbered choices in a terminal)."""

    text: str
    buttons: tuple[Button, ...] = field(default_factory=tuple)
    document: Path | None = None
    image: Path | None = None
    # "Bước 3/7": channels that can show progress (the web chat) use it; others may ignore it.
    progress: tuple[int, int] | None = None

    def to_json(self, document_url: str | None = None) -> dict:
        """The reply shape shared by the terminal JSON-lines mode and the web chat API."""
        document = (
            document_url if document_url is not None else (str(self.document) if self.document else None)
        )
        return {
            "text": self.text,
            "buttons": [{"label": b.label, "payload": b.payload} for b in self.buttons],
            "document": document,
        }
