"""The staff console's door: accounts from the shell, login, sessions, CSRF, lockout, audit.

Against `vssid-bot run`'s real aiohttp server on a loopback port, with the real assistant.
"""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.console.auth import MAX_FAILURES, StaffDirectory
from bot.runner import start_service
from bot.storage import make_engine
from tests.chat_harness import isolated_settings
from tests.console_harness import StaffClient, csrf_of

PASSWORD = "mat-khau-dai-1"


def cli(data_dir: Path, *args: str, stdin: str | None = None):
    result = CliRunner().invoke(app, [*args, "--data-dir", str(data_dir)], input=stdin)
    return result


@pytest.fixture
async def server(tmp_path: Path):
    settings = isolated_settings(tmp_path, web_host="127.0.0.1", web_port=0)
    service = await start_service(settings)
    yield service
    await service.stop()


@pytest.fixture
async def staff(server):
    directory = StaffDirectory(make_engine(server.settings.sqlalchemy_url))
    directory.add("lan.nguyen", PASSWORD, "hotline", "Chị Lan")
    directory.add("minh.admin", PASSWORD, "admin", "Anh Minh")
    clients: list[StaffClient] = []

    def client() -> StaffClient:
        c = StaffClient.open(server.url)
        clients.append(c)
        return c

    yield client
    for c in clients:
        await c.close()


def test_staff_accounts_are_added_listed_and_disabled_from_the_shell(tmp_path: Path):
    data = tmp_path / "data"
    assert cli(data, "staff", "add", "lan.nguyen", "--password-stdin", stdin=PASSWORD + "\n").exit_code == 0
    added = cli(data, "staff", "add", "truong.a", "--role", "school", "--password-stdin", stdin=PASSWORD)
    assert added.exit_code == 0
    # The password never goes on the command line; a short one, a bad role, a duplicate are refused.
    assert cli(data, "staff", "add", "x.y", "--password-stdin", stdin="ngan\n").exit_code == 1
    assert (
        cli(data, "staff", "add", "x.y", "--role", "boss", "--password-stdin", stdin=PASSWORD).exit_code == 1
    )
    duplicate = cli(data, "staff", "add", "lan.nguyen", "--password-stdin", stdin=PASSWORD)
    assert duplicate.exit_code == 1 and "already exists" in duplicate.output
    assert cli(data, "staff", "add", "no.stdin").exit_code == 2

    listed = json.loads(cli(data, "staff", "list", "--json").output)
    assert [(r["username"], r["role"], r["active"]) for r in listed] == [
        ("lan.nguyen", "hotline", True),
        ("truong.a", "school", True),
    ]
    assert set(listed[0]) == {"username", "display_name", "role", "active", "created_at"}
    assert PASSWORD not in json.dumps(listed)

    assert cli(data, "staff", "disable", "truong.a").exit_code == 0
    assert cli(data, "staff", "disable", "nobody").exit_code == 1
    listed = json.loads(cli(data, "staff", "list", "--json").output)
    assert [r["active"] for r in listed] == [True, False]


async def test_no_console_page_answers_without_a_session(server):
    async with aiohttp.ClientSession() as http:
        for path in ("/staff", "/staff/audit"):
            async with http.get(server.url.rstrip("/") + path, allow_redirects=False) as response:
                assert response.status == 303
                assert response.headers["Location"].startswith("/staff/login?next=")
        async with http.get(server.url + "staff/api/anything", allow_redirects=False) as response:
            assert response.status == 401
        async with http.post(server.url + "staff/logout", data={"csrf": "x"}) as response:
            assert response.status == 401
        # A forged session cookie opens nothing either.
        async with http.get(
            server.url + "staff", cookies={"vssid_staff": "guessed"}, allow_redirects=False
        ) as response:
            assert response.status == 303


async def test_a_staff_member_logs_in_with_a_safe_cookie_and_logs_out(server, staff):
    lan = staff()
    status, page = await lan.login("lan.nguyen", PASSWORD)
    assert status == 200 and "Xin chào, Chị Lan" in page
    cookie = lan.session_cookie_header()
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/staff" in cookie
    assert "Secure" not in cookie  # plain http on loopback; https public URLs get Secure (below)
    # Audit is for admins only.
    status, page = await lan.get("/staff/audit")
    assert status == 403 and "không có quyền" in page

    status, page = await lan.post_form("/staff/logout", {})
    assert status == 200 and "đã đăng xuất" in page
    status, _ = await lan.get("/staff", allow_redirects=False)
    assert status == 303


async def test_wrong_password_then_lockout_even_for_the_right_one(server, staff):
    lan = staff()
    status, page = await lan.login("lan.nguyen", "sai-mat-khau")
    assert status == 401 and "không đúng" in page
    for _ in range(MAX_FAILURES - 2):
        await lan.login("lan.nguyen", "sai-mat-khau")
    status, page = await lan.login("lan.nguyen", "sai-mat-khau")
    assert status == 403 and "tạm khóa" in page
    status, page = await lan.login("lan.nguyen", PASSWORD)
    assert status == 403 and "tạm khóa" in page
    # An unknown name gets the same answer as a wrong password.
    status, page = await lan.login("khong.co", PASSWORD)
    assert status == 401 and "không đúng" in page


async def test_a_disabled_account_cannot_log_in_and_loses_its_session(server, staff, tmp_path: Path):
    lan = staff()
    assert (await lan.login("lan.nguyen", PASSWORD))[0] == 200
    assert cli(tmp_path / "data", "staff", "disable", "lan.nguyen").exit_code == 0
    status, _ = await lan.get("/staff", allow_redirects=False)
    assert status == 303
    status, page = await lan.login("lan.nguyen", PASSWORD)
    assert status == 403 and "vô hiệu hóa" in page


async def test_forms_without_the_right_csrf_token_are_refused(server, staff):
    lan = staff()
    # The login form itself: a POST that did not come from our page.
    async with lan.http.post(
        lan.url("/staff/login"), data={"username": "lan.nguyen", "password": PASSWORD, "csrf": "x"}
    ) as response:
        assert response.status == 403
        assert "Tải lại trang" in await response.text()
    assert (await lan.login("lan.nguyen", PASSWORD))[0] == 200
    async with lan.http.post(lan.url("/staff/logout"), data={"csrf": "wrong"}) as response:
        assert response.status == 403
    # Still logged in: the forged logout did nothing.
    status, page = await lan.get("/staff")
    assert status == 200 and csrf_of(page)


async def test_the_audit_log_shows_another_staff_members_actions(server, staff, tmp_path: Path):
    lan, minh = staff(), staff()
    await lan.login("lan.nguyen", "sai-mat-khau")
    await lan.login("lan.nguyen", PASSWORD)
    assert (await minh.login("minh.admin", PASSWORD))[0] == 200
    status, page = await minh.get("/staff/audit")
    assert status == 200
    assert "lan.nguyen" in page and "login_wrong" in page
    entries = json.loads(cli(tmp_path / "data", "staff", "audit", "--json").output)
    assert [(e["staff"], e["action"]) for e in entries] == [
        ("lan.nguyen", "login_wrong"),
        ("lan.nguyen", "login"),
        ("minh.admin", "login"),
    ]
    assert set(entries[0]) == {"at", "staff", "action", "target", "detail"}


async def test_cookies_are_secure_when_the_public_url_is_https(tmp_path: Path):
    settings = isolated_settings(tmp_path, web_port=0, public_url="https://vssid.example.org")
    service = await start_service(settings)
    try:
        StaffDirectory(make_engine(settings.sqlalchemy_url)).add("lan.nguyen", PASSWORD)
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            async with http.get(service.url + "staff/login") as response:
                form = await response.text()
                assert "Secure" in response.headers["Set-Cookie"]
            data = {"csrf": csrf_of(form), "username": "lan.nguyen", "password": PASSWORD}
            # The cookie jar keeps a Secure cookie off plain http: send the form token by hand.
            cookies = {"vssid_staff_login": csrf_of(form)}
            async with http.post(
                service.url + "staff/login", data=data, cookies=cookies, allow_redirects=False
            ) as response:
                assert response.status == 303
                session_cookie = response.headers["Set-Cookie"]
                assert "HttpOnly" in session_cookie and "Secure" in session_cookie
                assert "SameSite=Strict" in session_cookie
    finally:
        await service.stop()


@pytest.mark.browser
async def test_a_staff_member_logs_in_from_a_real_browser(server, staff):
    from tests.test_web_browser import CHROMIUM, CHROMIUM_ARGS

    playwright_api = pytest.importorskip("playwright.async_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (./dev test installs it)")
    staff()  # the accounts
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = await (await browser.new_context(viewport={"width": 390, "height": 844})).new_page()
        page.set_default_timeout(10_000)
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        await page.goto(server.url + "staff")
        assert "/staff/login" in page.url
        await page.get_by_label("Tên đăng nhập").fill("lan.nguyen")
        await page.get_by_label("Mật khẩu").fill("sai-mat-khau")
        await page.get_by_role("button", name="Đăng nhập").click()
        assert "không đúng" in await page.get_by_role("alert").inner_text()
        await page.get_by_label("Tên đăng nhập").fill("lan.nguyen")
        await page.get_by_label("Mật khẩu").fill(PASSWORD)
        await page.get_by_role("button", name="Đăng nhập").click()
        await page.get_by_role("heading", name="Xin chào, Chị Lan").wait_for()
        # Nothing is loaded from elsewhere; the session cookie is out of scripts' reach.
        assert all(url.startswith(server.url) or url.startswith("data:") for url in requested)
        assert "vssid_staff" not in await page.evaluate("document.cookie")
        await page.get_by_role("button", name="Đăng xuất").click()
        assert "đã đăng xuất" in await page.get_by_role("alert").inner_text()
        await browser.close()
