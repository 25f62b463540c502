"""Framework updates -> `TelegramEvent`: what the assistant needs of one update."""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Literal

ALLOWED_UPDATES = ("message", "callback_query")

_DEEP_LINK = re.compile(r"[A-Za-z0-9_-]{1,64}")
_START = re.compile(r"/start(?:@\w+)?(?:\s+(.*))?", re.DOTALL | re.IGNORECASE)


def normalise_start(text: str) -> str:
    """`/start <payload>` passes through when the payload is a valid deep-link parameter.

    Telegram allows 1-64 characters of A-Z, a-z, 0-9, _ and -; anything else (typed by
    hand, mangled by a messenger) is dropped so the conversation still starts normally.
    """
    if "/" not in text:  # most messages: no command, nothing to match
        return text
    match = _START.fullmatch(text.strip())
    if match is None:
        return text
    payload = (match.group(1) or "").strip()
    if payload and _DEEP_LINK.fullmatch(payload):
        return f"/start {payload}"
    return "/start"


class RecentIds:
    """Bounded memory of update ids already taken, so a redelivery is answered once."""

    def __init__(self, capacity: int = 20_000) -> None:
        self._capacity = capacity
        self._seen: OrderedDict[int, None] = OrderedDict()

    def add(self, update_id: int) -> bool:
        """True the first time an id is seen."""
        if update_id in self._seen:
            return False
        self._seen[update_id] = None
        if len(self._seen) > self._capacity:
            self._seen.popitem(last=False)
        return True


def chat_of(raw: dict[str, Any]) -> int | None:
    """The chat a raw update (webhook body) belongs to, read before any framework parses it."""
    message = raw.get("message")
    if message is None and isinstance(raw.get("callback_query"), dict):
        message = raw["callback_query"].get("message")
    chat = message.get("chat") if isinstance(message, dict) else None
    chat_id = chat.get("id") if isinstance(chat, dict) else None
    return chat_id if isinstance(chat_id, int) else None


# ------------------------------------------------------------------ update -> event


@dataclass(slots=True)
class TelegramEvent:
    """The part of one update the assistant cares about, independent of the framework.

    Not frozen, though nothing changes it: a frozen dataclass sets each field through
    `object.__setattr__`, which made one about four times as dear, once per update."""

    update_id: int
    chat_id: int
    kind: Literal["text", "button", "photo", "unsupported"]
    text: str | None = None
    callback_id: str | None = None
    callback_data: str | None = None
    callback_message_id: int | None = None
    file_id: str | None = None
    file_size: int | None = None
    media_group_id: str | None = None


def event_from_update(update: Any) -> TelegramEvent | None:
    """aiogram and PTB name their objects after the Bot API, so one reader serves both.

    Only private chats are served: a registration must not happen in a group.
    Returns None for updates the assistant ignores (edits, groups, inline callbacks).
    """
    update_id = update.update_id
    query = update.callback_query
    if query is not None:
        message = query.message
        if message is None or message.chat.type != "private":
            return None
        return TelegramEvent(
            update_id=update_id,
            chat_id=message.chat.id,
            kind="button",
            callback_id=query.id,
            callback_data=query.data or "",
            callback_message_id=message.message_id,
        )
    message = update.message
    if message is None or message.chat.type != "private":
        return None
    if message.text is not None:
        return TelegramEvent(update_id, message.chat.id, "text", text=normalise_start(message.text))
    return _photo_event(update_id, message)


def _photo_event(update_id: int, message: Any) -> TelegramEvent:
    """A photo, or an image sent as a file; anything else is "unsupported"."""
    chat_id = message.chat.id
    if message.photo:
        largest = max(message.photo, key=lambda p: (p.width * p.height, p.file_size or 0))
        file_id, file_size = largest.file_id, largest.file_size
    elif message.document is not None and (message.document.mime_type or "").startswith("image/"):
        file_id, file_size = message.document.file_id, message.document.file_size
    else:
        return TelegramEvent(update_id, chat_id, "unsupported")
    return TelegramEvent(
        update_id,
        chat_id,
        "photo",
        file_id=file_id,
        file_size=file_size,
        media_group_id=message.media_group_id,
    )
