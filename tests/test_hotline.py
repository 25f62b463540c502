"""The hotline with the real assistant in memory: a parent asks for a person, staff take the
ticket, reply and hand back; handoff links from a call; office hours and honest waits."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from bot.assistant import build_assistant
from bot.cli import app
from bot.console.auth import Staff, StaffDirectory
from bot.hotline.desk import HANDOFF, asks_for_person, handoff_token
from bot.hotline.hours import OfficeHours
from bot.hotline.store import HotlineStore, Ticket, mask
from bot.notifications import take_notices_for
from bot.storage import make_engine
from dialogs.messages import Inbound
from tests.chat_harness import CITIZEN, Chat, isolated_settings, start_registration
from tests.databases import KINDS, empty_database_url

LAN = Staff("lan.nguyen", "Chị Lan", "hotline")
# Tuesday 09:00 in Hà Nội (02:00 UTC): the hotline is working.
OPEN_HOURS = datetime(2026, 12, 8, 2, 0, tzinfo=UTC)
# Sunday 20:00 in Hà Nội.
CLOSED_HOURS = datetime(2026, 12, 6, 13, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def hotline(tmp_path: Path):
    clock = Clock(OPEN_HOURS)
    service = await build_assistant(isolated_settings(tmp_path), clock=clock)
    service.clock = clock  # type: ignore[attr-defined]
    yield service
    await service.close()


def owed(service, chat: Chat) -> str:
    """What the citizen's channel (here one that cannot push) is handed: notices owed."""
    return "\n".join(r.text for r in take_notices_for(service.store, f"{chat.channel}:{chat.user}"))


def cli(tmp_path: Path, *args: str):
    return CliRunner().invoke(app, [*args, "--data-dir", str(tmp_path / "data")])


async def fill_up_to_phone(chat: Chat) -> None:
    await start_registration(chat)
    for answer in (CITIZEN["social_insurance_code"], CITIZEN["full_name"], CITIZEN["id_number"]):
        await chat.text(answer)
    assert "số điện thoại" in chat.said


@pytest.mark.parametrize(
    "text",
    ["cho gặp người thật", "gap tong dai vien", "Tôi muốn nói chuyện với nhân viên", "/human", "nhân viên"],
)
def test_plain_requests_for_a_person_are_heard(text: str):
    assert asks_for_person(Inbound("test", "u", text=text))


@pytest.mark.parametrize(
    "text",
    ["nhân viên công ty có phải đăng ký không", "Nguyễn Văn Gấp", "tổng đài bhxh số mấy", "0912345678"],
)
def test_other_messages_are_not_requests_for_a_person(text: str):
    assert not asks_for_person(Inbound("test", "u", text=text))


@given(
    st.lists(st.sampled_from(["/start", " ", "\n", "h-", "h", "-", "a", "Z9_", "é", "x" * 16, "_" * 16])).map(
        "".join
    )
)
def test_a_handoff_token_is_found_exactly_where_the_pattern_finds_it(text: str):
    # The shortcut (no "h-": no token) answers what the pattern alone answers.
    found = HANDOFF.match(text.strip())
    assert handoff_token(Inbound("test", "u", text=text)) == (found.group(1) if found else None)


def test_masking_keeps_only_the_last_three_digits():
    assert mask("CCCD 079195001234, sđt 0987 654 321") == "CCCD •••••••••234, sđt •••• ••• 321"
    assert mask("sinh 12/05/2015, nhà số 8") == "sinh 12/05/2015, nhà số 8"


def test_office_hours_are_read_in_vietnam_time():
    hours = OfficeHours.parse("Mon-Fri 07:30-11:30,13:00-16:30")
    assert hours.is_open(OPEN_HOURS)
    assert not hours.is_open(CLOSED_HOURS)
    assert not hours.is_open(datetime(2026, 12, 8, 5, 0, tzinfo=UTC))  # 12:00 lunch
    assert OfficeHours.parse("Sat 08:00-10:00").is_open(datetime(2026, 12, 12, 2, 0, tzinfo=UTC))
    for bad in ("Mon-Fri", "Funday 07:30-11:30", "Mon 11:30-07:30"):
        with pytest.raises(ValueError, match=r"example|unknown day|before"):
            OfficeHours.parse(bad)


async def test_a_parent_asks_for_a_person_staff_reply_and_hand_back_at_the_same_step(hotline, tmp_path: Path):
    chat = Chat(hotline, user="parent-7")
    await fill_up_to_phone(chat)
    await chat.text("cho gặp người thật")
    assert "phiếu số 1" in chat.said and "tiếp tục với trợ lý" in chat.said

    tickets = json.loads(cli(tmp_path, "tickets", "list", "--status", "waiting", "--json").output)
    assert tickets == [
        {
            "id": 1,
            "status": "waiting",
            "channel": "test",
            "conversation": "test:parent-7",
            "step": "phone",
            "reason": "asked",
            "created_at": tickets[0]["created_at"],
            "first_reply_at": None,
        }
    ]
    ticket = hotline.desk.store.get(1)
    fields = json.loads(ticket.fields)
    assert fields["id"]["number"] == "•••••••••234" and fields["full_name"] == CITIZEN["full_name"]
    transcript = [m.text for m in hotline.desk.store.messages(1)]
    assert "•••••••••234" in transcript and CITIZEN["id_number"] not in "\n".join(transcript)

    await hotline.desk.reply(1, LAN, "Chào chị, chị cần hỗ trợ gì ạ?")
    said = owed(hotline, chat)
    assert "Chị Lan ở tổng đài đang hỗ trợ bạn" in said
    assert "Chị Lan (tổng đài): Chào chị, chị cần hỗ trợ gì ạ?" in said
    assert hotline.desk.store.get(1).first_reply_at is not None

    # While a person holds the conversation the assistant is silent; messages go to the ticket.
    assert await chat.text("Em không có số điện thoại riêng") == []
    assert await chat.text(CITIZEN["phone"]) == []
    assert "•••• ••• 321" in [m.text for m in hotline.desk.store.messages(1)]

    await hotline.desk.hand_back(1, LAN)
    said = owed(hotline, chat)
    assert "chuyển bạn lại cho trợ lý" in said and "số điện thoại" in said
    # The same step, nothing lost: the phone typed now goes into the form.
    await chat.text(CITIZEN["phone"])
    assert "Tỉnh/Thành phố" in chat.said or "tỉnh" in chat.said.lower()
    state, _ = hotline.store.load("test:parent-7")
    assert state.values["full_name"] == CITIZEN["full_name"] and state.values["phone"] == "0987654321"
    assert json.loads(cli(tmp_path, "tickets", "list", "--status", "closed", "--json").output)[0]["id"] == 1


async def test_the_help_button_and_failures_offer_a_person(hotline):
    chat = Chat(hotline, user="parent-8")
    await fill_up_to_phone(chat)
    await chat.text("trợ giúp")
    assert "Gặp nhân viên" in chat.labels
    for _ in range(3):
        await chat.text("abc")
    assert "nhân viên tổng đài có thể hỗ trợ bạn" in chat.said
    await chat.press("Gặp nhân viên")
    assert "phiếu số 1" in chat.said
    # Asking again does not open a second ticket.
    await chat.text("/human")
    assert "đã được ghi nhận (phiếu số 1)" in chat.said


async def test_two_unanswered_questions_in_a_row_offer_a_person(hotline):
    chat = Chat(hotline, user="parent-9")
    await chat.text("/start")
    await chat.text("lương hưu tháng này bao giờ có?")
    assert "Gặp nhân viên" not in chat.labels
    await chat.text("rút bảo hiểm xã hội một lần thế nào?")
    assert "hỏi trực tiếp nhân viên tổng đài" in chat.said and "Gặp nhân viên" in chat.labels


async def test_outside_office_hours_the_ticket_stays_and_a_callback_is_promised(hotline):
    hotline.clock.now = CLOSED_HOURS
    chat = Chat(hotline, user="parent-10")
    await fill_up_to_phone(chat)
    await chat.text(CITIZEN["phone"])
    await chat.text("gặp nhân viên")
    assert "ngoài giờ làm việc" in chat.said and "Thứ Hai–Thứ Sáu 07:30-11:30, 13:00-16:30" in chat.said
    assert "gọi lại số •••• ••• 321" in chat.said.replace("0987654321", "").replace(
        "•••••••321", "•••• ••• 321"
    )
    assert hotline.desk.store.get(1).status == "waiting"


async def test_nobody_took_the_ticket_in_time_is_said_once(hotline):
    chat = Chat(hotline, user="parent-11")
    await chat.text("/start")
    await chat.text("/human")
    assert await hotline.desk.sweep() == 0
    hotline.clock.now = OPEN_HOURS + timedelta(minutes=11)
    assert await hotline.desk.sweep() == 1
    assert "chưa nhân viên nào nhận được yêu cầu" in owed(hotline, chat)
    assert await hotline.desk.sweep() == 0
    assert hotline.desk.store.get(1).status == "waiting"


async def test_console_figures_are_counts_without_personal_data(hotline):
    for user in ("a1", "a2", "a3"):
        chat = Chat(hotline, user=user)
        await fill_up_to_phone(chat)
        await chat.text("/human")
    await hotline.desk.reply(1, LAN, "Chào anh")
    stats = hotline.desk.store.stats()
    assert stats["open"] == 3
    assert stats["median_minutes_to_first_reply"] is not None
    assert stats["top_steps"] == [("registration / phone", 3)]


async def test_a_handoff_link_greets_with_the_note_starts_the_flow_and_offers_the_phone(
    hotline, tmp_path: Path
):
    made = cli(
        tmp_path,
        "handoff",
        "create",
        "--note",
        "Chị đã hướng dẫn anh chuẩn bị CCCD, anh làm tiếp nhé",
        "--flow",
        "registration",
        "--phone",
        "0987 654 321",
        "--json",
    )
    assert made.exit_code == 0, made.output
    handoff = json.loads(made.output)
    assert set(handoff) == {"token", "expires_at", "links", "sms_text"}
    token = handoff["token"]
    assert handoff["links"] == {
        "web": f"http://127.0.0.1:8080/?start=h-{token}",
        "telegram": None,
        "zalo": None,
    }
    assert handoff["links"]["web"] in handoff["sms_text"]
    expires = datetime.fromisoformat(handoff["expires_at"])
    assert timedelta(hours=23) < expires - datetime.now(UTC) <= timedelta(hours=24)

    chat = Chat(hotline, user="caller-1")
    await chat.text(f"/start h-{token}")
    assert "Nhân viên tổng đài ở tổng đài đã ghi: «Chị đã hướng dẫn anh chuẩn bị CCCD" in chat.said
    assert "mã số BHXH" in chat.said  # the registration's first step
    for answer in (CITIZEN["social_insurance_code"], CITIZEN["full_name"], CITIZEN["id_number"]):
        await chat.text(answer)
    assert "0987 654 321" in chat.labels  # offered, not silently used
    await chat.press("0987 654 321")
    state, _ = hotline.store.load("test:caller-1")
    assert state.values["phone"] == "0987654321"

    # Single use: the same link again starts normally, with one sentence saying so.
    other = Chat(hotline, user="caller-2")
    await other.text(f"/start h-{token}")
    assert other.replies[0].text == "Đường dẫn hỗ trợ này đã được dùng rồi, nên mình bắt đầu như bình thường."
    assert "trợ lý VssID" in other.said and "đã ghi" not in other.said


async def test_an_expired_or_unknown_handoff_link_starts_normally(hotline, tmp_path: Path):
    handoff = json.loads(cli(tmp_path, "handoff", "create", "--note", "Chào chị", "--json").output)
    hotline.clock.now = datetime.now(UTC) + timedelta(hours=25)
    chat = Chat(hotline, user="late")
    await chat.text(f"/start h-{handoff['token']}")
    assert chat.replies[0].text == "Đường dẫn hỗ trợ này đã hết hạn, nên mình bắt đầu như bình thường."
    assert "trợ lý VssID" in chat.said
    await Chat(hotline, user="typo").text("/start h-AAAAAAAAAAAAAAAAAAAAAA")
    assert "không đúng" in (await Chat(hotline, user="typo2").text("/start h-BBBBBBBBBBBBBBBBBBBBBB"))[0].text


def test_handoff_create_refuses_bad_input_with_the_reason(tmp_path: Path):
    bad_phone = cli(tmp_path, "handoff", "create", "--note", "x", "--phone", "12345", "--json")
    assert bad_phone.exit_code == 1 and "Ví dụ" in bad_phone.output
    bad_flow = cli(tmp_path, "handoff", "create", "--note", "x", "--flow", "nope", "--json")
    assert bad_flow.exit_code == 1 and "registration" in bad_flow.output
    assert cli(tmp_path, "handoff", "create", "--note", "  ", "--json").exit_code == 1


def test_tickets_reply_and_hand_back_from_the_shell(tmp_path: Path):
    settings = isolated_settings(tmp_path)

    async def ask_for_a_person() -> None:
        service = await build_assistant(settings)
        try:
            chat = Chat(service, user="shell-1")
            await fill_up_to_phone(chat)
            await chat.text("/human")
        finally:
            await service.close()

    async def told() -> str:
        service = await build_assistant(settings)
        try:
            return owed(service, Chat(service, user="shell-1"))
        finally:
            await service.close()

    asyncio.run(ask_for_a_person())
    replied = cli(tmp_path, "tickets", "reply", "1", "Chào chị, em gọi lại ngay")
    assert replied.exit_code == 0, replied.output
    assert cli(tmp_path, "tickets", "reply", "99", "Chào").exit_code == 1
    assert cli(tmp_path, "tickets", "hand-back", "1").exit_code == 0
    assert cli(tmp_path, "tickets", "hand-back", "1").exit_code == 1  # already closed

    said = asyncio.run(told())
    assert "Nhân viên tổng đài (tổng đài): Chào chị, em gọi lại ngay" in said
    assert "chuyển bạn lại cho trợ lý" in said and "số điện thoại" in said
    listed = json.loads(cli(tmp_path, "tickets", "list", "--json").output)
    assert listed[0]["status"] == "closed" and listed[0]["first_reply_at"] is not None
    audit = json.loads(cli(tmp_path, "staff", "audit", "--json").output)
    assert [(e["staff"], e["action"]) for e in audit] == [
        ("shell", "ticket_reply"),
        ("shell", "ticket_hand_back"),
    ]


@pytest.fixture(params=KINDS)
def database(request, tmp_path: Path):
    engine = make_engine(empty_database_url(request.param, tmp_path))
    yield engine
    engine.dispose()


def test_the_stores_keep_their_promises_on_sqlite_and_postgresql(database):
    """Single-use tokens, lockout, counts: the same on both databases."""
    directory = StaffDirectory(database)
    directory.add("lan.nguyen", "mat-khau-dai-1", "hotline", "Chị Lan")
    assert directory.login("lan.nguyen", "mat-khau-dai-1").staff is not None
    for _ in range(5):
        directory.login("lan.nguyen", "sai")
    assert directory.login("lan.nguyen", "mat-khau-dai-1").refused == "locked"

    store = HotlineStore(database)
    token, _ = store.create_handoff(
        note="Chào chị",
        flow="registration",
        phone="0987654321",
        created_by="lan.nguyen",
        staff_name="Chị Lan",
        ttl=timedelta(hours=24),
    )
    first = store.redeem(token)
    assert first.handoff is not None and first.handoff.phone == "0987654321"
    assert store.redeem(token).refused == "used"
    assert store.redeem("x" * 22).refused == "unknown"
    opened = store.open_ticket(
        Ticket(channel="web", conversation="web:abc", flow="registration", step="phone", reason="asked"),
        [("user", "CCCD 079195001234")],
    )
    assert store.open_ticket_of("web:abc").id == opened.id
    assert [m.text for m in store.messages(opened.id)] == ["CCCD •••••••••234"]
    store.change(opened.id, status="held", first_reply_at=opened.created_at + timedelta(minutes=4))
    assert store.stats() == {
        "open": 1,
        "median_minutes_to_first_reply": 4.0,
        "top_steps": [("registration / phone", 1)],
    }
    # The web page's "live" flag: this conversation's ticket only, while it is open.
    assert store.has_open_ticket("web:abc") and not store.has_open_ticket("web:other")
    store.change(opened.id, status="closed", closed_at=opened.created_at + timedelta(minutes=9))
    assert not store.has_open_ticket("web:abc") and store.open_ticket_of("web:abc") is None


def test_handoff_links_exist_for_each_configured_channel(tmp_path: Path):
    env = {
        "TELEGRAM_BOT_TOKEN": "123:abc",
        "TELEGRAM_BOT_USERNAME": "@vssid_tro_ly_bot",
        "ZALO_APP_ID": "app",
        "ZALO_OA_SECRET_KEY": "secret",
        "ZALO_OA_ID": "1234567890",
        "VSSID_PUBLIC_URL": "https://vssid.example.org",
    }
    made = CliRunner().invoke(
        app,
        ["handoff", "create", "--note", "Chào chị", "--json", "--data-dir", str(tmp_path / "data")],
        env=env,
    )
    links = json.loads(made.output)["links"]
    token = json.loads(made.output)["token"]
    assert links == {
        "web": f"https://vssid.example.org/?start=h-{token}",
        "telegram": f"https://t.me/vssid_tro_ly_bot?start=h-{token}",
        "zalo": "https://zalo.me/1234567890",
    }
