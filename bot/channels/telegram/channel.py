"""The Telegram `Channel` both adapters share: lifecycle, webhook intake, `send`."""

from __future__ import annotations

import hmac
import json
import logging
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.channels.base import Assistant
from bot.channels.inbox import Inbox
from bot.channels.outbox import move_old_file, queue_of
from bot.retry import RetryPolicy
from dialogs.messages import Outbound

from .api import BotApi
from .codec import TelegramOutbox
from .core import CHANNEL_NAME, TelegramCore
from .events import chat_of, event_from_update

log = logging.getLogger("bot.channels.telegram")

WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name, not a secret
OUTBOX_FILE = "telegram-outbox.sqlite3"  # where earlier versions kept the outbox (moved at start)


class TelegramChannel:
    """What both adapters share as a `Channel`: lifecycle, webhook intake, `send`.

    Subclasses provide the framework pieces: `_connect` (the framework's Bot, dispatcher and
    `BotApi`, on an optional transport the bench passes), `_feed(raw)` (one update dict
    through the framework's dispatcher into `on_update`), `_start_polling`, `_stop_polling`,
    `_set_webhook`, `_get_me` and `_close_session`.
    """

    name = CHANNEL_NAME
    framework = ""

    def __init__(
        self,
        settings: Any,
        assistant: Assistant,
        *,
        retry: RetryPolicy | None = None,
        poll_timeout: int = 25,
        **transport: Any,
    ) -> None:
        if not settings.telegram_bot_token:
            raise ValueError("TELEGRAM_BOT_TOKEN is empty: set it to the token @BotFather gave you.")
        self.settings = settings
        self.mode: str = settings.telegram_mode
        self.secret: str = settings.telegram_webhook_secret
        if self.mode == "webhook" and not self.secret:
            raise ValueError(
                "TELEGRAM_MODE=webhook needs TELEGRAM_WEBHOOK_SECRET (1-256 characters A-Z a-z 0-9 _ -), "
                "so that only Telegram can post updates."
            )
        self._poll_timeout = poll_timeout
        api = self._connect(settings, transport)
        # Parked replies and long buttons' ids outlive the process, in the main database
        # (shared by the workers); what an earlier version kept in its own file moves there.
        data_dir = Path(settings.data_dir)
        queue = queue_of(assistant, settings.sqlalchemy_url, data_dir)
        self.outbox = TelegramOutbox(queue)
        move_old_file(data_dir / OUTBOX_FILE, self.outbox)
        # Behind several workers (a server database) webhook updates go through the shared
        # inbox: one user's are answered in order whichever worker got them, each once.
        self.inbox: Inbox | None = None
        if self.mode == "webhook" and queue.engine.dialect.name != "sqlite":
            self.inbox = Inbox(queue, CHANNEL_NAME, self._answer_update)
        self.core = TelegramCore(assistant, api, retry, self.outbox)
        self._started = False

    # ---- framework hooks

    def _connect(self, settings: Any, transport: dict[str, Any]) -> BotApi:
        """Build the framework's objects; `transport`: the adapter's own session/request (bench)."""
        raise NotImplementedError

    def on_update(self, update: Any) -> None:
        """Called by the framework handler for every update; never awaits, so order is kept."""
        event = event_from_update(update)
        if event is not None:
            self.core.submit(event)

    async def _feed(self, raw: dict[str, Any]) -> None:
        raise NotImplementedError

    async def _get_me(self) -> None:
        raise NotImplementedError

    async def _start_polling(self) -> None:
        raise NotImplementedError

    async def _stop_polling(self) -> None:
        raise NotImplementedError

    async def _set_webhook(self, url: str, secret: str) -> None:
        raise NotImplementedError

    async def _close_session(self) -> None:
        raise NotImplementedError

    # ---- Channel

    @property
    def webhook_url(self) -> str:
        base = (self.settings.public_url or "").rstrip("/")
        if not base:
            raise ValueError(
                "TELEGRAM_MODE=webhook needs VSSID_PUBLIC_URL, the https address Telegram posts to."
            )
        return base + WEBHOOK_PATH

    async def start(self) -> None:
        if self.mode == "webhook":
            await self._get_me()
            await self._set_webhook(self.webhook_url, self.secret)
        else:
            await self._start_polling()
        self._started = True
        self.core.resume()
        if self.inbox is not None:
            self.inbox.start()
        log.info("telegram channel started (%s, %s)", self.framework, self.mode)

    async def stop(self) -> None:
        if self._started and self.mode == "polling":
            await self._stop_polling()
        # The webhook stays registered: Telegram keeps updates while we restart.
        self._started = False
        if self.inbox is not None:
            await self.inbox.stop()
        await self.core.close()
        await self._close_session()

    async def send(self, user_id: str, replies: list[Outbound]) -> None:
        await self.core.send(user_id, replies)

    async def flush(self, user_id: str) -> None:
        await self.core.flush(user_id)

    async def forget(self, user_id: str) -> None:
        """The user deleted their data (/delete): nothing owed to them stays in the outbox."""
        await self.core.forget(int(user_id))

    async def idle(self) -> None:
        if self.inbox is not None:
            await self.inbox.idle()
        await self.core.idle()

    # ---- webhook intake

    async def handle_webhook(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not self.secret or not hmac.compare_digest(given.encode(), self.secret.encode()):
            return web.Response(status=401, text="wrong secret token")
        try:
            raw = json.loads(await request.read())
        except ValueError:
            return web.Response(status=400, text="not JSON")
        if not isinstance(raw, dict) or not isinstance(raw.get("update_id"), int):
            return web.Response(status=400, text="not an Update")
        if self.core.closed:  # shutting down: Telegram re-sends what we do not acknowledge
            return web.Response(status=503, text="stopping")
        chat = chat_of(raw) if self.inbox is not None else None
        if self.inbox is not None and chat is not None:
            # Recorded before it is acknowledged; answered from the inbox, in the chat's order
            # across workers (a redelivery is recognised there and not answered again).
            if await self.inbox.take(str(chat), str(raw["update_id"]), raw):
                self.inbox.kick(str(chat))
            return web.Response(status=200)
        # The framework only parses and hands over to our queue, so answering after it is fast
        # and Telegram does not re-send; the assistant runs in the chat's worker.
        await self._feed_safely(raw)
        return web.Response(status=200)

    async def _feed_safely(self, raw: dict[str, Any]) -> None:
        try:
            await self._feed(raw)
        except Exception:
            # An update the framework cannot read will not read better next time: acknowledge
            # it, or Telegram would re-send it forever and hold back the ones behind it.
            log.exception("telegram webhook update %s could not be parsed", raw["update_id"])

    async def _answer_update(self, user_id: str, raw: dict[str, Any]) -> None:
        """One update taken from the inbox: answered before the chat's next is taken."""
        await self._feed_safely(raw)
        await self.core.settled(int(user_id))
