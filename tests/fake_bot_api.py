"""A fake Telegram Bot API server on loopback, for end-to-end tests of the Telegram channel.

It speaks enough of the real protocol for aiogram and python-telegram-bot to run
unchanged against it (`TELEGRAM_API_BASE=<server.base_url>`): getMe, getUpdates long
polling, sendMessage, sendDocument, sendPhoto, editMessageReplyMarkup, editMessageText,
answerCallbackQuery, getFile and the file download route, setWebhook/deleteWebhook.
Every request is recorded (so tests can check it against the Bot API spec) and every
message the bot sends is kept per chat, as the user's screen. Parameters are read as the
real server reads them: a form's fields as sent; a JSON body's strings as they are and any
other value as its JSON text (so both check against the spec the same way), and a JSON body
that is not one object is refused (400) as the server refuses it.

Knobs: `fail(method, ...)` answers the next calls with 429 + retry_after (or another
error), `drop(method, ...)` closes the connection without an answer, `outage` drops
every sending call until cleared.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import itertools
import json
import re
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientSession, ClientTimeout, web
from multidict import MultiDictProxy

TOKEN = "123456789:TEST-fake-token_for-loopback"
BOT_USER = {
    "id": 123456789,
    "is_bot": True,
    "first_name": "VssID trợ lý",
    "username": "vssid_test_bot",
    "can_join_groups": False,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}
SENDING = {
    "sendmessage",
    "senddocument",
    "sendphoto",
    "editmessagereplymarkup",
    "editmessagetext",
    "answercallbackquery",
}


@dataclass(frozen=True)
class UploadedFile:
    filename: str
    content_type: str
    data: bytes


@dataclass
class RecordedRequest:
    method: str  # as the client spelled it
    params: dict[str, Any]  # strings as sent; uploads as UploadedFile
    outcome: str = "ok"  # ok | 429 | <status> | dropped | unauthorized
    content_type: str = ""  # application/json, multipart/form-data, application/x-www-form-urlencoded
    body: bytes = b""  # as it came, unless multipart

    @property
    def name(self) -> str:
        return self.method.lower()


@dataclass
class BotMessage:
    """One message the bot sent, as the user's Telegram app would show it."""

    message_id: int
    chat_id: int
    kind: str  # text | document | photo
    text: str = ""  # as sent (HTML when parse_mode is HTML)
    parse_mode: str | None = None
    reply_markup: dict[str, Any] | None = None
    file: UploadedFile | None = None

    @property
    def visible_text(self) -> str:
        """What the user reads: HTML tags rendered away, entities decoded."""
        if self.parse_mode and self.parse_mode.upper() == "HTML":
            return html.unescape(re.sub(r"<[^>]+>", "", self.text))
        return self.text

    @property
    def buttons(self) -> list[dict[str, Any]]:
        if not self.reply_markup:
            return []
        return [b for row in self.reply_markup.get("inline_keyboard", []) for b in row]

    @property
    def labels(self) -> list[str]:
        return [b["text"] for b in self.buttons]


class _BadBody(Exception):
    """A body the Bot API server could not read as parameters."""


@dataclass
class _Failure:
    status: int
    retry_after: int | None = None
    drop: bool = False


@dataclass
class FakeBotApi:
    token: str = TOKEN
    requests: list[RecordedRequest] = field(default_factory=list)
    screens: dict[int, list[BotMessage]] = field(default_factory=dict)
    outage: bool = False

    def __post_init__(self) -> None:
        self._update_ids = itertools.count(700_000)
        self._message_ids = itertools.count(1)
        self._file_ids = itertools.count(1)
        self._callback_ids = itertools.count(1)
        self._pending: list[dict[str, Any]] = []  # not yet confirmed by getUpdates offset
        self._highest_confirmed = 0
        self._files: dict[str, tuple[str, bytes]] = {}  # file_id -> (file_path, data)
        self._failures: dict[str, deque[_Failure]] = {}
        self._changed = asyncio.Condition()
        self.webhook: dict[str, Any] | None = None
        self.webhook_responses: list[int] = []
        self._webhook_queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._webhook_task: asyncio.Task[None] | None = None
        self._runner: web.AppRunner | None = None
        self._client: ClientSession | None = None
        self.base_url = ""

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> str:
        app = web.Application(client_max_size=60 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    async def stop(self) -> None:
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._webhook_task
        if self._client is not None:
            await self._client.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # ------------------------------------------------------------------ knobs

    def fail(self, method: str, times: int = 1, status: int = 429, retry_after: int | None = 1) -> None:
        """The next `times` calls of `method` get an error answer (429 + retry_after by default)."""
        queue = self._failures.setdefault(method.lower(), deque())
        queue.extend(_Failure(status, retry_after if status == 429 else None) for _ in range(times))

    def drop(self, method: str, times: int = 1) -> None:
        """The next `times` calls of `method` have their connection closed, unanswered and not performed."""
        self._failures.setdefault(method.lower(), deque()).extend(
            _Failure(0, drop=True) for _ in range(times)
        )

    # ------------------------------------------------------------------ the user side

    def add_file(self, data: bytes, folder: str = "photos", suffix: str = "jpg") -> tuple[str, str]:
        n = next(self._file_ids)
        file_id = f"AgAC-file-{n:05d}"
        self._files[file_id] = (f"{folder}/file_{n}.{suffix}", data)
        return file_id, f"uniq{n:05d}"

    def new_update_id(self) -> int:
        return next(self._update_ids)

    def new_callback_id(self) -> str:
        return f"cbq-{next(self._callback_ids)}"

    async def push(self, update: dict[str, Any]) -> None:
        """Hand one update to the bot: queued for getUpdates, or POSTed when a webhook is set."""
        if self.webhook:
            await self._webhook_queue.put(update)
            if self._webhook_task is None:
                self._webhook_task = asyncio.create_task(self._deliver_webhooks())
            return
        async with self._changed:
            self._pending.append(update)
            self._changed.notify_all()

    async def delivered(self, timeout: float = 10) -> None:
        """Wait until the bot has taken every pushed update (confirmed offset or webhook answered)."""
        deadline = time.monotonic() + timeout
        while True:
            if self.webhook:
                done = self._webhook_queue._unfinished_tasks == 0  # type: ignore[attr-defined]
            else:
                # Pruned by the bot's next getUpdates offset, which aiogram and PTB send
                # only after the previous batch went through their handlers.
                done = not self._pending
            if done:
                return
            if time.monotonic() > deadline:
                raise TimeoutError("the bot did not take the pushed updates")
            await asyncio.sleep(0.005)

    def screen(self, chat_id: int) -> list[BotMessage]:
        return self.screens.get(chat_id, [])

    def calls(self, method: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.name == method.lower()]

    async def wait_for(self, predicate: Any, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        async with self._changed:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("condition not reached on the fake Bot API")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), remaining)

    # ------------------------------------------------------------------ HTTP

    async def _params(self, request: web.Request, record: RecordedRequest) -> dict[str, Any]:
        if request.content_type == "application/json":
            record.body = await request.read()
            try:
                data = json.loads(record.body) if record.body else {}
            except ValueError as exc:
                raise _BadBody("Bad Request: can't parse JSON") from exc
            if not isinstance(data, dict):
                raise _BadBody("Bad Request: JSON object expected")
            # The server keeps a string as it is and any other value as its JSON text.
            return {k: v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}
        if request.method == "GET":
            return dict(request.query)
        if request.content_type != "multipart/form-data":
            record.body = await request.read()
        form: MultiDictProxy[Any] = await request.post()
        params: dict[str, Any] = {}
        uploads: dict[str, UploadedFile] = {}
        for key, value in form.items():
            if isinstance(value, str):
                params[key] = value
            else:
                uploads[key] = UploadedFile(value.filename, value.content_type, value.file.read())
        for key, value in list(params.items()):
            if value.startswith("attach://") and value[9:] in uploads:
                params[key] = uploads.pop(value[9:])
        params.update(uploads)  # uploads named after the parameter itself (PTB's way)
        return params

    async def _api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        record = RecordedRequest(method, {}, content_type=request.content_type)
        try:
            record.params = await self._params(request, record)
        except _BadBody as exc:
            record.outcome = "400"
            self.requests.append(record)
            return _error(400, str(exc))
        self.requests.append(record)
        try:
            if request.match_info["token"] != self.token:
                record.outcome = "unauthorized"
                return _error(401, "Unauthorized")
            name = method.lower()
            failures = self._failures.get(name)
            failure = failures.popleft() if failures else None
            if failure is None and self.outage and name in SENDING:
                failure = _Failure(0, drop=True)
            if failure is not None and failure.drop:
                record.outcome = "dropped"
                assert request.transport is not None
                request.transport.abort()
                raise asyncio.CancelledError  # nothing is answered, nothing is performed
            if failure is not None:
                record.outcome = str(failure.status)
                if failure.retry_after is not None:
                    return _error(
                        429,
                        f"Too Many Requests: retry after {failure.retry_after}",
                        {"retry_after": failure.retry_after},
                    )
                return _error(
                    failure.status, "Internal Server Error" if failure.status >= 500 else "Bad Request"
                )
            handler = getattr(self, f"_m_{name}", None)
            if handler is None:
                record.outcome = "404"
                return _error(404, "Not Found: method not found")
            result = await handler(record.params)
            if isinstance(result, web.StreamResponse):
                record.outcome = str(result.status)
                return result
            return web.json_response({"ok": True, "result": result})
        finally:
            async with self._changed:
                self._changed.notify_all()

    async def _download(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.Response(status=401)
        path = request.match_info["path"]
        for file_path, data in self._files.values():
            if file_path == path:
                return web.Response(body=data, content_type="application/octet-stream")
        return web.Response(status=404)

    # ------------------------------------------------------------------ methods

    async def _m_getme(self, params: dict[str, Any]) -> Any:
        return BOT_USER

    async def _m_getupdates(self, params: dict[str, Any]) -> Any:
        offset = int(params.get("offset") or 0)
        timeout = float(params.get("timeout") or 0)
        limit = int(params.get("limit") or 100)
        deadline = time.monotonic() + timeout
        async with self._changed:
            if offset:
                self._highest_confirmed = max(self._highest_confirmed, offset)
                self._pending = [u for u in self._pending if u["update_id"] >= offset]
            self._changed.notify_all()
            while not self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), remaining)
            return self._pending[:limit]

    async def _m_setwebhook(self, params: dict[str, Any]) -> Any:
        self.webhook = {"url": params["url"], "secret_token": params.get("secret_token")}
        return True

    async def _m_deletewebhook(self, params: dict[str, Any]) -> Any:
        self.webhook = None
        return True

    async def _m_getwebhookinfo(self, params: dict[str, Any]) -> Any:
        return {
            "url": (self.webhook or {}).get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": 0,
        }

    def _message(self, chat_id: int, kind: str, **extra: Any) -> tuple[BotMessage, dict[str, Any]]:
        message_id = next(self._message_ids)
        markup = extra.pop("reply_markup", None)
        shown = BotMessage(message_id, chat_id, kind, reply_markup=markup, **extra)
        self.screens.setdefault(chat_id, []).append(shown)
        payload: dict[str, Any] = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private", "first_name": "Phụ huynh"},
            "from": BOT_USER,
        }
        if markup:
            payload["reply_markup"] = markup
        return shown, payload

    async def _m_sendmessage(self, params: dict[str, Any]) -> Any:
        chat_id = int(params["chat_id"])
        text = params["text"]
        shown, payload = self._message(
            chat_id,
            "text",
            text=text,
            parse_mode=params.get("parse_mode"),
            reply_markup=_json(params.get("reply_markup")),
        )
        payload["text"] = shown.visible_text
        return payload

    async def _send_file(self, params: dict[str, Any], kind: str) -> Any:
        chat_id = int(params["chat_id"])
        upload = params.get(kind)
        if not isinstance(upload, UploadedFile):
            return _error(400, f"Bad Request: {kind} must be an upload here")
        shown, payload = self._message(
            chat_id,
            kind,
            text=params.get("caption", ""),
            parse_mode=params.get("parse_mode"),
            reply_markup=_json(params.get("reply_markup")),
            file=upload,
        )
        file_id, unique = self.add_file(upload.data, folder=f"{kind}s")
        if kind == "document":
            payload["document"] = {
                "file_id": file_id,
                "file_unique_id": unique,
                "file_name": upload.filename,
                "mime_type": upload.content_type,
                "file_size": len(upload.data),
            }
        else:
            payload["photo"] = [{"file_id": file_id, "file_unique_id": unique, "width": 800, "height": 600}]
        if shown.text:
            payload["caption"] = shown.visible_text
        return payload

    async def _m_senddocument(self, params: dict[str, Any]) -> Any:
        return await self._send_file(params, "document")

    async def _m_sendphoto(self, params: dict[str, Any]) -> Any:
        return await self._send_file(params, "photo")

    def _find(self, params: dict[str, Any]) -> BotMessage | None:
        chat_id, message_id = int(params["chat_id"]), int(params["message_id"])
        return next((m for m in self.screen(chat_id) if m.message_id == message_id), None)

    async def _m_editmessagereplymarkup(self, params: dict[str, Any]) -> Any:
        shown = self._find(params)
        if shown is None:
            return _error(400, "Bad Request: message to edit not found")
        markup = _json(params.get("reply_markup"))
        if markup == shown.reply_markup:
            return _error(400, "Bad Request: message is not modified")
        shown.reply_markup = markup
        return {
            "message_id": shown.message_id,
            "date": int(time.time()),
            "chat": {"id": shown.chat_id, "type": "private", "first_name": "Phụ huynh"},
            "text": shown.visible_text,
        }

    async def _m_editmessagetext(self, params: dict[str, Any]) -> Any:
        shown = self._find(params)
        if shown is None:
            return _error(400, "Bad Request: message to edit not found")
        shown.text = params["text"]
        shown.parse_mode = params.get("parse_mode")
        shown.reply_markup = _json(params.get("reply_markup"))
        return {
            "message_id": shown.message_id,
            "date": int(time.time()),
            "chat": {"id": shown.chat_id, "type": "private", "first_name": "Phụ huynh"},
            "text": shown.visible_text,
        }

    async def _m_answercallbackquery(self, params: dict[str, Any]) -> Any:
        return True

    async def _m_getfile(self, params: dict[str, Any]) -> Any:
        file_id = params["file_id"]
        if file_id not in self._files:
            return _error(400, "Bad Request: invalid file_id")
        path, data = self._files[file_id]
        return {
            "file_id": file_id,
            "file_unique_id": "u" + file_id,
            "file_size": len(data),
            "file_path": path,
        }

    # ------------------------------------------------------------------ webhook delivery

    async def _deliver_webhooks(self) -> None:
        """Like Telegram: POST each update to the registered URL, in order, with the secret header."""
        self._client = self._client or ClientSession(timeout=ClientTimeout(total=10))
        while True:
            update = await self._webhook_queue.get()
            try:
                hook = self.webhook or {}
                headers = {}
                if hook.get("secret_token"):
                    headers["X-Telegram-Bot-Api-Secret-Token"] = hook["secret_token"]
                async with self._client.post(hook["url"], json=update, headers=headers) as resp:
                    self.webhook_responses.append(resp.status)
            finally:
                self._webhook_queue.task_done()


def _json(value: Any) -> Any:
    if value is None or value == "":
        return None
    return json.loads(value) if isinstance(value, str) else value


def _error(code: int, description: str, parameters: dict[str, Any] | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=code)


# ---------------------------------------------------------------------- update builders


class FakeUser:
    """A Telegram user in a private chat with the bot: builds updates the way clients do."""

    def __init__(self, server: FakeBotApi, user_id: int, first_name: str = "Phụ huynh") -> None:
        self.server = server
        self.id = user_id
        self.first_name = first_name
        self._message_ids = itertools.count(1)

    @property
    def _chat(self) -> dict[str, Any]:
        return {"id": self.id, "type": "private", "first_name": self.first_name}

    @property
    def _from(self) -> dict[str, Any]:
        return {"id": self.id, "is_bot": False, "first_name": self.first_name, "language_code": "vi"}

    def _message(self, **content: Any) -> dict[str, Any]:
        return {
            "update_id": self.server.new_update_id(),
            "message": {
                "message_id": next(self._message_ids),
                "date": int(time.time()),
                "chat": self._chat,
                "from": self._from,
                **content,
            },
        }

    def text_update(self, text: str) -> dict[str, Any]:
        content: dict[str, Any] = {"text": text}
        if text.startswith("/"):
            length = len(text.split()[0])
            content["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
        return self._message(**content)

    def photo_update(self, data: bytes, media_group_id: str | None = None) -> dict[str, Any]:
        """Telegram offers several sizes; only the largest is the original picture."""
        sizes = []
        for width, height, blob in (
            (90, 60, b"thumb-" + data[:16]),
            (320, 240, b"medium-" + data[:32]),
            (1280, 960, data),
        ):
            file_id, unique = self.server.add_file(blob)
            sizes.append(
                {
                    "file_id": file_id,
                    "file_unique_id": unique,
                    "width": width,
                    "height": height,
                    "file_size": len(blob),
                }
            )
        content: dict[str, Any] = {"photo": sizes}
        if media_group_id:
            content["media_group_id"] = media_group_id
        return self._message(**content)

    def document_update(
        self, data: bytes, mime_type: str, file_name: str, size: int | None = None
    ) -> dict[str, Any]:
        file_id, unique = self.server.add_file(data, folder="documents", suffix=file_name.rsplit(".", 1)[-1])
        return self._message(
            document={
                "file_id": file_id,
                "file_unique_id": unique,
                "file_name": file_name,
                "mime_type": mime_type,
                "file_size": size if size is not None else len(data),
            }
        )

    def sticker_update(self) -> dict[str, Any]:
        file_id, unique = self.server.add_file(b"sticker", folder="stickers", suffix="webp")
        return self._message(
            sticker={
                "file_id": file_id,
                "file_unique_id": unique,
                "type": "regular",
                "width": 512,
                "height": 512,
                "is_animated": False,
                "is_video": False,
            }
        )

    def press_update(self, message: BotMessage, label: str) -> dict[str, Any]:
        button = next(b for b in message.buttons if b["text"] == label)
        return {
            "update_id": self.server.new_update_id(),
            "callback_query": {
                "id": self.server.new_callback_id(),
                "from": self._from,
                "chat_instance": f"ci-{self.id}",
                "data": button["callback_data"],
                "message": {
                    "message_id": message.message_id,
                    "date": int(time.time()),
                    "chat": self._chat,
                    "from": BOT_USER,
                    "text": message.visible_text,
                    "reply_markup": message.reply_markup,
                },
            },
        }

    # conveniences: push and return the update
    async def say(self, text: str) -> dict[str, Any]:
        update = self.text_update(text)
        await self.server.push(update)
        return update

    async def send_photo(self, data: bytes, media_group_id: str | None = None) -> dict[str, Any]:
        update = self.photo_update(data, media_group_id)
        await self.server.push(update)
        return update

    def screen(self) -> list[BotMessage]:
        return self.server.screen(self.id)

    def last_with_button(self, label: str) -> BotMessage:
        """The newest message still showing a button labelled `label`."""
        for message in reversed(self.screen()):
            if label in message.labels:
                return message
        raise LookupError(
            f"no visible button {label!r}; screen: {[m.visible_text[:40] for m in self.screen()]}"
        )

    async def press(self, label: str, message: BotMessage | None = None) -> dict[str, Any]:
        update = self.press_update(message or self.last_with_button(label), label)
        await self.server.push(update)
        return update
