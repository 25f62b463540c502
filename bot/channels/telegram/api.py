"""The few Bot API calls the channel makes, written once for both frameworks.

aiogram and python-telegram-bot name their Bot methods and arguments after the Bot API, so
`FrameworkBotApi` performs most calls for both; an adapter names its keyboard and file
classes, makes the two calls of every update (sendMessage, editMessageReplyMarkup) reading
only what the channel uses of the answer, and says how it downloads a file and what its
errors mean (`classify`).
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

from bot.retry import Failure, Verdict

from .rendering import Keyboard
from .wire import JsonText, to_json_text

PARSE_MODE = "HTML"
MARKUP_CACHE = 512  # distinct keyboards kept built (menus, lists of offices, FAQ choices)


class BotApi(Protocol):
    """What the channel needs of a framework's Bot."""

    async def send_text(self, chat_id: int, text: str, keyboard: Keyboard | None) -> int: ...

    async def send_document(
        self, chat_id: int, data: bytes, filename: str, caption: str | None, keyboard: Keyboard | None
    ) -> int: ...

    async def send_photo(
        self, chat_id: int, data: bytes, filename: str, caption: str | None, keyboard: Keyboard | None
    ) -> int: ...

    async def remove_keyboard(self, chat_id: int, message_id: int) -> None: ...

    async def answer_callback(self, callback_id: str, text: str | None) -> None: ...

    async def download(self, file_id: str) -> bytes: ...

    def classify(self, exc: BaseException) -> Verdict:
        """How to treat a framework error (seconds to wait for RETRY_AFTER); None: not a Bot API error."""
        ...


class FrameworkBotApi:
    """`BotApi` over a framework's Bot object; subclasses add `download` and `classify`."""

    markup_class: ClassVar[Any]  # InlineKeyboardMarkup
    button_class: ClassVar[Any]  # InlineKeyboardButton
    file_class: ClassVar[Any]  # an input file made of (bytes, filename=...)

    def __init__(self) -> None:
        # keyboard -> the framework's markup (immutable use) and its JSON as sent
        self._markups: dict[tuple, tuple[Any, JsonText]] = {}

    @property
    def bot(self) -> Any:
        raise NotImplementedError

    def _built(self, keyboard: Keyboard) -> tuple[Any, JsonText]:
        """The keyboard's markup and JSON, made once per distinct keyboard: the same menus go
        to every user, and building one costs more than sending the text (~35 µs)."""
        key = tuple(tuple(row) for row in keyboard)
        built = self._markups.get(key)
        if built is None:
            if len(self._markups) >= MARKUP_CACHE:
                self._markups.clear()
            rows = [[self.button_class(text=label, callback_data=data) for label, data in row] for row in key]
            markup = self.markup_class(inline_keyboard=rows)
            built = self._markups[key] = (markup, to_json_text(self.markup_values(markup)))
        return built

    def markup(self, keyboard: Keyboard | None) -> Any:
        """The framework's keyboard object, built once per distinct keyboard."""
        return None if keyboard is None else self._built(keyboard)[0]

    def sent_markup(self, keyboard: Keyboard | None) -> JsonText | None:
        """The keyboard as our transport writes it into a request (JSON text, an object in a
        JSON body), written once per distinct keyboard: given the markup object, both
        frameworks convert it again on every message (tens of µs for a menu, more than the
        rest of the request)."""
        return None if keyboard is None else self._built(keyboard)[1]

    def markup_values(self, markup: Any) -> Any:
        """`markup` as the plain JSON values the framework would send of it."""
        raise NotImplementedError

    async def send_text(self, chat_id: int, text: str, keyboard: Keyboard | None) -> int:
        """sendMessage; each adapter reads only the id of the sent message (the framework's
        own method would build the whole Message of the answer, ~50-150 µs, on every reply)."""
        raise NotImplementedError

    async def send_document(
        self, chat_id: int, data: bytes, filename: str, caption: str | None, keyboard: Keyboard | None
    ) -> int:
        return await self._send_file(self.bot.send_document, chat_id, data, filename, caption, keyboard)

    async def send_photo(
        self, chat_id: int, data: bytes, filename: str, caption: str | None, keyboard: Keyboard | None
    ) -> int:
        return await self._send_file(self.bot.send_photo, chat_id, data, filename, caption, keyboard)

    async def _send_file(
        self,
        method: Any,
        chat_id: int,
        data: bytes,
        filename: str,
        caption: str | None,
        keyboard: Keyboard | None,
    ) -> int:
        sent = await method(
            chat_id,
            self.file_class(data, filename=filename),
            caption=caption,
            parse_mode=PARSE_MODE if caption else None,
            reply_markup=self.markup(keyboard),
        )
        return sent.message_id

    async def remove_keyboard(self, chat_id: int, message_id: int) -> None:
        """editMessageReplyMarkup without a markup; like `send_text`, its answer is not read."""
        raise NotImplementedError

    async def answer_callback(self, callback_id: str, text: str | None) -> None:
        await self.bot.answer_callback_query(callback_id, text=text)


__all__ = ["PARSE_MODE", "BotApi", "Failure", "FrameworkBotApi", "Keyboard"]
