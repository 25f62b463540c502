"""Personal data sealed at rest (bot/crypto.py) and `vssid-bot keys rotate`."""

from __future__ import annotations

import base64
import os
import sqlite3
import stat
import string
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.assistant import build_assistant
from bot.crypto import DataKeyError, Keyring, load_keyring, new_key
from tests.chat_harness import (
    CITIZEN,
    Chat,
    isolated_settings,
    otp_from_sms,
    start_registration,
    type_answers,
)

URL_SAFE = string.ascii_letters + string.digits + "-_"


def test_sealed_text_opens_only_with_its_key_and_never_shows_the_value():
    keyring = Keyring.from_texts([new_key()])
    sealed = keyring.seal_text(CITIZEN["full_name"])
    assert CITIZEN["full_name"] not in sealed and sealed != keyring.seal_text(CITIZEN["full_name"])
    assert keyring.open_text(sealed) == CITIZEN["full_name"]
    assert keyring.open_text("plain, from before") == "plain, from before"
    with pytest.raises(DataKeyError):
        Keyring.from_texts([new_key()]).open_text(sealed)
    assert keyring.digest("0987654321") == keyring.digest("0987654321") != "0987654321"
    assert keyring.open_bytes(keyring.seal_bytes(b"%PDF-1.4")) == b"%PDF-1.4"


def test_sealed_texts_of_every_length_are_url_safe_and_open_again():
    keyring = Keyring.from_texts([new_key()])
    for length in range(0, 400, 7):
        value = ("Lê Thị Hồng Nhung, 0987 654 321; " * 13)[:length]
        sealed = keyring.seal_text(value)
        assert set(sealed.partition(":")[2].partition(":")[2]) <= set(URL_SAFE)
        assert keyring.open_text(sealed) == value
        assert keyring.open_text(keyring.seal_utf8(value.encode())) == value


def _nonce(keyring: Keyring, sealed: str) -> bytes:
    body = sealed.rpartition(":")[2]
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))[:12]


def test_every_sealed_value_gets_a_nonce_of_its_own_across_batches_and_threads():
    from bot.crypto import _Nonces

    keyring = Keyring.from_texts([new_key()])
    count = 3 * _Nonces.BATCH + 5

    def seal_many(_: int) -> list[bytes]:
        return [_nonce(keyring, keyring.seal_text("x")) for _ in range(count)]

    with ThreadPoolExecutor(4) as pool:
        nonces = [nonce for batch in pool.map(seal_many, range(4)) for nonce in batch]
    files = [keyring.seal_bytes(b"x")[12:24] for _ in range(count)]  # magic, key id, nonce
    assert len(set(nonces + files)) == len(nonces) + len(files)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_a_forked_process_never_seals_with_its_parents_nonces():
    keyring = Keyring.from_texts([new_key()])
    keyring.seal_text("a batch drawn before the fork")
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover (the child)
        os.close(read)
        os.write(write, b"".join(_nonce(keyring, keyring.seal_text("x")) for _ in range(20)))
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        received = pipe.read()
    os.waitpid(child, 0)
    in_child = {received[at : at + 12] for at in range(0, len(received), 12)}
    in_parent = {_nonce(keyring, keyring.seal_text("x")) for _ in range(20)}
    assert len(in_child) == 20 and not in_child & in_parent


def test_the_key_file_is_made_once_0600_and_vssid_data_key_wins(tmp_path: Path):
    first = load_keyring(tmp_path)
    mode = stat.S_IMODE((tmp_path / "data.key").stat().st_mode)
    assert mode == 0o600
    assert load_keyring(tmp_path).open_text(first.seal_text("x")) == "x"  # the same key next start
    env_key = new_key()
    from_env = load_keyring(tmp_path, env_key)
    assert Keyring.from_texts([env_key]).open_text(from_env.seal_text("y")) == "y"
    with pytest.raises(DataKeyError, match="32 bytes"):
        load_keyring(tmp_path, "too-short")


def raw_states(data: Path) -> list[str]:
    with sqlite3.connect(data / "vssid.sqlite3") as db:
        return [row[0] for row in db.execute("SELECT state FROM conversation")]


async def test_keys_rotate_reseals_everything_and_the_bot_reads_it_after(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("VSSID_DATA_KEY", raising=False)
    settings = isolated_settings(tmp_path)
    assistant = await build_assistant(settings)
    chat = Chat(assistant)
    await start_registration(chat)
    await type_answers(chat, CITIZEN["social_insurance_code"], CITIZEN["full_name"])
    await assistant.close()
    old_key = (settings.data_dir / "data.key").read_text().split()
    before = raw_states(settings.data_dir)
    assert before and all(s.startswith("enc1:") and CITIZEN["full_name"] not in s for s in before)

    from bot.cli import app

    result = CliRunner().invoke(app, ["keys", "rotate", "--data-dir", str(settings.data_dir)])
    assert result.exit_code == 0, result.output
    assert "re-sealed" in result.output
    new_keys = (settings.data_dir / "data.key").read_text().split()
    assert len(new_keys) == 1 and new_keys != old_key  # the old key is gone
    after = raw_states(settings.data_dir)
    assert all(s.startswith("enc1:") and s not in before for s in after)
    with pytest.raises(DataKeyError):
        Keyring.from_texts(old_key).open_text(after[0])

    again = await build_assistant(settings)
    try:
        state, _ = again.store.load(f"{chat.channel}:{chat.user}")
        assert state.values["full_name"] == CITIZEN["full_name"]
        sms = await again.engine.services.backend.sms_outbox()
        assert isinstance(sms, list)
    finally:
        await again.close()


# -- retention --------------------------------------------------------------------------------


async def test_photos_and_the_pdf_are_purged_n_days_after_the_decision(tmp_path: Path):
    from datetime import timedelta

    from bot.notifications import NotificationPump
    from tests.test_no_personal_data_at_rest import submitted

    assistant = await build_assistant(isolated_settings(tmp_path, retention_days=30))
    data = tmp_path / "data"
    try:
        chat = Chat(assistant)
        backend, declaration = await submitted(chat, assistant)
        assert len(list((data / "uploads").rglob("*.jpg"))) == 3
        assert len(list((data / "documents").rglob("*.pdf"))) == 1
        await backend.approve(declaration["receipt"])
        pump = NotificationPump(assistant)
        await pump.poll_once()
        assert len(list((data / "uploads").rglob("*.jpg"))) == 3  # kept within the 30 days
        real_clock = assistant.engine.services.clock
        assistant.engine.services.clock = lambda: real_clock() + timedelta(days=29)
        await pump.poll_once()
        assert len(list((data / "documents").rglob("*.pdf"))) == 1
        assistant.engine.services.clock = lambda: real_clock() + timedelta(days=31)
        await pump.poll_once()
        assert list((data / "uploads").rglob("*.jpg")) == []
        assert list((data / "documents").rglob("*.pdf")) == []
    finally:
        await assistant.close()


def test_keys_rotate_reseals_the_hotlines_and_schools_columns(tmp_path: Path, monkeypatch):
    import json

    from bot.cli import app

    monkeypatch.delenv("VSSID_DATA_KEY", raising=False)
    data = tmp_path / "data"

    def cli(*args: str) -> str:
        result = CliRunner().invoke(app, [*args, "--data-dir", str(data)])
        assert result.exit_code == 0, result.output
        return result.output

    note = f"Chị {CITIZEN['full_name']} gọi về mã số BHXH"
    cli("handoff", "create", "--note", note, "--phone", CITIZEN["phone"], "--json")
    csv = tmp_path / "schools.csv"
    csv.write_text("code,name,province,ward,contact\nTHCS-A,Trường THCS A,79,27478,Cô Hạnh 0903000111\n")
    cli("schools", "import", str(csv))

    def raw() -> list[str]:
        with sqlite3.connect(data / "vssid.sqlite3") as db:
            return [
                v
                for query in (
                    "SELECT note FROM handoff",
                    "SELECT phone FROM handoff",
                    "SELECT contact FROM school",
                )
                for (v,) in db.execute(query)
            ]

    before = raw()
    assert all(v.startswith("enc1:") for v in before) and CITIZEN["full_name"] not in "".join(before)
    old_key = (data / "data.key").read_text().split()
    cli("keys", "rotate")
    after = raw()
    assert all(v.startswith("enc1:") and v not in before for v in after)
    with pytest.raises(DataKeyError):
        Keyring.from_texts(old_key).open_text(after[0])
    new = Keyring.from_texts((data / "data.key").read_text().split())
    assert [new.open_text(v) for v in after] == [note, "0987654321", "Cô Hạnh 0903000111"]
    assert json.loads(cli("schools", "list", "--json"))[0]["contact"] == "Cô Hạnh 0903000111"


async def test_the_stubs_codes_are_sealed_and_an_older_store_is_brought_up_to_date(tmp_path: Path):
    """The mã số BHXH is a person's identifier: accounts are found by a keyed hash of it, and a
    store from before (accounts keyed by the code in clear) is rebuilt at start, nothing lost."""
    from bot.backend.stub import StubBackend

    store = tmp_path / "stub-backend.sqlite3"
    with sqlite3.connect(store) as db:  # the old table, as an older version made it
        db.execute(
            "CREATE TABLE stub_account (social_insurance_code VARCHAR(10) PRIMARY KEY, phone TEXT NOT NULL,"
            " full_name TEXT NOT NULL, password_hash VARCHAR, source VARCHAR(16) NOT NULL, created_at DATETIME NOT NULL)"
        )
        db.execute(
            "INSERT INTO stub_account VALUES ('7999000999', '0987000999', 'Hồ Văn Tư', NULL, 'approval',"
            " '2026-01-02 03:04:05')"
        )
    keyring = load_keyring(tmp_path)
    stub = StubBackend(f"sqlite:///{store}", keyring=keyring, people=[])
    try:
        sent = await stub.send_account_otp("7999000999", "0987000999")
        assert sent.sent, sent
        code = otp_from_sms(await stub.sms_outbox(), "0987000999")
        assert (await stub.verify_account_otp("7999000999", code)).ok
        assert not (await stub.send_account_otp("7999000998", "0987000999")).sent
    finally:
        await stub.close()
    raw = store.read_bytes() + b"".join(
        p.read_bytes() for p in tmp_path.glob("stub-backend.sqlite3-*") if p.is_file()
    )
    assert b"7999000999" not in raw and b"0987000999" not in raw
    assert "Hồ Văn Tư".encode() not in raw
