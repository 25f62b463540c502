"""A person at a keyboard, for tests: sends what a user would and reads what they would see."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

from bot.config import Settings
from dialogs.messages import Inbound, Outbound


def test_settings(tmp_path: Path, **overrides) -> Settings:
    """Settings isolated in tmp_path, deaf to the developer's environment and .env."""
    base = Settings(_env_file=None)
    values = {"data_dir": tmp_path / "data", "database_url": "", "backend_url": "", **overrides}
    return base.model_copy(update=values)


@dataclass
class Chat:
    assistant: object
    user: str = "parent-1"
    channel: str = "test"
    replies: list[Outbound] = field(default_factory=list)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    async def send(self, inbound: Inbound) -> list[Outbound]:
        self.replies = await self.assistant.handle(inbound)
        return self.replies

    async def text(self, text: str, message_id: str | None = None) -> list[Outbound]:
        mid = message_id or f"m{next(self._ids)}"
        return await self.send(Inbound(self.channel, self.user, message_id=mid, text=text))

    async def press(self, payload_or_label: str) -> list[Outbound]:
        """Press a button currently shown, by payload or by label (fails if it is not shown)."""
        shown = [b for r in self.replies for b in r.buttons]
        match = next((b for b in shown if payload_or_label in (b.payload, b.label)), None)
        assert match is not None, f"no button {payload_or_label!r} among {[b.label for b in shown]}"
        return await self.send(
            Inbound(self.channel, self.user, message_id=f"m{next(self._ids)}", button=match.payload)
        )

    async def photo(self, data: bytes) -> list[Outbound]:
        return await self.send(Inbound(self.channel, self.user, message_id=f"m{next(self._ids)}", photo=data))

    @property
    def said(self) -> str:
        return "\n".join(r.text for r in self.replies)

    @property
    def labels(self) -> list[str]:
        return [b.label for r in self.replies for b in r.buttons]

    @property
    def document(self) -> Path | None:
        return next((r.document for r in self.replies if r.document), None)
