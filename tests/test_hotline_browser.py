"""The hotline end to end in a real headless Chromium: a staff member at the console and a
parent in the web chat, both on `vssid-bot run`'s server with the real assistant."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.console.auth import StaffDirectory
from bot.runner import start_service
from bot.storage import make_engine
from tests.chat_harness import CITIZEN, isolated_settings

pytestmark = pytest.mark.browser
PASSWORD = "mat-khau-dai-1"


@pytest.fixture
async def server(tmp_path: Path):
    # Every day, all day: these scenarios are about a staff member at work.
    settings = isolated_settings(
        tmp_path, web_host="127.0.0.1", web_port=0, office_hours="Mon-Sun 00:00-23:59"
    )
    service = await start_service(settings)
    StaffDirectory(make_engine(settings.sqlalchemy_url)).add("lan.nguyen", PASSWORD, "hotline", "Chị Lan")
    yield service
    await service.stop()


async def new_page(browser, width: int, height: int):
    context = await browser.new_context(viewport={"width": width, "height": height}, locale="vi-VN")
    page = await context.new_page()
    page.set_default_timeout(15_000)
    return page


async def staff_logs_in(browser, server):
    page = await new_page(browser, 1280, 900)
    await page.goto(server.url + "staff")
    await page.get_by_label("Tên đăng nhập").fill("lan.nguyen")
    await page.get_by_label("Mật khẩu").fill(PASSWORD)
    await page.get_by_role("button", name="Đăng nhập").click()
    await page.get_by_role("heading", name="Xin chào, Chị Lan").wait_for()
    return page


async def bot_count(page) -> int:
    return await page.locator(".message.bot").count()


async def says(page, text: str) -> None:
    """Type and send; wait for the server's answer (which may be no message at all)."""
    await page.locator("#typing").wait_for(state="hidden")
    users = await page.locator(".message.user").count()
    await page.fill("#text-input", text)
    await page.press("#text-input", "Enter")
    # The page shows the message and "typing…" at once, and hides "typing…" once answered.
    await page.locator(".message.user").nth(users).wait_for()
    await page.locator("#typing").wait_for(state="hidden")


async def sees(page, text: str) -> None:
    await page.locator(".message.bot .bubble", has_text=text).last.wait_for()


async def test_a_web_chat_parent_is_helped_by_staff_and_goes_on_at_the_same_step(server, browser):
    staff = await staff_logs_in(browser, server)
    parent = await new_page(browser, 390, 844)
    await parent.goto(server.url)
    await sees(parent, "trợ lý VssID")
    await parent.get_by_role("button", name="Đăng ký tài khoản VssID").click()
    await sees(parent, "mã số BHXH")
    for answer in (CITIZEN["social_insurance_code"], CITIZEN["full_name"], CITIZEN["id_number"]):
        await says(parent, answer)
    await sees(parent, "số điện thoại")
    await says(parent, "cho gặp người thật")
    await sees(parent, "phiếu số 1")

    # The ticket appears in the console; the ID number is masked there.
    await staff.get_by_role("link", name="Phiếu hỗ trợ").click()
    await staff.get_by_role("link", name="#1").click()
    assert "Đang chờ" in await staff.locator("#ticket-status").inner_text()
    transcript = await staff.locator("#transcript").inner_text()
    assert "•••••••••234" in transcript and CITIZEN["id_number"] not in transcript
    assert "Lê Thị Hồng Nhung" in await staff.locator("#ticket-fields").inner_text()
    await staff.get_by_role("button", name="Nhận hỗ trợ").click()
    await staff.get_by_label("Trả lời người dân").fill("Chào chị, số điện thoại là số chị đang dùng ạ.")
    await staff.get_by_role("button", name="Gửi trả lời").click()
    assert "Đang hỗ trợ" in await staff.locator("#ticket-status").inner_text()

    # The parent sees it without doing anything (the page polls while a person may write).
    await sees(parent, "Chị Lan (tổng đài): Chào chị, số điện thoại là số chị đang dùng ạ.")
    # The assistant stays silent; what the parent writes reaches the ticket.
    before = await bot_count(parent)
    await says(parent, "Dạ em cảm ơn, em dùng số của chồng được không ạ?")
    assert await bot_count(parent) == before
    await staff.reload()
    assert "em dùng số của chồng được không" in await staff.locator("#transcript").inner_text()

    await staff.get_by_role("button", name="Trả lại cho trợ lý").click()
    assert "Đã trả lại trợ lý" in await staff.locator("#ticket-status").inner_text()
    await sees(parent, "chuyển bạn lại cho trợ lý")
    await sees(parent, "Nhập số điện thoại di động")
    # The same step, with what was typed before kept: the form goes on.
    await says(parent, CITIZEN["phone"])
    await sees(parent, "tỉnh")
    assert await parent.locator("#progress-label").inner_text() == "Bước 2/7"

    # Who did what is in the audit log, as an administrator sees it.
    actions = [
        (e["staff"], e["action"], e["target"])
        for e in StaffDirectory(make_engine(server.settings.sqlalchemy_url)).audit_entries()
    ]
    for action in ("ticket_open", "ticket_take", "ticket_reply", "ticket_hand_back"):
        assert ("lan.nguyen", action, "ticket:1") in actions

    await staff.get_by_role("link", name="Tổng quan").click()
    assert await staff.locator("#stat-open").inner_text() == "0"
    assert "phút" in await staff.locator("#stat-median").inner_text()
    assert "registration / phone" in await staff.locator("#top-steps").inner_text()


async def test_a_handoff_link_made_in_the_console_opens_the_flow_once(server, browser):
    staff = await staff_logs_in(browser, server)
    await staff.get_by_role("link", name="Tạo đường dẫn", exact=True).click()
    await staff.get_by_label("Lời nhắn cho người dân").fill("Anh chuẩn bị CCCD rồi làm theo hướng dẫn nhé.")
    await staff.get_by_label("Bắt đầu ở mục").select_option("registration")
    await staff.get_by_label("Số điện thoại người gọi").fill("0987654")
    await staff.get_by_role("button", name="Tạo đường dẫn").click()
    assert "10 chữ số" in await staff.get_by_role("alert").inner_text()
    await staff.get_by_label("Số điện thoại người gọi").fill("0987 654 321")
    await staff.get_by_role("button", name="Tạo đường dẫn").click()
    link = await staff.locator("a.handoff-link[data-channel=web]").get_attribute("href")
    assert link.startswith(server.url + "?start=h-")
    assert await staff.locator(".qr svg").count() == 1  # only the web link is configured here
    assert link in await staff.locator("#sms-text").input_value()

    parent = await new_page(browser, 390, 844)
    await parent.goto(link)
    await sees(parent, "Chị Lan ở tổng đài đã ghi: «Anh chuẩn bị CCCD rồi làm theo hướng dẫn nhé.»")
    await sees(parent, "mã số BHXH")
    assert "start=" not in parent.url  # a reload does not use the link again
    for answer in (CITIZEN["social_insurance_code"], CITIZEN["full_name"], CITIZEN["id_number"]):
        await says(parent, answer)
    await parent.get_by_role("button", name="0987 654 321").click()
    await sees(parent, "tỉnh")

    # Another device opening the same link: it was used, the chat starts normally.
    other = await new_page(browser, 390, 844)
    await other.goto(link)
    await sees(other, "đã được dùng rồi")
    await sees(other, "trợ lý VssID")
