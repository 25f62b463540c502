"""What the aiogram and python-telegram-bot adapters share.

The adapters only translate: a framework update becomes a `TelegramEvent`, and the
framework's Bot object performs the few `BotApi` calls. Everything that decides
behaviour lives here, once: turning events into `Inbound`, per-user ordering, update
de-duplication, splitting and escaping texts, inline keyboards and their retirement,
retries on 429 and network errors, and replies parked until the Bot API is reachable.

Parked replies and the payloads behind long buttons' short ids are kept in the data dir
(`telegram-outbox.sqlite3`, the outbox shared with Zalo), so neither is lost when the
process restarts: parked replies go out at start, and an old button still works.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import hmac
import html
import json
import logging
import re
import secrets
import sqlite3
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
from .outbox import Outbox

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
_TOKEN = re.compile(r"~[A-Za-z0-9_-]{12}")  # what `CallbackCodec` hands out
OUTBOX_FILE = "telegram-outbox.sqlite3"


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


class TelegramOutbox(Outbox):
    """The shared outbox (parked replies per chat) plus the payloads behind long buttons' ids.

    The ids table is bounded: past `callback_capacity` rows the oldest written go first (a
    button that old reads as expired, which the user is told about).
    """

    schema = (
        "CREATE TABLE IF NOT EXISTS callbacks (id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " token TEXT NOT NULL UNIQUE, payload TEXT NOT NULL)",
    )

    def __init__(self, path: Path, callback_capacity: int = 50_000) -> None:
        self.callback_capacity = callback_capacity
        super().__init__(path)

    def _put_callbacks(self, pairs: list[tuple[str, str]]) -> None:
        with self._db() as db:
            db.executemany("INSERT OR REPLACE INTO callbacks (token, payload) VALUES (?, ?)", pairs)
            (newest,) = db.execute("SELECT MAX(id) FROM callbacks").fetchone()
            db.execute("DELETE FROM callbacks WHERE id <= ?", ((newest or 0) - self.callback_capacity,))

    def _get_callback(self, token: str) -> str | None:
        with contextlib.closing(self._connect()) as db:
            row = db.execute("SELECT payload FROM callbacks WHERE token = ?", (token,)).fetchone()
        return row[0] if row else None

    async def put_callbacks(self, pairs: list[tuple[str, str]]) -> None:
        await self._run(self._put_callbacks, pairs)

    async def get_callback(self, token: str) -> str | None:
        return await self._run(self._get_callback, token)


class CallbackCodec:
    """Maps button payloads to callback_data (at most 64 bytes).

    Short payloads travel as they are and never touch the store. Longer ones (or ones that
    look like our ids) are replaced by a short random id, kept in memory and, with a
    `store`, written to disk before the keyboard carrying it is sent (`save`), so a button
    pressed after a restart is read back from there (`recall`). An id found nowhere reads
    as an expired button, which the user is told about.
    """

    def __init__(self, capacity: int = 50_000, store: TelegramOutbox | None = None) -> None:
        self._capacity = capacity
        self._by_token: OrderedDict[str, str] = OrderedDict()
        self._by_payload: dict[str, str] = {}
        self.store = store
        self._unsaved: dict[str, str] = {}  # ids handed out but not yet on disk
        self._saving = asyncio.Lock()

    def encode(self, payload: str) -> str:
        if len(payload.encode("utf-8")) <= MAX_CALLBACK_DATA and not payload.startswith(_TOKEN_PREFIX):
            return payload
        token = self._by_payload.get(payload)
        if token is None:
            token = _TOKEN_PREFIX + secrets.token_urlsafe(9)
            self._remember(token, payload)
            if self.store is not None:
                self._unsaved[token] = payload
        else:
            self._by_token.move_to_end(token)
        return token

    def _remember(self, token: str, payload: str) -> None:
        self._by_payload[payload] = token
        self._by_token[token] = payload
        if len(self._by_token) > self._capacity:
            old_token, old_payload = self._by_token.popitem(last=False)
            if self._by_payload.get(old_payload) == old_token:
                del self._by_payload[old_payload]

    def decode(self, data: str) -> str | None:
        """The payload, from memory only (None: unknown id, see `recall`)."""
        if not data.startswith(_TOKEN_PREFIX):
            return data
        return self._by_token.get(data)

    @property
    def dirty(self) -> bool:
        """Ids were handed out that are not on disk yet (or are being written)."""
        return bool(self._unsaved) or self._saving.locked()

    async def save(self) -> None:
        """Write the new ids; returns once every id handed out so far is on disk (or failed)."""
        async with self._saving:
            if not self._unsaved or self.store is None:
                return
            pairs = list(self._unsaved.items())
            self._unsaved.clear()
            try:
                await self.store.put_callbacks(pairs)
            except (sqlite3.Error, OSError) as exc:
                # The buttons still work until a restart; the next save tries these again.
                log.error("telegram: %d button ids could not be saved: %s", len(pairs), type(exc).__name__)
                for token, payload in pairs:
                    self._unsaved.setdefault(token, payload)

    async def recall(self, data: str) -> str | None:
        """`decode`, then the store for an id handed out before a restart."""
        payload = self.decode(data)
        if payload is not None or self.store is None or not _TOKEN.fullmatch(data):
            return payload
        try:
            payload = await self.store.get_callback(data)
        except (sqlite3.Error, OSError) as exc:
            log.error("telegram: button ids could not be read: %s", type(exc).__name__)
            return None
        if payload is not None:
            self._remember(data, payload)
        return payload


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

    def spec(self) -> dict[str, Any]:
        """What the outbox keeps: enough to send the same message after a restart."""
        return {
            "kind": self.kind,
            "text": self.text,
            "path": str(self.path) if self.path is not None else None,
            "keyboard": self.keyboard,
            "batch": self.batch,
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> _Op:
        kind = spec["kind"]
        if kind not in ("text", "document", "photo"):
            raise ValueError(f"unknown kind {kind!r}")
        keyboard = spec.get("keyboard")
        return cls(
            kind,
            text=spec.get("text"),
            path=Path(spec["path"]) if spec.get("path") else None,
            keyboard=[[(str(label), str(data)) for label, data in row] for row in keyboard]
            if keyboard
            else None,
            batch=int(spec.get("batch") or 0),
        )


@dataclass(slots=True)
class _Live:
    """Keyboards of the latest question in one chat: only these may be pressed."""

    batch: int
    message_ids: set[int] = field(default_factory=set)


_current_chat: contextvars.ContextVar[int | None] = contextvars.ContextVar("telegram_chat", default=None)


class TelegramCore:
    """Turns events into assistant calls and replies into Bot API calls, one chat at a time."""

    def __init__(
        self,
        assistant: Assistant,
        api: BotApi,
        retry: RetryPolicy | None = None,
        store: TelegramOutbox | None = None,
    ) -> None:
        self.assistant = assistant
        self.api = api
        self.retry = retry or RetryPolicy()
        self.texts = channel_texts()
        self.store = store
        self.codec = CallbackCodec(store=store)
        self._seen = RecentIds()
        self._queues: dict[int, deque[Callable[[], Awaitable[None]]]] = {}
        self._workers: dict[int, asyncio.Task[None]] = {}
        # Parked replies: on disk (chat -> how many rows `store` holds) or, without a store
        # or when writing failed, in memory. A reply is in one place only, never both.
        self._parked: dict[int, int] = {}
        self._held: dict[int, deque[_Op]] = {}
        self._retry_timers: dict[int, asyncio.TimerHandle] = {}
        self._live: dict[int, _Live] = {}
        self._batches = 0
        if store is not None:
            # Read before any update can arrive (a webhook may post before `start`), so a
            # chat's new answers queue behind what it was owed before the restart.
            kept = store.items_now()
            for _, chat, spec in kept:
                self._parked[int(chat)] = self._parked.get(int(chat), 0) + 1
                with contextlib.suppress(AttributeError, TypeError, ValueError):  # batch ids stay unique
                    self._batches = max(self._batches, int(spec.get("batch") or 0))
            if kept:
                log.info("telegram: %d chats have replies kept from before the restart", len(self._parked))
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

    def resume(self) -> None:
        """Deliver the replies kept from before a restart, each chat in its own order."""
        for chat_id in list(self._parked):
            self._enqueue(chat_id, lambda chat_id=chat_id: self._flush_outbox(chat_id))

    async def close(self) -> None:
        """Finish in-flight work; stop accepting events. Parked replies stay in the outbox."""
        self.closed = True
        await self.idle()
        for timer in self._retry_timers.values():
            timer.cancel()
        self._retry_timers.clear()
        if self._parked:
            log.info("telegram: %d chats have replies kept for the next start", len(self._parked))
        if self._held:
            log.error("telegram: %d chats lose undelivered replies at shutdown", len(self._held))

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

    async def forget(self, chat_id: int) -> None:
        """The user deleted their data: drop every reply still owed to the chat (in the outbox
        and in memory), in order with the chat's other work like `send`.

        The ids of long button payloads are not per chat: they map ids to the engine's fixed
        payloads ("flow:…", "pick:3"), never to anything a user typed, so they stay.
        """
        if _current_chat.get() == chat_id:  # the /delete itself, answered in this chat's job
            await self._forget(chat_id)
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def job() -> None:
            try:
                await self._forget(chat_id)
            except asyncio.CancelledError:
                done.cancel()
                raise
            except Exception as exc:  # the caller reports it
                if not done.done():
                    done.set_exception(exc)
            else:
                if not done.done():
                    done.set_result(None)

        self._enqueue(chat_id, job)
        await done

    async def _forget(self, chat_id: int) -> None:
        timer = self._retry_timers.pop(chat_id, None)
        if timer is not None:
            timer.cancel()
        held = self._held.pop(chat_id, ())
        self._parked.pop(chat_id, None)
        dropped = len(held)
        if self.store is not None:
            # Raises when the file cannot be written: the user must not be told "deleted".
            dropped += await self.store.forget(str(chat_id))
        if dropped:
            log.info(
                "telegram: %d owed replies dropped for chat %s (data deleted)", dropped, _pseudonym(chat_id)
            )

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
        if self.codec.dirty:  # new long-payload ids: on disk before a user can press them
            await self.codec.save()
        if chat_id in self._parked or chat_id in self._held:  # something older waits: keep the order
            await self._park(chat_id, ops, "queued behind earlier undelivered replies")
            return
        await self._send_ops(chat_id, deque(ops))

    async def _send_ops(self, chat_id: int, ops: deque[_Op]) -> None:
        while ops:
            error = await self._send_one(chat_id, ops[0])
            if error is not None:
                await self._park(chat_id, list(ops), error)
                return
            ops.popleft()

    async def _send_one(self, chat_id: int, op: _Op) -> str | None:
        """Send one message with the retry policy; the error's name when it must wait for later.

        A message Telegram refuses for good (blocked bot, bad file) is dropped with a warning:
        retrying cannot help, and the ones after it can still go.
        """
        try:
            message_id = await self._send_op(chat_id, op)
        except Undelivered as exc:
            return type(exc.__cause__ or exc).__name__
        except Exception as exc:
            if self.api.classify(exc) is None:
                raise
            log.warning("telegram %s dropped for chat %s: %s", op.kind, _pseudonym(chat_id), exc)
            return None
        if message_id is not None and op.keyboard is not None:
            live = self._live.get(chat_id)
            if live is None or live.batch != op.batch:
                # A new question supersedes the unanswered one (typed instead of tapped):
                # take its buttons away so the chat shows only what can still be used.
                for old in sorted(live.message_ids) if live else ():
                    await self._best_effort(self.api.remove_keyboard(chat_id, old))
                live = self._live[chat_id] = _Live(op.batch)
            live.message_ids.add(message_id)
        return None

    async def _send_op(self, chat_id: int, op: _Op) -> int | None:
        if op.kind == "text":
            return await self._call(lambda: self.api.send_text(chat_id, op.text or "", op.keyboard))
        assert op.path is not None
        try:
            data = await asyncio.to_thread(op.path.read_bytes)
        except OSError as exc:
            # Gone from the data dir (e.g. the user's data was deleted meanwhile): retrying
            # cannot bring it back, and it must not hold back the messages after it.
            log.error("telegram %s for chat %s skipped: %s", op.kind, _pseudonym(chat_id), type(exc).__name__)
            return None
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

    async def _park(self, chat_id: int, ops: Sequence[_Op], error: str) -> None:
        """Keep `ops` after whatever the chat already has waiting, and retry them later."""
        if not ops:
            return
        log.warning("telegram: %d replies parked for chat %s (%s)", len(ops), _pseudonym(chat_id), error)
        # Into the outbox, unless some are already held in memory (they are older: order first).
        if self.store is not None and chat_id not in self._held:
            try:
                await self.store.add(str(chat_id), [op.spec() for op in ops], error)
            except (sqlite3.Error, OSError) as exc:
                log.error(
                    "telegram: the outbox could not keep replies (%s); held in memory", type(exc).__name__
                )
            else:
                self._parked[chat_id] = self._parked.get(chat_id, 0) + len(ops)
                ops = ()
        if ops:
            self._held.setdefault(chat_id, deque()).extend(ops)
        self._schedule_retry(chat_id)

    def _retry_parked(self, chat_id: int) -> None:
        self._retry_timers.pop(chat_id, None)
        if chat_id in self._parked or chat_id in self._held:
            self._enqueue(chat_id, lambda: self._flush_outbox(chat_id))

    async def _flush_outbox(self, chat_id: int) -> None:
        """Send what waits for this chat, oldest first; runs in the chat's worker."""
        if chat_id not in self._parked and chat_id not in self._held:
            return
        timer = self._retry_timers.pop(chat_id, None)
        if timer is not None:
            timer.cancel()
        if chat_id in self._parked and not await self._flush_stored(chat_id):
            self._schedule_retry(chat_id)
            return
        held = self._held.pop(chat_id, None)
        if held:
            await self._send_ops(chat_id, held)  # what fails again is parked again, in order

    async def _flush_stored(self, chat_id: int) -> bool:
        """The chat's rows of the outbox, each deleted once sent; False when some must wait."""
        assert self.store is not None
        try:
            items = await self.store.items(str(chat_id))
        except (sqlite3.Error, OSError) as exc:
            log.error("telegram: the outbox could not be read: %s", type(exc).__name__)
            return False
        for done, (item_id, _, spec) in enumerate(items):
            try:
                op = _Op.from_spec(spec)
            except (KeyError, TypeError, ValueError) as exc:
                log.error(
                    "telegram: an unreadable outbox item for chat %s dropped: %s",
                    _pseudonym(chat_id),
                    type(exc).__name__,
                )
            else:
                try:
                    error = await self._send_one(chat_id, op)
                except Exception:
                    # Not a Bot API error: it would fail the same way every time and hold
                    # back everything the chat is sent after it.
                    log.exception("telegram: an outbox item for chat %s dropped", _pseudonym(chat_id))
                    error = None
                if error is not None:
                    self._parked[chat_id] = len(items) - done
                    with contextlib.suppress(sqlite3.Error, OSError):
                        await self.store.failed(item_id, error)
                    return False
            try:
                await self.store.remove(item_id)
            except (sqlite3.Error, OSError) as exc:
                log.error(
                    "telegram: a sent reply could not be removed from the outbox: %s", type(exc).__name__
                )
        self._parked.pop(chat_id, None)
        return True

    def _schedule_retry(self, chat_id: int) -> None:
        if chat_id not in self._retry_timers and not self.closed:
            loop = asyncio.get_running_loop()
            self._retry_timers[chat_id] = loop.call_later(
                self.retry.outbox_retry_s, self._retry_parked, chat_id
            )

    def pending(self, chat_id: int) -> int:
        """How many rendered messages wait for the Bot API to come back (for tests and health)."""
        return self._parked.get(chat_id, 0) + len(self._held.get(chat_id, ()))

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
        # Parked replies and long buttons' ids outlive the process (0600: it holds texts).
        self.outbox = TelegramOutbox(Path(settings.data_dir) / OUTBOX_FILE)
        self.core = TelegramCore(assistant, api, retry, self.outbox)
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
        self.core.resume()
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

    async def forget(self, user_id: str) -> None:
        """The user deleted their data (/delete): nothing owed to them stays in the outbox."""
        await self.core.forget(int(user_id))

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
