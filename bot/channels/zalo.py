"""The Zalo Official Account channel: signed webhooks in, OA messaging API out.

In:  `POST /zalo/webhook` with Zalo OA events. Each request must carry
     `X-ZEvent-Signature: mac=<sha256 hex of app_id + raw body + timestamp + OA secret key>`
     with the body's `timestamp` (ms) recent; anything else is refused before it is read
     further. `user_send_text`, `user_send_image` and `follow` are answered; the rest is
     acknowledged and ignored. Zalo expects an answer within seconds and redelivers
     otherwise, so the webhook acknowledges at once and the conversation runs in a task
     (per-user ordered); events are de-duplicated by `message.msg_id`.

Out: `POST {api_base}/v3.0/oa/message/cs` (header `access_token`). Buttons become an
     `oa.query.show` template whose payload is the button's label: Zalo posts that text back
     as the user's own message (visible in their chat), and the channel maps it back to the
     assistant's payload. PDFs go through `/v2.0/oa/upload/file`, images through
     `/v2.0/oa/upload/image`. An expired token (-216) is refreshed once through
     `{oauth_base}/v4/oa/access_token` and the call retried; the new tokens are kept in the
     data dir. Any other failure keeps the undelivered messages in an outbox (SQLite in the
     data dir) that is retried in order, at start and periodically.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import os
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bot.channels.base import Assistant
from bot.channels.locks import KeyedLocks
from bot.channels.outbox import Outbox
from bot.channels.text_split import split_text
from bot.channels.texts import channel_text
from bot.media_fetch import MediaFetcher, RefusedUrl, TooLarge
from bot.retry import ZALO, Failure, GaveUp, Verdict, retrying
from dialogs.messages import Inbound, Outbound

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/zalo/webhook"
TOKEN_EXPIRED = -216
MAX_TEXT_CHARS = 2000  # Zalo refuses longer OA texts
MAX_BUTTONS = 5  # per message; more are sent in follow-up messages
MAX_TITLE_CHARS = 100
MAX_QUERY_PAYLOAD = 1000
MAX_WEBHOOK_BYTES = 256 * 1024
MAX_IMAGE_BYTES = 10 * 1024 * 1024
# Where Zalo serves the pictures users send (ZALO_MEDIA_HOSTS replaces the list).
ZALO_MEDIA_HOSTS = ("zdn.vn", "zadn.vn", "zalo.me", "zaloapp.com")
SIGNATURE_MAX_AGE_S = 300
_SEEN_EVENTS = 20_000


class ZaloApiError(Exception):
    """A call to the OA API failed; `code` is Zalo's error number (None: network/HTTP)."""

    def __init__(self, code: int | None, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


def webhook_signature(app_id: str, raw_body: bytes, timestamp: str, oa_secret_key: str) -> str:
    """The X-ZEvent-Signature header value Zalo sends for this body."""
    digest = hashlib.sha256(app_id.encode() + raw_body + timestamp.encode() + oa_secret_key.encode())
    return "mac=" + digest.hexdigest()


class TokenStore:
    """The OA access/refresh tokens. A refresh token works once, so refreshed tokens are
    written to the data dir and win over the environment's, until the operator puts a
    different refresh token in the environment."""

    def __init__(self, path: Path, access_token: str, refresh_token: str) -> None:
        self.path = path
        self._env_mark = hashlib.sha256(refresh_token.encode()).hexdigest()
        self.access_token, self.refresh_token = access_token, refresh_token
        with contextlib.suppress(FileNotFoundError, ValueError, KeyError, TypeError):
            saved = json.loads(path.read_text())
            if saved["env_refresh_sha256"] == self._env_mark:
                self.access_token, self.refresh_token = saved["access_token"], saved["refresh_token"]

    def _write(self) -> None:
        data = {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "env_refresh_sha256": self._env_mark,
            "saved_at": int(time.time()),
        }
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(data, out)
        os.replace(tmp, self.path)

    async def update(self, access_token: str, refresh_token: str) -> None:
        self.access_token, self.refresh_token = access_token, refresh_token
        await asyncio.to_thread(self._write)


class ZaloOutbox(Outbox):
    """The shared outbox, plus the buttons last offered to each user (label -> payload), so a
    button tapped after a restart still reaches the assistant as a button."""

    schema = ("CREATE TABLE IF NOT EXISTS offered (user_id TEXT PRIMARY KEY, buttons TEXT NOT NULL)",)
    user_tables = ("offered",)  # button labels can repeat what the user typed ("Giữ nguyên: …")

    def _set_offered(self, user_id: str, offered: dict[str, str]) -> None:
        with self._db() as db:
            db.execute(
                "INSERT OR REPLACE INTO offered (user_id, buttons) VALUES (?, ?)",
                (user_id, self.seal_json(offered)),
            )

    def _get_offered(self, user_id: str) -> dict[str, str]:
        with contextlib.closing(self._connect()) as db:
            row = db.execute("SELECT buttons FROM offered WHERE user_id = ?", (user_id,)).fetchone()
        return self.open_json(row[0]) if row else {}

    async def set_offered(self, user_id: str, offered: dict[str, str]) -> None:
        await self._run(self._set_offered, user_id, offered)

    async def get_offered(self, user_id: str) -> dict[str, str]:
        return await self._run(self._get_offered, user_id)


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
        self._app_secret_key = app_secret_key
        self.api_base = api_base.rstrip("/")
        self.oauth_base = oauth_base.rstrip("/")
        self.max_image_bytes = max_image_bytes
        self.signature_max_age_s = signature_max_age_s
        self.retry_interval_s = retry_interval_s
        self._http_timeout = aiohttp.ClientTimeout(total=http_timeout_s)
        # Image URLs come in webhook events: fetched only from Zalo's media hosts, never inside.
        self.media = MediaFetcher(
            media_hosts,
            max_bytes=max_image_bytes,
            timeout_s=http_timeout_s,
            private_addresses_ok=private_media_ok,
        )
        data_dir.mkdir(parents=True, exist_ok=True)
        self.tokens = TokenStore(data_dir / "zalo-tokens.json", access_token, refresh_token)
        self.outbox = ZaloOutbox(data_dir / "zalo-outbox.sqlite3")
        self._session: aiohttp.ClientSession | None = None
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._tasks: set[asyncio.Task] = set()
        self._conversation_locks = KeyedLocks()
        self._delivery_locks = KeyedLocks()
        self._refresh_lock = asyncio.Lock()
        self._backlog: set[str] = set()
        self._retry_task: asyncio.Task | None = None
        self._accepting = False
        self._stopped = asyncio.Event()

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
            media_hosts=tuple(settings.zalo_media_hosts.split(",")),
        )

    # -- lifecycle ----------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post(WEBHOOK_PATH, self._webhook)

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=self._http_timeout)
        self._backlog = set(await self.outbox.counts())
        if self._backlog:
            log.info("zalo: %d user(s) have messages kept for retry", len(self._backlog))
        if not self.tokens.access_token:
            try:
                await self._refresh("")
            except ZaloApiError as exc:
                log.warning(
                    "zalo: ZALO_ACCESS_TOKEN is empty and could not be obtained (%s); replies will be kept",
                    exc,
                )
        self._accepting = True
        self._stopped.clear()
        self._retry_task = asyncio.create_task(self._retry_loop(), name="zalo-outbox-retry")

    async def stop(self) -> None:
        """Refuse new events (Zalo redelivers them later), finish the ones under way, close."""
        self._accepting = False
        await self.idle()
        self._stopped.set()
        if self._retry_task:
            await self._retry_task
            self._retry_task = None
        if self._session:
            await self._session.close()
            self._session = None
        await self.media.close()

    async def idle(self) -> None:
        """Wait until every accepted event has been answered (or kept for retry)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- webhook ------------------------------------------------------------------------

    def _verify(self, raw: bytes, header: str | None) -> tuple[int, dict | None]:
        """(HTTP status, event): 200 with the event when authentic, else the refusal status."""
        if not header or not header.startswith("mac="):
            return 401, None
        try:
            event = json.loads(raw)
        except ValueError:
            return 400, None
        if not isinstance(event, dict) or "timestamp" not in event:
            return 403, None
        timestamp = str(event["timestamp"])
        expected = webhook_signature(self.app_id, raw, timestamp, self._oa_secret_key)
        if not hmac.compare_digest(expected.encode(), header.strip().encode()):
            return 403, None
        try:
            age_s = abs(time.time() - int(timestamp) / 1000)
        except ValueError:
            return 403, None
        if age_s > self.signature_max_age_s:
            return 403, None
        if event.get("app_id") not in (None, "", self.app_id):
            return 403, None
        return 200, event

    async def _webhook(self, request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > MAX_WEBHOOK_BYTES:
            return web.json_response({"error": "too_large"}, status=413)
        # Read whole (bounded by the app's client_max_size; within the body deadline of
        # bot.http_guard when served by `run`), then held to the webhook's own bound.
        raw = await request.read()
        if len(raw) > MAX_WEBHOOK_BYTES:
            return web.json_response({"error": "too_large"}, status=413)
        status, event = self._verify(raw, request.headers.get("X-ZEvent-Signature"))
        if event is None:
            log.warning("zalo webhook: refused an unauthenticated request (%d)", status)
            return web.json_response({"error": "unauthorized"}, status=status)
        if not self._accepting:
            return web.json_response({"error": "shutting_down"}, status=503)

        parsed = self._parse_event(event)
        if parsed is None:
            return web.json_response({"ok": True, "ignored": True})
        user_id, event_id, action = parsed
        if event_id in self._seen:
            return web.json_response({"ok": True, "duplicate": True})
        self._seen[event_id] = None
        while len(self._seen) > _SEEN_EVENTS:
            self._seen.popitem(last=False)

        task = asyncio.create_task(self._process(user_id, event_id, action))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return web.json_response({"ok": True})

    @staticmethod
    def _parse_event(event: dict) -> tuple[str, str, dict] | None:
        """(user id, event id, what to do) for the events we answer; None for the rest."""
        name = event.get("event_name")
        message = event.get("message") if isinstance(event.get("message"), dict) else {}
        if name in ("user_send_text", "user_send_image"):
            user_id = str((event.get("sender") or {}).get("id") or "")
            msg_id = str(message.get("msg_id") or "")
            if not user_id or not msg_id:
                return None
            if name == "user_send_text":
                text = message.get("text")
                return (user_id, msg_id, {"text": text}) if isinstance(text, str) and text.strip() else None
            urls = [
                (a.get("payload") or {}).get("url")
                for a in message.get("attachments") or []
                if isinstance(a, dict) and a.get("type", "image") == "image"
            ]
            urls = [u for u in urls if isinstance(u, str)]
            return (user_id, msg_id, {"image_url": urls[0]}) if urls else None
        if name == "follow":
            user_id = str((event.get("follower") or {}).get("id") or "")
            return (
                (user_id, f"follow:{user_id}:{event.get('timestamp')}", {"text": "/start"})
                if user_id
                else None
            )
        return None

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
        if not replies:
            return
        offered = {self._title(b.label): b.payload for o in replies for b in o.buttons}
        # Only a batch with buttons replaces the map: a notice without buttons arriving
        # mid-step must not orphan the step's buttons (stale taps the engine handles itself).
        if offered:
            await self.outbox.set_offered(user_id, offered)
        await self._deliver(user_id, self._specs(replies))

    async def forget(self, user_id: str) -> None:
        """The user deleted their data: drop the messages kept for them and their buttons.

        Runs under the user's delivery lock, so a retry under way finishes first and nothing
        for them is written back afterwards.
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
                    await self._send_spec(user_id, spec)
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
        for item_id, _, spec in await self.outbox.items(user_id):
            try:
                await self._send_spec(user_id, spec)
            except ZaloApiError as exc:
                await self.outbox.failed(item_id, str(exc))
                return
            await self.outbox.remove(item_id)
        self._backlog.discard(user_id)

    async def retry_outbox(self) -> None:
        """Try again every message kept after a failure, oldest first, user by user."""
        for user_id in sorted(self._backlog):
            await self._delivery_locks.run(user_id, lambda user_id=user_id: self._flush(user_id))

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

    async def _send_spec(self, user_id: str, spec: dict) -> None:
        recipient = {"user_id": user_id}
        if spec["kind"] == "text":
            message: dict = {"text": spec["text"]}
            if spec.get("buttons"):
                message["attachment"] = {"type": "template", "payload": {"buttons": spec["buttons"]}}
        else:
            path = Path(spec["path"])
            try:
                data = await asyncio.to_thread(path.read_bytes)
            except OSError:
                # Cannot get better by retrying: say so loudly rather than loop forever.
                log.error("zalo: a %s to send is missing from the data directory; skipped", spec["kind"])
                return
            if spec["kind"] == "file":
                result = await self._upload("/v2.0/oa/upload/file", path.name, data, "application/pdf")
                message = {"attachment": {"type": "file", "payload": {"token": result["data"]["token"]}}}
            else:
                content_type = "image/png" if path.suffix.lower() == ".png" else "image/jpeg"
                result = await self._upload("/v2.0/oa/upload/image", path.name, data, content_type)
                attachment_id = result["data"]["attachment_id"]
                elements = [{"media_type": "image", "attachment_id": attachment_id}]
                message = {
                    "attachment": {
                        "type": "template",
                        "payload": {"template_type": "media", "elements": elements},
                    }
                }
        await self._call("/v3.0/oa/message/cs", json_body={"recipient": recipient, "message": message})

    async def _upload(self, path: str, filename: str, data: bytes, content_type: str) -> dict:
        def form() -> aiohttp.FormData:
            payload = aiohttp.FormData()
            payload.add_field("file", data, filename=filename, content_type=content_type)
            return payload

        result = await self._call(path, form=form)
        if not isinstance(result.get("data"), dict):
            raise ZaloApiError(None, "upload answered without data")
        return result

    async def _call(self, path: str, *, json_body: dict | None = None, form: Any = None) -> dict:
        """POST to the OA API; an expired token is refreshed and the call retried (`ZALO` policy)."""
        if self._session is None:
            raise ZaloApiError(None, "channel not started")

        async def refresh(exc: BaseException) -> None:
            assert isinstance(exc, _TokenExpired)
            await self._refresh(exc.token)

        try:
            return await retrying(
                lambda: self._post(path, json_body, form),
                ZALO,
                _classify,
                before_retry=refresh,
                name="zalo call",
            )
        except GaveUp as exc:
            raise ZaloApiError(TOKEN_EXPIRED, str(exc.__cause__)) from None

    async def _post(self, path: str, json_body: dict | None, form: Any) -> dict:
        """One POST; raises _TokenExpired on -216 (the caller refreshes) and ZaloApiError otherwise."""
        assert self._session is not None
        token = self.tokens.access_token
        try:
            async with self._session.post(
                self.api_base + path,
                json=json_body,
                data=form() if form else None,
                headers={"access_token": token},
            ) as response:
                try:
                    result = await response.json(content_type=None)
                except ValueError:
                    raise ZaloApiError(None, f"HTTP {response.status}, not JSON") from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ZaloApiError(None, type(exc).__name__) from exc
        if not isinstance(result, dict):
            raise ZaloApiError(None, "unexpected answer")
        code = result.get("error", 0)
        if code == 0:
            return result
        if code == TOKEN_EXPIRED:
            raise _TokenExpired(token, str(result.get("message", "")))
        raise ZaloApiError(code, str(result.get("message", "")))

    async def _refresh(self, stale_token: str) -> None:
        async with self._refresh_lock:
            if self.tokens.access_token != stale_token:
                return  # another message refreshed it meanwhile
            if not (self.tokens.refresh_token and self._app_secret_key and self.app_id):
                log.error(
                    "zalo: access token expired; set ZALO_REFRESH_TOKEN and ZALO_APP_SECRET_KEY to renew it"
                )
                raise ZaloApiError(TOKEN_EXPIRED, "access token expired and cannot be refreshed")
            assert self._session is not None
            form = {
                "refresh_token": self.tokens.refresh_token,
                "app_id": self.app_id,
                "grant_type": "refresh_token",
            }
            try:
                async with self._session.post(
                    self.oauth_base + "/v4/oa/access_token",
                    data=form,
                    headers={"secret_key": self._app_secret_key},
                ) as response:
                    result = await response.json(content_type=None)
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                raise ZaloApiError(None, f"token refresh failed: {type(exc).__name__}") from exc
            if not isinstance(result, dict) or not result.get("access_token"):
                code = result.get("error") if isinstance(result, dict) else None
                log.error("zalo: token refresh refused (error %s)", code)
                raise ZaloApiError(code if isinstance(code, int) else None, "token refresh refused")
            await self.tokens.update(
                result["access_token"], result.get("refresh_token") or self.tokens.refresh_token
            )
            log.info("zalo: access token refreshed and saved")


class _TokenExpired(Exception):
    """Zalo answered -216 to a call made with `token`."""

    def __init__(self, token: str, message: str) -> None:
        super().__init__(message)
        self.token = token


def _classify(exc: BaseException) -> Verdict:
    """Only an expired token is worth a retry (after its refresh); the rest goes to the outbox."""
    return (Failure.TRANSIENT, 0.0) if isinstance(exc, _TokenExpired) else None
