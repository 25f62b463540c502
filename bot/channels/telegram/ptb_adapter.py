"""The Telegram channel on python-telegram-bot 22 (TELEGRAM_FRAMEWORK=ptb).

Same behaviour as the aiogram adapter: PTB parses updates and performs Bot API calls,
the `telegram` package decides. One `TypeHandler` takes every update and only queues it, so
PTB's sequential update processing keeps arrival order at no cost; different users run
concurrently in the common per-chat workers. PTB has no aiohttp webhook server, so the
webhook goes through the shared aiohttp route and `Application.process_update`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import warnings
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Update
from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError
from telegram.ext import Application, ContextTypes, TypeHandler
from telegram.request import BaseRequest
from telegram.warnings import PTBDeprecationWarning

from bot.retry import Failure, Verdict

from .api import PARSE_MODE, FrameworkBotApi, Keyboard
from .channel import TelegramChannel
from .events import ALLOWED_UPDATES

# httpx logs every request URL at INFO, and the URL contains the bot token.
logging.getLogger("httpx").setLevel(logging.WARNING)
# PTB warns inside RetryAfter's own constructor; `_retry_after_seconds` reads both forms.
warnings.filterwarnings("ignore", message=r".*`retry_after` will be of type", category=PTBDeprecationWarning)


def _retry_after_seconds(exc: RetryAfter) -> float:
    value: Any = getattr(exc, "_retry_after", None)  # a timedelta, without the deprecation warning
    if value is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = exc.retry_after
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


class PtbBotApi(FrameworkBotApi):
    """`BotApi` over a PTB `Bot`."""

    markup_class = InlineKeyboardMarkup
    button_class = InlineKeyboardButton
    file_class = InputFile

    def __init__(self, application: Application) -> None:
        super().__init__()
        self.application = application

    @property
    def bot(self) -> Any:
        return self.application.bot

    # `do_api_request` sends through PTB's request and error handling like `send_message`
    # does, and returns the answer as it came: PTB's own method builds a `Message` of it
    # (~150 µs a reply) of which only the id is read. Bot API method names are
    # case-insensitive; PTB warns when a name it has a method for is used this way, so
    # these are spelled in lower case.

    def markup_json(self, markup: Any) -> str:
        # What PTB does to a markup object in a request (to_dict, then json.dumps); a text is
        # sent as it is.
        return json.dumps(markup.to_dict())

    async def send_text(self, chat_id: int, text: str, keyboard: Keyboard | None) -> int:
        params: dict[str, Any] = {"chat_id": chat_id, "text": text, "parse_mode": PARSE_MODE}
        if keyboard is not None:
            params["reply_markup"] = self.sent_markup(keyboard)
        sent = await self.bot.do_api_request("sendmessage", api_kwargs=params)
        return int(sent["message_id"])

    async def remove_keyboard(self, chat_id: int, message_id: int) -> None:
        params = {"chat_id": chat_id, "message_id": message_id}
        await self.bot.do_api_request("editmessagereplymarkup", api_kwargs=params)

    async def download(self, file_id: str) -> bytes:
        file = await self.bot.get_file(file_id)
        return bytes(await file.download_as_bytearray())

    def classify(self, exc: BaseException) -> Verdict:
        if isinstance(exc, RetryAfter):
            return Failure.RETRY_AFTER, _retry_after_seconds(exc)
        if isinstance(exc, BadRequest):  # a NetworkError subclass in PTB, but retrying cannot help
            return Failure.PERMANENT, 0.0
        if isinstance(exc, NetworkError):  # includes TimedOut and 5xx answers
            return Failure.TRANSIENT, 0.0
        if isinstance(exc, TelegramError):
            return Failure.PERMANENT, 0.0
        return None


class PtbTelegramChannel(TelegramChannel):
    framework = "ptb"

    def _connect(self, settings: Any, transport: dict[str, Any]) -> PtbBotApi:
        request: BaseRequest | None = transport.get("request")
        builder = Application.builder().token(settings.telegram_bot_token).concurrent_updates(False)
        base = (settings.telegram_api_base or "").rstrip("/")
        if base:
            builder = builder.base_url(f"{base}/bot").base_file_url(f"{base}/file/bot")
        if settings.telegram_mode == "webhook":
            builder = builder.updater(None)
        if request is not None:
            builder = builder.request(request).get_updates_request(request)
        self.application = builder.build()
        self.application.add_handler(TypeHandler(Update, self._on_update))
        self._running = False
        self._initialized = False
        return PtbBotApi(self.application)

    async def _on_update(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        self.on_update(update)

    async def feed_raw_update(self, raw: dict[str, Any]) -> None:
        """One update as Telegram sends it (webhook body), through PTB's handlers."""
        await self._initialize()
        await self.application.process_update(Update.de_json(raw, self.application.bot))

    _feed = feed_raw_update

    async def _initialize(self) -> None:
        if not self._initialized:
            self._initialized = True
            await self.application.initialize()  # calls getMe

    async def _get_me(self) -> None:
        await self._initialize()

    async def _set_webhook(self, url: str, secret: str) -> None:
        await self.application.bot.set_webhook(
            url, secret_token=secret, allowed_updates=list(ALLOWED_UPDATES)
        )

    async def _start_polling(self) -> None:
        app = self.application
        await self._initialize()
        assert app.updater is not None
        # start_polling deletes a leftover webhook (getUpdates would fail with 409 otherwise).
        await app.updater.start_polling(
            timeout=self._poll_timeout, allowed_updates=list(ALLOWED_UPDATES), drop_pending_updates=False
        )
        await app.start()
        self._running = True

    async def _stop_polling(self) -> None:
        app = self.application
        if app.updater is not None and app.updater.running:
            await app.updater.stop()
        if self._running:
            await app.stop()  # lets queued updates reach our handler
            self._running = False

    async def _close_session(self) -> None:
        if self._initialized:
            self._initialized = False
            await self.application.shutdown()
