"""Assistant replies -> Telegram messages: escaping, joining, splitting, keyboards."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from bot.channels.text_split import split_text, utf16_len
from dialogs.messages import Button, Outbound

# Bot API limits (https://core.telegram.org/bots/api): counted in UTF-16 code units.
MAX_TEXT = 4096
MAX_CAPTION = 1024

Keyboard = list[list[tuple[str, str]]]  # rows of (label, callback_data)


def split_message(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Cut `text` into pieces Telegram accepts (its limits count UTF-16 code units)."""
    if 2 * len(text) <= limit:  # fits whatever its characters (two units at most each): not measured
        return [text]
    return split_text(text, limit, utf16_len)


def escape_html(text: str) -> str:
    """Make assistant text literal under parse_mode=HTML ("<b>Lê & Co</b>" is shown as typed)."""
    return html.escape(text, quote=False)


def join_texts(replies: Sequence[Outbound]) -> list[Outbound]:
    """Consecutive plain texts go out as one message, paragraphs apart.

    The engine often answers with a note and the next question ("Mình ghi nhận số CCCD…",
    "Nhập số điện thoại…"). As one Telegram message they are one notification instead of
    two, and half the sends against Telegram's per-chat flood limit. A text that carries
    buttons or an attachment closes the group (the buttons stay under the last words).
    """
    joined: list[Outbound] = []
    for reply in replies:
        previous = joined[-1] if joined else None
        if (
            previous is not None
            and not (previous.buttons or previous.document or previous.image)
            and not (reply.document or reply.image)
            and previous.text.strip()
            and reply.text.strip()
            and _fit_together(previous.text, reply.text)
        ):
            text = previous.text.rstrip() + "\n\n" + reply.text.lstrip()
            joined[-1] = Outbound(text, reply.buttons, progress=reply.progress)
        else:
            joined.append(reply)
    return joined


def _fit_together(first: str, second: str) -> bool:
    """Do both texts fit in one message, a blank line apart? Measured only when they might not."""
    if 2 * (len(first) + len(second) + 2) <= MAX_TEXT:
        return True
    return utf16_len(first) + 2 + utf16_len(second) <= MAX_TEXT


def keyboard_rows(buttons: Sequence[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """One button per row, two when there are many short ones (province lists stay compact)."""
    if len(buttons) > 4 and all(len(label) <= 18 for label, _ in buttons):
        return [list(buttons[i : i + 2]) for i in range(0, len(buttons), 2)]
    return [[b] for b in buttons]


@dataclass(slots=True)
class Op:
    kind: Literal["text", "document", "photo"]
    text: str | None = None  # already escaped HTML
    path: Path | None = None
    keyboard: Keyboard | None = None
    batch: int = 0

    def spec(self) -> dict[str, Any]:
        """What the outbox keeps: enough to send the same message after a restart."""
        return {
            "kind": self.kind,
            "text": self.text,
            "path": str(self.path) if self.path is not None else None,
            "keyboard": self.keyboard,
            "batch": self.batch,
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Op:
        kind = spec["kind"]
        if kind not in ("text", "document", "photo"):
            raise ValueError(f"unknown kind {kind!r}")
        keyboard = spec.get("keyboard")
        return cls(
            kind,
            text=spec.get("text"),
            path=Path(spec["path"]) if spec.get("path") else None,
            keyboard=[[(str(label), str(data)) for label, data in row] for row in keyboard]
            if keyboard
            else None,
            batch=int(spec.get("batch") or 0),
        )


def render(replies: Sequence[Outbound], batch: int, encode: Callable[[str], str]) -> list[Op]:
    """The messages that carry `replies`; `encode` turns a button payload into callback_data."""
    ops: list[Op] = []
    for reply in join_texts(replies):
        keyboard = keyboard_for(reply.buttons, encode)
        attachment = reply.document or reply.image
        kind: Literal["document", "photo"] = "document" if reply.document else "photo"
        text = reply.text or ""
        if attachment is not None and utf16_len(text) <= MAX_CAPTION:
            ops.append(
                Op(kind, text=escape_html(text) or None, path=attachment, keyboard=keyboard, batch=batch)
            )
            continue
        chunks = [c for c in split_message(text) if c.strip()] if text.strip() else []
        for i, chunk in enumerate(chunks):
            last = i == len(chunks) - 1 and attachment is None
            ops.append(Op("text", text=escape_html(chunk), keyboard=keyboard if last else None, batch=batch))
        if attachment is not None:
            ops.append(Op(kind, path=attachment, keyboard=keyboard, batch=batch))
    return ops


def keyboard_for(buttons: Sequence[Button], encode: Callable[[str], str]) -> Keyboard | None:
    if not buttons:
        return None
    return keyboard_rows([(b.label, encode(b.payload)) for b in buttons])
