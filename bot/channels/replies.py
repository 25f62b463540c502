"""The reply JSON of the terminal's JSON lines and the web chat API, built in one place.

Also the replies as kept in the database (notices in the outbox, replies kept for a retried
message): `outbounds_to_payload` and back.

Terminal (`vssid-bot chat --jsonl`): `{"text", "buttons": [{"label", "payload"}], "document"}`
with the document's path. Web: the same keys with the document's URL, then `"image"` (URL)
and `"progress"` (`[step, total]` or null).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from dialogs.messages import Button, Outbound

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


def outbounds_to_payload(replies: Sequence[Outbound]) -> list[dict]:
    """Replies as JSON-ready dicts (notices, replies kept for a retried message); a file is
    kept as its path, progress only when set."""
    payload = []
    for reply in replies:
        item: dict[str, Any] = {"text": reply.text, "buttons": [[b.label, b.payload] for b in reply.buttons]}
        for name in ("document", "image"):
            if getattr(reply, name) is not None:
                item[name] = str(getattr(reply, name))
        if reply.progress is not None:
            item["progress"] = list(reply.progress)
        payload.append(item)
    return payload


def payload_to_outbounds(payload: str | list[dict]) -> list[Outbound]:
    """`outbounds_to_payload`'s list back, given as JSON text or decoded."""
    items = json.loads(payload) if isinstance(payload, str) else payload
    return [
        Outbound(
            text=item["text"],
            buttons=tuple(Button(label, value) for label, value in item["buttons"]),
            document=Path(item["document"]) if item.get("document") else None,
            image=Path(item["image"]) if item.get("image") else None,
            progress=tuple(item["progress"]) if item.get("progress") else None,
        )
        for item in items
    ]
