"""`vssid-bot run` with TELEGRAM_BOT_TOKEN set: Telegram starts beside the web chat, on both
frameworks, by polling or through the runner's own web app (webhook), and stops cleanly."""

from __future__ import annotations

import socket
from pathlib import Path

import aiohttp
import pytest

from bot.runner import start_service
from tests.chat_harness import isolated_settings
from tests.fake_bot_api import TOKEN, FakeBotApi, FakeUser
from tests.telegram_harness import WEBHOOK_SECRET
from tests.telegram_spec import check_all


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("framework", ["aiogram", "ptb"])
@pytest.mark.parametrize("mode", ["polling", "webhook"])
async def test_run_answers_on_telegram(tmp_path: Path, framework: str, mode: str) -> None:
    server = FakeBotApi()
    await server.start()
    port = free_port()
    settings = isolated_settings(
        tmp_path,
        web_host="127.0.0.1",
        web_port=port,
        public_url=f"http://127.0.0.1:{port}",
        telegram_bot_token=TOKEN,
        telegram_framework=framework,
        telegram_mode=mode,
        telegram_webhook_secret=WEBHOOK_SECRET if mode == "webhook" else "",
        telegram_api_base=server.base_url,
    )
    service = await start_service(settings)
    try:
        if mode == "webhook":
            assert server.webhook == {
                "url": f"http://127.0.0.1:{port}/telegram/webhook",
                "secret_token": WEBHOOK_SECRET,
            }
            async with aiohttp.ClientSession() as http:
                async with http.post(server.webhook["url"], json={"update_id": 1}) as resp:
                    assert resp.status == 401  # the runner's app refuses a post without the secret
        user = FakeUser(server, 4_200_001)
        await user.say("/start")
        await server.wait_for(lambda: len(user.screen()) >= 1, timeout=10)
        assert "Đăng ký tài khoản VssID" in user.screen()[0].labels
    finally:
        await service.stop()
        await server.stop()
    assert check_all(server.requests) == []
