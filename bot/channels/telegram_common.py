"""What the aiogram and python-telegram-bot adapters share.

The adapters only translate: a framework update becomes a `TelegramEvent`, and the
framework's Bot object performs the few `BotApi` calls. Everything that decides
behaviour lives here, once: turning events into `Inbound`, per-user ordering, update
de-duplication, splitting and escaping texts, inline keyboards and their retirement,
retries on 429 and network errors, and replies parked until the Bot API is reachable.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import hmac
import html
import json
import logging
import re
import secrets
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import cache
from pathlib import Path
from typing import Any, Literal, Protocol

import yaml
from aiohttp import web

from dialogs.messages import Button, Inbound, Outbound

from .base import Assistant

log = logging.getLogger("bot.channels.telegram")

CHANNEL_NAME = "telegram"
WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
ALLOWED_UPDATES = ("message", "callback_query")

# Bot API limits (https://core.telegram.org/bots/api): counted in UTF-16 code units.
MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64  # bytes
MAX_DOWNLOAD = 20 * 1024 * 1024  # getFile refuses bigger files

_DEEP_LINK = re.compile(r"[A-Za-z0-9_-]{1,64}")
_START = re.compile(r"/start(?:@\w+)?(?:\s+(.*))?", re.DOTALL | re.IGNORECASE)
_TOKEN_PREFIX = "~"  # callback_data starting with this is a short id, never a payload


@cache
def channel_texts() -> dict[str, str]:
    """User-facing texts of the channel itself, kept in a reviewable data file."""
    with (Path(__file__).with_name("telegram.yaml")).open(encoding="utf-8") as fh:
        return {k: str(v).strip() for k, v in yaml.safe_load(fh).items()}


# --------------------------------------------------------------------------- text


def utf16_len(text: str) -> int:
    """Telegram counts message length in UTF-16 code units (an emoji counts twice)."""
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Cut `text` into pieces Telegram accepts, preferring paragraph, line, then word breaks."""
    pieces: list[str] = []
    rest = text
    while utf16_len(rest) > limit:
        # Largest prefix within the limit, walking characters so surrogate pairs stay whole.
        units, end = 0, 0
        for end, ch in enumerate(rest):  # noqa: B007 - `end` is used after the loop
            units += 2 if ord(ch) > 0xFFFF else 1
            if units > limit:
                break
        head = rest[:end]
        # A paragraph break in the second half first (no tiny first piece), then any break,
        # and only a word longer than the limit is cut inside.
        found = [head.rfind(sep) for sep in ("\n\n", "\n", " ")]
        cut = next((pos for pos in found if pos >= len(head) // 2), max(found))
        if cut <= 0:
            cut = end
        piece = rest[:cut].rstrip()
        if piece:
            pieces.append(piece)
        rest = rest[cut:].lstrip("\n ")
    if rest.strip() or not pieces:
        pieces.append(rest)
    return pieces


def escape_html(text: str) -> str:
    """Make assistant text literal under parse_mode=HTML ("<b>Lê & Co</b>" is shown as typed)."""
    return html.escape(text, quote=False)


def normalise_start(text: str) -> str:
    """`/start <payload>` passes through when the payload is a valid deep-link parameter.

    Telegram allows 1-64 characters of A-Z, a-z, 0-9, _ and -; anything else (typed by
    hand, mangled by a messenger) is dropped so the conversation still starts normally.
    """
    match = _START.fullmatch(text.strip())
    if match is None:
        return text
    payload = (match.group(1) or "").strip()
    if payload and _DEEP_LINK.fullmatch(payload):
        return f"/start {payload}"
    return "/start"


def join_texts(replies: Sequence[Outbound]) -> list[Outbound]:
    """Consecutive plain texts go out as one message, paragraphs apart.

    The engine often answers with a note and the next question ("Mình ghi nhận số CCCD…",
    "Nhập số điện thoại…"). As one Telegram message they are one notification instead of
    two, and half the sends against Telegram's per-chat flood limit. A text that carries
    buttons or an attachment closes the group (the buttons stay under the last words).
    """
    joined: list[Outbound] = []
    for reply in replies:
        previous = joined[-1] if joined else None
        if (
            previous is not None
            and not (previous.buttons or previous.document or previous.image)
            and not (reply.document or reply.image)
            and previous.text.strip()
            and reply.text.strip()
            and utf16_len(previous.text) + 2 + utf16_len(reply.text) <= MAX_TEXT
        ):
            text = previous.text.rstrip() + "\n\n" + reply.text.lstrip()
            joined[-1] = Outbound(text, reply.buttons, progress=reply.progress)
        else:
            joined.append(reply)
    return joined


def keyboard_rows(buttons: Sequence[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """One button per row, two when there are many short ones (province lists stay compact)."""
    if len(buttons) > 4 and all(len(label) <= 18 for label, _ in buttons):
        return [list(buttons[i : i + 2]) for i in range(0, len(buttons), 2)]
    return [[b] for b in buttons]


class CallbackCodec:
    """Maps button payloads to callback_data (at most 64 bytes).

    Short payloads travel as they are; longer ones (or ones that look like our ids) are
    replaced by a short random id kept in memory. After a restart an unknown id reads as
    an expired button, which the user is told about.
    """

    def __init__(self, capacity: int = 50_000) -> None:
        self._capacity = capacity
        self._by_token: OrderedDict[str, str] = OrderedDict()
        self._by_payload: dict[str, str] = {}

    def encode(self, payload: str) -> str:
        if len(payload.encode("utf-8")) <= MAX_CALLBACK_DATA and not payload.startswith(_TOKEN_PREFIX):
            return payload
        token = self._by_payload.get(payload)
        if token is None:
            token = _TOKEN_PREFIX + secrets.token_urlsafe(9)
            self._by_payload[payload] = token
            self._by_token[token] = payload
            if len(self._by_token) > self._capacity:
                _, old_payload = self._by_token.popitem(last=False)
                self._by_payload.pop(old_payload, None)
        else:
            self._by_token.move_to_end(token)
        return token

    def decode(self, data: str) -> str | None:
        if not data.startswith(_TOKEN_PREFIX):
            return data
        return self._by_token.get(data)


class RecentIds:
    """Bounded memory of update ids already taken, so a redelivery is answered once."""

    def __init__(self, capacity: int = 20_000) -> None:
        self._capacity = capacity
        self._seen: OrderedDict[int, None] = OrderedDict()

    def add(self, update_id: int) -> bool:
        """True the first time an id is seen."""
        if update_id in self._seen:
            return False
        self._seen[update_id] = None
        if len(self._seen) > self._capacity:
            self._seen.popitem(last=False)
        return True


# ------------------------------------------------------------------ update -> event


@dataclass(frozen=True, slots=True)
class TelegramEvent:
    """The part of one update the assistant cares about, independent of the framework."""

    update_id: int
    chat_id: int
    kind: Literal["text", "button", "photo", "unsupported"]
    text: str | None = None
    callback_id: str | None = None
    callback_data: str | None = None
    callback_message_id: int | None = None
    file_id: str | None = None
    file_size: int | None = None
    media_group_id: str | None = None


def event_from_update(update: Any) -> TelegramEvent | None:
    """aiogram and PTB name their objects after the Bot API, so one reader serves both.

    Only private chats are served: a registration must not happen in a group.
    Returns None for updates the assistant ignores (edits, groups, inline callbacks).
    """
    update_id = update.update_id
    query = update.callback_query
    if query is not None:
        message = query.message
        if message is None or message.chat.type != "private":
            return None
        return TelegramEvent(
            update_id=update_id,
            chat_id=message.chat.id,
            kind="button",
            callback_id=query.id,
            callback_data=query.data or "",
            callback_message_id=message.message_id,
        )
    message = update.message
    if message is None or message.chat.type != "private":
        return None
    chat_id = message.chat.id
    if message.text is not None:
        return TelegramEvent(update_id, chat_id, "text", text=normalise_start(message.text))
    if message.photo:
        largest = max(message.photo, key=lambda p: (p.width * p.height, p.file_size or 0))
        return TelegramEvent(
            update_id,
            chat_id,
            "photo",
            file_id=largest.file_id,
            file_size=largest.file_size,
            media_group_id=message.media_group_id,
        )
    document = message.document
    if document is not None and (document.mime_type or "").startswith("image/"):
        return TelegramEvent(
            update_id,
            chat_id,
            "photo",
            file_id=document.file_id,
            file_size=document.file_size,
            media_group_id=message.media_group_id,
        )
    return TelegramEvent(update_id, chat_id, "unsupported")


# ------------------------------------------------------------------ event -> Bot API


Keyboard = list[list[tuple[str, str]]]  # rows of (label, callback_data)


class Failure(Enum):
    RETRY_AFTER = "retry_after"  # 429: wait the given seconds, then the same call again
    TRANSIENT = "transient"  # network, timeout, 5xx: back off and retry, park if it persists
    PERMANENT = "permanent"  # 400/403/404: retrying cannot help


class BotApi(Protocol):
    """The handful of Bot API calls the channel makes; each adapter wraps its framework's Bot."""

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

    def classify(self, exc: BaseException) -> tuple[Failure, float] | None:
        """How to treat a framework error (seconds to wait for RETRY_AFTER); None: not a Bot API error."""
        ...


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5  # tries of one call on network errors before its replies are parked
    backoff_s: float = 0.5  # first pause, doubled after every failure
    max_backoff_s: float = 30.0
    max_flood_waits: int = 5  # 429s in a row on one call before its replies are parked
    outbox_retry_s: float = 30.0  # parked replies are tried again this long after


class Undelivered(Exception):
    """A call still failed after the retry policy; what is left of the batch gets parked."""


@dataclass(slots=True)
class _Op:
    kind: Literal["text", "document", "photo"]
    text: str | None = None  # already escaped HTML
    path: Path | None = None
    keyboard: Keyboard | None = None
    batch: int = 0


@dataclass(slots=True)
class _Live:
    """Keyboards of the latest question in one chat: only these may be pressed."""

    batch: int
    message_ids: set[int] = field(default_factory=set)


_current_chat: contextvars.ContextVar[int | None] = contextvars.ContextVar("telegram_chat", default=None)


class TelegramCore:
    """Turns events into assistant calls and replies into Bot API calls, one chat at a time."""

    def __init__(self, assistant: Assistant, api: BotApi, retry: RetryPolicy | None = None) -> None:
        self.assistant = assistant
        self.api = api
        self.retry = retry or RetryPolicy()
        self.texts = channel_texts()
        self.codec = CallbackCodec()
        self._seen = RecentIds()
        self._queues: dict[int, deque[Callable[[], Awaitable[None]]]] = {}
        self._workers: dict[int, asyncio.Task[None]] = {}
        self._outbox: dict[int, deque[_Op]] = {}
        self._retry_timers: dict[int, asyncio.TimerHandle] = {}
        self._live: dict[int, _Live] = {}
        self._batches = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.closed = False

    # ---- scheduling: one worker per chat keeps its order, chats run side by side

    def submit(self, event: TelegramEvent) -> bool:
        """Queue one event (synchronously, so arrival order is kept). False for a redelivery."""
        if self.closed or not self._seen.add(event.update_id):
            return False
        self._enqueue(event.chat_id, lambda: self._process(event))
        return True

    def _enqueue(self, chat_id: int, job: Callable[[], Awaitable[None]]) -> None:
        self._queues.setdefault(chat_id, deque()).append(job)
        if chat_id not in self._workers:
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

    async def close(self) -> None:
        """Finish in-flight work; stop accepting events. Parked replies stay parked (logged)."""
        self.closed = True
        await self.idle()
        for timer in self._retry_timers.values():
            timer.cancel()
        self._retry_timers.clear()
        if self._outbox:
            log.warning("telegram: %d chats still have undelivered replies at shutdown", len(self._outbox))

    async def send(self, user_id: str, replies: list[Outbound]) -> None:
        """Deliver replies nobody asked for just now, in order with the chat's other messages."""
        chat_id = int(user_id)
        if _current_chat.get() == chat_id:  # called from inside this chat's own job
            await self._deliver(chat_id, replies)
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def job() -> None:
            try:
                await self._deliver(chat_id, replies)
            finally:
                if not done.done():
                    done.set_result(None)

        self._enqueue(chat_id, job)
        await done

    # ---- one event

    async def _process(self, event: TelegramEvent) -> None:
        chat_id = event.chat_id
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
        payload = self.codec.decode(event.callback_data or "")
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
        assert event.file_id is not None
        if event.file_size is not None and event.file_size > MAX_DOWNLOAD:
            await self._deliver(event.chat_id, [Outbound(self.texts["file_too_big"])])
            return None
        try:
            data = await self._call(lambda: self.api.download(event.file_id))
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

    def _render(self, replies: Sequence[Outbound]) -> list[_Op]:
        self._batches += 1
        batch = self._batches
        ops: list[_Op] = []
        for reply in join_texts(replies):
            keyboard = self._keyboard(reply.buttons)
            attachment = reply.document or reply.image
            kind: Literal["document", "photo"] = "document" if reply.document else "photo"
            text = reply.text or ""
            if attachment is not None and utf16_len(text) <= MAX_CAPTION:
                ops.append(
                    _Op(kind, text=escape_html(text) or None, path=attachment, keyboard=keyboard, batch=batch)
                )
                continue
            chunks = [c for c in split_text(text) if c.strip()] if text.strip() else []
            for i, chunk in enumerate(chunks):
                last = i == len(chunks) - 1 and attachment is None
                ops.append(
                    _Op("text", text=escape_html(chunk), keyboard=keyboard if last else None, batch=batch)
                )
            if attachment is not None:
                ops.append(_Op(kind, path=attachment, keyboard=keyboard, batch=batch))
        return ops

    def _keyboard(self, buttons: Sequence[Button]) -> Keyboard | None:
        if not buttons:
            return None
        return keyboard_rows([(b.label, self.codec.encode(b.payload)) for b in buttons])

    async def _deliver(self, chat_id: int, replies: Sequence[Outbound]) -> None:
        ops = self._render(replies)
        outbox = self._outbox.get(chat_id)
        if outbox:  # something older is still waiting: keep the order
            outbox.extend(ops)
            return
        await self._send_ops(chat_id, deque(ops))

    async def _send_ops(self, chat_id: int, ops: deque[_Op]) -> None:
        while ops:
            op = ops[0]
            try:
                message_id = await self._send_op(chat_id, op)
            except Undelivered:
                self._park(chat_id, ops)
                return
            except Exception as exc:
                if self.api.classify(exc) is None:
                    raise
                # 400/403: this message cannot be sent (blocked bot, bad file); the rest still can.
                log.warning("telegram %s dropped for chat %s: %s", op.kind, _pseudonym(chat_id), exc)
            else:
                if op.keyboard is not None:
                    live = self._live.get(chat_id)
                    if live is None or live.batch != op.batch:
                        # A new question supersedes the unanswered one (typed instead of tapped):
                        # take its buttons away so the chat shows only what can still be used.
                        for old in sorted(live.message_ids) if live else ():
                            await self._best_effort(self.api.remove_keyboard(chat_id, old))
                        live = self._live[chat_id] = _Live(op.batch)
                    live.message_ids.add(message_id)
            ops.popleft()

    async def _send_op(self, chat_id: int, op: _Op) -> int:
        if op.kind == "text":
            return await self._call(lambda: self.api.send_text(chat_id, op.text or "", op.keyboard))
        assert op.path is not None
        data = await asyncio.to_thread(op.path.read_bytes)
        send = self.api.send_document if op.kind == "document" else self.api.send_photo
        return await self._call(lambda: send(chat_id, data, op.path.name, op.text, op.keyboard))

    async def _call(self, make: Callable[[], Awaitable[Any]]) -> Any:
        """One Bot API call with the retry policy: 429 waited out, network errors backed off."""
        delay = self.retry.backoff_s
        network_failures = flood_waits = 0
        while True:
            try:
                return await make()
            except Exception as exc:
                verdict = self.api.classify(exc)
                if verdict is None or verdict[0] is Failure.PERMANENT:
                    raise
                kind, wait = verdict
                if kind is Failure.RETRY_AFTER:
                    flood_waits += 1
                    if flood_waits > self.retry.max_flood_waits:
                        raise Undelivered from exc
                    log.info("telegram flood control: waiting %.1fs", wait)
                    await asyncio.sleep(wait)
                    continue
                network_failures += 1
                if network_failures >= self.retry.attempts:
                    raise Undelivered from exc
                log.info("telegram network error (%s), retry in %.2fs", type(exc).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry.max_backoff_s)

    def _park(self, chat_id: int, ops: deque[_Op]) -> None:
        log.warning("telegram: %d replies parked for chat %s", len(ops), _pseudonym(chat_id))
        self._outbox.setdefault(chat_id, deque()).extend(ops)
        if chat_id not in self._retry_timers and not self.closed:
            loop = asyncio.get_running_loop()
            self._retry_timers[chat_id] = loop.call_later(
                self.retry.outbox_retry_s, self._retry_parked, chat_id
            )

    def _retry_parked(self, chat_id: int) -> None:
        self._retry_timers.pop(chat_id, None)
        if chat_id in self._outbox:
            self._enqueue(chat_id, lambda: self._flush_outbox(chat_id))

    async def _flush_outbox(self, chat_id: int) -> None:
        ops = self._outbox.pop(chat_id, None)
        if not ops:
            return
        timer = self._retry_timers.pop(chat_id, None)
        if timer is not None:
            timer.cancel()
        await self._send_ops(chat_id, ops)

    def pending(self, chat_id: int) -> int:
        """How many rendered messages wait for the Bot API to come back (for tests and health)."""
        return len(self._outbox.get(chat_id, ()))

    async def _best_effort(self, call: Awaitable[Any]) -> None:
        """Spinner answers and keyboard removals: one try, never fatal (the live set already
        refuses stale presses, so a keyboard left on screen cannot replay a step)."""
        try:
            await call
        except Exception as exc:
            if self.api.classify(exc) is None:
                raise
            log.info("telegram housekeeping call failed: %s", type(exc).__name__)


def _pseudonym(chat_id: int) -> str:
    """Chat ids are personal data: logs carry a short hash instead."""
    return hashlib.blake2s(str(chat_id).encode(), digest_size=4).hexdigest()


# ------------------------------------------------------------------ channel shell


class TelegramChannel:
    """What both adapters share as a `Channel`: lifecycle, webhook intake, `send`.

    Subclasses provide the framework pieces: `_feed(raw)` (one update dict through the
    framework's dispatcher into `on_update`), `_start_polling`, `_stop_polling`,
    `_set_webhook`, `_delete_webhook_for_polling`, `_get_me` and `_close_session`.
    """

    name = CHANNEL_NAME
    framework = ""

    def __init__(self, settings: Any, assistant: Assistant, retry: RetryPolicy | None, api: BotApi) -> None:
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
        self.core = TelegramCore(assistant, api, retry)
        self._started = False

    # ---- framework hooks

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
        log.info("telegram channel started (%s, %s)", self.framework, self.mode)

    async def stop(self) -> None:
        if self._started and self.mode == "polling":
            await self._stop_polling()
        # The webhook stays registered: Telegram keeps updates while we restart.
        self._started = False
        await self.core.close()
        await self._close_session()

    async def send(self, user_id: str, replies: list[Outbound]) -> None:
        await self.core.send(user_id, replies)

    async def idle(self) -> None:
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
        # The framework only parses and hands over to our queue, so answering after it is fast
        # and Telegram does not re-send; the assistant runs in the chat's worker.
        try:
            await self._feed(raw)
        except Exception:
            # An update the framework cannot read will not read better next time: acknowledge
            # it, or Telegram would re-send it forever and hold back the ones behind it.
            log.exception("telegram webhook update %s could not be parsed", raw["update_id"])
        return web.Response(status=200)


def add_webhook_route(app: web.Application, channel: TelegramChannel, path: str = WEBHOOK_PATH) -> None:
    """Mount the Telegram webhook on the runner's aiohttp app (POST only, secret-checked)."""
    app.router.add_post(path, channel.handle_webhook)


def build_telegram_channel(settings: Any, assistant: Assistant, **options: Any) -> TelegramChannel:
    """The channel `settings.telegram_framework` names. Options go to the adapter
    (`retry`, `poll_timeout`, and for the bench a framework session/request)."""
    if settings.telegram_framework == "ptb":
        from .telegram_ptb import PtbTelegramChannel

        return PtbTelegramChannel(settings, assistant, **options)
    from .telegram_aiogram import AiogramTelegramChannel

    return AiogramTelegramChannel(settings, assistant, **options)
