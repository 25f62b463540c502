"""What goes out: the OA messaging API (messages, uploads) and the access token's upkeep.

An expired token (-216) is refreshed once through `{oauth_base}/v4/oa/access_token` and the
call retried (`bot.retry.ZALO`); a refresh token works once, so refreshed tokens are kept
in the data dir. Any other failure raises `ZaloApiError` for the channel to keep the
message in the outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import aiohttp

from bot.crypto import open_file
from bot.retry import ZALO, Failure, GaveUp, Verdict, retrying

log = logging.getLogger("bot.channels.zalo")

TOKEN_EXPIRED = -216
MAX_TEXT_CHARS = 2000  # Zalo refuses longer OA texts
MAX_BUTTONS = 5  # per message; more are sent in follow-up messages
MAX_TITLE_CHARS = 100
MAX_QUERY_PAYLOAD = 1000
MAX_IMAGE_BYTES = 10 * 1024 * 1024
# Where Zalo serves the pictures users send (ZALO_MEDIA_HOSTS replaces the list).
ZALO_MEDIA_HOSTS = ("zdn.vn", "zadn.vn", "zalo.me", "zaloapp.com")


class ZaloApiError(Exception):
    """A call to the OA API failed; `code` is Zalo's error number (None: network/HTTP)."""

    def __init__(self, code: int | None, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


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


class ZaloApi:
    """The OA API calls the channel makes, on one HTTP session (`open` .. `close`)."""

    def __init__(
        self,
        tokens: TokenStore,
        *,
        app_id: str,
        app_secret_key: str,
        api_base: str,
        oauth_base: str,
        timeout_s: float,
    ) -> None:
        self.tokens = tokens
        self.app_id = app_id
        self._app_secret_key = app_secret_key
        self.api_base = api_base.rstrip("/")
        self.oauth_base = oauth_base.rstrip("/")
        self.timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None
        self._refresh_lock = asyncio.Lock()

    async def open(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_s))
        if not self.tokens.access_token:
            try:
                await self.refresh("")
            except ZaloApiError as exc:
                log.warning(
                    "zalo: ZALO_ACCESS_TOKEN is empty and could not be obtained (%s); replies will be kept",
                    exc,
                )

    async def close(self) -> None:
        if self._session:
            await self._session.close()
            self._session = None

    async def send_spec(self, user_id: str, spec: dict) -> None:
        """Send one message the channel described (`kind` text, image or file)."""
        if spec["kind"] == "text":
            message: dict = {"text": spec["text"]}
            if spec.get("buttons"):
                message["attachment"] = {"type": "template", "payload": {"buttons": spec["buttons"]}}
        else:
            path = Path(spec["path"])
            try:
                data = await asyncio.to_thread(open_file, path)  # sealed on disk, clear in memory
            except OSError:
                # Cannot get better by retrying: say so loudly rather than loop forever.
                log.error("zalo: a %s to send is missing from the data directory; skipped", spec["kind"])
                return
            message = await self._file_message(spec["kind"], path, data)
        await self.call(
            "/v3.0/oa/message/cs", json_body={"recipient": {"user_id": user_id}, "message": message}
        )

    async def _file_message(self, kind: str, path: Path, data: bytes) -> dict:
        if kind == "file":
            result = await self._upload("/v2.0/oa/upload/file", path.name, data, "application/pdf")
            return {"attachment": {"type": "file", "payload": {"token": result["data"]["token"]}}}
        content_type = "image/png" if path.suffix.lower() == ".png" else "image/jpeg"
        result = await self._upload("/v2.0/oa/upload/image", path.name, data, content_type)
        elements = [{"media_type": "image", "attachment_id": result["data"]["attachment_id"]}]
        return {
            "attachment": {"type": "template", "payload": {"template_type": "media", "elements": elements}}
        }

    async def _upload(self, path: str, filename: str, data: bytes, content_type: str) -> dict:
        def form() -> aiohttp.FormData:
            payload = aiohttp.FormData()
            payload.add_field("file", data, filename=filename, content_type=content_type)
            return payload

        result = await self.call(path, form=form)
        if not isinstance(result.get("data"), dict):
            raise ZaloApiError(None, "upload answered without data")
        return result

    async def call(self, path: str, *, json_body: dict | None = None, form: Any = None) -> dict:
        """POST to the OA API; an expired token is refreshed and the call retried (`ZALO` policy)."""
        if self._session is None:
            raise ZaloApiError(None, "channel not started")

        async def refresh(exc: BaseException) -> None:
            assert isinstance(exc, _TokenExpired)
            await self.refresh(exc.token)

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

    async def refresh(self, stale_token: str) -> None:
        async with self._refresh_lock:
            if self.tokens.access_token != stale_token:
                return  # another message refreshed it meanwhile
            if not (self.tokens.refresh_token and self._app_secret_key and self.app_id):
                log.error(
                    "zalo: access token expired; set ZALO_REFRESH_TOKEN and ZALO_APP_SECRET_KEY to renew it"
                )
                raise ZaloApiError(TOKEN_EXPIRED, "access token expired and cannot be refreshed")
            result = await self._ask_for_tokens()
            await self.tokens.update(
                result["access_token"], result.get("refresh_token") or self.tokens.refresh_token
            )
            log.info("zalo: access token refreshed and saved")

    async def _ask_for_tokens(self) -> dict:
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
        return result


class _TokenExpired(Exception):
    """Zalo answered -216 to a call made with `token`."""

    def __init__(self, token: str, message: str) -> None:
        super().__init__(message)
        self.token = token


def _classify(exc: BaseException) -> Verdict:
    """Only an expired token is worth a retry (after its refresh); the rest goes to the outbox."""
    return (Failure.TRANSIENT, 0.0) if isinstance(exc, _TokenExpired) else None
