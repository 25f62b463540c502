"""The hotline on Telegram and Zalo with the real assistant, against their fake servers:
a parent asks for a person, staff reply (pushed to the messenger), the assistant stays
silent, staff hand back and the form goes on at the same step; a handoff link opened on
Telegram greets with the note and starts the named flow, once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.assistant import build_assistant
from bot.channels.web import CLIENT_MAX_SIZE
from bot.console.auth import Staff
from bot.hotline.handoffs import create_handoff
from bot.schools.links import telegram_username
from tests.chat_harness import CITIZEN, isolated_settings
from tests.fake_bot_api import BOT_USER, TOKEN
from tests.fake_zalo_api import FakeZaloApi, event, text_event
from tests.telegram_harness import running_bot
from tests.test_zalo import Harness as ZaloHarness
from tests.test_zalo import make_channel

LAN = Staff("lan.nguyen", "Chị Lan", "hotline")
ALWAYS_OPEN = "Mon-Sun 00:00-23:59"


@pytest.fixture
async def assistant(tmp_path: Path):
    service = await build_assistant(isolated_settings(tmp_path, office_hours=ALWAYS_OPEN))
    await asyncio.to_thread(lambda: service.engine.faq)  # built before the bot's timeouts run
    yield service
    await service.close()


async def test_a_telegram_parent_is_helped_by_staff_and_goes_on_at_the_same_step(assistant):
    async with running_bot("aiogram", "polling", assistant) as h:
        assistant.add_channel(h.channel)  # as the runner does: staff replies are pushed
        user = h.user("Nhung")

        async def says(text: str) -> str:
            before = len(user.screen())
            await user.say(text)
            await h.settle(60)
            return "\n".join(m.visible_text for m in user.screen()[before:])

        await says("/start")
        await user.press("Đăng ký tài khoản VssID")
        await h.settle(60)
        for answer in (CITIZEN["social_insurance_code"], CITIZEN["full_name"], CITIZEN["id_number"]):
            said = await says(answer)
        assert "số điện thoại" in said
        assert "phiếu số 1" in await says("gap tong dai vien")

        screen = len(user.screen())
        await assistant.desk.reply(1, LAN, "Chào chị, chị cần giúp gì ạ?")
        await h.settle(60)
        pushed = "\n".join(m.visible_text for m in user.screen()[screen:])
        assert "Chị Lan ở tổng đài đang hỗ trợ bạn" in pushed
        assert "Chị Lan (tổng đài): Chào chị, chị cần giúp gì ạ?" in pushed

        assert await says("Em muốn dùng số của chồng") == ""  # the assistant is silent
        assert "Em muốn dùng số của chồng" in [m.text for m in assistant.desk.store.messages(1)]

        screen = len(user.screen())
        await assistant.desk.hand_back(1, LAN)
        await h.settle(60)
        pushed = "\n".join(m.visible_text for m in user.screen()[screen:])
        assert "chuyển bạn lại cho trợ lý" in pushed and "Nhập số điện thoại" in pushed
        assert "tỉnh" in (await says(CITIZEN["phone"])).lower()
        state, _ = assistant.store.load(f"telegram:{user.id}")
        assert state.step == "province" and state.values["full_name"] == CITIZEN["full_name"]


async def test_a_handoff_link_opened_on_telegram_starts_the_named_flow_once(assistant, tmp_path: Path):
    async with running_bot("aiogram", "polling", assistant) as h:
        # The bot's username is not configured: it is asked of the Bot API (getMe).
        settings = isolated_settings(tmp_path, telegram_bot_token=TOKEN, telegram_api_base=h.server.base_url)
        made = create_handoff(
            settings,
            assistant.desk.store,
            note="Anh cài ứng dụng theo hướng dẫn nhé",
            flow="install_guide",
            phone=None,
            staff=LAN,
            telegram_user=await telegram_username(settings),
        )
        link = made["links"]["telegram"]
        assert link == f"https://t.me/{BOT_USER['username']}?start=h-{made['token']}"
        user = h.user("Tuấn")
        await user.say("/start " + link.split("start=", 1)[1])  # what Telegram sends for a t.me link
        await h.settle(60)
        said = "\n".join(m.visible_text for m in user.screen())
        assert "Chị Lan ở tổng đài đã ghi: «Anh cài ứng dụng theo hướng dẫn nhé»" in said
        state, _ = assistant.store.load(f"telegram:{user.id}")
        assert state.flow == "install_guide"

        again = h.user("Hà")
        await again.say("/start " + link.split("start=", 1)[1])
        await h.settle(60)
        said = "\n".join(m.visible_text for m in again.screen())
        assert "đã được dùng rồi" in said and "đã ghi" not in said


@pytest.fixture
async def zalo(tmp_path: Path):
    api = await FakeZaloApi().start()
    settings = isolated_settings(tmp_path, office_hours=ALWAYS_OPEN)
    service = await build_assistant(settings)
    await asyncio.to_thread(lambda: service.engine.faq)
    channel = make_channel(service, api, settings.data_dir)
    service.add_channel(channel)
    app = web.Application(client_max_size=CLIENT_MAX_SIZE)
    channel.add_routes(app)
    await channel.start()
    try:
        async with TestClient(TestServer(app)) as client:
            yield ZaloHarness(client, channel, api, service)  # type: ignore[arg-type]
    finally:
        await channel.stop()
        await service.close()
        await api.close()


async def test_a_zalo_parent_is_helped_by_staff_and_goes_on_at_the_same_step(zalo):
    user = "8409990001112229999"
    desk = zalo.assistant.desk

    async def says(text: str) -> str:
        before = len(zalo.api.texts(user))
        assert await zalo.post(text_event(user, text)) == 200
        return "\n".join(zalo.api.texts(user)[before:])

    assert await zalo.post(event("follow", user)) == 200
    await says("Đăng ký tài khoản VssID")
    for answer in (CITIZEN["social_insurance_code"], CITIZEN["full_name"], CITIZEN["id_number"]):
        said = await says(answer)
    assert "số điện thoại" in said
    assert "phiếu số 1" in await says("cho gặp nhân viên")

    before = len(zalo.api.texts(user))
    await desk.reply(1, LAN, "Chào anh, em là Lan ạ.")
    pushed = "\n".join(zalo.api.texts(user)[before:])
    assert "Chị Lan (tổng đài): Chào anh, em là Lan ạ." in pushed

    assert await says("Dạ em chào chị") == ""  # the assistant is silent
    before = len(zalo.api.texts(user))
    await desk.hand_back(1, LAN)
    pushed = "\n".join(zalo.api.texts(user)[before:])
    assert "chuyển bạn lại cho trợ lý" in pushed and "Nhập số điện thoại" in pushed
    assert "tỉnh" in (await says(CITIZEN["phone"])).lower()
