"""The console's schools page in a real headless Chromium: the district's admin sees every
school's chart, the roll-ups, the days left and downloads the figures; a school's account
sees its own school only."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from bot.console.auth import StaffDirectory
from bot.documents import today_in_vietnam
from bot.runner import start_service
from bot.schools.funnel import FunnelStep, SchoolFunnel
from bot.schools.registry import SchoolRegistry, parse_csv
from bot.storage import make_engine
from tests.chat_harness import isolated_settings
from tests.test_schools import GOOD_CSV

pytestmark = pytest.mark.browser
PASSWORD = "mat-khau-dai-1"


def _seed(engine) -> None:
    """What parents from the schools' links reached (counted as the assistant counts them)."""
    SchoolRegistry(engine).save(parse_csv(GOOD_CSV))
    steps = []
    for n in range(5):  # Lê Lợi: five parents started, three reached the summary, two submitted ...
        steps.append(FunnelStep(f"a{n}", "THCS-LeLoi", "individual", "started"))
    for n in range(3):
        steps.append(FunnelStep(f"b{n}", "THCS-LeLoi", "individual", "summary"))
    for n in range(2):
        steps.append(FunnelStep(f"c{n}", "THCS-LeLoi", "individual", "submitted"))
    for n in range(4):  # ... and four children registered, 4 of 850 pupils
        for stage in ("started", "summary", "submitted", "confirmed"):
            steps.append(FunnelStep(f"d{n}{stage}", "THCS-LeLoi", "child", stage))
    steps.append(FunnelStep("e", "TH-HoaBinh", "child", "started"))
    steps.append(FunnelStep("f", "THPT-ChuVanAn", "individual", "started"))
    SchoolFunnel(engine, {}).add(steps)


@pytest.fixture
async def server(tmp_path: Path, monkeypatch):
    settings = isolated_settings(tmp_path, web_host="127.0.0.1", web_port=0)
    monkeypatch.setenv("VSSID_DATA_DIR", str(settings.data_dir))
    monkeypatch.delenv("VSSID_DATABASE_URL", raising=False)

    def cli(*args: str, input: str | None = None):
        from bot.cli import app

        return CliRunner().invoke(app, list(args), input=input)

    service = await start_service(settings)
    engine = make_engine(settings.sqlalchemy_url)
    _seed(engine)
    staff = StaffDirectory(engine)
    staff.add("phong.gd", PASSWORD, "admin", "Phòng Giáo dục")
    # A school's account, tied to its school as an operator does it from the shell.
    added = cli(
        "staff",
        "add",
        "co.hanh",
        "--role",
        "school",
        "--school",
        "THCS-LeLoi",
        "--password-stdin",
        input=PASSWORD,
    )
    assert added.exit_code == 0, added.output
    wrong = cli("schools", "assign", "phong.gd", "THCS-LeLoi")
    assert wrong.exit_code == 1 and "only an account with the role school" in wrong.stderr
    staff.add("thay.minh", PASSWORD, "school", "Thầy Minh")  # not linked to a school yet
    yield service
    await service.stop()
    engine.dispose()


async def logged_in(browser, server, username: str):
    context = await browser.new_context(
        viewport={"width": 1280, "height": 900}, locale="vi-VN", accept_downloads=True
    )
    page = await context.new_page()
    page.set_default_timeout(15_000)
    page.requested = []  # type: ignore[attr-defined]
    page.on("request", lambda request: page.requested.append(request.url))  # type: ignore[attr-defined]
    await page.goto(server.url + "staff/schools")
    await page.get_by_label("Tên đăng nhập").fill(username)
    await page.get_by_label("Mật khẩu").fill(PASSWORD)
    await page.get_by_role("button", name="Đăng nhập").click()
    await page.get_by_role("heading", name="Đăng ký VssID qua các trường").wait_for()
    return page


async def download(page, link_id: str) -> bytes:
    async with page.expect_download() as info:
        await page.click(f"#{link_id}")
    download = await info.value
    return Path(await download.path()).read_bytes()


async def test_the_district_sees_every_school_and_downloads_the_figures(server, browser):
    page = await logged_in(browser, server, "phong.gd")
    # One chart per school, drawn in the page itself.
    assert await page.locator("svg.school-chart").count() == 3
    le_loi = page.locator("#school-THCS-LeLoi")
    assert "0.5 %" in await le_loi.inner_text()  # 4 children of 850 pupils
    bars = le_loi.locator("rect.bar-self")
    assert await bars.count() == 6
    started_width = float(await bars.nth(0).get_attribute("width"))
    summary_width = float(await bars.nth(1).get_attribute("width"))
    assert started_width > summary_width > 0  # five started, three reached the summary
    # Roll-ups: Hồ Chí Minh's two schools in one ward, Hà Nội's one.
    by_province = await page.locator("#by-province-table").inner_text()
    assert "Thành phố Hồ Chí Minh\t2\t850" in by_province
    assert "Thành phố Hà Nội\t1\t1200" in by_province
    assert "Phường Tân Thuận" in await page.locator("#by-ward-table").inner_text()

    # The district sets its deadline; the days left show.
    deadline = today_in_vietnam() + timedelta(days=12)
    await page.fill("#deadline-date", deadline.isoformat())
    await page.get_by_role("button", name="Lưu hạn").click()
    await page.locator("#days-left").wait_for()
    assert "còn 12 ngày" in await page.locator("#days-left").inner_text()

    rows = list(csv.reader(io.StringIO((await download(page, "export-csv")).decode("utf-8-sig"))))
    assert rows[0][:3] == ["Mã trường", "Tên trường", "Tỉnh/thành phố"]
    by_code = {row[0]: row for row in rows[1:]}
    assert set(by_code) == {"THCS-LeLoi", "TH-HoaBinh", "THPT-ChuVanAn"}
    header = rows[0]
    assert by_code["THCS-LeLoi"][header.index("Bản thân: bắt đầu")] == "5"
    assert by_code["THCS-LeLoi"][header.index("Cho con: đã xác thực OTP")] == "4"

    sheet = load_workbook(io.BytesIO(await download(page, "export-xlsx"))).active
    values = list(sheet.values)
    assert values[0] == tuple(header)
    le_loi_row = next(v for v in values if v[0] == "THCS-LeLoi")
    assert le_loi_row[header.index("Số học sinh")] == 850
    assert le_loi_row[header.index("Tỷ lệ học sinh đã đăng ký")] == pytest.approx(4 / 850, abs=1e-4)

    origin = server.url.rstrip("/")
    assert all(url.startswith((origin, "data:")) for url in page.requested), page.requested


async def test_a_school_account_sees_only_its_own_school(server, browser):
    page = await logged_in(browser, server, "co.hanh")
    assert await page.locator("svg.school-chart").count() == 1
    text = await page.locator("main").inner_text()
    assert "Trường THCS Lê Lợi" in text
    assert "Hòa Bình" not in text and "Chu Văn An" not in text
    # Asking for another province changes nothing for a school's account.
    await page.goto(server.url + "staff/schools?province=1")
    assert await page.locator("svg.school-chart").count() == 1
    assert "Chu Văn An" not in await page.locator("main").inner_text()
    rows = list(csv.reader(io.StringIO((await download(page, "export-csv")).decode("utf-8-sig"))))
    assert [row[0] for row in rows[1:]] == ["THCS-LeLoi"]
    # It cannot set the district's deadline.
    assert await page.locator("#deadline-date").count() == 0

    other = await logged_in(browser, server, "thay.minh")
    assert "chưa được gắn với trường nào" in await other.locator("main").inner_text()
    assert await other.locator("svg.school-chart").count() == 0
