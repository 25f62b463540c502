"""A fake Zalo OpenAPI + OAuth server on loopback, and a fake Zalo that posts signed webhooks.

It answers like Zalo: HTTP 200 with {"error": 0, ...} or {"error": <negative code>,
"message": ...}; `-216` for an access token it does not know (or one `expire_token()`
killed); single-use refresh tokens on `/v4/oa/access_token`. Everything received is
recorded in `requests` for the tests to read.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.channels.zalo import webhook_signature

APP_ID = "1234567890123456789"
OA_SECRET_KEY = "oa-secret-for-tests"
APP_SECRET_KEY = "app-secret-for-tests"


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: Any  # parsed JSON, form dict, or {"file": bytes, "filename": str}


@dataclass
class FakeZaloApi:
    access_token: str = "access-1"
    refresh_token: str = "refresh-1"
    requests: list[Recorded] = field(default_factory=list)
    images: dict[str, bytes] = field(default_factory=dict)
    fail_next: list[int] = field(default_factory=list)  # error codes for the next message calls
    refreshed: int = 0
    _expired: set[str] = field(default_factory=set)
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    server: TestServer | None = None

    # -- test controls --------------------------------------------------------------

    def expire_token(self) -> None:
        """The current access token starts answering -216, as Zalo does after its lifetime."""
        self._expired.add(self.access_token)

    def add_image(self, data: bytes) -> str:
        name = f"img-{next(self._ids)}.jpg"
        self.images[name] = data
        return self.url(f"/images/{name}")

    def url(self, path: str = "") -> str:
        assert self.server is not None
        return str(self.server.make_url(path))

    @property
    def messages(self) -> list[Recorded]:
        return [r for r in self.requests if r.path == "/v3.0/oa/message/cs"]

    def delivered(self, user_id: str) -> list[dict]:
        """The `message` objects the OA accepted for `user_id`, in order."""
        return [
            r.body["message"]
            for r in self.messages
            if r.body.get("_accepted") and r.body["recipient"]["user_id"] == user_id
        ]

    def texts(self, user_id: str) -> list[str]:
        return [m["text"] for m in self.delivered(user_id) if "text" in m]

    def last_buttons(self, user_id: str) -> list[dict]:
        for message in reversed(self.delivered(user_id)):
            buttons = (message.get("attachment") or {}).get("payload", {}).get("buttons")
            if buttons:
                return buttons
        return []

    # -- server -----------------------------------------------------------------------

    async def start(self) -> FakeZaloApi:
        app = web.Application(client_max_size=20 * 1024 * 1024)
        app.router.add_post("/v3.0/oa/message/cs", self._message)
        app.router.add_post("/v2.0/oa/upload/file", self._upload)
        app.router.add_post("/v2.0/oa/upload/image", self._upload)
        app.router.add_post("/v4/oa/access_token", self._oauth)
        app.router.add_get("/images/{name}", self._image)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return self

    async def close(self) -> None:
        if self.server:
            await self.server.close()

    def _token_error(self, request: web.Request) -> web.Response | None:
        token = request.headers.get("access_token", "")
        if token != self.access_token or token in self._expired:
            return web.json_response({"error": -216, "message": "Access token is invalid"})
        return None

    async def _message(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(Recorded(request.path, dict(request.headers), body))
        if (refused := self._token_error(request)) is not None:
            return refused
        if self.fail_next:
            code = self.fail_next.pop(0)
            return web.json_response({"error": code, "message": "Fake failure"})
        body["_accepted"] = True
        return web.json_response(
            {
                "error": 0,
                "message": "Success",
                "data": {"message_id": f"m{next(self._ids)}", "user_id": body["recipient"]["user_id"]},
            }
        )

    async def _upload(self, request: web.Request) -> web.Response:
        form = await request.post()
        file = form["file"]
        data = file.file.read()  # type: ignore[union-attr]
        self.requests.append(
            Recorded(request.path, dict(request.headers), {"file": data, "filename": file.filename})
        )  # type: ignore[union-attr]
        if (refused := self._token_error(request)) is not None:
            return refused
        key = "token" if request.path.endswith("/file") else "attachment_id"
        return web.json_response({"error": 0, "message": "Success", "data": {key: f"up-{next(self._ids)}"}})

    async def _oauth(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        self.requests.append(Recorded(request.path, dict(request.headers), form))
        if request.headers.get("secret_key") != APP_SECRET_KEY or form.get("app_id") != APP_ID:
            return web.json_response(
                {"error": -14002, "error_name": "Invalid app", "error_description": "bad secret"}
            )
        if form.get("grant_type") != "refresh_token" or form.get("refresh_token") != self.refresh_token:
            return web.json_response({"error": -14014, "error_name": "Invalid refresh token"})
        self.refreshed += 1
        self.access_token = f"access-{self.refreshed + 1}"
        self.refresh_token = f"refresh-{self.refreshed + 1}"
        return web.json_response(
            {"access_token": self.access_token, "refresh_token": self.refresh_token, "expires_in": "90000"}
        )

    async def _image(self, request: web.Request) -> web.Response:
        data = self.images.get(request.match_info["name"])
        if data is None:
            raise web.HTTPNotFound()
        return web.Response(body=data, content_type="image/jpeg")


# -- the other side: Zalo posting events to our webhook ------------------------------

_msg_ids = itertools.count(1)


def event(name: str, user_id: str, *, timestamp_ms: int | None = None, **message: Any) -> dict:
    """A Zalo OA webhook event as Zalo shapes it (user_send_text, user_send_image, follow...)."""
    timestamp = str(timestamp_ms if timestamp_ms is not None else int(time.time() * 1000))
    if name == "follow":
        return {
            "app_id": APP_ID,
            "oa_id": "579745863508352884",
            "event_name": "follow",
            "timestamp": timestamp,
            "source": "testing_webhook",
            "follower": {"id": user_id},
            "user_id_by_app": "55" + user_id,
        }
    message.setdefault("msg_id", f"msg{next(_msg_ids):08d}")
    return {
        "app_id": APP_ID,
        "user_id_by_app": "55" + user_id,
        "event_name": name,
        "timestamp": timestamp,
        "sender": {"id": user_id},
        "recipient": {"id": "579745863508352884"},
        "message": message,
    }


def text_event(user_id: str, text: str, **kwargs: Any) -> dict:
    return event("user_send_text", user_id, text=text, **kwargs)


def image_event(user_id: str, url: str, **kwargs: Any) -> dict:
    attachments = [{"type": "image", "payload": {"thumbnail": url, "url": url}}]
    return event("user_send_image", user_id, text="", attachments=attachments, **kwargs)


def signed(body: dict, *, secret: str = OA_SECRET_KEY, app_id: str = APP_ID) -> tuple[bytes, dict[str, str]]:
    """The raw body and headers Zalo would post for `body`."""
    raw = json.dumps(body, ensure_ascii=False).encode()
    signature = webhook_signature(app_id, raw, str(body["timestamp"]), secret)
    return raw, {"X-ZEvent-Signature": signature, "Content-Type": "application/json"}


async def wait_until(predicate: Any, within_s: float = 5.0) -> None:
    deadline = time.monotonic() + within_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)
