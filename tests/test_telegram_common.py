"""The framework-free pieces of the Telegram channel, and the spec checker the e2e tests rely on."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from bot.channels.telegram.codec import CallbackCodec
from bot.channels.telegram.events import normalise_start
from bot.channels.telegram.rendering import escape_html, join_texts, keyboard_rows
from bot.channels.telegram.rendering import split_message as split_text
from bot.channels.text_split import utf16_len
from dialogs.messages import Button, Outbound
from tests.telegram_spec import problems

# ---------------------------------------------------------------- splitting


@given(
    st.text(alphabet=st.sampled_from("aăâbcđêôơư😀 \n.,"), min_size=0, max_size=3000), st.integers(20, 400)
)
def test_split_pieces_fit_and_lose_nothing(text: str, limit: int) -> None:
    pieces = split_text(text, limit)
    assert all(utf16_len(p) <= limit for p in pieces)
    # Only whitespace at the cuts may go; a word longer than the limit is cut inside.
    assert "".join("".join(p.split()) for p in pieces) == "".join(text.split())
    if all(utf16_len(word) <= limit for word in text.split()):
        assert " ".join(pieces).split() == text.split()


def test_split_never_cuts_a_word_that_fits() -> None:
    text = "a b " + "c" * 18 + " d"
    assert split_text(text, 20) == ["a b", "c" * 18 + " d"]


def test_split_prefers_paragraph_breaks() -> None:
    text = "Đoạn một rất dài. " * 20 + "\n\n" + "Đoạn hai. " * 5
    pieces = split_text(text, 400)
    assert pieces[1].startswith("Đoạn hai.")


def test_emoji_count_double_toward_the_limit() -> None:
    pieces = split_text("😀" * 3000)
    assert [utf16_len(p) for p in pieces] == [4096, 1904]


def test_short_text_is_one_piece() -> None:
    assert split_text("Xin chào") == ["Xin chào"]


@given(st.text(alphabet=st.sampled_from("aăđ😀 \n."), min_size=0, max_size=120), st.integers(2, 120))
def test_a_text_short_enough_to_skip_measuring_is_split_as_when_measured(text: str, limit: int) -> None:
    # The fast path (at most two units a character) answers what the measured split answers.
    from bot.channels.text_split import split_text as measured

    assert split_text(text, limit) == measured(text, limit, utf16_len)


@given(st.integers(0, 2100), st.integers(0, 2100), st.integers(0, 2100), st.integers(0, 2100))
def test_two_texts_join_exactly_when_their_measured_length_fits(a1: int, e1: int, a2: int, e2: int) -> None:
    first, second = "x" + "a" * a1 + "😀" * e1, "y" + "😀" * e2 + "a" * a2  # an emoji counts twice
    joined = join_texts([Outbound(first), Outbound(second)])
    assert (len(joined) == 1) == (utf16_len(first) + 2 + utf16_len(second) <= 4096)
    if len(joined) == 1:
        assert joined[0].text == first.rstrip() + "\n\n" + second.lstrip()


# ---------------------------------------------------------------- one message per group of texts


def test_a_note_and_the_next_question_arrive_as_one_message_with_the_questions_buttons() -> None:
    buttons = (Button("Bỏ qua", "skip"),)
    joined = join_texts(
        [Outbound("Mình ghi nhận số CCCD."), Outbound("Nhập email (không bắt buộc).", buttons)]
    )
    assert joined == [Outbound("Mình ghi nhận số CCCD.\n\nNhập email (không bắt buộc).", buttons)]


def test_buttons_attachments_and_the_length_limit_keep_messages_apart(tmp_path) -> None:
    menu = Outbound("Chọn việc cần làm:", (Button("Đăng ký", "flow:registration"),))
    pdf = Outbound("Tờ khai của bạn", document=tmp_path / "to-khai.pdf")
    long = Outbound("a" * 4090)
    replies = [menu, Outbound("Sau đó"), pdf, Outbound("Tiếp theo"), long, Outbound("b" * 200)]
    assert join_texts(replies) == replies


# ---------------------------------------------------------------- escaping, deep links, buttons


def test_escaping_keeps_a_name_literal() -> None:
    assert escape_html('<b>Lê & Co</b> "x"') == '&lt;b&gt;Lê &amp; Co&lt;/b&gt; "x"'


def test_start_payloads() -> None:
    assert normalise_start("/start truong_TH-01") == "/start truong_TH-01"
    assert normalise_start("/start@vssid_bot abc") == "/start abc"
    assert normalise_start("/start") == "/start"
    assert normalise_start("/start " + "a" * 64) == "/start " + "a" * 64
    assert normalise_start("/start " + "a" * 65) == "/start"
    assert normalise_start("/start có dấu") == "/start"
    assert normalise_start("/start a b") == "/start"
    assert normalise_start("bắt đầu") == "bắt đầu"
    assert normalise_start("/help") == "/help"


@given(
    st.lists(st.sampled_from(["/start", "/START", "@bot", " ", "\n", "a", "-", "é", "/", "h"])).map("".join)
)
def test_deep_links_are_normalised_as_the_full_match_alone_does(text: str) -> None:
    # The fast path (no "/" in the text) must never answer otherwise than the pattern.
    import re

    reference = re.compile(r"/start(?:@\w+)?(?:\s+(.*))?", re.DOTALL | re.IGNORECASE)
    match = reference.fullmatch(text.strip())
    if match is None:
        expected = text
    else:
        payload = (match.group(1) or "").strip()
        expected = (
            f"/start {payload}" if payload and re.fullmatch(r"[A-Za-z0-9_-]{1,64}", payload) else "/start"
        )
    assert normalise_start(text) == expected


def test_long_payloads_travel_as_short_ids_and_come_back() -> None:
    codec = CallbackCodec()
    long = "agency:" + "Bảo hiểm xã hội cơ sở phường Tân Phong, Thành phố Hồ Chí Minh"
    short = "province:79"
    assert codec.encode(short) == short
    token = codec.encode(long)
    assert len(token.encode()) <= 64
    assert codec.encode(long) == token  # stable, so re-sent keyboards don't grow the table
    assert codec.decode(token) == long
    assert codec.decode(short) == short
    assert codec.decode("~unknown") is None  # e.g. after a restart: an expired button
    tilde = codec.encode("~looks-like-an-id")
    assert tilde != "~looks-like-an-id" and codec.decode(tilde) == "~looks-like-an-id"


def test_many_short_buttons_are_laid_out_two_per_row() -> None:
    provinces = [(f"Tỉnh {n}", str(n)) for n in range(6)]
    assert [len(r) for r in keyboard_rows(provinces)] == [2, 2, 2]
    assert [len(r) for r in keyboard_rows([("Thông tin đúng, tiếp tục", "ok"), ("Sửa", "edit")])] == [1, 1]


# ---------------------------------------------------------------- the spec checker can fail


def test_spec_accepts_a_correct_request() -> None:
    markup = json.dumps({"inline_keyboard": [[{"text": "Đồng ý", "callback_data": "yes"}]]})
    assert (
        problems(
            "sendMessage", {"chat_id": "42", "text": "Xin chào", "parse_mode": "HTML", "reply_markup": markup}
        )
        == []
    )


def test_spec_rejects_what_telegram_would() -> None:
    assert problems("sendMesage", {"chat_id": "1", "text": "x"}) == ["sendMesage: no such Bot API method"]
    assert any("required parameter 'text'" in p for p in problems("sendMessage", {"chat_id": "1"}))
    assert any(
        "unknown parameter 'colour'" in p
        for p in problems("sendMessage", {"chat_id": "1", "text": "x", "colour": "red"})
    )
    assert any(
        "message_thread_id" in p
        for p in problems("sendMessage", {"chat_id": "1", "text": "x", "message_thread_id": "x"})
    )
    bad_button = json.dumps({"inline_keyboard": [[{"text": "A", "callback_data": "x" * 65}]]})
    assert any(
        "callback_data" in p
        for p in problems("sendMessage", {"chat_id": "1", "text": "x", "reply_markup": bad_button})
    )
    unknown_field = json.dumps({"inline_keyboard": [[{"text": "A", "callback": "x"}]]})
    assert any(
        "reply_markup" in p
        for p in problems("sendMessage", {"chat_id": "1", "text": "x", "reply_markup": unknown_field})
    )
    assert any(
        "can't parse" in p
        for p in problems("sendMessage", {"chat_id": "1", "text": "Lê & Co", "parse_mode": "HTML"})
    )
    assert any("4097" in p for p in problems("sendMessage", {"chat_id": "1", "text": "a" * 4097}))
