"""The web chat: a static page plus the JSON API behind it (and usable by other programs).

API (kept exactly; extra keys may be added, never removed or renamed):

    POST /api/chat/{conversation_id}/messages
        JSON {"text": "..."} or {"button": "<payload>"}, optional "message_id";
        or multipart/form-data with a `photo` file (and optional `message_id` field; sent
        before the photo, as the page does, a refusal comes before the photo is read).
    -> {"replies": [{"text", "buttons": [{"label", "payload"}], "document": URL|null,
                     "image": URL|null, "progress": [step, total]|null}]}

    GET /api/chat/{conversation_id}/updates
    -> {"replies": [...]}: notices owed to the conversation (decisions, reminders, hotline
       staff's messages) since the last call; the page asks on load and every 30 s while it
       is visible, every 3 s while the answers carry "live": true (a hotline ticket is open).

Errors answer JSON with "error" (a code), "message" (Vietnamese) and "replies" (the same
message as one reply) so the page renders every answer the same way. When the CPU work
queue is full (the photos waiting in it hold `MAX_PHOTO_BYTES_HELD`, or the pool's own
capacity) a photo gets 503 with `Retry-After` and error "busy" (texts and buttons, which
do not queue there, are taken); the page shows the sentence once and sends the same
message (same message_id) again by itself. Refused photos wait in line
(bot/channels/busy.py): one that comes back goes in when its turn comes, a newcomer queues
behind them, so nobody is refused again and again while others, luckier, get through.

Documents are served under URLs carrying an HMAC of the file's path, keyed by a secret
kept in the data directory: a link can be shared on purpose but never guessed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import os
import re
import secrets
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import quote

from aiohttp import BodyPartReader, web

from bot.channels.base import Assistant
from bot.channels.busy import WaitingLine
from bot.channels.locks import KeyedLocks
from bot.channels.replies import web_message, web_replies
from bot.channels.texts import channel_text
from bot.crypto import open_file
from bot.http_guard import BODY_TIMEOUT_S, media_type
from dialogs.messages import Inbound, Outbound

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent.parent / "web"
STATIC_FILES = {"app.js": "text/javascript", "style.css": "text/css"}
_FILE_TYPES = {".pdf": "application/pdf", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}

MAX_PHOTO_BYTES = 10 * 1024 * 1024
MAX_TEXT_CHARS = 2000
MAX_JSON_BYTES = 64 * 1024
RETRY_AFTER_S = 2  # what a busy server asks the page to wait before sending again
# Photos taken and waiting for their check are held in memory: past this, the work queue is
# full and new photos are asked to come back (about 80 phone photos of 3 MB; the queue
# works through them in a few seconds). Below it nothing is refused: a refused photo comes
# back with its bytes again, so refusing early only adds work and puts it behind others.
MAX_PHOTO_BYTES_HELD = 256 * 2**20
# What a photo form may hold beside the photo: its framing and the small fields.
FORM_EXTRA_BYTES = 256 * 1024
# The aiohttp-wide body limit: a photo plus multipart framing; webhooks fit well inside.
CLIENT_MAX_SIZE = MAX_PHOTO_BYTES + FORM_EXTRA_BYTES

# The id is the conversation's only credential: the page makes it from 16 random bytes (128
# bits); anything shorter than 32 characters cannot carry that much and is refused.
CONVERSATION_ID = re.compile(r"^[A-Za-z0-9_-]{32,64}$")
MESSAGE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")

_PENDING_PER_CONVERSATION = 50
_PENDING_CONVERSATIONS = 10_000

# A page that loads nothing from elsewhere and cannot be framed; user text is only ever
# inserted with textContent, and this policy is the second lock on that door.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


class DocumentLinks:
    """Unguessable, stable URLs for files under the data directory (declaration PDFs, images)."""

    PREFIX = "/files"

    def __init__(self, root: Path, secret: bytes) -> None:
        self.root = root.resolve()
        self._secret = secret

    @classmethod
    def from_data_dir(cls, data_dir: Path) -> DocumentLinks:
        """Reuse the secret kept in the data dir so links survive restarts; create it once."""
        key_file = data_dir / "web-links.key"
        try:
            secret = bytes.fromhex(key_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            secret = secrets.token_bytes(32)
            key_file.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(secret.hex())
        return cls(data_dir, secret)

    def _sign(self, relative: str) -> str:
        return hmac.new(self._secret, relative.encode(), hashlib.sha256).hexdigest()[:40]

    def path_for(self, file: Path) -> str | None:
        """The URL path of `file`, or None when it lies outside the data directory."""
        try:
            relative = file.resolve().relative_to(self.root).as_posix()
        except ValueError:
            log.warning("refusing to link a file outside the data directory")
            return None
        encoded = base64.urlsafe_b64encode(relative.encode()).decode().rstrip("=")
        return f"{self.PREFIX}/{self._sign(relative)}/{encoded}/{quote(file.name)}"

    def resolve(self, signature: str, encoded: str) -> Path | None:
        try:
            relative = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None
        if not hmac.compare_digest(self._sign(relative), signature):
            return None
        path = (self.root / relative).resolve()
        if not path.is_relative_to(self.root):
            return None
        return path


class _BadRequest(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(code)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def _busy() -> _BadRequest:
    return _BadRequest(
        503,
        "busy",
        channel_text("busy", seconds=RETRY_AFTER_S),
        headers={"Retry-After": str(RETRY_AFTER_S), "Cache-Control": "no-store"},
    )


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(
        {"error": code, "message": message, "replies": [web_message(message)]}, status=status, headers=headers
    )


class WebChannel:
    """The web chat channel: `add_routes` mounts the page and the API on an aiohttp app."""

    name = "web"
    # The page is not always open: notices wait in the assistant's store and are fetched
    # by the page (`owed_notices`, on load and by polling) or ride along with the next reply.
    can_push = False

    def __init__(
        self,
        assistant: Assistant,
        links: DocumentLinks,
        *,
        owed_notices: Callable[[str], Awaitable[list[Outbound]]] | None = None,
        live: Callable[[str], Awaitable[bool]] | None = None,
        public_url: str = "",
        max_photo_bytes: int = MAX_PHOTO_BYTES,
        max_text_chars: int = MAX_TEXT_CHARS,
        max_photo_bytes_held: int = MAX_PHOTO_BYTES_HELD,
        full: Callable[[], bool] | None = None,
    ) -> None:
        self.assistant = assistant
        self.links = links
        self.owed_notices = owed_notices
        self.live = live
        self.public_url = public_url.rstrip("/")
        self.max_photo_bytes = max_photo_bytes
        self.max_text_chars = max_text_chars
        self.max_photo_bytes_held = max_photo_bytes_held
        # The CPU work queue can take no more (`vssid-bot run` passes the pool's `full`; tests
        # force a refusal through it): new photos get 503 + Retry-After and the page sends
        # them again by itself; refused ones wait in a line and go in by turns.
        self.full = full
        self._line = WaitingLine(gone_after_s=5 * RETRY_AFTER_S)
        self._locks = KeyedLocks()
        self._pending: OrderedDict[str, deque[Outbound]] = OrderedDict()
        self._in_flight = 0
        self._photo_bytes = 0  # photos taken and not answered yet: held in memory meanwhile
        self._idle = asyncio.Event()
        self._idle.set()
        self._stopping = False

    # -- Channel protocol -------------------------------------------------------------

    async def start(self) -> None:
        self._stopping = False

    async def stop(self) -> None:
        """Refuse new messages, then wait for those being answered."""
        self._stopping = True
        await self._idle.wait()

    async def send(self, user_id: str, replies: list[Outbound]) -> None:
        """Keep pushed messages until the page polls /updates (the page has no socket open)."""
        queue = self._pending.pop(user_id, None) or deque(maxlen=_PENDING_PER_CONVERSATION)
        queue.extend(replies)
        self._pending[user_id] = queue
        while len(self._pending) > _PENDING_CONVERSATIONS:
            self._pending.popitem(last=False)

    # -- HTTP ---------------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/", self._index)
        app.router.add_get("/static/{name}", self._static)
        app.router.add_post("/api/chat/{conversation_id}/messages", self._post_message)
        app.router.add_get("/api/chat/{conversation_id}/updates", self._updates)
        app.router.add_get(DocumentLinks.PREFIX + "/{signature}/{encoded}/{filename}", self._file)
        app.router.add_get("/healthz", self._health)

    async def _index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(
            STATIC_DIR / "index.html",
            headers={
                **SECURITY_HEADERS,
                "Content-Type": "text/html; charset=utf-8",
                "Cache-Control": "no-cache",
            },
        )

    async def _static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in STATIC_FILES:
            raise web.HTTPNotFound()
        content_type = f"{STATIC_FILES[name]}; charset=utf-8"
        return web.FileResponse(
            STATIC_DIR / name,
            headers={**SECURITY_HEADERS, "Content-Type": content_type, "Cache-Control": "no-cache"},
        )

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": not self._stopping})

    async def _file(self, request: web.Request) -> web.StreamResponse:
        path = self.links.resolve(request.match_info["signature"], request.match_info["encoded"])
        if path is None or not path.is_file():
            raise web.HTTPNotFound()
        try:
            # Opened in memory: the file on disk stays sealed (bot/crypto.py).
            data = await asyncio.to_thread(open_file, path)
        except OSError:
            raise web.HTTPNotFound() from None
        disposition = "attachment" if path.suffix.lower() == ".pdf" else "inline"
        ascii_name = path.name.encode("ascii", "replace").decode().replace('"', "")
        headers = {
            **SECURITY_HEADERS,
            "Content-Disposition": f"{disposition}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(path.name)}",
            "Cache-Control": "private, no-store",
        }
        content_type = _FILE_TYPES.get(path.suffix.lower(), "application/octet-stream")
        return web.Response(body=data, content_type=content_type, headers=headers)

    def _replies_json(self, request: web.Request, replies: list[Outbound]) -> dict:
        base = self.public_url or str(request.url.origin())

        def link(file: Path) -> str | None:
            path = self.links.path_for(file)
            return base + path if path else None

        return web_replies(replies, link)

    async def _updates(self, request: web.Request) -> web.Response:
        conversation_id = request.match_info["conversation_id"]
        if not CONVERSATION_ID.match(conversation_id):
            return _error(400, "bad_conversation_id", channel_text("bad_conversation"))
        pending = list(self._pending.pop(conversation_id, None) or ())
        if self.owed_notices is not None:
            try:
                pending += await self.owed_notices(conversation_id)
            except Exception:
                log.exception("web chat: could not read the notices owed to a conversation")
        return web.json_response(
            {**self._replies_json(request, pending), **await self._live(conversation_id)},
            headers={"Cache-Control": "no-store"},
        )

    async def _live(self, conversation_id: str) -> dict:
        """`"live": true` while a person may write (an open hotline ticket): the page polls
        /updates every few seconds instead of every 30."""
        if self.live is None:
            return {}
        try:
            return {"live": await self.live(f"{self.name}:{conversation_id}")}
        except Exception:
            log.exception("web chat: could not tell whether a person holds a conversation")
            return {}

    async def _post_message(self, request: web.Request) -> web.Response:
        conversation_id = request.match_info["conversation_id"]
        if not CONVERSATION_ID.match(conversation_id):
            return _error(400, "bad_conversation_id", channel_text("bad_conversation"))
        if self._stopping:
            return _error(503, "shutting_down", channel_text("internal_error"))
        try:
            async with asyncio.timeout(BODY_TIMEOUT_S):  # a photo trickled in forever holds nothing
                fields = await self._read_message(request, conversation_id)
        except TimeoutError:
            return _error(408, "too_slow", channel_text("upload_too_slow"))
        except _BadRequest as bad:
            return _error(bad.status, bad.code, bad.message, bad.headers)
        except web.HTTPRequestEntityTooLarge:
            return self._too_large()

        message_id = fields.pop("message_id", None)
        inbound = Inbound(channel=self.name, user_id=conversation_id, message_id=message_id, **fields)

        self._in_flight += 1
        photo_bytes = len(fields.get("photo") or b"")
        self._photo_bytes += photo_bytes
        self._idle.clear()
        try:
            replies = await self._locks.run(conversation_id, lambda: self._answer(inbound))
        except Exception:
            log.exception("web chat: the assistant failed to answer a message")
            return _error(500, "internal_error", channel_text("internal_error"))
        finally:
            self._in_flight -= 1
            self._photo_bytes -= photo_bytes
            if self._in_flight == 0:
                self._idle.set()
        return web.json_response(
            {**self._replies_json(request, replies), **await self._live(conversation_id)},
            headers={"Cache-Control": "no-store"},
        )

    def _admit_photo(self, conversation_id: str, message_id: str | None) -> None:
        """Raise "busy" while the CPU work queue is full or others wait in line before this
        photo; one told so once goes in when its turn comes. Texts and buttons are never
        refused: they do not queue there."""
        key = (conversation_id, message_id) if message_id else None
        full = self._photo_bytes >= self.max_photo_bytes_held or (self.full is not None and self.full())
        if self._line.refuse(key, full):
            raise _busy()

    async def _answer(self, inbound: Inbound) -> list[Outbound]:
        # A retried POST (lost response, double tap) gets the same replies, kept with the
        # message id in the database: also after a restart and on another worker.
        return await self.assistant.handle(inbound, keep_replies=True)

    def _too_large(self) -> web.Response:
        return _error(
            413, "photo_too_large", channel_text("upload_too_large", max_mb=self.max_photo_bytes // 2**20)
        )

    async def _read_message(self, request: web.Request, conversation_id: str) -> dict:
        """The Inbound fields of one request; raises _BadRequest with a Vietnamese message."""
        if media_type(request) == "multipart/form-data":
            return await self._read_multipart(request, conversation_id)
        if request.content_length is not None and request.content_length > MAX_JSON_BYTES:
            raise _BadRequest(
                413, "text_too_long", channel_text("text_too_long", max_chars=self.max_text_chars)
            )
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise _BadRequest(400, "bad_json", channel_text("empty_message"))
        fields: dict = {"message_id": self._message_id(body.get("message_id"))}
        text, button = body.get("text"), body.get("button")
        if (text is None) == (button is None) or not isinstance(text if text is not None else button, str):
            raise _BadRequest(400, "bad_message", channel_text("empty_message"))
        value = str(text if text is not None else button).strip()
        if not value:
            raise _BadRequest(400, "empty_message", channel_text("empty_message"))
        if len(value) > self.max_text_chars:
            raise _BadRequest(
                413, "text_too_long", channel_text("text_too_long", max_chars=self.max_text_chars)
            )
        fields["text" if text is not None else "button"] = value
        return fields

    async def _read_multipart(self, request: web.Request, conversation_id: str) -> dict:
        # Streamed part by part so the photo limit is ours and exact, and so that a photo is
        # refused (busy, too large, a bad message id) before its bytes are read when the small
        # fields come first, as the page sends them. The declared length bounds everything
        # (browsers and HTTP clients always send it with a form).
        if request.content_length is None:
            raise _BadRequest(411, "length_required", channel_text("not_a_photo"))
        limit = min(CLIENT_MAX_SIZE, self.max_photo_bytes + FORM_EXTRA_BYTES)
        if request.content_length > limit:
            raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
        reader = await request.multipart()
        photo: bytes | None = None
        message_id: str | None = None
        admitted = False
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):  # a nested multipart: not ours to read
                await part.release()
            elif part.name == "photo" and photo is None:
                if message_id is not None:  # known now: answer before reading the photo
                    self._admit_photo(conversation_id, message_id)
                    admitted = True
                photo = await self._read_photo(part)
            elif part.name == "message_id" and message_id is None:
                raw = await part.read_chunk(256)
                await part.release()
                message_id = self._message_id(raw.decode("utf-8", "replace"))
            else:
                await part.release()
        if not photo:
            raise _BadRequest(400, "no_photo", channel_text("not_a_photo"))
        if not admitted:  # the message id came after the photo, or none came
            self._admit_photo(conversation_id, message_id)
        return {"photo": photo, "message_id": message_id}

    async def _read_photo(self, part: BodyPartReader) -> bytes:
        chunks, size = [], 0
        while chunk := await part.read_chunk(64 * 1024):
            size += len(chunk)
            if size > self.max_photo_bytes:
                raise web.HTTPRequestEntityTooLarge(max_size=self.max_photo_bytes, actual_size=size)
            chunks.append(chunk)
        return b"".join(chunks)

    @staticmethod
    def _message_id(value: object) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or not MESSAGE_ID.match(value):
            raise _BadRequest(400, "bad_message_id", channel_text("empty_message"))
        return value
