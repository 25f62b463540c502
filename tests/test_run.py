"""`vssid-bot run`: what starts, clean shutdown, and refusals of a configuration that cannot work."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import aiohttp
import pytest

from bot.config import Settings
from bot.runner import ConfigError, check_config, start_service
from tests.fake_assistant import GREETING, ScriptedAssistant
from tests.fake_zalo_api import OA_SECRET_KEY, signed, text_event


def settings_for(tmp_path: Path, **values: object) -> Settings:
    base = {"data_dir": tmp_path / "data", "web_host": "127.0.0.1", "web_port": 0}
    base.update(values)
    return Settings.model_construct(**{**Settings().model_dump(), **base})


async def test_run_serves_the_web_chat_registers_channels_and_closes_the_assistant(tmp_path: Path):
    assistant = ScriptedAssistant()
    service = await start_service(settings_for(tmp_path), assistant=assistant)
    try:
        assert list(assistant.channels) == []  # the web page fetches its notices itself
        assert assistant.started
        async with aiohttp.ClientSession() as http:
            async with http.get(service.url) as page:
                assert page.status == 200
                assert "Trợ lý VssID" in await page.text()
            async with http.post(
                service.url + "api/chat/run-test-0001-5f0c2a9e47b13d86c0e2f4a1/messages",
                json={"text": "/start"},
            ) as answer:
                assert (await answer.json())["replies"][0]["text"] == GREETING
    finally:
        await service.stop()
    assert assistant.closed


async def test_shutdown_lets_a_message_under_way_finish_before_closing_the_assistant(tmp_path: Path):
    assistant = ScriptedAssistant(slow_s=0.6)
    service = await start_service(settings_for(tmp_path), assistant=assistant)
    async with aiohttp.ClientSession() as http:
        pending = asyncio.create_task(
            http.post(
                service.url + "api/chat/run-test-0002-5f0c2a9e47b13d86c0e2f4a1/messages",
                json={"text": "slow"},
            )
        )
        await asyncio.sleep(0.2)
        assert [i.text for i in assistant.received] == ["slow"]
        stopping = asyncio.create_task(service.stop())
        response = await pending
        assert response.status == 200
        assert (await response.json())["replies"][0]["text"] == "Xong việc chậm."
        assert not assistant.closed or stopping.done()
        await stopping
    assert assistant.closed
    with pytest.raises(aiohttp.ClientConnectionError):
        async with aiohttp.ClientSession() as http:
            await http.get(service.url)


async def test_the_zalo_channel_starts_when_its_secret_is_set_and_guards_its_webhook(tmp_path: Path):
    settings = settings_for(
        tmp_path, zalo_app_id="1234567890123456789", zalo_oa_secret_key=OA_SECRET_KEY, zalo_access_token="t"
    )
    assistant = ScriptedAssistant()
    service = await start_service(settings, assistant=assistant)
    try:
        assert set(assistant.channels) == {"zalo"}
        raw, headers = signed(text_event("84000111", "/start"))
        async with aiohttp.ClientSession() as http:
            async with http.post(service.url + "zalo/webhook", data=raw) as unsigned:
                assert unsigned.status == 401
            async with http.post(service.url + "zalo/webhook", data=raw, headers=headers) as accepted:
                assert accepted.status == 200
        await service.zalo.idle()
        assert assistant.received[-1].text == "/start"
    finally:
        await service.stop()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("backend_url", "htp:/stub"),
        ("zalo_api_base", "openapi.zalo.me"),
        ("public_url", "https://exa mple.org"),
        ("backend_url", "http://localhost:99999"),
    ],
)
def test_malformed_urls_are_named_in_the_refusal(tmp_path: Path, name: str, value: str):
    [problem] = check_config(settings_for(tmp_path, **{name: value}))
    assert value in problem and "not a valid URL" in problem


async def test_a_refused_configuration_raises_before_anything_starts(tmp_path: Path):
    assistant = ScriptedAssistant()
    with pytest.raises(ConfigError, match="VSSID_BACKEND_URL"):
        await start_service(settings_for(tmp_path, backend_url="nonsense"), assistant=assistant)
    assert assistant.channels == {}


# -- the real command, in a subprocess ----------------------------------------------------


def run_command(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    # A clean environment and a directory without .env: only what the test sets counts.
    clean = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    clean.update(env or {})
    return subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "run", *args],
        cwd=tmp_path,
        env=clean,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def refused(tmp_path: Path, *args: str, **env: str) -> tuple[int, str]:
    process = run_command(tmp_path, "--data-dir", str(tmp_path / "data"), "--port", "0", *args, env=env)
    _, err = process.communicate(timeout=30)
    return process.returncode, err


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("VSSID_BACKEND_URL", "localhost:8000"),
        ("ZALO_API_BASE", "ftp://zalo"),
        ("VSSID_PUBLIC_URL", "not a url"),
    ],
)
def test_run_refuses_a_malformed_url_with_a_clear_message(tmp_path: Path, variable: str, value: str):
    code, err = refused(tmp_path, **{variable: value})
    assert code != 0
    assert "cannot start" in err and variable in err and "Traceback" not in err


def test_run_refuses_a_port_already_taken(tmp_path: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = run_command(tmp_path, "--data-dir", str(tmp_path / "data"), "--port", str(port))
        _, err = process.communicate(timeout=30)
    assert process.returncode != 0
    assert f"127.0.0.1:{port}" in err and "already in use" in err and "Traceback" not in err


def test_run_refuses_a_data_dir_it_cannot_write(tmp_path: Path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    process = run_command(tmp_path, "--data-dir", str(blocker / "data"), "--port", "0")
    _, err = process.communicate(timeout=30)
    assert process.returncode != 0
    assert "data directory" in err and "not writable" in err and "Traceback" not in err


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_run_starts_the_web_chat_logs_where_and_stops_cleanly_on_sigterm(tmp_path: Path):
    port = free_port()
    process = run_command(tmp_path, "--data-dir", str(tmp_path / "data"), "--port", str(port))
    try:
        # A readiness wait, not a timing assertion: generous for a loaded CI machine.
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as health:
                    assert health.status == 200
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    # Stop it first: reading the error pipe of a live server never returns.
                    process.kill()
                    _, err = process.communicate(timeout=10)
                    raise AssertionError(err or "no output") from None
                time.sleep(0.1)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as page:
            assert "Trợ lý VssID" in page.read().decode()
        # The real assistant on the in-process stub answers, with nothing configured.
        start = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/chat/subprocess-01-5f0c2a9e47b13d86c0e2f4a1/messages",
            data=json.dumps({"text": "/start"}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(start, timeout=20) as answer:  # noqa: S310 - our own loopback URL
            assert "trợ lý VssID" in json.loads(answer.read())["replies"][0]["text"]
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert f"web chat: http://127.0.0.1:{port}/" in err
    assert "in-process stub" in err
    assert "zalo: off" in err and "telegram: off" in err
    assert "stopped" in err


async def test_a_telegram_webhook_without_its_secret_is_refused_and_nothing_is_left_running(tmp_path: Path):
    assistant = ScriptedAssistant()
    settings = settings_for(tmp_path, telegram_bot_token="123456:TEST-token", telegram_mode="webhook")
    with pytest.raises(ConfigError, match="TELEGRAM_WEBHOOK_SECRET"):
        await start_service(settings, assistant=assistant)
    assert assistant.closed
