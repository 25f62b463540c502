"""The assistant every channel talks to: storage + engine + the ports, with de-duplication.

`handle` runs one user action under a per-conversation lock (in-process ordering) and an
optimistic version check (across processes): a lost race runs the message again on the
fresh state. Side effects are safe to repeat (the backend submit is idempotent).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from dataclasses import dataclass, field
from typing import Any

from bot.config import Settings
from bot.storage import ConversationStore, SaveResult
from dialogs.engine import Engine, Services
from dialogs.messages import Inbound, Outbound

log = logging.getLogger(__name__)

MAX_CONFLICT_RETRIES = 8


@dataclass
class AssistantService:
    engine: Engine
    store: ConversationStore
    channels: dict[str, Any] = field(default_factory=dict)
    _locks: weakref.WeakValueDictionary = field(default_factory=weakref.WeakValueDictionary)
    _closers: list[Any] = field(default_factory=list)

    def add_channel(self, channel: Any) -> None:
        """Channels register so notices (approval, reminders) can reach users on them."""
        self.channels[channel.name] = channel

    def _lock(self, conversation_id: str) -> asyncio.Lock:
        lock = self._locks.get(conversation_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[conversation_id] = lock
        return lock

    async def handle(self, inbound: Inbound) -> list[Outbound]:
        conversation_id = inbound.conversation_id
        async with self._lock(conversation_id):
            for _ in range(MAX_CONFLICT_RETRIES):
                if inbound.message_id is not None and await asyncio.to_thread(
                    self.store.seen, conversation_id, inbound.message_id
                ):
                    return []
                state, version = await asyncio.to_thread(self.store.load, conversation_id)
                state, replies = await self.engine.handle(state, inbound)
                result = await asyncio.to_thread(
                    self.store.save,
                    conversation_id,
                    inbound.channel,
                    inbound.user_id,
                    state,
                    version,
                    inbound.message_id,
                )
                if result is SaveResult.SAVED:
                    return replies
                if result is SaveResult.DUPLICATE:
                    return []
                log.info("conversation write conflict; running the message again")
            raise RuntimeError("conversation kept changing under us; message not applied")

    async def close(self) -> None:
        for closer in reversed(self._closers):
            try:
                result = closer()
                if asyncio.iscoroutine(result):
                    await result
            except Exception:
                log.exception("error while closing")
        self.store.close()


def prepare_data_dir(settings: Settings) -> None:
    """Create the data directories (private: they hold ID photos) or fail with a clear reason."""
    for directory in (settings.data_dir, settings.uploads_dir, settings.documents_dir):
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    probe = settings.data_dir / ".write-test"
    probe.write_text("ok")
    probe.unlink()


def build_backend(settings: Settings) -> Any:
    if settings.backend_url:
        from bot.backend.http_client import HttpBackend

        return HttpBackend(settings.backend_url, timeout_s=settings.backend_timeout_s)
    from bot.backend.stub import StubBackend

    return StubBackend(settings.backend_store_url)


async def build_assistant(settings: Settings, **overrides: Any) -> AssistantService:
    """The assistant on the configured parts; `overrides` replace Services fields (tests)."""
    from bot.documents import PdfDocumentRenderer
    from bot.photos import FilePhotoStore

    prepare_data_dir(settings)
    backend = overrides.pop("backend", None) or build_backend(settings)
    services = Services(
        backend=backend,
        photos=overrides.pop("photos", None) or FilePhotoStore(settings.uploads_dir),
        documents=overrides.pop("documents", None) or PdfDocumentRenderer(settings.documents_dir),
        **overrides,
    )
    store = ConversationStore(settings.sqlalchemy_url)
    service = AssistantService(engine=Engine(services), store=store)
    if hasattr(backend, "close"):
        service._closers.append(backend.close)
    return service
