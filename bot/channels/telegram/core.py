"""Events -> assistant calls, one chat at a time: per-user ordering, redeliveries answered
once, button presses checked against the live keyboard, photos fetched."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from functools import cache
from pathlib import Path
from typing import Any

from bot.channels.base import Assistant
from bot.retry import RetryPolicy
from dialogs.catalog import catalog
from dialogs.messages import Inbound, Outbound

from .api import BotApi
from .codec import TelegramOutbox
from .delivery import Delivery, Undelivered, _Live, _pseudonym
from .events import RecentIds, TelegramEvent

log = logging.getLogger("bot.channels.telegram")

CHANNEL_NAME = "telegram"
MAX_DOWNLOAD = 20 * 1024 * 1024  # getFile refuses bigger files


@cache
def channel_texts() -> dict[str, str]:
    """User-facing texts of the channel itself, kept in a reviewable data file."""
    texts = catalog(Path(__file__).parent.parent / "telegram.yaml")
    return {key: texts(key) for key in texts.data}


_current_chat: contextvars.ContextVar[int | None] = contextvars.ContextVar("telegram_chat", default=None)


async def _nothing() -> None:
    return None


class TelegramCore(Delivery):
    """Turns events into assistant calls and replies into Bot API calls, one chat at a time."""

    def __init__(
        self,
        assistant: Assistant,
        api: BotApi,
        retry: RetryPolicy | None = None,
        store: TelegramOutbox | None = None,
    ) -> None:
        super().__init__(api, retry, store)
        self.assistant = assistant
        self.texts = channel_texts()
        self._seen = RecentIds()
        self._queues: dict[int, deque[Callable[[], Awaitable[None]]]] = {}
        self._workers: dict[int, asyncio.Task[None]] = {}
        self._idle = asyncio.Event()
        self._idle.set()

    def submit(self, event: TelegramEvent) -> bool:
        """Queue one event (synchronously, so arrival order is kept). False for a redelivery."""
        if self.closed or not self._seen.add(event.update_id):
            return False
        self._enqueue(event.chat_id, lambda: self._process(event))
        return True

    def _enqueue(self, chat_id: int, job: Callable[[], Awaitable[None]]) -> None:
        queue = self._queues.get(chat_id)
        if queue is not None:  # the chat's worker runs (a queue lives as long as its worker)
            queue.append(job)
            return
        self._queues[chat_id] = deque((job,))
        self._idle.clear()
        self._workers[chat_id] = asyncio.create_task(self._work(chat_id), name=f"telegram-chat-{chat_id}")

    async def _work(self, chat_id: int) -> None:
        token = _current_chat.set(chat_id)
        queue = self._queues[chat_id]
        try:
            while queue:
                job = queue.popleft()
                try:
                    await job()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("telegram job failed (chat %s)", _pseudonym(chat_id))
        finally:
            _current_chat.reset(token)
            del self._queues[chat_id]
            del self._workers[chat_id]
            if not self._workers:
                self._idle.set()

    async def idle(self) -> None:
        """Return once every queued event and reply has been dealt with."""
        while self._workers:
            await self._idle.wait()
            await asyncio.sleep(0)

    def resume(self) -> None:
        """Deliver the replies kept from before a restart, each chat in its own order."""
        for chat_id in list(self._parked):
            self._enqueue(chat_id, functools.partial(self._flush_outbox, chat_id))

    async def close(self) -> None:
        """Finish in-flight work; stop accepting events. Parked replies stay in the outbox."""
        self.closed = True
        await self.idle()
        self._stop_timers()
        if self._parked:
            log.info("telegram: %d chats have replies kept for the next start", len(self._parked))
        if self._held:
            log.error("telegram: %d chats lose undelivered replies at shutdown", len(self._held))

    async def send(self, user_id: str, replies: list[Outbound]) -> None:
        """Deliver replies nobody asked for just now, in order with the chat's other messages."""
        chat_id = int(user_id)
        await self._in_chat(chat_id, lambda: self._deliver(chat_id, replies), report=False)

    async def settled(self, chat_id: int) -> None:
        """Return once everything queued for the chat so far has been dealt with."""
        await self._in_chat(chat_id, _nothing, report=False)

    async def flush(self, user_id: str) -> None:
        """Send what waits for the chat in the outbox now (the notification pump's round: kept
        by another worker, or a notice behind kept replies), in order with the chat's work."""
        chat_id = int(user_id)
        self._parked.setdefault(chat_id, 0)
        await self._in_chat(chat_id, lambda: self._flush_outbox(chat_id), report=False)

    async def forget(self, chat_id: int) -> None:
        """The user deleted their data: drop every reply still owed to the chat (in the outbox
        and in memory), in order with the chat's other work like `send`.

        The ids of long button payloads are not per chat: they map ids to the engine's fixed
        payloads ("flow:…", "pick:3"), never to anything a user typed, so they stay.
        """
        await self._in_chat(chat_id, lambda: self._forget(chat_id), report=True)

    async def _in_chat(self, chat_id: int, work: Callable[[], Awaitable[None]], *, report: bool) -> None:
        """Run `work` in the chat's order and wait for it (at once from the chat's own job, e.g.
        the /delete being answered). With `report` its failure is the caller's; without, it is
        logged like any job's and the caller goes on."""
        if _current_chat.get() == chat_id:
            await work()
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def job() -> None:
            try:
                await work()
            except asyncio.CancelledError:
                if report:
                    done.cancel()
                raise
            except Exception as exc:
                if not report:
                    raise
                done.set_exception(exc)
            finally:
                if not done.done():
                    done.set_result(None)

        self._enqueue(chat_id, job)
        await done

    async def _forget(self, chat_id: int) -> None:
        dropped = self._drop_owed(chat_id)
        if self.store is not None:
            # Raises when the database cannot be written: the user must not be told "deleted".
            dropped += await self.store.forget(str(chat_id))
        if dropped:
            log.info(
                "telegram: %d owed replies dropped for chat %s (data deleted)", dropped, _pseudonym(chat_id)
            )

    # ---- one event

    async def _process(self, event: TelegramEvent) -> None:
        chat_id = event.chat_id
        if chat_id in self._parked or chat_id in self._held:  # older replies go first
            await self._flush_outbox(chat_id)
        inbound: Inbound | None
        if event.kind == "button":
            inbound = await self._take_button(event)
        elif event.kind == "photo":
            inbound = await self._take_photo(event)
        elif event.kind == "text":
            inbound = self._inbound(event, text=event.text)
        else:
            inbound = None
            await self._deliver(chat_id, [Outbound(self.texts["unsupported"])])
        if inbound is None:
            return
        try:
            replies = await self.assistant.handle(inbound)
        except Exception:
            log.exception("assistant failed on update %s", event.update_id)
            replies = [Outbound(self.texts["error"])]
        await self._deliver(chat_id, replies)

    def _inbound(self, event: TelegramEvent, **content: Any) -> Inbound:
        # update_id is unique per bot and stays the same on redelivery: the assistant's dedup key.
        return Inbound(
            channel=CHANNEL_NAME, user_id=str(event.chat_id), message_id=str(event.update_id), **content
        )

    async def _take_button(self, event: TelegramEvent) -> Inbound | None:
        chat_id = event.chat_id
        message_id = event.callback_message_id
        assert event.callback_id is not None and message_id is not None
        # From memory, or from the store for an id given out before a restart.
        payload = await self.codec.recall(event.callback_data or "")
        live = self._live.get(chat_id)
        # Unknown chat (e.g. after a restart): trust the press, the engine validates payloads.
        current = live is None or message_id in live.message_ids
        if payload is None or not current:
            await asyncio.gather(
                self._best_effort(self.api.answer_callback(event.callback_id, self.texts["stale_button"])),
                self._best_effort(self.api.remove_keyboard(chat_id, message_id)),
            )
            return None
        # Retire every keyboard of this question before answering, so a second tap is stale.
        used = {message_id} | (live.message_ids if live else set())
        self._live[chat_id] = _Live(batch=live.batch if live else -1)
        await asyncio.gather(
            self._best_effort(self.api.answer_callback(event.callback_id, None)),
            *(self._best_effort(self.api.remove_keyboard(chat_id, mid)) for mid in sorted(used)),
        )
        return self._inbound(event, button=payload)

    async def _take_photo(self, event: TelegramEvent) -> Inbound | None:
        file_id = event.file_id
        assert file_id is not None
        if event.file_size is not None and event.file_size > MAX_DOWNLOAD:
            await self._deliver(event.chat_id, [Outbound(self.texts["file_too_big"])])
            return None
        try:
            data = await self._call(lambda: self.api.download(file_id))
        except Undelivered:
            await self._deliver(event.chat_id, [Outbound(self.texts["photo_failed"])])
            return None
        except Exception as exc:
            if self.api.classify(exc) is None:
                raise
            log.warning("photo of update %s could not be fetched: %s", event.update_id, type(exc).__name__)
            await self._deliver(event.chat_id, [Outbound(self.texts["photo_failed"])])
            return None
        return self._inbound(event, photo=data)

    # ---- replies
