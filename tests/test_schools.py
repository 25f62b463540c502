"""Schools as the district sees them: the registry, each school's links and poster, and the
funnel counted from parents who came through a school's link, on the web chat and Telegram."""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from pathlib import Path

import pytest
import zxingcpp
from aiohttp import ClientSession, FormData
from pypdf import PdfReader
from typer.testing import CliRunner

from bot.assistant import build_assistant
from bot.runner import start_service
from dialogs.messages import Button, Inbound, Outbound
from tests.chat_harness import (
    CITIZEN,
    Chat,
    fill_registration_until_summary,
    isolated_settings,
    otp_from_sms,
    portrait_jpeg,
)
from tests.fake_bot_api import BOT_USER
from tests.telegram_harness import running_bot
from tests.test_parents import KHANG, PARENT_WITH_ACCOUNT, PARENT_WITHOUT_ACCOUNT, register_child
from tests.test_telegram_assistant import TelegramChat

GOOD_CSV = """code,name,province,ward,contact,pupils
THCS-LeLoi,Trường THCS Lê Lợi,Thành phố Hồ Chí Minh,Phường Tân Thuận,Cô Hạnh 028 3773 0000,850
TH-HoaBinh,Trường Tiểu học Hòa Bình,79,27478,,
THPT-ChuVanAn,Trường THPT Chu Văn An,Hà Nội,Phường Ba Đình,thầy Minh,1200
"""

BAD_CSV = """code,name,province,ward,contact,pupils
THCS-LeLoi,Trường THCS Lê Lợi,Thành phố Hồ Chí Minh,Phường Tân Thuận,,850
THCS LeLoi 2,Trường THCS Lê Lợi 2,Bình Dương,Phường Phú Lợi,,
TH-X,,Hà Nội,Phường Tân Thuận,,không rõ
THCS-LeLoi,Trường trùng mã,79,27478,,
"""

STAGES = ("started", "summary", "submitted", "confirmed", "approved", "rejected")


def cli(*args: str):
    from bot.cli import app

    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def counts(*values: int) -> dict[str, int]:
    return dict(zip(STAGES, values, strict=True))


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch) -> Path:
    for name in ("VSSID_DATABASE_URL", "VSSID_BACKEND_URL", "TELEGRAM_BOT_TOKEN", "VSSID_PUBLIC_URL"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "data"


def test_a_good_file_is_imported_and_listed_by_province(data_dir: Path, tmp_path: Path):
    csv = tmp_path / "truong.csv"
    csv.write_text(GOOD_CSV, encoding="utf-8")
    result = cli("schools", "import", str(csv), "--data-dir", str(data_dir))
    assert result.exit_code == 0, result.output
    assert "3 schools" in result.stdout

    listed = json.loads(cli("schools", "list", "--json", "--data-dir", str(data_dir)).stdout)
    assert [s["code"] for s in listed] == ["THPT-ChuVanAn", "TH-HoaBinh", "THCS-LeLoi"] or {
        s["code"] for s in listed
    } == {"THPT-ChuVanAn", "TH-HoaBinh", "THCS-LeLoi"}
    le_loi = next(s for s in listed if s["code"] == "THCS-LeLoi")
    assert le_loi == {
        "code": "THCS-LeLoi",
        "name": "Trường THCS Lê Lợi",
        "province_code": 79,
        "province": "Thành phố Hồ Chí Minh",
        "ward_code": 27478,
        "ward": "Phường Tân Thuận",
        "contact": "Cô Hạnh 028 3773 0000",
        "pupils": 850,
    }
    hoa_binh = next(s for s in listed if s["code"] == "TH-HoaBinh")
    assert (hoa_binh["ward"], hoa_binh["pupils"]) == ("Phường Tân Thuận", None)  # by codes; no headcount
    hanoi = json.loads(
        cli("schools", "list", "--province", "1", "--json", "--data-dir", str(data_dir)).stdout
    )
    assert [s["code"] for s in hanoi] == ["THPT-ChuVanAn"]


def test_a_file_with_errors_names_every_bad_line_and_imports_nothing(data_dir: Path, tmp_path: Path):
    csv = tmp_path / "truong-loi.csv"
    csv.write_text(BAD_CSV, encoding="utf-8")
    result = cli("schools", "import", str(csv), "--data-dir", str(data_dir))
    assert result.exit_code == 1
    errors = result.stderr
    assert "nothing imported" in errors
    assert "line 3: code «THCS LeLoi 2»" in errors
    assert "line 3: «Bình Dương» is a province before 2025: write «Thành phố Hồ Chí Minh» (79)" in errors
    assert "line 4: name is empty" in errors
    assert "line 4: ward «Phường Tân Thuận» is not a 2025 ward of Thành phố Hà Nội" in errors
    assert "line 4: pupils «không rõ»" in errors
    assert "line 5: code «THCS-LeLoi» is already on line 2" in errors
    assert "line 2" not in errors.replace("on line 2", "")  # the good line is not blamed
    # Not even the good first line went in.
    assert json.loads(cli("schools", "list", "--json", "--data-dir", str(data_dir)).stdout) == []


async def test_a_school_link_and_its_poster_whose_qr_opens_the_link(
    data_dir: Path, tmp_path: Path, monkeypatch
):
    from tests.fake_bot_api import FakeBotApi

    csv = tmp_path / "truong.csv"
    csv.write_text(GOOD_CSV, encoding="utf-8")
    assert cli("schools", "import", str(csv), "--data-dir", str(data_dir)).exit_code == 0
    telegram = FakeBotApi()
    await telegram.start()
    try:
        monkeypatch.setenv("VSSID_PUBLIC_URL", "https://vssid.truong.example.vn/")
        monkeypatch.setenv("TELEGRAM_BOT_TOKEN", telegram.token)
        monkeypatch.setenv("TELEGRAM_API_BASE", telegram.base_url)
        result = await asyncio.to_thread(
            cli, "schools", "link", "THCS-LeLoi", "--json", "--data-dir", str(data_dir)
        )
    finally:
        await telegram.stop()
    assert result.exit_code == 0, result.output
    link = json.loads(result.stdout)
    assert set(link) == {"code", "name", "links", "poster"}
    assert (link["code"], link["name"]) == ("THCS-LeLoi", "Trường THCS Lê Lợi")
    assert link["links"] == {
        "web": "https://vssid.truong.example.vn/?start=school_THCS-LeLoi",
        "telegram": f"https://t.me/{BOT_USER['username']}?start=school_THCS-LeLoi",
        "zalo": None,  # not configured
    }
    poster = PdfReader(link["poster"])
    assert len(poster.pages) == 1
    page = poster.pages[0]
    assert round(float(page.mediabox.width)) == 595 and round(float(page.mediabox.height)) == 842  # A4
    text = page.extract_text()
    assert "Trường THCS Lê Lợi" in text and "1900 9068" in text and "Quét mã QR" in text
    [qr] = page.images
    decoded = [code.text for code in zxingcpp.read_barcodes(qr.image)]
    assert decoded == [link["links"]["web"]]

    unknown = cli("schools", "link", "THCS-KhongCo", "--json", "--data-dir", str(data_dir))
    assert unknown.exit_code == 1 and "No school with the code «THCS-KhongCo»" in unknown.stderr


class WebChat(Chat):
    """A parent on the web chat page: the same API calls the page makes, over real HTTP."""

    def __init__(self, http: ClientSession, base: str, conversation: str, downloads: Path) -> None:
        conversation = f"w{uuid.uuid4().hex}-{conversation}"  # the page's random id, a readable tail
        super().__init__(assistant=None, user=conversation, channel="web")
        self.http, self.base, self.url = http, base, f"{base}/api/chat/{conversation}/messages"
        self.downloads = downloads
        downloads.mkdir(parents=True, exist_ok=True)
        self._n = itertools.count(1)

    async def send(self, inbound: Inbound) -> list[Outbound]:
        mid = f"m{next(self._n)}"
        if inbound.photo is not None:
            form = FormData()
            form.add_field("photo", inbound.photo, filename="anh.jpg", content_type="image/jpeg")
            form.add_field("message_id", mid)
            request = self.http.post(self.url, data=form)
        else:
            body = {"text": inbound.text} if inbound.text is not None else {"button": inbound.button}
            request = self.http.post(self.url, json={**body, "message_id": mid})
        async with request as response:
            assert response.status == 200, await response.text()
            data = await response.json()
        self.replies = [
            Outbound(
                r["text"],
                tuple(Button(b["label"], b["payload"]) for b in r["buttons"]),
                document=await self._download(r["document"]) if r["document"] else None,
            )
            for r in data["replies"]
        ]
        return self.replies

    async def _download(self, url: str) -> Path:
        """The PDF behind a reply's link, as the page's download button fetches it."""
        async with self.http.get(self.base + url if url.startswith("/") else url) as response:
            assert response.status == 200
            path = self.downloads / f"{len(list(self.downloads.iterdir()))}.pdf"
            path.write_bytes(await response.read())
            return path


async def _submit_and_confirm(chat, backend, phone: str) -> str:
    await chat.press("Thông tin đúng, tiếp tục")
    await chat.press("Đồng ý")
    await chat.text(otp_from_sms(await backend.sms_outbox(), phone))
    assert "Đăng ký thành công bước đầu" in chat.said
    return next(d["receipt"] for d in reversed(await backend.list_declarations()) if d["phone"] == phone)


async def _report(data_dir: Path, *args: str) -> dict[str, dict]:
    result = await asyncio.to_thread(cli, "report", "schools", *args, "--json", "--data-dir", str(data_dir))
    assert result.exit_code == 0, result.output
    return {item["code"]: item for item in json.loads(result.stdout)}


async def test_parents_from_two_schools_web_links_and_a_telegram_deep_link_are_counted(
    data_dir: Path, tmp_path: Path
):
    csv = tmp_path / "truong.csv"
    csv.write_text(GOOD_CSV, encoding="utf-8")
    assert cli("schools", "import", str(csv), "--data-dir", str(data_dir)).exit_code == 0
    settings = isolated_settings(tmp_path, web_host="127.0.0.1", web_port=0)
    assistant = await build_assistant(settings)
    backend = assistant.engine.services.backend
    service = await start_service(settings, assistant=assistant)
    try:
        async with ClientSession() as http, running_bot("aiogram", "polling", assistant) as telegram:
            assistant.add_channel(telegram.channel)
            base = service.url.rstrip("/")
            # Lê Lợi's link: a parent registers herself and is approved ...
            hung = WebChat(http, base, "wLeLoi-parent-1", tmp_path / "wLeLoi-parent-1")
            await hung.text("/start school_THCS-LeLoi")
            await hung.press("flow:registration")
            await fill_registration_until_summary(hung, PARENT_WITHOUT_ACCOUNT, started=True)
            approved = await _submit_and_confirm(hung, backend, PARENT_WITHOUT_ACCOUNT["phone"])
            # ... another registers her child through her account, and the office rejects it.
            huong = WebChat(http, base, "wLeLoi-parent-2", tmp_path / "wLeLoi-parent-2")
            await huong.text("/start school_THCS-LeLoi")
            await huong.press("flow:child_registration")
            await huong.press("Tôi đã có tài khoản VssID")
            await huong.text(PARENT_WITH_ACCOUNT["code"])
            await huong.text(PARENT_WITH_ACCOUNT["phone"])
            await huong.text(otp_from_sms(await backend.sms_outbox(), PARENT_WITH_ACCOUNT["phone"]))
            rejected = await register_child(huong, backend, KHANG, PARENT_WITH_ACCOUNT["phone"])
            # Hòa Bình's web link: a parent reaches the summary and stops there.
            nhung = WebChat(http, base, "wHoaBinh-parent-1", tmp_path / "wHoaBinh-parent-1")
            await nhung.text("/start school_TH-HoaBinh")
            await nhung.press("flow:registration")
            await fill_registration_until_summary(nhung, CITIZEN, started=True)
            # Hòa Bình's Telegram deep link: a parent registers and confirms by OTP.
            tuan = TelegramChat(telegram)
            await tuan.text("/start school_TH-HoaBinh")
            await tuan.press("Đăng ký tài khoản VssID")
            for answer in (
                "7999000108",
                "Lý Minh Tuấn",
                "079201900008",
                "0399000808",
                "hcm",
                "Phường Tân Hưng",
                "Số 3, đường số 5",
            ):
                await tuan.text(answer)
            await tuan.photo_as_file(portrait_jpeg())
            await tuan.text("07919")
            await tuan.press("Bỏ qua")
            await tuan.press("Thông tin đúng, tiếp tục")
            await tuan.press("Đồng ý")
            await tuan.text(otp_from_sms(await backend.sms_outbox(), "0399000808"))
            assert "Đăng ký thành công bước đầu" in tuan.said

            await backend.approve(approved)
            await backend.reject(rejected, "Ảnh giấy khai sinh bị mờ, không đọc được số.")

            declarations = {d["receipt"]: d for d in await backend.list_declarations()}
            assert declarations[approved]["school"] == "THCS-LeLoi"
            assert declarations[rejected]["school"] == "THCS-LeLoi"
            assert sorted(d["school"] or "" for d in declarations.values()) == [
                "TH-HoaBinh",
                "THCS-LeLoi",
                "THCS-LeLoi",
            ]

            report = await _report(data_dir)
            assert report["THCS-LeLoi"] == {
                "code": "THCS-LeLoi",
                "name": "Trường THCS Lê Lợi",
                "self": counts(1, 1, 1, 1, 1, 0),
                "children": counts(1, 1, 1, 1, 0, 1),
            }
            assert report["TH-HoaBinh"]["self"] == counts(2, 2, 1, 1, 0, 0)
            assert report["TH-HoaBinh"]["children"] == counts(0, 0, 0, 0, 0, 0)
            assert report["THPT-ChuVanAn"]["self"] == counts(0, 0, 0, 0, 0, 0)
            # Counts only: nobody's name, ID number or phone is anywhere in it.
            text = json.dumps(report, ensure_ascii=False)
            for personal in ("Đặng Văn Hùng", "Lý Minh Tuấn", "0399000808", "079085900006", "7999000101"):
                assert personal not in text

            # Deleting one's data does not change what the district was told.
            await hung.text("/delete")
            await hung.press("confirm:yes")
            assert await _report(data_dir) == report
            # A province and a date narrow it.
            assert list(await _report(data_dir, "--province", "1")) == ["THPT-ChuVanAn"]
            later = await _report(data_dir, "--since", "2099-01-01")
            assert later["THCS-LeLoi"]["self"] == counts(0, 0, 0, 0, 0, 0)
    finally:
        await service.stop()
