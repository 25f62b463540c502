"""What every HTTP server of ours needs in front of its handlers (web chat, webhooks, backend).

- A header timeout: a connection that has not sent a complete request head within
  `header_timeout_s` (from connecting, or from the end of its previous answer) is closed.
  aiohttp's keep-alive timer is exactly that timer: it is armed at connect and after every
  answer, and closes a connection whose request has not been parsed yet.
- A body timeout (`body_deadline`): a request whose body has not fully arrived within
  `body_timeout_s` gets 408 and its connection is closed.
- Malformed requests (a 10,000-character URL, broken headers) get a bare 400 and one log
  line with the error's type: aiohttp's own answer echoes the offending line (a URL can
  carry a phone number) and logs a traceback per request.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

log = logging.getLogger("vssid.http")

HEADER_TIMEOUT_S = 10.0
BODY_TIMEOUT_S = 30.0
_STREAMED = ("multipart/form-data",)  # read part by part by its handler, under its own deadline


def media_type(request: web.BaseRequest) -> str:
    """The request's media type ("multipart/form-data"), lower case, without parameters.

    `request.content_type` parses the header with the standard library's e-mail parser and
    caches only 56 distinct values; a form's boundary is new on every upload, so each photo
    paid 1-2 ms of event-loop time for it (a third of the loop under 1,000 parents).
    """
    return request.headers.get("Content-Type", "").partition(";")[0].strip().lower()


class _QuietRequestHandler(RequestHandler):
    def handle_error(
        self,
        request: Any,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status != 400:
            return super().handle_error(request, status, exc, message)
        log.info("malformed HTTP request refused (%s)", type(exc).__name__ if exc else "bad request")
        if request.writer.output_size > 0:
            raise ConnectionError("the answer had started; the connection is closed instead")
        response = web.Response(status=400, text="400 Bad Request\n")
        response.force_close()
        return response


class _GuardedServer(web.Server):
    __slots__ = ()

    def __call__(self) -> RequestHandler:
        return _QuietRequestHandler(self, loop=self._loop, **self._kwargs)


class GuardedAppRunner(web.AppRunner):
    """`web.AppRunner` with the header timeout and quiet 400s (see the module docstring)."""

    def __init__(self, app: web.Application, *, header_timeout_s: float = HEADER_TIMEOUT_S, **kwargs: Any):
        kwargs.setdefault("keepalive_timeout", header_timeout_s)
        super().__init__(app, **kwargs)

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _GuardedServer  # same layout (no new slots): only the handler class differs
        return server


def body_deadline(body_timeout_s: float = BODY_TIMEOUT_S) -> Any:
    """Middleware: the whole body read within `body_timeout_s`, else 408 (streamed forms excepted)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        # Over the size limit the handler's own read refuses it at once (413): nothing to wait for.
        oversized = (request.content_length or 0) > request.client_max_size
        if request.body_exists and media_type(request) not in _STREAMED and not oversized:
            try:
                async with asyncio.timeout(body_timeout_s):
                    await request.read()  # kept by the request: json()/post() reuse it
            except TimeoutError:
                log.info("request body not received in %.0f s; connection closed", body_timeout_s)
                response = web.Response(status=408, text="408 Request Timeout\n")
                response.force_close()
                return response
        return await handler(request)

    return middleware
