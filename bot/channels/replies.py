"""The reply JSON of the terminal's JSON lines and the web chat API, built in one place.

Terminal (`vssid-bot chat --jsonl`): `{"text", "buttons": [{"label", "payload"}], "document"}`
with the document's path. Web: the same keys with the document's URL, then `"image"` (URL)
and `"progress"` (`[step, total]` or null).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from dialogs.messages import Outbound

Link = Callable[[Path], str | None]


def reply_json(reply: Outbound) -> dict:
    """One reply as the terminal writes it (the document as a path)."""
    return reply.to_json()


def web_reply_json(reply: Outbound, link: Link) -> dict:
    """One reply as the web API answers it: files as links, plus image and progress."""

    def url(file: Path | None) -> str | None:
        return None if file is None else link(file)

    data = reply.to_json(url(reply.document))
    data["image"] = url(reply.image)
    data["progress"] = list(reply.progress) if reply.progress else None
    return data


def terminal_replies(replies: Sequence[Outbound]) -> dict:
    return {"replies": [reply_json(r) for r in replies]}


def web_replies(replies: Sequence[Outbound], link: Link) -> dict:
    return {"replies": [web_reply_json(r, link) for r in replies]}


def _no_link(_file: Path) -> None:
    return None


def web_message(text: str) -> dict:
    """A channel's own message (an error) in the web reply shape."""
    return web_reply_json(Outbound(text), _no_link)
