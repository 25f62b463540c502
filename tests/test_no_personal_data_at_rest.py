"""Done means: after every channel's journey at DEBUG logging, the synthetic people's ID
numbers, phones and names are nowhere in clear — not in the logs, not in any database file
(WAL and SHM included), not in the outboxes, not in any file of the data dir — and after
/delete the conversation's data is gone."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import unicodedata
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.assistant import build_assistant
from bot.channels.web import CLIENT_MAX_SIZE, DocumentLinks, WebChannel
from bot.logs import setup_logging
from tests.chat_harness import CITIZEN, Chat, fill_registration_until_summary, isolated_settings, otp_from_sms
from tests.fake_zalo_api import FakeZaloApi, text_event
from tests.telegram_harness import running_bot
from tests.test_telegram_assistant import TelegramChat
from tests.test_zalo import Harness, Parent, make_channel

# Each channel's person (synthetic, bot/backend/people.yaml style): what must never be in clear.
WEB = {"code": "7999000106", "name": "Đặng Văn Hùng", "id": "079085000106", "phone": "0901000106"}
ZALO = {"code": "9299000107", "name": "Bùi Thị Ngọc Trâm", "id": "092195900007", "phone": "0912000107"}
TELEGRAM = {"name": "Vương Thị Kim Liên", "id": "001190000777", "phone": "0933000777"}


def needles(*people: dict) -> dict[str, bytes]:
    found = {}
    for person in people:
        for key in ("name", "id", "phone", "full_name", "id_number", "code", "social_insurance_code"):
            value = person.get(key)
            if value:
                value = value.replace(" ", "")
                found[f"{key}:{value}"] = unicodedata.normalize("NFC", value).encode()
                found[f"{key}:{value}:nfd"] = unicodedata.normalize("NFD", value).encode()
    return found


# A photo or PDF a viewer opens as it is: stored ones must be sealed (bot/crypto.py).
CLEAR_FILE_SIGNATURES = {b"\xff\xd8\xff": "a JPEG", b"\x89PNG": "a PNG", b"%PDF": "a PDF"}


def leaks(root: Path, log_text: str, searched: dict[str, bytes]) -> list[str]:
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        found += [
            f"{path.relative_to(root)}: {label}" for label, needle in searched.items() if needle in data
        ]
        found += [
            f"{path.relative_to(root)}: {kind} in clear"
            for signature, kind in CLEAR_FILE_SIGNATURES.items()
            if data.startswith(signature)
        ]
    logged = log_text.encode()
    found += [f"log: {label}" for label, needle in searched.items() if needle in logged]
    return found


async def web_journey(assistant, data_dir: Path) -> str:
    channel = WebChannel(assistant, DocumentLinks.from_data_dir(data_dir))
    app = web.Application(client_max_size=CLIENT_MAX_SIZE)
    channel.add_routes(app)
    cid = "w" + "5f0c2a9e47b13d86c0e2f4a1b9d7c35e"
    async with TestClient(TestServer(app)) as client:

        async def say(body: dict) -> str:
            response = await client.post(f"/api/chat/{cid}/messages", json=body)
            assert response.status == 200
            return "\n".join(r["text"] for r in (await response.json())["replies"])

        await say({"text": "/start"})
        await say({"button": "flow:registration"})
        for value in (WEB["code"], WEB["name"], WEB["id"], WEB["phone"]):
            await say({"text": value})
    return f"web:{cid}"


async def zalo_journey(assistant, data_dir: Path) -> tuple[str, object]:
    api = await FakeZaloApi().start()
    channel = make_channel(assistant, api, data_dir)
    assistant.add_channel(channel)
    app = web.Application(client_max_size=CLIENT_MAX_SIZE)
    channel.add_routes(app)
    await channel.start()
    user = "8409990001112223334"
    async with TestClient(TestServer(app)) as client:
        harness = Harness(client, channel, api, assistant)
        parent = Parent(harness, user)
        await harness.post(text_event(user, "/start"))
        await parent.taps("Đăng ký tài khoản VssID")
        await parent.says(ZALO["code"])
        api.fail_next.extend([-32] * 6)  # Zalo refuses for a while: replies wait in the outbox
        await parent.says(ZALO["name"])
        await parent.says(ZALO["id"])
        await parent.says(ZALO["phone"])
    await channel.stop()
    await api.close()
    return f"zalo:{user}", channel


async def telegram_journey(assistant) -> tuple[str, Path]:
    async with running_bot("aiogram", "polling", assistant) as h:
        assistant.add_channel(h.channel)
        chat = TelegramChat(h)
        await chat.text("/start")
        await chat.press("Đăng ký tài khoản VssID")
        await chat.text(CITIZEN["social_insurance_code"])
        h.server.outage = True  # nothing the bot sends gets through: it waits in the outbox
        try:
            await chat.text(TELEGRAM["name"])
            await chat.text(TELEGRAM["id"])
            await chat.text(TELEGRAM["phone"])
        finally:
            h.server.outage = False
        return f"telegram:{chat.user.id}", Path(h.channel.outbox.path)


@pytest.mark.parametrize("level", ["DEBUG"])
async def test_no_personal_data_in_clear_anywhere_and_none_after_delete(tmp_path: Path, caplog, level):
    setup_logging(level)
    caplog.set_level(logging.DEBUG)
    settings = isolated_settings(tmp_path)
    data = settings.data_dir
    assistant = await build_assistant(settings)
    try:
        # The terminal/test channel: a whole registration, the PDF, the approval notice.
        chat = Chat(assistant)
        backend, declaration = await submitted(chat, assistant)
        assert chat.document is not None
        await backend.approve(declaration["receipt"])
        web_conversation = await web_journey(assistant, data)
        zalo_conversation, _ = await zalo_journey(assistant, data)
        telegram_conversation, telegram_outbox = await telegram_journey(assistant)
        assistant.store.commit_pending()

        people = needles(CITIZEN, WEB, ZALO, TELEGRAM)
        assert assistant.store.outbox.waiting("zalo:")  # Zalo's replies wait in the outbox
        found = leaks(data, caplog.text, people) + leaks(telegram_outbox.parent, "", people)
        assert found == [], found

        # /delete on every channel's conversation: afterwards nothing of theirs is readable,
        # not even with the key (the stub stands for the office, which keeps declarations).
        conversations = (
            chat.channel + ":" + chat.user,
            web_conversation,
            zalo_conversation,
            telegram_conversation,
        )
        for conversation in conversations:
            channel, _, user = conversation.partition(":")
            deleter = Chat(assistant, user=user, channel=channel)
            await deleter.text("/delete")
            if deleter.replies and any(b.label == "Xóa hết" for r in deleter.replies for b in r.buttons):
                await deleter.press("Xóa hết")
        assert list((data / "uploads").rglob("*.jpg")) == []
        assert list((data / "documents").rglob("*.pdf")) == []
        assert [p for p in data.rglob("*") if p.is_file() and "handouts" in p.parts] == []
        assistant.store.commit_pending()
        keyring = settings.keyring()
        opened = "\n".join(
            [
                keyring.open_text(v)
                for v in sealed_values(
                    data / "vssid.sqlite3",
                    ("conversation", "state"),
                    ("outbox", "payload"),
                    ("offered_buttons", "buttons"),
                )
            ]
            + [keyring.open_text(v) for v in sealed_values(telegram_outbox, ("outbox", "payload"))]
            + [
                keyring.open_text(v)
                for v in sealed_values(data / "vssid.sqlite3", ("seen_message", "replies"))
                if v is not None
            ]
            + [sealed_column_values(assistant.store.engine, keyring)]
        )
        remaining = [label for label, needle in people.items() if needle in opened.encode()]
        assert remaining == [], remaining
        # SQLite overwrote what was deleted (secure_delete) and the WAL was checkpointed.
        assert found_nowhere(data, people)
    finally:
        await assistant.close()


async def submitted(chat: Chat, assistant) -> tuple[object, dict]:
    """CITIZEN's registration sent and confirmed by OTP: (the backend, the declaration)."""
    await fill_registration_until_summary(chat)
    await chat.press("Thông tin đúng, tiếp tục")
    await chat.press("Đồng ý")
    backend = assistant.engine.services.backend
    await chat.text(otp_from_sms(await backend.sms_outbox(), "0987654321"))
    [declaration] = await backend.list_declarations()
    return backend, declaration


def sealed_values(path: Path, *columns: tuple[str, str]) -> list[str]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        # Table and column names are this test's constants.
        queries = [f"SELECT {column} FROM {table}" for table, column in columns]  # noqa: S608 - constants
        return [v for query in queries for (v,) in db.execute(query)]


def found_nowhere(root: Path, searched: dict[str, bytes]) -> bool:
    return leaks(root, "", searched) == []


# -- the hotline and the schools ---------------------------------------------------------------

# A caller handed off from the hotline, and a school's contact person (synthetic).
CALLER = {"name": "Trịnh Văn Khải", "id": "038090000808", "phone": "0978000808"}
SCHOOL_CONTACT = {"name": "Phan Thị Mai", "phone": "0909000606"}


async def staff_looks_at_the_ticket(assistant, settings, ticket_id: int) -> str:
    """The console, as a hotline staff member uses it: login, then the ticket's page."""
    from bot.console.auth import StaffDirectory
    from bot.staff_site import mount_console
    from tests.console_harness import StaffClient

    directory = StaffDirectory(assistant.store.engine)
    if directory.get("lan.nguyen") is None:
        directory.add("lan.nguyen", "mat-khau-dai-1", "hotline", "Chị Lan")
    app = web.Application()
    mount_console(app, settings, assistant)
    async with TestServer(app) as server:
        staff = StaffClient.open(str(server.make_url("/")))
        try:
            status, _ = await staff.login("lan.nguyen", "mat-khau-dai-1")
            assert status == 200
            status, page = await staff.get(f"/staff/tickets/{ticket_id}")
            assert status == 200
            return page
        finally:
            await staff.close()


def sealed_column_values(engine, keyring) -> str:
    """Every `Sealed` column of the bot's database, opened with the key."""
    from sqlalchemy import select

    from bot.schema import METADATA
    from bot.sealing import sealed_columns

    with engine.connect() as connection:
        return "\n".join(
            keyring.open_text(str(value))
            for table in METADATA.sorted_tables
            for column in sealed_columns(table)
            for (value,) in connection.execute(select(table.c[column]))
            if value is not None
        )


async def test_the_hotline_and_the_schools_keep_nothing_in_clear_and_delete_erases_the_tickets(
    tmp_path: Path, caplog
):
    import json

    from typer.testing import CliRunner

    from bot.cli import app as cli_app
    from bot.console.auth import Staff

    setup_logging("DEBUG")
    caplog.set_level(logging.DEBUG)
    settings = isolated_settings(tmp_path)
    data = settings.data_dir

    def cli(*args: str):
        result = CliRunner().invoke(cli_app, [*args, "--data-dir", str(data)])
        assert result.exit_code == 0, result.output
        return result.output

    schools = tmp_path / "schools.csv"
    contact = f"Cô {SCHOOL_CONTACT['name']} {SCHOOL_CONTACT['phone']}"
    schools.write_text(f"code,name,province,ward,contact\nTHCS-Test,Trường THCS Lê Lợi,79,27478,{contact}\n")
    cli("schools", "import", str(schools))
    note = f"Anh {CALLER['name']}, CCCD {CALLER['id']}, hỏi mã số BHXH"
    handoff = json.loads(
        cli(
            "handoff",
            "create",
            "--note",
            note,
            "--flow",
            "registration",
            "--phone",
            CALLER["phone"],
            "--json",
        )
    )

    assistant = await build_assistant(settings)
    try:
        chat = Chat(assistant, user="caller-9")
        await chat.text(f"/start h-{handoff['token']}")
        assert CALLER["name"] in chat.said  # the note greets the caller
        for answer in (CITIZEN["social_insurance_code"], CALLER["name"], CALLER["id"]):
            await chat.text(answer)
        await chat.press("0978 000 808")  # offered as a button, grouped
        await chat.text("cho gặp người thật")
        [ticket] = assistant.desk.store.tickets()
        await assistant.desk.reply(
            ticket.id, Staff("lan.nguyen", "Chị Lan", "hotline"), f"Chào anh {CALLER['name']}"
        )
        await chat.text(f"Số của tôi là {CALLER['phone']}")  # held: it goes to the ticket
        page = await staff_looks_at_the_ticket(assistant, settings, ticket.id)
        assert CALLER["name"] in page  # the console shows it, opened in memory
        listed = json.loads(cli("schools", "list", "--json"))
        assert listed[0]["contact"] == contact
        assistant.store.commit_pending()

        people = needles(CALLER, SCHOOL_CONTACT)
        found = leaks(data, caplog.text, people)
        assert found == [], found

        # /delete while the staff member still holds the conversation: it reaches the assistant,
        # and afterwards nothing of the caller is left, even with the key.
        await chat.text("/delete")
        await chat.press("Xóa hết")
        assert "Đã xóa" in chat.said, chat.said
        assistant.store.commit_pending()
        [emptied] = json.loads(cli("tickets", "list", "--json"))
        assert emptied["status"] == "closed" and emptied["conversation"] == ""
        assert assistant.desk.store.messages(ticket.id) == []
        page = await staff_looks_at_the_ticket(assistant, settings, ticket.id)
        assert CALLER["name"] not in page  # the emptied ticket still opens, with nothing of theirs
        opened = sealed_column_values(assistant.store.engine, settings.keyring())
        assert contact in opened  # the school's contact is not the caller's to delete
        remaining = [label for label, needle in needles(CALLER).items() if needle in opened.encode()]
        assert remaining == [], remaining
        assert found_nowhere(data, needles(CALLER))
    finally:
        await assistant.close()
