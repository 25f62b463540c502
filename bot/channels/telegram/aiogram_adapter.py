"""The Telegram channel on aiogram 3 (the default framework).

Thin on purpose: aiogram parses updates and performs Bot API calls; what the channel
does with them is the `telegram` package. Handlers are plain `async def` with no filters:
aiogram runs synchronous callbacks, magic `F` filters included, in a worker thread per
update, which costs ~25x on the hot path.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiohttp
from aiogram import Bot, Dispatcher, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.session.base import BaseSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import EditMessageReplyMarkup, SendMessage, TelegramMethod
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
)
from aiohttp import FormData
from aiohttp.payload import BytesPayload
from pydantic import BaseModel, ConfigDict

from bot.retry import Failure, Verdict

from .api import PARSE_MODE, FrameworkBotApi, Keyboard
from .channel import TelegramChannel
from .events import ALLOWED_UPDATES
from .wire import CONTENT_TYPE, JsonText, json_body


class _Sent(BaseModel):
    """What the channel reads of a sent message: aiogram's `Message` of every answer costs
    ~50 µs to validate, and only its id is used."""

    model_config = ConfigDict(extra="ignore")

    message_id: int


# The same methods, answered with `_Sent` instead of aiogram's `Message`.
class _SendText(SendMessage):
    __returning__ = _Sent  # type: ignore[assignment]
    # The keyboard as our session writes it (`FrameworkBotApi.sent_markup`): a markup model
    # would be dumped and walked again for every message. `JsonText` is kept as it is (a
    # `str` field would make it a plain string, which JSON would send as a string).
    reply_markup: JsonText | None = None  # type: ignore[assignment]


class _RemoveKeyboard(EditMessageReplyMarkup):
    __returning__ = _Sent | bool  # type: ignore[assignment]  # True for an inline message


class JsonAiohttpSession(AiohttpSession):
    """aiogram's aiohttp session (its connector, proxy, timeout) posting every call without
    a file as a JSON body (`wire`); uploads go as aiogram's multipart form."""

    def json_body(self, bot: Bot, method: TelegramMethod[Any]) -> bytes | None:
        """The call as the JSON body we post; None when it uploads a file."""
        files: dict[str, Any] = {}
        params: dict[str, Any] = {}
        # The fields as they are: `model_dump` (what `build_form_data` walks) would copy each
        # of sendMessage's 21 first (~9 µs), and `prepare_value` turns a nested model into
        # plain values as it would; most are None, which it leaves out.
        for key, value in method:
            if value is None:
                continue
            prepared = self.prepare_value(value, bot=bot, files=files, _dumps_json=False)
            if prepared is not None and prepared != "":  # the values `build_form_data` leaves out
                params[key] = prepared
        return None if files else json_body(params)

    def build_form_data(self, bot: Bot, method: TelegramMethod[Any]) -> FormData | BytesPayload:  # type: ignore[override]
        """What aiogram's own `make_request` posts, with its timeouts and errors: the JSON body
        as a payload that carries its content type (aiohttp sends it as it is), or for an
        upload aiogram's form."""
        body = self.json_body(bot, method)
        if body is None:
            return super().build_form_data(bot, method)
        return BytesPayload(body, content_type=CONTENT_TYPE)


class AiogramBotApi(FrameworkBotApi):
    """`BotApi` over an aiogram `Bot`."""

    markup_class = InlineKeyboardMarkup
    button_class = InlineKeyboardButton
    file_class = BufferedInputFile

    def __init__(self, bot: Bot) -> None:
        super().__init__()
        self._bot = bot

    @property
    def bot(self) -> Bot:
        return self._bot

    def markup_values(self, markup: Any) -> Any:
        return self.bot.session.prepare_value(markup, bot=self.bot, files={}, _dumps_json=False)

    async def send_text(self, chat_id: int, text: str, keyboard: Keyboard | None) -> int:
        params: dict[str, Any] = {
            "chat_id": chat_id,
            "text": text,
            "parse_mode": PARSE_MODE,
            "reply_markup": self.sent_markup(keyboard),
        }
        sent = await self.bot(_SendText(**params))
        return sent.message_id

    async def remove_keyboard(self, chat_id: int, message_id: int) -> None:
        await self.bot(_RemoveKeyboard(chat_id=chat_id, message_id=message_id))

    async def download(self, file_id: str) -> bytes:
        buffer = await self.bot.download(file_id)
        assert buffer is not None
        return buffer.read()

    def classify(self, exc: BaseException) -> Verdict:
        if isinstance(exc, TelegramRetryAfter):
            return Failure.RETRY_AFTER, float(exc.retry_after)
        if isinstance(exc, TelegramNetworkError | TelegramServerError):
            return Failure.TRANSIENT, 0.0
        if isinstance(exc, aiohttp.ClientError | asyncio.TimeoutError):  # file download stream
            return Failure.TRANSIENT, 0.0
        if isinstance(exc, TelegramAPIError):
            return Failure.PERMANENT, 0.0
        return None


class AiogramTelegramChannel(TelegramChannel):
    framework = "aiogram"

    def _connect(self, settings: Any, transport: dict[str, Any]) -> AiogramBotApi:
        session: BaseSession | None = transport.get("session")
        if session is None:
            base = settings.telegram_api_base
            session = (
                JsonAiohttpSession(api=TelegramAPIServer.from_base(base)) if base else JsonAiohttpSession()
            )
        self.bot = Bot(settings.telegram_bot_token, session=session)
        # No aiogram FSM: the conversation state is the assistant's (its middleware costs ~10 µs an update).
        self.dispatcher = Dispatcher(disable_fsm=True)
        router = Router(name="vssid-telegram")
        router.message.register(self._on_message)
        router.callback_query.register(self._on_callback)
        self.dispatcher.include_router(router)
        self._polling: asyncio.Task[None] | None = None
        return AiogramBotApi(self.bot)

    async def _on_message(self, message: Message, event_update: Update) -> None:
        self.on_update(event_update)

    async def _on_callback(self, callback_query: CallbackQuery, event_update: Update) -> None:
        self.on_update(event_update)

    async def feed_raw_update(self, raw: dict[str, Any]) -> None:
        """One update as Telegram sends it (webhook body), through aiogram's dispatcher."""
        await self.dispatcher.feed_raw_update(self.bot, raw)

    _feed = feed_raw_update

    async def _get_me(self) -> None:
        await self.bot.get_me()

    async def _set_webhook(self, url: str, secret: str) -> None:
        await self.bot.set_webhook(url, secret_token=secret, allowed_updates=list(ALLOWED_UPDATES))

    async def _start_polling(self) -> None:
        # A webhook left from a previous deployment would make getUpdates fail with 409.
        await self.bot.delete_webhook(drop_pending_updates=False)
        started = asyncio.Event()

        async def on_startup() -> None:  # async: a sync callback would run in a thread
            started.set()

        self.dispatcher.startup.register(on_startup)
        # handle_as_tasks=False: the handler only queues the update, so running them in
        # arrival order costs nothing and keeps each user's messages in order.
        self._polling = asyncio.create_task(
            self.dispatcher.start_polling(
                self.bot,
                polling_timeout=self._poll_timeout,
                handle_as_tasks=False,
                handle_signals=False,
                close_bot_session=False,
                allowed_updates=list(ALLOWED_UPDATES),
            ),
            name="telegram-aiogram-polling",
        )
        waiter = asyncio.create_task(started.wait())
        await asyncio.wait({waiter, self._polling}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if self._polling.done():
            self._polling.result()  # raises what stopped it

    async def _stop_polling(self) -> None:
        if self._polling is None:
            return
        with contextlib.suppress(RuntimeError):  # already stopped
            await self.dispatcher.stop_polling()
        with contextlib.suppress(asyncio.CancelledError):
            await self._polling
        self._polling = None

    async def _close_session(self) -> None:
        await self.bot.session.close()
