"""`vssid-bot run`: one process serving every configured channel.

    check_config(settings)            -> problems found before anything starts
    await start_service(settings)     -> Service (HTTP server up, channels started)
    await service.stop()              -> stop taking requests, finish in-flight ones, close
    serve(settings)                   -> the above until SIGINT/SIGTERM (the CLI command)

One aiohttp app carries the web chat (always), the Zalo webhook (when ZALO_OA_SECRET_KEY
is set) and the Telegram webhook (TELEGRAM_MODE=webhook); Telegram polling runs beside it.
Channels that can push (Zalo, Telegram) are registered with the assistant (`add_channel`)
so its notification pump (`start_notifications()`, started once the channels are up) can
reach users; the web page fetches the notices kept for it. The assistant is `close()`d
after every channel has stopped.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer
from aiohttp import web

from bot.channels.web import CLIENT_MAX_SIZE, DocumentLinks, WebChannel
from bot.config import Settings, load_settings
from bot.http_guard import GuardedAppRunner, body_deadline
from dialogs.messages import Outbound

log = logging.getLogger("vssid.run")

SHUTDOWN_GRACE_S = 30.0

# (settings attribute, environment name) of every URL an operator may configure.
URL_SETTINGS = (
    ("backend_url", "VSSID_BACKEND_URL"),
    ("public_url", "VSSID_PUBLIC_URL"),
    ("zalo_api_base", "ZALO_API_BASE"),
    ("zalo_oauth_base", "ZALO_OAUTH_BASE"),
    ("telegram_api_base", "TELEGRAM_API_BASE"),
)


class ConfigError(Exception):
    """The configuration cannot work; the message tells the operator what to change."""


def _url_problem(value: str) -> str | None:
    if any(c.isspace() for c in value):
        return "contains spaces"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as exc:
        return str(exc)
    if parts.scheme not in ("http", "https"):
        return "must start with http:// or https://"
    if not parts.hostname:
        return "has no host name"
    return None


def _redact(url: str) -> str:
    """A URL fit for logs: user:password@ removed."""
    parts = urlsplit(url)
    if parts.username or parts.password:
        netloc = parts.hostname or ""
        if parts.port:
            netloc += f":{parts.port}"
        parts = parts._replace(netloc=netloc)
    return parts.geturl()


def _data_dir_problem(data_dir: Path) -> str | None:
    try:
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        probe = data_dir / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        return f"data directory {data_dir} is not writable ({exc.strerror or exc}); set VSSID_DATA_DIR or --data-dir"
    return None


def check_config(settings: Settings) -> list[str]:
    """Everything wrong with `settings`, as sentences an operator can act on."""
    problems = []
    for attribute, env_name in URL_SETTINGS:
        value = getattr(settings, attribute, "") or ""
        if value and (problem := _url_problem(value)):
            problems.append(
                f"{env_name}={value!r} is not a valid URL: {problem} (example: https://example.org)"
            )
    if not 0 <= settings.web_port <= 65535:
        problems.append(f"port {settings.web_port} is out of range (1-65535; example: --port 8080)")
    if settings.zalo_oa_secret_key and not settings.zalo_app_id:
        problems.append("ZALO_OA_SECRET_KEY is set but ZALO_APP_ID is empty: webhook signatures need both")
    if problem := _data_dir_problem(settings.data_dir):
        problems.append(problem)
    return problems


@dataclass
class Service:
    """Everything `run` started, in start order; `stop()` undoes it in the safe order."""

    settings: Settings
    assistant: Any
    runner: web.AppRunner
    url: str
    channels: list[Any] = field(default_factory=list)
    web: WebChannel | None = None
    zalo: Any = None
    telegram: Any = None
    console: Any = None
    _stopped: bool = False

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        log.info("shutting down: no new requests; finishing the ones under way")
        # Listening sockets close first, then in-flight HTTP handlers get SHUTDOWN_GRACE_S.
        await self.runner.cleanup()
        for channel in reversed(self.channels):
            try:
                await channel.stop()
            except Exception:
                log.exception("channel %s did not stop cleanly", getattr(channel, "name", "?"))
        close = getattr(self.assistant, "close", None)
        if close is not None:
            await close()
        log.info("stopped")


def _owed_notices(assistant: Any) -> Callable[[str], Awaitable[list[Outbound]]] | None:
    """How the web page fetches notices the assistant keeps for it (None: it keeps none)."""
    store = getattr(assistant, "store", None)
    if store is None:
        return None
    from bot.notifications import take_notices_for

    async def owed(conversation_id: str) -> list[Outbound]:
        return await asyncio.to_thread(take_notices_for, store, f"{WebChannel.name}:{conversation_id}")

    return owed


def _cpu_full(assistant: Any) -> Any:
    """The web API's back-pressure signal beside its own (the photos it holds): the CPU pool
    full. Texts and buttons are not refused for it: they do not queue there (but for the one
    that lays out the Tờ khai, one per registration), and a parent typing an address should
    not wait behind other parents' photos."""
    cpu = getattr(assistant, "cpu", None)
    return (lambda: cpu.full) if cpu is not None else None


async def _default_assistant(settings: Settings) -> Any:
    from bot.assistant import build_assistant
    from bot.cpu import CpuPool

    # Photo checks and PDFs in worker processes: the event loop and the I/O threads stay free.
    # The forkserver imports what they use once (bot.photos and bot.documents import numpy,
    # the card reader and fpdf2 lazily, for the terminal's cold start), so no worker pays it.
    preload = (
        "bot.photos",
        "bot.documents",
        "bot.pdf_fonts",
        "bot.cardscan",
        "numpy",
        "fpdf",
        "fontTools.subset",
    )
    cpu = CpuPool.processes(settings.cpu_workers or None, preload=preload)
    return await build_assistant(settings, warm_up=True, cpu=cpu)


async def start_service(settings: Settings, *, assistant: Any = None) -> Service:
    """Start the HTTP server and every configured channel; raises ConfigError when it cannot.

    `assistant` replaces the real one (tests); it is closed by `Service.stop()` either way.
    """
    problems = check_config(settings)
    if problems:
        raise ConfigError("\n".join(problems))
    telegram_builder = _telegram_builder(settings)
    if assistant is None:
        try:
            assistant = await _default_assistant(settings)
        except OSError as exc:
            raise ConfigError(f"cannot prepare the data directory {settings.data_dir}: {exc}") from exc
    startup = _Startup(settings, assistant)
    try:
        service = await startup.start(telegram_builder)
    except BaseException:
        await startup.undo()
        raise
    _start_background_work(assistant)
    _log_started(service)
    return service


TelegramBuilder = tuple[Callable[[Settings, Any], Any], Callable[[web.Application, Any], None]]


def _telegram_builder(settings: Settings) -> TelegramBuilder | None:
    """The Telegram channel's factory and webhook route, loaded only when a token is set."""
    if not settings.telegram_bot_token:
        return None
    try:
        from bot.channels.telegram import add_webhook_route, build_telegram_channel
    except ImportError as exc:
        raise ConfigError(f"TELEGRAM_BOT_TOKEN is set but the Telegram channel cannot load ({exc})") from exc
    return build_telegram_channel, add_webhook_route


class _Startup:
    """What a start has set up so far, so that a failure part-way undoes exactly that."""

    def __init__(self, settings: Settings, assistant: Any) -> None:
        self.settings = settings
        self.assistant = assistant
        self.app = web.Application(client_max_size=CLIENT_MAX_SIZE, middlewares=[body_deadline()])
        self.channels: list[Any] = []
        self.runner: web.AppRunner | None = None

    async def start(self, telegram_builder: TelegramBuilder | None) -> Service:
        web_channel = self._mount_web()
        from bot.staff_site import mount_console

        console = mount_console(self.app, self.settings, self.assistant)
        zalo = self._mount_zalo()
        telegram = self._mount_telegram(telegram_builder)
        # Channels that can push get notices as they happen; the others (web) fetch them.
        add_channel = getattr(self.assistant, "add_channel", None)
        for channel in self.channels:
            if add_channel is not None and getattr(channel, "can_push", True):
                add_channel(channel)
        # Web and Zalo are ready before the port opens; Telegram (which may register its
        # webhook, i.e. needs the port open) after.
        for channel in self.channels:
            if channel is not telegram:
                await channel.start()
        url = await self._listen()
        service = Service(
            self.settings,
            self.assistant,
            self._runner(),
            url,
            self.channels,
            web_channel,
            zalo,
            telegram,
            console,
        )
        if telegram is not None:
            try:
                await telegram.start()
            except Exception as exc:
                raise ConfigError(f"the Telegram channel could not start: {exc}") from exc
        return service

    def _runner(self) -> web.AppRunner:
        assert self.runner is not None  # set by _listen
        return self.runner

    def _mount_web(self) -> WebChannel:
        assistant = self.assistant
        web_channel = WebChannel(
            assistant,
            DocumentLinks.from_data_dir(self.settings.data_dir),
            owed_notices=_owed_notices(assistant),
            live=getattr(getattr(assistant, "desk", None), "is_live", None),
            public_url=self.settings.public_url,
            full=_cpu_full(assistant),
        )
        web_channel.add_routes(self.app)
        self.channels.append(web_channel)
        return web_channel

    def _mount_zalo(self) -> Any:
        if not self.settings.zalo_oa_secret_key:
            return None
        from bot.channels.zalo import ZaloChannel

        zalo = ZaloChannel.from_settings(self.settings, self.assistant)
        zalo.add_routes(self.app)
        self.channels.append(zalo)
        return zalo

    def _mount_telegram(self, builder: TelegramBuilder | None) -> Any:
        if builder is None:
            return None
        build_telegram_channel, add_webhook_route = builder
        try:
            telegram = build_telegram_channel(self.settings, self.assistant)
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        if self.settings.telegram_mode == "webhook":
            add_webhook_route(self.app, telegram)
        self.channels.append(telegram)
        return telegram

    async def _listen(self) -> str:
        """Open the port; the URL the web chat is reachable at."""
        settings = self.settings
        self.runner = GuardedAppRunner(
            self.app, access_log=None, shutdown_timeout=SHUTDOWN_GRACE_S, handle_signals=False
        )
        await self.runner.setup()
        site = web.TCPSite(self.runner, settings.web_host, settings.web_port)
        try:
            await site.start()
        except OSError as exc:
            reason = (
                "the port is already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
            )
            raise ConfigError(
                f"cannot listen on {settings.web_host}:{settings.web_port}: {reason} "
                "(is another vssid-bot running? choose another with --port or VSSID_WEB_PORT)"
            ) from exc
        port = self.runner.addresses[0][1] if self.runner.addresses else settings.web_port
        host = settings.web_host if ":" not in settings.web_host else f"[{settings.web_host}]"
        return f"http://{host}:{port}/"

    async def undo(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
        for channel in self.channels:
            try:
                await channel.stop()
            except Exception:
                log.debug("cleanup after a failed start", exc_info=True)
        close = getattr(self.assistant, "close", None)
        if close is not None:
            await close()


def _start_background_work(assistant: Any) -> None:
    start_notifications = getattr(assistant, "start_notifications", None)
    if start_notifications is not None:
        start_notifications()  # decisions and reminders; stopped by assistant.close()
    start_hotline_sweep = getattr(assistant, "start_hotline_sweep", None)
    if start_hotline_sweep is not None:
        start_hotline_sweep()  # "nobody took your ticket yet"; stopped by assistant.close()


def _log_started(service: Service) -> None:
    settings = service.settings
    log.info("web chat: %s", service.url)
    if settings.backend_url:
        log.info("backend: HTTP at %s", _redact(settings.backend_url))
    else:
        log.info("backend: in-process stub (state in %s)", settings.data_dir)
    log.info("data directory: %s", settings.data_dir)
    public = settings.public_url.rstrip("/") or service.url.rstrip("/")
    if service.zalo is not None:
        log.info("zalo: webhook at %s/zalo/webhook, replies via %s", public, _redact(settings.zalo_api_base))
    else:
        log.info("zalo: off (set ZALO_OA_SECRET_KEY and ZALO_APP_ID to enable)")
    if service.telegram is not None:
        where = (
            f"webhook at {public}/telegram/webhook" if settings.telegram_mode == "webhook" else "long polling"
        )
        log.info("telegram: on (%s, %s)", settings.telegram_framework, where)
    else:
        log.info("telegram: off (set TELEGRAM_BOT_TOKEN to enable)")
    log.info("ready; press Ctrl-C to stop")


async def serve(settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    """Run until SIGINT/SIGTERM (or `stop` is set), then shut down cleanly."""
    stop = stop or asyncio.Event()
    service = await start_service(settings)
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)

    def on_signal() -> None:
        # A second Ctrl-C falls back to the default handler: the operator can always force it.
        for sig in signals:
            loop.remove_signal_handler(sig)
        stop.set()

    for sig in signals:
        loop.add_signal_handler(sig, on_signal)
    try:
        await stop.wait()
    finally:
        await service.stop()


def run(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (VSSID_WEB_HOST; default 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port of the web chat and webhooks (VSSID_WEB_PORT; default 8080).")
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Where conversations, photos and documents are kept (VSSID_DATA_DIR).")
    ] = None,
) -> None:
    """Start the assistant: web chat always, Telegram and Zalo when configured."""
    from bot.logs import setup_logging

    try:
        settings = load_settings(data_dir, web_host=host, web_port=port)
    except Exception as exc:  # pydantic's ValidationError names the bad variable
        typer.echo(f"vssid-bot run: cannot start, the configuration is invalid:\n{exc}", err=True)
        raise typer.Exit(2) from None
    setup_logging(settings.log_level)
    try:
        asyncio.run(serve(settings))
    except ConfigError as exc:
        typer.echo(f"vssid-bot run: cannot start:\n{exc}", err=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        sys.exit(130)
