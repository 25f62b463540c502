"""The stub social-insurance backend behaves like the portal the circulars describe.

Codes are read from the SMS outbox, as a citizen reads them from their phone.
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.backend import InvalidTransition, StubBackend, UnknownReceipt
from bot.config import load_settings
from dialogs.ports import Address, BackendUnavailable, Declaration

# Synthetic people from bot/backend/people.yaml.
HUNG = {"code": "7999000106", "name": "Đặng Văn Hùng", "id": "079085900006", "phone": "0978000606"}
PARENT = {"code": "7999000101", "name": "Trần Thị Thu Hương", "phone": "0901000101"}
CHILD = {"code": "7999000201", "name": "Lê Minh Khang", "dob": date(2015, 9, 3)}


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def individual(**overrides: object) -> Declaration:
    data: dict[str, object] = {
        "social_insurance_code": HUNG["code"],
        "full_name": HUNG["name"],
        "id_kind": "cccd",
        "id_number": HUNG["id"],
        "phone": HUNG["phone"],
        "email": "hung.test@example.com",
        "address": Address(
            province_code=79,
            province="Thành phố Hồ Chí Minh",
            ward_code=26734,
            ward="Phường Tân Thuận",
            street="12 Đường Số 7",
        ),
        "agency_code": "07919",
        "photos": {"portrait": "/u/p.jpg", "id_front": "/u/f.jpg", "id_back": "/u/b.jpg"},
    }
    data.update(overrides)
    return Declaration.model_validate(data)


def child(**overrides: object) -> Declaration:
    data: dict[str, object] = {
        "kind": "child",
        "social_insurance_code": CHILD["code"],
        "full_name": CHILD["name"],
        "phone": PARENT["phone"],  # the guardian's registered phone
        "address": individual().address,
        "agency_code": "07919",
        "photos": {"portrait": "/u/c.jpg", "birth_certificate": "/u/bc.jpg"},
        "date_of_birth": CHILD["dob"],
        "relationship": "con_de",
        "guardian_social_insurance_code": PARENT["code"],
    }
    data.update(overrides)
    return Declaration.model_validate(data)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'stub.sqlite3'}"


@pytest.fixture
async def backend(store_url: str, clock: Clock):
    b = StubBackend(store_url, clock=clock)
    yield b
    await b.close()


async def last_sms(backend: StubBackend, phone: str) -> str:
    messages = await backend.sms_outbox(phone)
    assert messages, f"no SMS to {phone}"
    return messages[-1]["text"]


async def last_otp(backend: StubBackend, phone: str) -> str:
    # Six digits on their own (not the tail of a receipt number like VSS-2026-000001).
    match = re.search(r"(?<![-\d])(\d{6})(?!\d)", await last_sms(backend, phone))
    assert match, "the SMS carries no 6-digit code"
    return match.group(1)


async def received(backend: StubBackend, declaration: Declaration, key: str) -> str:
    """Submit and confirm by OTP: the file now waits for the paper Tờ khai."""
    sub = await backend.submit(declaration, key)
    check = await backend.verify_declaration_otp(sub.receipt, await last_otp(backend, declaration.phone))
    assert check.ok
    return sub.receipt


# ----- submit ---------------------------------------------------------------------


async def test_a_retried_submit_returns_the_same_receipt_and_makes_one_declaration(backend: StubBackend):
    first = await backend.submit(individual(), "key-1")
    again = await backend.submit(individual(), "key-1")
    assert first.created and not again.created
    assert again.receipt == first.receipt
    assert re.fullmatch(r"VSS-2026-\d{6}", first.receipt)
    assert first.status == "awaiting_otp"
    assert len(await backend.list_declarations()) == 1
    # Only one OTP SMS: the retry sent nothing.
    assert len(await backend.sms_outbox(HUNG["phone"])) == 1


async def test_concurrent_submits_with_one_key_make_one_declaration(store_url: str, backend: StubBackend):
    # Two "workers" on the same store, each firing several retries at once.
    other = StubBackend(store_url)
    try:
        results = await asyncio.gather(
            *[(backend if i % 2 else other).submit(individual(), "same-key") for i in range(12)]
        )
    finally:
        await other.close()
    assert len({r.receipt for r in results}) == 1
    assert sum(r.created for r in results) == 1
    assert len(await backend.list_declarations()) == 1


async def test_different_keys_get_different_receipts(backend: StubBackend):
    a = await backend.submit(individual(), "a")
    b = await backend.submit(individual(), "b")
    assert a.receipt != b.receipt


async def test_submit_texts_a_six_digit_otp_to_the_declared_phone(backend: StubBackend):
    sub = await backend.submit(individual(phone="+84 978 000 606"), "k")
    text = await last_sms(backend, HUNG["phone"])
    assert sub.receipt in text and "5 phút" in text
    assert await last_otp(backend, HUNG["phone"])


async def test_a_child_declaration_texts_the_otp_to_the_guardian(backend: StubBackend):
    await backend.submit(child(), "k")
    assert await last_otp(backend, PARENT["phone"])


# ----- declaration OTP ------------------------------------------------------------


async def test_right_otp_marks_the_file_received_and_texts_the_ten_day_rule(backend: StubBackend):
    receipt = await received(backend, individual(), "k")
    status = await backend.status(receipt)
    assert status is not None and status.status == "received"
    text = await last_sms(backend, HUNG["phone"])
    assert receipt in text and "10 ngày" in text and "Tờ khai" in text


async def test_a_child_receipt_sms_carries_the_declaration_link(backend: StubBackend):
    receipt = await received(backend, child(), "k")
    text = await last_sms(backend, PARENT["phone"])
    assert f"https://dichvucong.baohiemxahoi.gov.vn/to-khai/{receipt}" in text


async def test_otp_expires_after_five_minutes(backend: StubBackend, clock: Clock):
    sub = await backend.submit(individual(), "k")
    code = await last_otp(backend, HUNG["phone"])
    clock.advance(301)
    check = await backend.verify_declaration_otp(sub.receipt, code)
    assert (check.ok, check.reason) == (False, "expired")
    assert (await backend.status(sub.receipt)).status == "awaiting_otp"


async def test_otp_still_valid_just_before_five_minutes(backend: StubBackend, clock: Clock):
    sub = await backend.submit(individual(), "k")
    code = await last_otp(backend, HUNG["phone"])
    clock.advance(299)
    assert (await backend.verify_declaration_otp(sub.receipt, code)).ok


async def test_five_wrong_codes_lock_the_otp(backend: StubBackend):
    sub = await backend.submit(individual(), "k")
    code = await last_otp(backend, HUNG["phone"])
    wrong = "000000" if code != "000000" else "111111"
    lefts = [(await backend.verify_declaration_otp(sub.receipt, wrong)) for _ in range(5)]
    assert [c.attempts_left for c in lefts[:4]] == [4, 3, 2, 1]
    assert all(c.reason == "wrong" for c in lefts[:4])
    assert lefts[4].reason == "locked"
    # Even the right code is refused now, and no new code can be sent yet.
    assert (await backend.verify_declaration_otp(sub.receipt, code)).reason == "locked"
    resend = await backend.send_declaration_otp(sub.receipt)
    assert (resend.sent, resend.reason) == (False, "locked") and resend.retry_after_s > 60


async def test_resend_not_before_sixty_seconds(backend: StubBackend, clock: Clock):
    sub = await backend.submit(individual(), "k")
    old = await last_otp(backend, HUNG["phone"])
    too_soon = await backend.send_declaration_otp(sub.receipt)
    assert (too_soon.sent, too_soon.reason, too_soon.retry_after_s) == (False, "too_soon", 60)
    clock.advance(59)
    assert (await backend.send_declaration_otp(sub.receipt)).retry_after_s == 1
    clock.advance(1)
    resent = await backend.send_declaration_otp(sub.receipt)
    assert resent.sent and resent.expires_in_s == 300 and resent.phone_masked == "097****606"
    assert len(await backend.sms_outbox(HUNG["phone"])) == 2
    new = await last_otp(backend, HUNG["phone"])
    if new != old:  # the replaced code no longer works
        assert (await backend.verify_declaration_otp(sub.receipt, old)).reason == "wrong"
    assert (await backend.verify_declaration_otp(sub.receipt, new)).ok


async def test_otp_for_unknown_or_confirmed_receipts(backend: StubBackend):
    assert (await backend.send_declaration_otp("VSS-2026-999999")).reason == "unknown"
    assert (await backend.verify_declaration_otp("VSS-2026-999999", "123456")).reason == "none"
    receipt = await received(backend, individual(), "k")
    assert (await backend.send_declaration_otp(receipt)).reason == "not_pending"


async def test_a_repeated_right_code_stays_ok_and_texts_once(backend: StubBackend):
    # A retried verify (the first answer lost on the way) must not flip to failure.
    sub = await backend.submit(individual(), "k")
    code = await last_otp(backend, HUNG["phone"])
    assert (await backend.verify_declaration_otp(sub.receipt, code)).ok
    assert (await backend.verify_declaration_otp(sub.receipt, code)).ok
    assert len(await backend.sms_outbox(HUNG["phone"])) == 2  # OTP + receipt, not two receipts


# ----- account OTP (guardians) --------------------------------------------------------


async def test_guardian_confirms_their_account_by_otp(backend: StubBackend):
    sent = await backend.send_account_otp(PARENT["code"], "+84 90 100 0101")
    assert sent.sent and sent.phone_masked == "090****101"
    code = await last_otp(backend, PARENT["phone"])
    assert (
        await backend.verify_account_otp(PARENT["code"], "999999" if code != "999999" else "888888")
    ).reason == "wrong"
    assert (await backend.verify_account_otp(PARENT["code"], code)).ok


async def test_account_otp_needs_an_existing_account_and_its_phone(backend: StubBackend):
    assert (await backend.send_account_otp(HUNG["code"], HUNG["phone"])).reason == "unknown"  # no account yet
    assert (await backend.send_account_otp(PARENT["code"], "0912000202")).reason == "phone_mismatch"
    assert (await backend.verify_account_otp(PARENT["code"], "123456")).reason == "none"


async def test_account_otp_resend_and_expiry(backend: StubBackend, clock: Clock):
    await backend.send_account_otp(PARENT["code"], PARENT["phone"])
    code = await last_otp(backend, PARENT["phone"])
    assert (await backend.send_account_otp(PARENT["code"], PARENT["phone"])).reason == "too_soon"
    clock.advance(300)
    assert (await backend.verify_account_otp(PARENT["code"], code)).reason == "expired"


# ----- approval and rejection ---------------------------------------------------------


async def test_approval_creates_the_account_and_texts_the_first_password(backend: StubBackend):
    receipt = await received(backend, individual(full_name="đặng văn hùng"), "k")
    result = await backend.approve(receipt)
    assert result.status == "approved" and result.decided_at is not None
    text = await last_sms(backend, HUNG["phone"])
    assert "Mật khẩu đăng nhập lần đầu" in text and HUNG["code"] in text and "đổi mật khẩu" in text
    # The new account can now be confirmed by OTP, e.g. to register a child.
    assert (await backend.send_account_otp(HUNG["code"], HUNG["phone"])).sent
    events = await backend.events()
    assert [(e.receipt, e.status) for e in events] == [(receipt, "approved")]


async def test_approval_rejects_an_unknown_code_with_a_reason(backend: StubBackend):
    receipt = await received(backend, individual(social_insurance_code="7912345678"), "k")
    result = await backend.approve(receipt)
    assert result.status == "rejected"
    assert "7912345678" in result.reason and "không có" in result.reason
    text = await last_sms(backend, HUNG["phone"])
    assert "không được chấp nhận" in text and result.reason in text
    assert (await backend.send_account_otp("7912345678", HUNG["phone"])).reason == "unknown"


async def test_approval_rejects_a_name_that_does_not_match_the_code(backend: StubBackend):
    receipt = await received(backend, individual(full_name="Đặng Văn Hải"), "k")
    result = await backend.approve(receipt)
    assert result.status == "rejected" and "Họ và tên" in result.reason


async def test_approval_rejects_someone_who_already_has_an_account(backend: StubBackend):
    decl = individual(
        social_insurance_code=PARENT["code"],
        full_name=PARENT["name"],
        id_number="079186900001",
        phone=PARENT["phone"],
    )
    receipt = await received(backend, decl, "k")
    assert (await backend.approve(receipt)).status == "rejected"


async def test_child_approved_when_the_guardian_has_an_account(backend: StubBackend):
    receipt = await received(backend, child(), "k")
    assert (await backend.approve(receipt)).status == "approved"
    assert CHILD["code"] in await last_sms(backend, PARENT["phone"])


async def test_child_rejected_when_the_guardian_has_no_account(backend: StubBackend):
    decl = child(
        social_insurance_code="7999000208",
        full_name="Đặng Minh Châu",
        date_of_birth=date(2017, 4, 4),
        guardian_social_insurance_code=HUNG["code"],
        phone=HUNG["phone"],
    )
    receipt = await received(backend, decl, "k")
    result = await backend.approve(receipt)
    assert result.status == "rejected" and "giám hộ" in result.reason


async def test_operator_rejection_texts_the_reason(backend: StubBackend):
    receipt = await received(backend, individual(), "k")
    result = await backend.reject(receipt, "Ảnh CCCD mặt sau bị mờ, không đọc được số.")
    assert (result.status, result.reason) == ("rejected", "Ảnh CCCD mặt sau bị mờ, không đọc được số.")
    assert "Ảnh CCCD mặt sau bị mờ" in await last_sms(backend, HUNG["phone"])
    assert (await backend.status(receipt)).reason == result.reason


async def test_decisions_only_on_received_files(backend: StubBackend):
    pending = await backend.submit(individual(), "pending")
    with pytest.raises(InvalidTransition, match="OTP"):
        await backend.approve(pending.receipt)
    with pytest.raises(UnknownReceipt):
        await backend.approve("VSS-2026-424242")
    receipt = await received(backend, individual(), "done")
    await backend.approve(receipt)
    with pytest.raises(InvalidTransition, match="already approved"):
        await backend.reject(receipt, "x")
    with pytest.raises(ValueError):
        await backend.reject(pending.receipt, "  ")


async def test_events_come_in_decision_order_and_page(backend: StubBackend, clock: Clock):
    receipts = [await received(backend, child(), f"k{i}") for i in range(3)]
    await backend.reject(receipts[1], "Thiếu ảnh giấy khai sinh")
    clock.advance(1)
    await backend.approve(receipts[0])
    clock.advance(1)
    await backend.reject(receipts[2], "Giấy khai sinh không rõ")
    events = await backend.events()
    assert [e.receipt for e in events] == [receipts[1], receipts[0], receipts[2]]
    assert [e.id for e in events] == sorted(e.id for e in events)
    assert events[0].reason == "Thiếu ảnh giấy khai sinh"
    later = await backend.events(after=events[0].id, limit=1)
    assert [e.receipt for e in later] == [receipts[0]]
    assert await backend.events(after=events[-1].id) == []


# ----- look-ups, outages, restarts ---------------------------------------------------


async def test_id_verification_and_code_lookup(backend: StubBackend):
    assert await backend.id_verified("0790 8590 0006")
    assert not await backend.id_verified("092195900007")  # known, not verified
    assert not await backend.id_verified("079999999999")
    assert await backend.lookup_social_insurance_code("le minh khang", CHILD["dob"], 79) == CHILD["code"]
    assert await backend.lookup_social_insurance_code("Lê Minh Khang", CHILD["dob"], 1) is None
    assert await backend.lookup_social_insurance_code("Lê Minh Khang", date(2015, 9, 4), 79) is None


async def test_outage_on_demand(backend: StubBackend):
    backend.set_outage(True)
    with pytest.raises(BackendUnavailable):
        await backend.submit(individual(), "k")
    with pytest.raises(BackendUnavailable):
        await backend.id_verified(HUNG["id"])
    backend.set_outage(False)
    assert (await backend.submit(individual(), "k")).created


async def test_state_survives_a_restart(store_url: str, backend: StubBackend, clock: Clock):
    sub = await backend.submit(individual(), "k")
    code = await last_otp(backend, HUNG["phone"])
    again = StubBackend(store_url, clock=clock)
    try:
        assert (await again.submit(individual(), "k")).receipt == sub.receipt
        assert (await again.verify_declaration_otp(sub.receipt, code)).ok
    finally:
        await again.close()


# ----- CLI ----------------------------------------------------------------------------


@pytest.fixture
def cli_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, dict[str, str]]:
    """A data dir whose stub store holds a received individual and a pending child declaration."""
    monkeypatch.delenv("VSSID_BACKEND_URL", raising=False)
    data_dir = tmp_path / "data"

    async def prepare() -> dict[str, str]:
        b = StubBackend(load_settings(data_dir=data_dir).backend_store_url)
        try:
            return {
                "individual": await received(b, individual(), "cli-1"),
                "child": (await b.submit(child(), "cli-2")).receipt,
            }
        finally:
            await b.close()

    return data_dir, asyncio.run(prepare())


def invoke(*args: str):
    from bot.cli import app

    return CliRunner().invoke(app, list(args))


def test_cli_declarations_json_shape(cli_data):
    data_dir, receipts = cli_data
    result = invoke("declarations", "--json", "--data-dir", str(data_dir))
    assert result.exit_code == 0, result.output
    items = json.loads(result.stdout)
    base = {
        "receipt",
        "kind",
        "status",
        "social_insurance_code",
        "full_name",
        "id_kind",
        "id_number",
        "phone",
        "email",
        "address",
        "agency_code",
        "photos",
        "school",
    }
    ind, kid = items
    assert set(ind) == base
    assert set(kid) == base | {"guardian_social_insurance_code", "date_of_birth", "relationship"}
    assert (ind["receipt"], ind["kind"], ind["status"]) == (receipts["individual"], "individual", "received")
    assert ind["address"] == {
        "province": "Thành phố Hồ Chí Minh",
        "ward": "Phường Tân Thuận",
        "street": "12 Đường Số 7",
    }
    assert ind["photos"] == ["portrait", "id_front", "id_back"]
    assert ind["school"] is None  # not started from a school's link
    assert (kid["kind"], kid["status"], kid["date_of_birth"], kid["relationship"]) == (
        "child",
        "awaiting_otp",
        "2015-09-03",
        "con_de",
    )
    assert kid["guardian_social_insurance_code"] == PARENT["code"]


def test_cli_sms_json_filters_by_phone(cli_data):
    data_dir, _ = cli_data
    result = invoke("sms", "--json", "--phone", PARENT["phone"], "--data-dir", str(data_dir))
    assert result.exit_code == 0, result.output
    messages = json.loads(result.stdout)
    assert len(messages) == 1 and set(messages[0]) == {"phone", "text", "sent_at"}
    assert messages[0]["phone"] == PARENT["phone"]
    assert datetime.fromisoformat(messages[0]["sent_at"]).tzinfo is not None
    everyone = json.loads(invoke("sms", "--json", "--data-dir", str(data_dir)).stdout)
    assert {m["phone"] for m in everyone} == {PARENT["phone"], HUNG["phone"]}


def test_cli_approve_and_reject(cli_data):
    data_dir, receipts = cli_data
    result = invoke("backend", "approve", receipts["individual"], "--data-dir", str(data_dir))
    assert result.exit_code == 0, result.output
    assert "approved" in result.stdout
    sms = json.loads(invoke("sms", "--json", "--phone", HUNG["phone"], "--data-dir", str(data_dir)).stdout)
    assert "Mật khẩu đăng nhập lần đầu" in sms[-1]["text"]

    unknown = invoke(
        "backend", "reject", "VSS-2026-777777", "--reason", "Sai tên", "--data-dir", str(data_dir)
    )
    assert unknown.exit_code == 1 and "VSS-2026-777777" in unknown.output

    pending = invoke(
        "backend", "reject", receipts["child"], "--reason", "Sai tên", "--data-dir", str(data_dir)
    )
    assert pending.exit_code == 1 and "OTP" in pending.output


# ----- seed people -------------------------------------------------------------------


def test_seed_people_are_well_formed_for_the_bot_to_accept():
    """Anyone in people.yaml can be typed into the bot: a broken seed would fail every scenario."""
    import phonenumbers
    from vietnam_provinces import Province

    from bot.backend.stub import load_people
    from knowledge.text import has_diacritics

    people = load_people()
    codes = {p.social_insurance_code for p in people}
    provinces = {int(p.code) for p in Province.iter_all()}
    today = date(2026, 11, 22)
    assert len(people) >= 20 and len(codes) == len(people)
    for p in people:
        assert re.fullmatch(r"\d{10}", p.social_insurance_code), p.full_name
        assert has_diacritics(p.full_name) and p.province_code in provinces, p.full_name
        if p.phone:
            number = phonenumbers.parse(p.phone, "VN")
            assert phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.MOBILE, p.full_name
        if p.id_kind == "cccd":
            n = p.id_number or ""
            century_digit = (p.date_of_birth.year // 100 - 19) * 2
            assert re.fullmatch(r"\d{12}", n) and int(n[:3]) in provinces, p.full_name
            assert (
                int(n[3]) in (century_digit, century_digit + 1)
                and n[4:6] == f"{p.date_of_birth.year % 100:02d}"
            )
        if p.guardian is not None:  # children: under 18, no ID, a known guardian
            assert p.id_number is None and p.date_of_birth > today.replace(year=today.year - 18), p.full_name
            assert p.guardian.social_insurance_code in codes
    assert sum(p.has_account for p in people) >= 3 and sum(p.id_verified for p in people) >= 3
