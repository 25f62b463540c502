"""The web chat in a real headless Chromium (Debian's, never a downloaded one), against
`vssid-bot run`'s server with the real assistant and the in-process stub backend."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from bot.config import load_settings
from bot.runner import start_service
from tests import imagegen

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("VSSID_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
async def server(tmp_path: Path):
    settings = load_settings(tmp_path / "data", web_host="127.0.0.1", web_port=0)
    service = await start_service(settings)
    yield service
    await service.stop()


@pytest.fixture
async def page(server):
    playwright_api = pytest.importorskip("playwright.async_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (./dev test installs it)")
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        # A phone-sized screen: the page is meant for parents on their phones.
        context = await browser.new_context(viewport={"width": 390, "height": 844}, locale="vi-VN")
        page = await context.new_page()
        page.set_default_timeout(10_000)
        page.requested = []  # type: ignore[attr-defined]
        page.on("request", lambda request: page.requested.append(request.url))  # type: ignore[attr-defined]
        page.dialogs = []  # type: ignore[attr-defined]
        page.on("dialog", lambda dialog: page.dialogs.append(dialog.message))  # type: ignore[attr-defined]
        yield page
        await browser.close()


async def last_bot_text(page) -> str:
    return await page.locator(".message.bot .bubble").last.inner_text()


async def type_and_send(page, text: str) -> None:
    count = await page.locator(".message.bot").count()
    await page.fill("#text-input", text)
    await page.press("#text-input", "Enter")
    await wait_for_answer(page, count)


async def wait_for_answer(page, bot_count_before: int) -> None:
    await page.locator(".message.bot").nth(bot_count_before).wait_for()
    await page.locator("#typing").wait_for(state="hidden")


async def test_a_parent_starts_registering_in_the_browser_and_uploads_a_photo(page, server, tmp_path: Path):
    huge_photo = tmp_path / "anh-qua-lon.jpg"
    huge_photo.write_bytes(b"\xff\xd8\xff" + b"\0" * (11 * 1024 * 1024))
    await page.goto(server.url)

    # The greeting arrives by itself, with the menu as buttons.
    greeting = page.locator(".message.bot").first
    await greeting.wait_for()
    assert "trợ lý VssID" in await greeting.inner_text()
    assert await page.locator("#progress").is_hidden()

    count = await page.locator(".message.bot").count()
    await page.get_by_role("button", name="Đăng ký tài khoản VssID").click()
    await wait_for_answer(page, count)
    assert await page.locator(".message.user .bubble").last.inner_text() == "Đăng ký tài khoản VssID"
    assert "mã số BHXH" in await last_bot_text(page)
    assert await page.locator("#progress-label").inner_text() == "Bước 1/7"
    # Buttons of a step already answered can no longer be pressed.
    assert await page.get_by_role("button", name="Đăng ký tài khoản VssID").is_disabled()

    await type_and_send(page, "9299000107")
    assert "họ và tên" in await last_bot_text(page)

    # Typed markup is shown as the characters typed, never turned into page elements.
    attack = "<img src=x onerror=\"document.title='hacked'\">Trần"
    await type_and_send(page, attack)
    assert await page.locator(".message.user .bubble").last.inner_text() == attack
    assert await page.locator(".message img[src='x']").count() == 0
    assert await page.title() != "hacked"

    for text in ("Bùi Thị Ngọc Trâm", "092195900007", "0989000707", "Hồ Chí Minh", "Bến Thành"):
        await type_and_send(page, text)
    assert await page.locator("#progress-label").inner_text() == "Bước 2/7"
    await type_and_send(page, "Số 12, đường Lê Lợi")
    assert "ảnh chân dung" in await last_bot_text(page)
    assert await page.locator("#progress-label").inner_text() == "Bước 3/7"

    # The camera input is there for phones; the gallery input takes the generated photo here.
    assert await page.locator("#camera-input").get_attribute("capture") is not None
    # A photo over 10 MB is refused by the page itself, before any upload.
    posts_before = sum(url.endswith("/messages") for url in page.requested)
    count = await page.locator(".message.bot").count()
    await page.set_input_files("#photo-input", str(huge_photo))
    await page.locator(".message.bot").nth(count).wait_for()
    assert "quá nặng" in await last_bot_text(page)
    assert sum(url.endswith("/messages") for url in page.requested) == posts_before

    count = await page.locator(".message.bot").count()
    photo = imagegen.encode(imagegen.portrait_image())
    await page.set_input_files(
        "#photo-input", {"name": "chan-dung.jpg", "mimeType": "image/jpeg", "buffer": photo}
    )
    await wait_for_answer(page, count)
    assert await page.locator(".message.user").last.locator("img").count() == 1
    answers = await page.locator(".message.bot .bubble").all_inner_texts()
    assert any("Đã nhận ảnh chân dung" in a for a in answers[count:])
    assert "MẶT TRƯỚC" in await last_bot_text(page)

    # A reload continues the same conversation where it was.
    await page.reload()
    await page.locator(".message.bot").last.wait_for()
    assert "MẶT TRƯỚC" in await last_bot_text(page)
    assert await page.locator("#progress-label").inner_text() == "Bước 3/7"
    count = await page.locator(".message.bot").count()
    await page.set_input_files(
        "#photo-input",
        {"name": "mat-truoc.jpg", "mimeType": "image/jpeg", "buffer": imagegen.sharp_document_jpeg()},
    )
    await wait_for_answer(page, count)
    assert "MẶT SAU" in await last_bot_text(page)

    # Everything came from our own server: no CDN, no fonts, no trackers.
    origin = server.url.rstrip("/")
    assert all(url.startswith((origin, "blob:", "data:")) for url in page.requested), page.requested
    assert page.dialogs == []


async def test_a_school_link_opens_the_chat_with_the_school_remembered(page, server):
    await page.goto(server.url.rstrip("/") + "/?start=school_THCS-LeLoi")

    greeting = page.locator(".message.bot").first
    await greeting.wait_for()
    assert "THCS-LeLoi" in await greeting.inner_text()
    # The payload went on as /start once: the address bar no longer carries it, so a reload
    # continues the conversation instead of greeting again.
    assert "start=" not in page.url
    state, _ = server.assistant.store.load(
        "web:" + await page.evaluate("localStorage.getItem('vssid.conversation')")
    )
    assert state.meta["school"] == "THCS-LeLoi"
    await page.reload()
    await page.locator(".message.bot").first.wait_for()
    assert await page.locator(".message.bot").count() == 1


async def test_a_busy_server_is_waited_out_by_the_page_itself(page, server):
    await page.goto(server.url)
    await page.locator(".message.bot", has_text="trợ lý VssID").wait_for()
    posts_before = sum(url.endswith("/messages") for url in page.requested)
    refusals = iter([True])  # the photo finds the CPU work queue full, once
    server.web.full = lambda: next(refusals, False)
    # The order of the form's fields as the page hands it to fetch (Chromium keeps a file's
    # bytes out of what it reports of a request's body).
    await page.evaluate(
        """() => {
            window.formFields = [];
            const send = window.fetch;
            window.fetch = (url, init) => {
                if (init && init.body instanceof FormData) window.formFields.push([...init.body.keys()]);
                return send(url, init);
            };
        }"""
    )

    count = await page.locator(".message.bot").count()
    photo = imagegen.encode(imagegen.portrait_image())
    await page.set_input_files("#photo-input", {"name": "anh.jpg", "mimeType": "image/jpeg", "buffer": photo})
    busy = page.locator(".message.bot").nth(count)
    await busy.wait_for()
    assert "đang bận" in await busy.inner_text()
    # Nobody chose the photo again: the page sent the same message after Retry-After.
    await wait_for_answer(page, count + 1)
    assert "đang bận" not in await last_bot_text(page)
    assert sum(url.endswith("/messages") for url in page.requested) == posts_before + 2
    # Both times the small fields came first: the server can refuse before reading the photo.
    assert await page.evaluate("window.formFields") == [["message_id", "photo"], ["message_id", "photo"]]


async def test_the_progress_bar_stays_the_question_shows_and_photos_come_back_after_a_reload(page, server):
    """An error or a yes/no question keeps the bar (no header jump); after a reload the last
    line of the question is above the input box and the photo sent is shown again."""
    await page.goto(server.url)
    await page.locator(".message.bot").first.wait_for()
    count = await page.locator(".message.bot").count()
    await page.get_by_role("button", name="Đăng ký tài khoản VssID").click()
    await wait_for_answer(page, count)
    await type_and_send(page, "9299000107")
    header = await page.locator("header.top").bounding_box()
    await type_and_send(page, "Trần 123")  # refused: digits in a name
    assert "chữ số" in await last_bot_text(page)
    assert await page.locator("#progress-label").inner_text() == "Bước 1/7"
    assert (await page.locator("header.top").bounding_box())["height"] == header["height"]
    for text in ("Bùi Thị Ngọc Trâm", "092195900007", "0989000707", "Hồ Chí Minh", "Bến Thành"):
        await type_and_send(page, text)
    await type_and_send(page, "Số 12, đường Lê Lợi")
    count = await page.locator(".message.bot").count()
    photo = imagegen.encode(imagegen.portrait_image())
    await page.set_input_files(
        "#photo-input", {"name": "chan-dung.jpg", "mimeType": "image/jpeg", "buffer": photo}
    )
    await wait_for_answer(page, count)
    assert "MẶT TRƯỚC" in await last_bot_text(page)
    # The thumbnail kept for the history is made in the background: wait until it is saved.
    await page.wait_for_function(
        "() => Object.keys(localStorage).some(k => k.startsWith('vssid.history') && localStorage.getItem(k).includes('data:image/jpeg'))"
    )

    await page.reload()
    await page.locator(".message.bot").last.wait_for()
    await page.wait_for_timeout(300)
    assert await page.locator("#progress-label").inner_text() == "Bước 3/7"
    assert await page.locator(".message.user img").count() == 1
    assert await page.locator(".message.user img").evaluate("img => img.complete && img.naturalWidth > 0")
    question = await page.locator(".message.bot .bubble").last.bounding_box()
    composer = await page.locator("#composer").bounding_box()
    assert question["y"] + question["height"] <= composer["y"] + 1, (question, composer)
