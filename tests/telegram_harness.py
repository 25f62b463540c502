"""Runs a Telegram channel (aiogram or PTB, polling or webhook) against the fake Bot API.

`running_bot(framework, mode, assistant)` is an async context manager yielding a
`Harness`: the fake server, the channel, and `settle()` which waits until every pushed
update was taken and every reply sent. `ScriptedAssistant` is a small stand-in for the
real assistant: enough behaviour (buttons, long text, a document, photos) to exercise
the channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.channels.telegram import TelegramChannel, add_webhook_route, build_telegram_channel
from bot.config import Settings
from bot.retry import RetryPolicy
from dialogs.messages import Button, Inbound, Outbound
from tests.fake_bot_api import TOKEN, FakeBotApi, FakeUser

FAST_RETRY = RetryPolicy(attempts=3, backoff_s=0.02, max_backoff_s=0.05, outbox_retry_s=0.3)
WEBHOOK_SECRET = "test-secret_0123456789"
LONG_PAYLOAD = "province:" + "Thành phố Hồ Chí Minh và các phường trung tâm".replace(" ", "-")


@dataclass
class ScriptedAssistant:
    """Answers like a tiny assistant would, de-duplicating by message id as the real one must."""

    document: Path
    inbounds: list[Inbound] = field(default_factory=list)
    delays: dict[str, float] = field(default_factory=dict)  # user_id -> seconds per message
    notify: Any = None
    _seen: set[tuple[str, str, str]] = field(default_factory=set)

    async def handle(self, inbound: Inbound) -> list[Outbound]:
        if inbound.message_id is not None:
            key = (inbound.channel, inbound.user_id, inbound.message_id)
            if key in self._seen:
                return []
            self._seen.add(key)
        self.inbounds.append(inbound)
        delay = self.delays.get(inbound.user_id)
        if delay:
            await asyncio.sleep(delay)
        return self.script(inbound)

    def of(self, user_id: int) -> list[Inbound]:
        return [i for i in self.inbounds if i.user_id == str(user_id)]

    def script(self, inbound: Inbound) -> list[Outbound]:
        if inbound.photo is not None:
            count = sum(1 for i in self.of(int(inbound.user_id)) if i.photo is not None)
            return [Outbound(f"Đã nhận ảnh {count}: {hashlib.sha256(inbound.photo).hexdigest()[:12]}")]
        if inbound.button is not None:
            if inbound.button == "menu:register":
                return [
                    Outbound(
                        "Bạn ở tỉnh/thành nào?",
                        buttons=(
                            Button("Hà Nội", "province:ha-noi"),
                            Button("TP. Hồ Chí Minh", LONG_PAYLOAD),
                        ),
                    )
                ]
            return [Outbound(f"Đã chọn: {inbound.button}")]
        command = inbound.command
        if command and command[0] == "start":
            greeting = "Xin chào! Tôi giúp bạn đăng ký VssID."
            if command[1]:
                greeting += f" Mã giới thiệu: {command[1]}"
            return [
                Outbound(
                    greeting, buttons=(Button("Đăng ký", "menu:register"), Button("Hỏi đáp", "menu:faq"))
                )
            ]
        text = inbound.text or ""
        if text == "dài":
            paragraph = "Sổ BHXH điện tử VssID giúp tra cứu quá trình tham gia bảo hiểm. " * 12
            return [
                Outbound(
                    "\n\n".join(f"{i}. {paragraph}" for i in range(1, 13)),
                    buttons=(Button("Tiếp tục", "next"),),
                )
            ]
        if text == "tên":
            return [Outbound("Họ tên: <b>Lê & Co</b> <script>")]
        if text == "tờ khai":
            return [Outbound("Tờ khai của bạn (Mẫu 01):", document=self.document)]
        if text == "hỏng":
            raise RuntimeError("scripted failure")
        return [Outbound(f"Bạn vừa gửi: {text}")]


@dataclass
class Harness:
    server: FakeBotApi
    channel: TelegramChannel
    assistant: Any
    framework: str
    mode: str
    webhook_url: str = ""
    _users: int = 0
    _checked: int = 0

    def user(self, first_name: str = "Phụ huynh") -> FakeUser:
        """A new user (chat) for each scenario, so scenarios sharing one bot don't mix."""
        self._users += 1
        return FakeUser(self.server, 5_000_000 + self._users * 7, first_name)

    async def settle(self, timeout: float = 10) -> None:
        """Every pushed update taken by the framework and every resulting reply sent."""
        await self.server.delivered(timeout)
        await asyncio.wait_for(self.channel.idle(), timeout)

    def new_requests(self) -> list[Any]:
        """Requests recorded since the last call (for per-scenario spec checks)."""
        fresh = self.server.requests[self._checked :]
        self._checked = len(self.server.requests)
        return fresh


def make_settings(framework: str, mode: str, api_base: str, **extra: Any) -> Settings:
    # A private data dir per bot: the channel keeps its outbox there, and parked replies
    # of one test must not be delivered at the start of the next (or land in the repo).
    extra.setdefault("data_dir", Path(tempfile.mkdtemp(prefix="vssid-telegram-test-")))
    return Settings().model_copy(
        update={
            "telegram_bot_token": TOKEN,
            "telegram_framework": framework,
            "telegram_mode": mode,
            "telegram_webhook_secret": WEBHOOK_SECRET if mode == "webhook" else "",
            "telegram_api_base": api_base,
            **extra,
        }
    )


async def build_served_channel(
    settings: Settings, mode: str, assistant: Any, **options: Any
) -> tuple[TelegramChannel, web.AppRunner | None]:
    """The channel, and in webhook mode the web app serving its route on a free port
    (the runner owns the web app; the channel only adds its route to it)."""
    if mode != "webhook":
        return build_telegram_channel(settings, assistant, **options), None
    app = web.Application()
    placeholder = settings.model_copy(update={"public_url": "http://127.0.0.1:1"})
    channel = build_telegram_channel(placeholder, assistant, **options)
    add_webhook_route(app, channel)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    channel.settings = settings.model_copy(update={"public_url": f"http://127.0.0.1:{port}"})
    return channel, runner


@contextlib.asynccontextmanager
async def running_bot(framework: str, mode: str, assistant: Any, **options: Any) -> AsyncIterator[Harness]:
    server = FakeBotApi()
    await server.start()
    runner: web.AppRunner | None = None
    settings = make_settings(framework, mode, server.base_url)
    options.setdefault("retry", FAST_RETRY)
    options.setdefault("poll_timeout", 5)
    try:
        channel, runner = await build_served_channel(settings, mode, assistant, **options)
        await channel.start()
        harness = Harness(server, channel, assistant, framework, mode)
        if mode == "webhook":
            harness.webhook_url = channel.webhook_url
        try:
            yield harness
        finally:
            await channel.stop()
    finally:
        if runner is not None:
            await runner.cleanup()
        await server.stop()


def fake_pdf(directory: Path) -> Path:
    """A small synthetic PDF-looking file (generated at run time, never committed)."""
    path = directory / "to-khai-test.pdf"
    path.write_bytes(b"%PDF-1.4\n% synthetic test declaration\n" + bytes(range(256)) * 8 + b"\n%%EOF\n")
    return path
