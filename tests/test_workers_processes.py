"""Two real `vssid-bot run` workers on one PostgreSQL database behind no load balancer but
the test itself: Telegram in webhook mode and Zalo, one user's updates spread over both
workers back to back, a redelivered update posted to both at once. The user reads their
answers in the order they wrote, and one answer per update.

PostgreSQL only (VSSID_TEST_POSTGRES_URL): several workers share a server database.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.databases import empty_database_url
from tests.fake_bot_api import TOKEN, FakeBotApi, FakeUser
from tests.fake_zalo_api import APP_ID, APP_SECRET_KEY, OA_SECRET_KEY, FakeZaloApi, signed, text_event

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parent.parent
SECRET = "workers-secret_0123456789"
ENROL = "Đăng ký tài khoản VssID"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.asynccontextmanager
async def workers(
    tmp_path: Path, telegram: FakeBotApi, zalo: FakeZaloApi, count: int = 2
) -> AsyncIterator[list[str]]:
    """`count` workers on one data dir and database; yields their base URLs."""
    database = empty_database_url("postgres", tmp_path)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "PYTHONUNBUFFERED": "1",
        "VSSID_DATABASE_URL": database,
        "VSSID_LOG_LEVEL": "WARNING",
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_MODE": "webhook",
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "TELEGRAM_API_BASE": telegram.base_url,
        "VSSID_PUBLIC_URL": "https://vssid.example.org",
        "ZALO_APP_ID": APP_ID,
        "ZALO_OA_SECRET_KEY": OA_SECRET_KEY,
        "ZALO_APP_SECRET_KEY": APP_SECRET_KEY,
        "ZALO_ACCESS_TOKEN": "access-1",
        "ZALO_REFRESH_TOKEN": "refresh-1",
        "ZALO_API_BASE": zalo.url(),
        "ZALO_OAUTH_BASE": zalo.url(),
    }
    processes: list[subprocess.Popen] = []
    urls: list[str] = []
    try:
        async with aiohttp.ClientSession() as session:
            for index in range(count):  # one after the other: the first makes the shared keys
                port = _free_port()
                processes.append(_spawn(tmp_path, index, port, env))
                urls.append(f"http://127.0.0.1:{port}")
                await _healthy(session, urls[-1], processes[-1], tmp_path / f"worker-{index}.log")
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def _spawn(tmp_path: Path, index: int, port: int, env: dict[str, str]) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "bot.cli",
        "run",
        "--port",
        str(port),
        "--data-dir",
        str(tmp_path / "data"),
    ]
    with open(tmp_path / f"worker-{index}.log", "ab") as log:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)


async def _healthy(session: aiohttp.ClientSession, url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the worker stopped: {log.read_text()[-2000:]}")
        with contextlib.suppress(aiohttp.ClientError, OSError):
            async with session.get(f"{url}/healthz") as response:
                if response.status == 200:
                    return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{url} did not come up")


async def _post_telegram(session: aiohttp.ClientSession, url: str, update: dict) -> int:
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    async with session.post(f"{url}/telegram/webhook", json=update, headers=headers) as response:
        return response.status


async def _post_zalo(session: aiohttp.ClientSession, url: str, event: dict) -> int:
    raw, headers = signed(event)
    async with session.post(f"{url}/zalo/webhook", data=raw, headers=headers) as response:
        return response.status


async def _until(predicate, within_s: float = 60.0) -> None:
    deadline = time.monotonic() + within_s
    while not predicate():
        assert time.monotonic() < deadline, "not answered in time"
        await asyncio.sleep(0.05)


def _said(messages: list, words: str) -> bool:
    return any(words in m.visible_text for m in messages)


def _in_order_once(shown: list[str]) -> None:
    """One greeting (the redelivered /start answered once), then the question after the tap,
    then the one after the code: the order the user wrote in."""
    greetings = [i for i, text in enumerate(shown) if "trợ lý VssID" in text]
    code = next(i for i, text in enumerate(shown) if "Nhập mã số BHXH" in text or "mã số BHXH là" in text)
    name = next(i for i, text in enumerate(shown) if "họ và tên" in text)
    assert greetings == [0], shown
    assert 0 < code < name == len(shown) - 1, shown


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[FakeBotApi, FakeZaloApi]]:
    telegram = FakeBotApi()
    await telegram.start()
    zalo = await FakeZaloApi().start()
    try:
        yield telegram, zalo
    finally:
        await zalo.close()
        await telegram.stop()


async def test_two_workers_answer_one_users_updates_in_order_and_a_redelivery_once(tmp_path, fakes):
    telegram, zalo = fakes
    async with workers(tmp_path, telegram, zalo) as (first, second), aiohttp.ClientSession() as session:
        # ---- Telegram, webhook mode
        user = FakeUser(telegram, 5_400_001)
        start = user.text_update("/start")
        # Telegram re-sends an update it thinks went unanswered: both workers get it at once.
        assert await asyncio.gather(
            _post_telegram(session, first, start), _post_telegram(session, second, start)
        ) == [200, 200]
        await _until(lambda: len(telegram.screen(user.id)) >= 1)
        # The user's next updates land on alternate workers back to back, before any is answered:
        # the tap must be answered first, or the code would be read at the menu.
        press = user.press_update(user.last_with_button(ENROL), ENROL)
        assert await _post_telegram(session, second, press) == 200
        assert await _post_telegram(session, first, user.text_update("9299000107")) == 200
        await _until(lambda: _said(telegram.screen(user.id), "họ và tên"))
        await asyncio.sleep(1.0)  # nothing more comes
        _in_order_once([m.visible_text for m in telegram.screen(user.id)])

        # ---- Zalo
        zalo_user = "8492990001070888001"
        hello = text_event(zalo_user, "/start")
        assert await asyncio.gather(
            _post_zalo(session, first, hello), _post_zalo(session, second, hello)
        ) == [200, 200]
        for url, text in ((second, ENROL), (first, "9299000107")):
            assert await _post_zalo(session, url, text_event(zalo_user, text)) == 200
        await _until(lambda: any("họ và tên" in t for t in zalo.texts(zalo_user)))
        await asyncio.sleep(1.0)
        _in_order_once(zalo.texts(zalo_user))
