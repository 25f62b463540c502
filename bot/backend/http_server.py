"""The stub backend as an HTTP service (`vssid-bot backend serve`).

JSON endpoints mirror every `RegistrationBackend` method plus the operator actions, so
the bot can run against a separate process exactly as it would against the real portal,
and `HttpBackend`'s timeouts and retries meet real sockets. Faults can be injected (next
N requests answer 503, or are processed and then held past the client's timeout: a lost
response, the case idempotency keys exist for).

Personal data stays out of URLs (ID numbers, codes and names travel in JSON bodies) and
the access log records method, path and status only.

Every endpoint but `/health` needs `Authorization: Bearer <VSSID_BACKEND_TOKEN>` (compared
in constant time); without a configured token `serve` keeps to loopback and makes one in
the data dir. `/_admin/*` (outages, injected faults) exists only when asked for (`testing`).
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import secrets
import signal
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from pydantic import ValidationError

from bot.backend.errors import InvalidTransition, UnknownReceipt
from bot.backend.stub import StubBackend
from bot.http_guard import body_deadline
from dialogs.ports import BackendUnavailable, Declaration

log = logging.getLogger(__name__)

API = "/v1"
FaultMode = Literal["503", "hang"]


@dataclass
class Faults:
    """Failure modes for the next requests to the API (not /health or /_admin)."""

    mode: FaultMode | None = None
    remaining: int = 0
    hang_s: float = 30.0
    api_requests: int = 0  # every API request seen, faulty or not: tests count the retries
    _release: asyncio.Event = field(default_factory=asyncio.Event)

    def inject(self, count: int, mode: FaultMode = "503", hang_s: float = 30.0) -> None:
        self.mode, self.remaining, self.hang_s = mode, max(count, 0), hang_s
        self._release = asyncio.Event()

    def clear(self) -> None:
        self.mode, self.remaining = None, 0
        self._release.set()

    def take(self) -> FaultMode | None:
        self.api_requests += 1
        if self.mode is None or self.remaining <= 0:
            return None
        self.remaining -= 1
        return self.mode

    async def hang(self) -> None:
        """Hold a response for hang_s, or until the server shuts down."""
        try:
            await asyncio.wait_for(self._release.wait(), self.hang_s)
        except TimeoutError:
            pass


STUB = web.AppKey("stub", StubBackend)
FAULTS = web.AppKey("faults", Faults)
TOKEN = web.AppKey("token", str)
OPEN_PATHS = frozenset({"/health"})


class PathOnlyAccessLogger(AbstractAccessLogger):
    """Method, path, status, time: never the query string (it may hold a phone number)."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info("%s %s %s %.3fs", request.method, request.path, response.status, time)


def _error(http_status: int, code: str, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": code, "message": message, **extra}, status=http_status)


@web.middleware
async def _authenticate(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.path not in OPEN_PATHS:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        expected = request.app[TOKEN]
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), expected.encode()):
            return _error(401, "unauthorized", "a valid 'Authorization: Bearer <token>' header is required")
    return await handler(request)


@web.middleware
async def _faults_and_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    faults = request.app[FAULTS]
    fault = faults.take() if request.path.startswith(API + "/") else None
    if fault == "503":
        return _error(503, "unavailable", "injected fault: service unavailable")
    try:
        response = await handler(request)
    except UnknownReceipt as exc:
        return _error(404, "unknown_receipt", str(exc))
    except InvalidTransition as exc:
        return _error(409, "invalid_transition", str(exc), status=exc.status)
    except BackendUnavailable as exc:
        return _error(503, "unavailable", str(exc))
    except ValidationError as exc:
        # Field locations and messages only: the input values may be personal data.
        problems = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors(include_url=False)]
        return _error(400, "invalid", "the declaration is not well-formed", problems=problems)
    except (ValueError, KeyError, TypeError) as exc:
        # The exception's type only: its text may repeat a value from the body.
        return _error(400, "invalid", f"bad request ({type(exc).__name__})")
    if fault == "hang":
        await faults.hang()
    return response


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.body_exists:
        return {}
    data = await request.json()
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object")
    return data


def _json(model: Any, status: int = 200) -> web.Response:
    return web.json_response(model.model_dump(mode="json"), status=status)


async def submit(request: web.Request) -> web.Response:
    key = request.headers.get("Idempotency-Key", "").strip()
    if not key:
        return _error(400, "invalid", "the Idempotency-Key header is required")
    declaration = Declaration.model_validate(await _body(request))
    result = await request.app[STUB].submit(declaration, key)
    return _json(result, status=201 if result.created else 200)


async def list_declarations(request: web.Request) -> web.Response:
    return web.json_response(await request.app[STUB].list_declarations())


async def status(request: web.Request) -> web.Response:
    receipt = request.match_info["receipt"]
    result = await request.app[STUB].status(receipt)
    if result is None:
        raise UnknownReceipt(receipt)
    return _json(result)


async def send_declaration_otp(request: web.Request) -> web.Response:
    return _json(await request.app[STUB].send_declaration_otp(request.match_info["receipt"]))


async def verify_declaration_otp(request: web.Request) -> web.Response:
    body = await _body(request)
    return _json(
        await request.app[STUB].verify_declaration_otp(request.match_info["receipt"], str(body["code"]))
    )


async def approve(request: web.Request) -> web.Response:
    return _json(await request.app[STUB].approve(request.match_info["receipt"]))


async def reject(request: web.Request) -> web.Response:
    body = await _body(request)
    return _json(await request.app[STUB].reject(request.match_info["receipt"], str(body.get("reason") or "")))


async def send_account_otp(request: web.Request) -> web.Response:
    body = await _body(request)
    stub = request.app[STUB]
    return _json(await stub.send_account_otp(str(body["social_insurance_code"]), str(body["phone"])))


async def verify_account_otp(request: web.Request) -> web.Response:
    body = await _body(request)
    stub = request.app[STUB]
    return _json(await stub.verify_account_otp(str(body["social_insurance_code"]), str(body["code"])))


async def id_verified(request: web.Request) -> web.Response:
    body = await _body(request)
    return web.json_response({"verified": await request.app[STUB].id_verified(str(body["id_number"]))})


async def lookup_code(request: web.Request) -> web.Response:
    body = await _body(request)
    code = await request.app[STUB].lookup_social_insurance_code(
        str(body["full_name"]), date.fromisoformat(str(body["date_of_birth"])), int(body["province_code"])
    )
    return web.json_response({"social_insurance_code": code})


async def events(request: web.Request) -> web.Response:
    after = int(request.query.get("after", "0"))
    limit = int(request.query.get("limit", "100"))
    return web.json_response(
        [e.model_dump(mode="json") for e in await request.app[STUB].events(after, limit)]
    )


async def sms(request: web.Request) -> web.Response:
    return web.json_response(await request.app[STUB].sms_outbox(request.query.get("phone") or None))


async def health(request: web.Request) -> web.Response:
    stub = request.app[STUB]
    return web.json_response({"ok": not stub.outage}, status=503 if stub.outage else 200)


async def set_faults(request: web.Request) -> web.Response:
    """{"mode": "503"|"hang", "count": N, "hang_s": S}; DELETE clears."""
    faults = request.app[FAULTS]
    if request.method == "DELETE":
        faults.clear()
    else:
        body = await _body(request)
        mode = body.get("mode", "503")
        if mode not in ("503", "hang"):
            return _error(400, "invalid", "mode must be '503' or 'hang'")
        faults.inject(int(body.get("count", 1)), mode, float(body.get("hang_s", 30.0)))
    return web.json_response({"mode": faults.mode, "remaining": faults.remaining})


async def set_outage(request: web.Request) -> web.Response:
    """{"on": true|false}: every API call answers 503 while on."""
    body = await _body(request)
    request.app[STUB].set_outage(bool(body.get("on", True)))
    return web.json_response({"outage": request.app[STUB].outage})


def _api_routes() -> list[web.RouteDef]:
    return [
        web.post(f"{API}/declarations", submit),
        web.get(f"{API}/declarations", list_declarations),
        web.get(f"{API}/declarations/{{receipt}}", status),
        web.post(f"{API}/declarations/{{receipt}}/otp", send_declaration_otp),
        web.post(f"{API}/declarations/{{receipt}}/otp/verify", verify_declaration_otp),
        web.post(f"{API}/declarations/{{receipt}}/approve", approve),
        web.post(f"{API}/declarations/{{receipt}}/reject", reject),
        web.post(f"{API}/accounts/otp", send_account_otp),
        web.post(f"{API}/accounts/otp/verify", verify_account_otp),
        web.post(f"{API}/ids/verified", id_verified),
        web.post(f"{API}/social-insurance-codes/lookup", lookup_code),
        web.get(f"{API}/events", events),
        web.get(f"{API}/sms", sms),
        web.get("/health", health),
    ]


def _admin_routes() -> list[web.RouteDef]:
    """Test hooks, mounted only with `--testing`."""
    return [
        web.post("/_admin/faults", set_faults),
        web.delete("/_admin/faults", set_faults),
        web.post("/_admin/outage", set_outage),
    ]


async def _release_held_faults(app: web.Application) -> None:
    app[FAULTS].clear()  # release held responses so shutdown does not wait for them


async def _close_stub(app: web.Application) -> None:
    await app[STUB].close()


def create_app(
    stub: StubBackend,
    faults: Faults | None = None,
    *,
    token: str,
    testing: bool = False,
    close_stub: bool = False,
) -> web.Application:
    """The service; `token` is required on every call but /health, `testing` adds /_admin/*."""
    if not token:
        raise ValueError("the backend service needs a token")
    app = web.Application(
        middlewares=[body_deadline(), _authenticate, _faults_and_errors], client_max_size=1024 * 1024
    )
    app[STUB] = stub
    app[FAULTS] = faults or Faults()
    app[TOKEN] = token
    app.add_routes(_api_routes())
    if testing:
        app.add_routes(_admin_routes())
    app.on_shutdown.append(_release_held_faults)
    if close_stub:
        app.on_cleanup.append(_close_stub)
    return app


class ServeRefused(Exception):
    """`serve` will not start as configured; the message says what to change."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def service_token(host: str, settings: Any) -> str:
    """VSSID_BACKEND_TOKEN; without it, loopback only, with a token file made in the data dir."""
    if settings.backend_token:
        return settings.backend_token
    if not is_loopback(host):
        raise ServeRefused(
            f"refusing to listen on {host} without VSSID_BACKEND_TOKEN: anyone who reaches the port "
            "could read every declaration (set a long random token, e.g. `openssl rand -hex 32`)"
        )
    from bot.private import write_private

    token = settings.backend_token_value()
    if not token:
        token = secrets.token_urlsafe(32)
        write_private(settings.backend_token_file, token.encode())
    return token


def serve(host: str, port: int, data_dir: Path | None = None, *, testing: bool = False) -> None:
    """Run the service until interrupted, on the stub store of the data dir."""
    from bot.config import load_settings
    from bot.logs import setup_logging
    from bot.private import secure_tree

    settings = load_settings(data_dir=data_dir)
    setup_logging(settings.log_level)
    token = service_token(host, settings)
    secure_tree(settings.data_dir)
    stub = StubBackend(settings.backend_store_url, keyring=settings.keyring())
    app = create_app(stub, token=token, testing=testing, close_stub=True)
    where = "VSSID_BACKEND_TOKEN" if settings.backend_token else str(settings.backend_token_file)
    testing_note = "; /_admin/* on for testing" if testing else ""
    announce = f"Stub backend on http://{host}:{port}{API} (store: {settings.data_dir}; token: {where}{testing_note})"
    asyncio.run(_serve_until_stopped(app, host, port, announce))


async def _serve_until_stopped(app: web.Application, host: str, port: int, announce: str) -> None:
    from bot.http_guard import GuardedAppRunner

    runner = GuardedAppRunner(
        app,
        access_log_class=PathOnlyAccessLogger,
        access_log=logging.getLogger("bot.backend.access"),
        shutdown_timeout=5.0,
    )
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await web.TCPSite(runner, host, port).start()
        print(announce, flush=True)
        await stop.wait()
    finally:
        await runner.cleanup()
