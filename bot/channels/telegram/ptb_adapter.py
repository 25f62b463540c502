"""The Telegram channel on python-telegram-bot 22 (TELEGRAM_FRAMEWORK=ptb).

Same behaviour as the aiogram adapter: PTB parses updates and performs Bot API calls,
the `telegram` package decides. One `TypeHandler` takes every update and only queues it, so
PTB's sequential update processing keeps arrival order at no cost; different users run
concurrently in the common per-chat workers. PTB has no aiohttp webhook server, so the
webhook goes through the shared aiohttp route and `Application.process_update`.
"""

from __future__ import annotations

import datetime as dt
import logging
import warnings
from typing import Any, ClassVar

import httpx
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Update
from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.ext import Application, ContextTypes, TypeHandler
from telegram.request import BaseRequest, HTTPXRequest, RequestData
from telegram.warnings import PTBDeprecationWarning

from bot.retry import Failure, Verdict

from .api import PARSE_MODE, FrameworkBotApi, Keyboard
from .channel import TelegramChannel
from .events import ALLOWED_UPDATES
from .wire import CONTENT_TYPE, json_body

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


def request_body(request_data: RequestData | None) -> bytes | None:
    """The JSON body `JsonHttpxRequest` posts for a call; None for one PTB sends its own way
    (a file to upload: a multipart form; no parameters at all)."""
    if request_data is None or request_data.contains_files:
        return None
    return json_body(request_data.parameters)  # plain JSON values, keyboards as JsonText


_DefaultValue = type(BaseRequest.DEFAULT_NONE)  # what PTB passes for a timeout not given


class JsonHttpxRequest(HTTPXRequest):
    """PTB's httpx request (its connection pool, timeouts, proxy) posting every call without
    a file as a JSON body (`wire`); uploads and errors go as PTB's own `do_request` has them."""

    __slots__ = ()
    _JSON_HEADERS: ClassVar[dict[str, str]] = {
        "User-Agent": BaseRequest.USER_AGENT,
        "Content-Type": CONTENT_TYPE,
    }

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        body = request_body(request_data)
        if body is None:
            return await super().do_request(
                url, method, request_data, read_timeout, write_timeout, connect_timeout, pool_timeout
            )
        if self._client.is_closed:
            raise RuntimeError("This HTTPXRequest is not initialized!")
        given = self._client.timeout
        timeout = httpx.Timeout(
            connect=given.connect if isinstance(connect_timeout, _DefaultValue) else connect_timeout,
            read=given.read if isinstance(read_timeout, _DefaultValue) else read_timeout,
            write=given.write if isinstance(write_timeout, _DefaultValue) else write_timeout,
            pool=given.pool if isinstance(pool_timeout, _DefaultValue) else pool_timeout,
        )
        try:
            res = await self._client.request(
                method=method, url=url, headers=self._JSON_HEADERS, timeout=timeout, content=body
            )
        except httpx.TimeoutException as err:  # PTB's own translation of httpx's errors
            if isinstance(err, httpx.PoolTimeout):
                raise TimedOut("Pool timeout: all connections are busy; the request was not sent") from err
            raise TimedOut from err
        except httpx.HTTPError as err:
            raise NetworkError(f"httpx.{err.__class__.__name__}: {err}") from err
        return res.status_code, res.content


def json_requests() -> tuple[JsonHttpxRequest, JsonHttpxRequest]:
    """The bot's request and getUpdates' own, as PTB's ApplicationBuilder makes them when
    given none (256 connections for calls, 1 for long polling, PTB's default timeouts)."""
    return JsonHttpxRequest(connection_pool_size=256), JsonHttpxRequest(connection_pool_size=1)


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

    def markup_values(self, markup: Any) -> Any:
        return markup.to_dict()  # what PTB's request makes of a markup object

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
        given: BaseRequest | None = transport.get("request")  # the bench's
        request, updates_request = (given, given) if given is not None else json_requests()
        builder = Application.builder().token(settings.telegram_bot_token).concurrent_updates(False)
        base = (settings.telegram_api_base or "").rstrip("/")
        if base:
            builder = builder.base_url(f"{base}/bot").base_file_url(f"{base}/file/bot")
        if settings.telegram_mode == "webhook":
            builder = builder.updater(None)
        builder = builder.request(request).get_updates_request(updates_request)
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
