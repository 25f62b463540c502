"""The Zalo channel: webhook events answered per user in order, replies pushed through the
OA API, what Zalo refused kept in the shared outbox and retried in order."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import OrderedDict
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bot.channels.base import Assistant
from bot.channels.inbox import Inbox
from bot.channels.locks import KeyedLocks
from bot.channels.outbox import Outbox, move_old_file, queue_of
from bot.channels.replies import payload_to_outbounds
from bot.channels.text_split import split_text
from bot.channels.texts import channel_text
from bot.media_fetch import MediaFetcher, RefusedUrl, TooLarge
from bot.outbox import MESSAGE, OutboxQueue
from bot.retry import ZALO
from dialogs.messages import Inbound, Outbound

from .api import (
    MAX_BUTTONS,
    MAX_IMAGE_BYTES,
    MAX_QUERY_PAYLOAD,
    MAX_TEXT_CHARS,
    MAX_TITLE_CHARS,
    ZALO_MEDIA_HOSTS,
    TokenStore,
    ZaloApi,
    ZaloApiError,
)
from .webhook import MAX_WEBHOOK_BYTES, SIGNATURE_MAX_AGE_S, WEBHOOK_PATH, parse_event, verify

log = logging.getLogger("bot.channels.zalo")

OUTBOX_FILE = "zalo-outbox.sqlite3"  # where earlier versions kept the outbox (moved at start)
_SEEN_EVENTS = 20_000


class ZaloOutbox(Outbox):
    """The channel's outbox, plus the buttons last offered to each user (label -> payload), so
    a button tapped after a restart, or on another worker, still reaches the assistant as one."""

    async def set_offered(self, user_id: str, offered: dict[str, str]) -> None:
        await self._run(self.queue.set_offered, self.conversation(user_id), offered)

    async def get_offered(self, user_id: str) -> dict[str, str]:
        return await self._run(self.queue.get_offered, self.conversation(user_id))


class ZaloChannel:
    name = "zalo"

    def __init__(
        self,
        assistant: Assistant,
        *,
        app_id: str,
        oa_secret_key: str,
        access_token: str,
        refresh_token: str,
        data_dir: Path,
        database_url: str = "",
        api_base: str = "https://openapi.zalo.me",
        oauth_base: str = "https://oauth.zaloapp.com",
        app_secret_key: str = "",
        max_image_bytes: int = MAX_IMAGE_BYTES,
        media_hosts: tuple[str, ...] = ZALO_MEDIA_HOSTS,
        private_media_ok: bool = False,
        signature_max_age_s: float = SIGNATURE_MAX_AGE_S,
        retry_interval_s: float = ZALO.outbox_retry_s,
        http_timeout_s: float = 20.0,
    ) -> None:
        self.assistant = assistant
        self.app_id = app_id
        self._oa_secret_key = oa_secret_key
        self.max_image_bytes = max_image_bytes
        self.signature_max_age_s = signature_max_age_s
        self.retry_interval_s = retry_interval_s
        # Image URLs come in webhook events: fetched only from Zalo's media hosts, never inside.
        self.media = MediaFetcher(
            media_hosts,
            max_bytes=max_image_bytes,
            timeout_s=http_timeout_s,
            private_addresses_ok=private_media_ok,
        )
        data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = data_dir
        self.tokens = TokenStore(data_dir / "zalo-tokens.json", access_token, refresh_token)
        self.api = ZaloApi(
            self.tokens,
            app_id=app_id,
            app_secret_key=app_secret_key,
            api_base=api_base,
            oauth_base=oauth_base,
            timeout_s=http_timeout_s,
        )
        self._queues(queue_of(assistant, database_url or f"sqlite:///{data_dir / 'vssid.sqlite3'}", data_dir))

    def _queues(self, queue: OutboxQueue) -> None:
        """The shared tables, and what this process keeps of the users it serves."""
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._tasks: set[asyncio.Task] = set()
        self._conversation_locks = KeyedLocks()
        self._delivery_locks = KeyedLocks()
        self._backlog: set[str] = set()  # users with kept messages, as far as this worker knows
        self._retry_task: asyncio.Task | None = None
        self._accepting = False
        self._stopped = asyncio.Event()
        self.outbox = ZaloOutbox(queue, self.name)
        # Behind several workers (a server database) events go through the shared inbox: one
        # user's are answered in order whichever worker got them, a redelivered one once.
        self.inbox = (
            Inbox(queue, self.name, self._answer_event) if queue.engine.dialect.name != "sqlite" else None
        )

    @classmethod
    def from_settings(cls, settings: Any, assistant: Assistant) -> ZaloChannel:
        return cls(
            assistant,
            app_id=settings.zalo_app_id,
            oa_secret_key=settings.zalo_oa_secret_key,
            access_token=settings.zalo_access_token,
            refresh_token=settings.zalo_refresh_token,
            app_secret_key=settings.zalo_app_secret_key,
            api_base=settings.zalo_api_base,
            oauth_base=settings.zalo_oauth_base,
            data_dir=Path(settings.data_dir),
            database_url=settings.sqlalchemy_url,
            media_hosts=tuple(settings.zalo_media_hosts.split(",")),
        )

    # -- lifecycle ----------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post(WEBHOOK_PATH, self._webhook)

    async def start(self) -> None:
        await asyncio.to_thread(move_old_file, self.data_dir / OUTBOX_FILE, self.outbox)
        self._backlog = set(await self.outbox.counts())
        if self._backlog:
            log.info("zalo: %d user(s) have messages kept for retry", len(self._backlog))
        await self.api.open()
        self._accepting = True
        self._stopped.clear()
        if self.inbox is not None:
            self.inbox.start()
        self._retry_task = asyncio.create_task(self._retry_loop(), name="zalo-outbox-retry")

    async def stop(self) -> None:
        """Refuse new events (Zalo redelivers them later), finish the ones under way, close."""
        self._accepting = False
        if self.inbox is not None:
            await self.inbox.stop()
        await self.idle()
        self._stopped.set()
        if self._retry_task:
            await self._retry_task
            self._retry_task = None
        await self.api.close()
        await self.media.close()

    async def idle(self) -> None:
        """Wait until every accepted event has been answered (or kept for retry)."""
        if self.inbox is not None:
            await self.inbox.idle()
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- webhook ------------------------------------------------------------------------

    async def _webhook(self, request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > MAX_WEBHOOK_BYTES:
            return web.json_response({"error": "too_large"}, status=413)
        # Read whole (bounded by the app's client_max_size; within the body deadline of
        # bot.http_guard when served by `run`), then held to the webhook's own bound.
        raw = await request.read()
        if len(raw) > MAX_WEBHOOK_BYTES:
            return web.json_response({"error": "too_large"}, status=413)
        status, event = verify(
            raw,
            request.headers.get("X-ZEvent-Signature"),
            app_id=self.app_id,
            oa_secret_key=self._oa_secret_key,
            max_age_s=self.signature_max_age_s,
        )
        if event is None:
            log.warning("zalo webhook: refused an unauthenticated request (%d)", status)
            return web.json_response({"error": "unauthorized"}, status=status)
        if not self._accepting:
            return web.json_response({"error": "shutting_down"}, status=503)

        parsed = parse_event(event)
        if parsed is None:
            return web.json_response({"ok": True, "ignored": True})
        user_id, event_id, action = parsed
        if event_id in self._seen:
            return web.json_response({"ok": True, "duplicate": True})
        self._seen[event_id] = None
        while len(self._seen) > _SEEN_EVENTS:
            self._seen.popitem(last=False)
        if self.inbox is not None:
            if not await self.inbox.take(user_id, event_id, {"event_id": event_id, "action": action}):
                return web.json_response({"ok": True, "duplicate": True})
            self.inbox.kick(user_id)
            return web.json_response({"ok": True})

        task = asyncio.create_task(self._process(user_id, event_id, action))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return web.json_response({"ok": True})

    async def _answer_event(self, user_id: str, taken: dict) -> None:
        """One event taken from the inbox: answered before the user's next is taken."""
        await self._process(user_id, taken["event_id"], taken["action"])

    async def _process(self, user_id: str, event_id: str, action: dict) -> None:
        async def answer() -> None:
            try:
                inbound = await self._inbound(user_id, event_id, action)
                if isinstance(inbound, str):  # the channel's own reply (photo not downloadable)
                    await self._deliver(user_id, self._specs([Outbound(text=inbound)]))
                    return
                replies = await self.assistant.handle(inbound)
            except Exception:
                log.exception("zalo: the assistant failed to answer an event")
                replies = [Outbound(text=channel_text("internal_error"))]
            await self.send(user_id, replies)

        await self._conversation_locks.run(user_id, answer)

    async def _inbound(self, user_id: str, event_id: str, action: dict) -> Inbound | str:
        if "image_url" in action:
            try:
                photo = await self._download(action["image_url"])
            except TooLarge:
                return channel_text("upload_too_large", max_mb=self.max_image_bytes // 2**20)
            if photo is None:
                return channel_text("photo_download_failed", max_mb=self.max_image_bytes // 2**20)
            return Inbound(channel=self.name, user_id=user_id, message_id=event_id, photo=photo)
        text = action["text"].strip()
        # Read from the table every time, never from a per-process copy: behind several
        # workers the buttons may have been offered by another one since.
        payload = (await self.outbox.get_offered(user_id)).get(text)
        if payload is not None:
            return Inbound(channel=self.name, user_id=user_id, message_id=event_id, button=payload)
        return Inbound(channel=self.name, user_id=user_id, message_id=event_id, text=text)

    async def _download(self, url: str) -> bytes | None:
        try:
            return await self.media.fetch(url)
        except RefusedUrl as exc:
            log.warning("zalo: image URL refused (%s)", exc)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("zalo: image download failed (%s)", type(exc).__name__)
        return None

    # -- sending ------------------------------------------------------------------------

    async def send(self, user_id: str, replies: list[Outbound]) -> None:
        """Deliver `replies` to a Zalo user; whatever Zalo refuses is kept for retry."""
        if replies:
            await self._deliver(user_id, await self._prepare(user_id, replies))

    async def _prepare(self, user_id: str, replies: list[Outbound]) -> list[dict]:
        """The messages for `replies`; their buttons become the ones a tapped label maps back to."""
        offered = {self._title(b.label): b.payload for o in replies for b in o.buttons}
        # Only a batch with buttons replaces the map: a notice without buttons arriving
        # mid-step must not orphan the step's buttons (stale taps the engine handles itself).
        if offered:
            await self.outbox.set_offered(user_id, offered)
        return self._specs(replies)

    async def forget(self, user_id: str) -> None:
        """The user deleted their data: drop the messages kept for them and their buttons.

        Runs under the user's delivery lock, so a retry under way here finishes first and
        nothing for them is written back afterwards.
        """

        async def forget() -> None:
            dropped = await self.outbox.forget(user_id)
            self._backlog.discard(user_id)
            if dropped:
                log.info("zalo: %d kept message(s) dropped after a data deletion", dropped)

        await self._delivery_locks.run(user_id, forget)

    @staticmethod
    def _title(label: str) -> str:
        return label.strip()[:MAX_TITLE_CHARS]

    def _specs(self, replies: list[Outbound]) -> list[dict]:
        """One JSON-serialisable description per OA message (what the outbox keeps)."""
        specs: list[dict] = []
        for reply in replies:
            buttons = [
                {
                    "title": self._title(b.label),
                    "type": "oa.query.show",
                    "payload": self._title(b.label)[:MAX_QUERY_PAYLOAD],
                }
                for b in reply.buttons
            ]
            groups = [buttons[i : i + MAX_BUTTONS] for i in range(0, len(buttons), MAX_BUTTONS)]
            chunks = split_text(reply.text.strip(), MAX_TEXT_CHARS) if reply.text.strip() else []
            for index, chunk in enumerate(chunks):
                spec: dict = {"kind": "text", "text": chunk}
                if index == len(chunks) - 1 and groups:
                    spec["buttons"] = groups[0]
                specs.append(spec)
            for group in groups[1:] if chunks else groups:
                specs.append({"kind": "text", "text": channel_text("more_choices"), "buttons": group})
            if reply.image:
                specs.append({"kind": "image", "path": str(reply.image)})
            if reply.document:
                specs.append({"kind": "file", "path": str(reply.document)})
        return specs

    async def _deliver(self, user_id: str, specs: list[dict]) -> None:
        async def deliver() -> None:
            # Messages kept from an earlier failure go first: a user reads them in order.
            if user_id in self._backlog:
                await self._flush(user_id)
            if user_id in self._backlog:
                await self.outbox.add(user_id, specs, "queued behind earlier undelivered messages")
                return
            for index, spec in enumerate(specs):
                try:
                    await self.api.send_spec(user_id, spec)
                except ZaloApiError as exc:
                    log.warning(
                        "zalo: message not delivered (error %s); %d message(s) kept for retry",
                        exc.code,
                        len(specs) - index,
                    )
                    await self.outbox.add(user_id, specs[index:], str(exc))
                    self._backlog.add(user_id)
                    return

        await self._delivery_locks.run(user_id, deliver)

    async def _flush(self, user_id: str) -> None:
        """Send what the outbox holds for the user, oldest first, each item taken with a lease
        (another worker may be sending the same user's: then it goes on and we stop)."""
        while (item := await self.outbox.claim(user_id)) is not None:
            if item.kind == MESSAGE:
                specs = item.payload
            else:  # a notice queued behind kept messages: rendered here, in its turn
                specs = await self._prepare(user_id, payload_to_outbounds(item.payload))
            for index, spec in enumerate(specs):
                try:
                    await self.api.send_spec(user_id, spec)
                except ZaloApiError as exc:
                    await self.outbox.release(item.id, str(exc), specs[index:] if index else None)
                    self._backlog.add(user_id)
                    return
            await self.outbox.done(item.id)
        if not await self.outbox.waiting(user_id):
            self._backlog.discard(user_id)

    async def flush(self, user_id: str) -> None:
        """Send what waits for the user in the outbox now (the notification pump's round)."""
        self._backlog.add(user_id)
        await self._delivery_locks.run(user_id, lambda: self._flush(user_id))

    async def retry_outbox(self) -> None:
        """Try again every message kept after a failure, oldest first, user by user: the ones
        this worker knows of, and any another worker left (it stopped, or died mid-send)."""
        self._backlog |= set(await self.outbox.counts())
        for user_id in sorted(self._backlog):
            await self._delivery_locks.run(user_id, functools.partial(self._flush, user_id))

    async def _retry_loop(self) -> None:
        # Stopped by the event, never cancelled mid-send (a cancelled send may have reached
        # Zalo without leaving the outbox, and would be sent twice).
        while not self._stopped.is_set():
            try:
                await self.retry_outbox()
            except Exception:
                log.exception("zalo: retrying kept messages failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), self.retry_interval_s)
