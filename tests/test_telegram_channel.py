"""The Telegram channel through real HTTP: aiogram and PTB, long polling and webhook.

Each (framework, mode) pair runs one bot against the fake Bot API for the whole module;
every scenario talks as a fresh user. After each scenario every request the bot sent is
checked against the Bot API spec.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time

import aiohttp
import pytest
import pytest_asyncio

from dialogs.messages import Outbound
from tests.telegram_harness import (
    LONG_PAYLOAD,
    WEBHOOK_SECRET,
    Harness,
    ScriptedAssistant,
    fake_pdf,
    running_bot,
)
from tests.telegram_spec import check_all

pytestmark = pytest.mark.asyncio(loop_scope="module")

COMBOS = [("aiogram", "polling"), ("aiogram", "webhook"), ("ptb", "polling"), ("ptb", "webhook")]


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=COMBOS, ids=lambda c: f"{c[0]}-{c[1]}")
async def bot(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    framework, mode = request.param
    assistant = ScriptedAssistant(fake_pdf(tmp_path_factory.mktemp("docs")))
    async with running_bot(framework, mode, assistant) as harness:
        yield harness


@pytest_asyncio.fixture(loop_scope="module")
async def h(bot: Harness):
    """The shared bot, with the spec checked on what this scenario made it send."""
    bot.new_requests()
    yield bot
    await bot.settle()
    assert check_all(bot.new_requests()) == []


def inbounds(h: Harness, user) -> list:
    return h.assistant.of(user.id)


async def test_deep_link_reaches_the_assistant_and_the_menu_shows_buttons(h: Harness) -> None:
    user = h.user()
    await user.say("/start truong-th_01")
    await h.settle()
    assert [i.text for i in inbounds(h, user)] == ["/start truong-th_01"]
    greeting = user.screen()[-1]
    assert "Mã giới thiệu: truong-th_01" in greeting.visible_text
    assert greeting.labels == ["Đăng ký", "Hỏi đáp"]


@pytest.mark.parametrize("payload", ["có dấu", "a" * 65, "x/../y"])
async def test_invalid_deep_link_still_starts(h: Harness, payload: str) -> None:
    user = h.user()
    await user.say(f"/start {payload}")
    await h.settle()
    assert [i.text for i in inbounds(h, user)] == ["/start"]
    assert user.screen()[-1].labels == ["Đăng ký", "Hỏi đáp"]


async def test_pressing_a_button_answers_the_query_and_retires_the_keyboard(h: Harness) -> None:
    user = h.user()
    await user.say("/start")
    await h.settle()
    menu = user.screen()[-1]
    press = await user.press("Đăng ký")
    await h.settle()
    assert inbounds(h, user)[-1].button == "menu:register"
    answered = [r.params["callback_query_id"] for r in h.server.calls("answerCallbackQuery")]
    assert press["callback_query"]["id"] in answered
    assert menu.labels == []  # keyboard removed from the pressed message
    assert user.screen()[-1].visible_text == "Bạn ở tỉnh/thành nào?"


async def test_payload_longer_than_callback_data_limit_comes_back_whole(h: Harness) -> None:
    user = h.user()
    await user.say("/start")
    await h.settle()
    await user.press("Đăng ký")
    await h.settle()
    question = user.screen()[-1]
    sent = {b["text"]: b["callback_data"] for b in question.buttons}
    assert len(sent["TP. Hồ Chí Minh"].encode()) <= 64
    await user.press("TP. Hồ Chí Minh")
    await h.settle()
    assert inbounds(h, user)[-1].button == LONG_PAYLOAD


async def test_an_old_button_cannot_replay_a_step(h: Harness) -> None:
    user = h.user()
    await user.say("/start")
    await h.settle()
    menu = user.screen()[-1]
    stale_copy = user.press_update(menu, "Đăng ký")  # what a second tap on the same message sends
    await user.press("Đăng ký")
    await h.settle()
    await h.server.push(stale_copy | {"update_id": h.server.new_update_id()})
    await h.settle()
    assert [i.button for i in inbounds(h, user)].count("menu:register") == 1
    stale_answer = h.server.calls("answerCallbackQuery")[-1]
    assert stale_answer.params["callback_query_id"] == stale_copy["callback_query"]["id"]
    assert "câu hỏi cũ" in stale_answer.params["text"]


async def test_a_button_of_an_earlier_question_is_refused_after_a_new_question(h: Harness) -> None:
    user = h.user()
    await user.say("/start")
    await h.settle()
    first_menu = user.screen()[-1]
    late_tap = user.press_update(first_menu, "Hỏi đáp")
    await user.say("/start")  # a new question with its own keyboard
    await h.settle()
    assert first_menu.labels == []  # the superseded keyboard is taken away
    await h.server.push(late_tap)  # a tap that was already on its way
    await h.settle()
    assert all(i.button is None for i in inbounds(h, user))
    assert "câu hỏi cũ" in h.server.calls("answerCallbackQuery")[-1].params["text"]


async def test_special_characters_are_shown_literally(h: Harness) -> None:
    user = h.user()
    await user.say("tên")
    await h.settle()
    message = user.screen()[-1]
    assert message.parse_mode == "HTML"
    assert message.visible_text == "Họ tên: <b>Lê & Co</b> <script>"


async def test_long_text_is_split_under_the_limit_with_buttons_on_the_last_part(h: Harness) -> None:
    user = h.user()
    await user.say("dài")
    await h.settle()
    parts = user.screen()
    assert len(parts) >= 2
    assert all(len(p.visible_text) <= 4096 for p in parts)
    assert [p.labels for p in parts] == [[]] * (len(parts) - 1) + [["Tiếp tục"]]
    expected = h.assistant.script(inbounds(h, user)[-1])[0].text
    assert " ".join(p.visible_text for p in parts).split() == expected.split()
    assert parts[1].visible_text.startswith(tuple(f"{n}. " for n in range(2, 13)))  # cut between paragraphs


async def test_declaration_pdf_is_sent_as_a_document(h: Harness) -> None:
    user = h.user()
    await user.say("tờ khai")
    await h.settle()
    message = user.screen()[-1]
    assert message.kind == "document"
    assert message.file is not None
    assert message.file.filename == "to-khai-test.pdf"
    assert message.file.data == h.assistant.document.read_bytes()
    assert message.visible_text == "Tờ khai của bạn (Mẫu 01):"


async def test_photo_is_downloaded_in_its_largest_size(h: Harness) -> None:
    user = h.user()
    original = b"\xff\xd8\xff synthetic portrait " + bytes(range(256)) * 40
    await user.send_photo(original)
    await h.settle()
    assert [i.photo for i in inbounds(h, user)] == [original]
    assert user.screen()[-1].visible_text == f"Đã nhận ảnh 1: {hashlib.sha256(original).hexdigest()[:12]}"


async def test_photo_sent_as_a_file_works_but_a_pdf_upload_is_explained(h: Harness) -> None:
    user = h.user()
    picture = b"\x89PNG\r\n synthetic id front " * 30
    await h.server.push(user.document_update(picture, "image/png", "cccd-truoc.png"))
    await h.server.push(user.document_update(b"%PDF-1.4 not a photo", "application/pdf", "giay.pdf"))
    await h.settle()
    assert [i.photo for i in inbounds(h, user)] == [picture]
    assert "chỉ đọc được tin nhắn chữ, nút bấm và ảnh" in user.screen()[-1].visible_text


async def test_too_big_file_is_refused_without_downloading(h: Harness) -> None:
    user = h.user()
    before = len(h.server.calls("getFile"))
    await h.server.push(user.document_update(b"tiny", "image/jpeg", "anh.jpg", size=25 * 1024 * 1024))
    await h.settle()
    assert inbounds(h, user) == []
    assert len(h.server.calls("getFile")) == before
    assert "quá lớn" in user.screen()[-1].visible_text


async def test_album_photos_reach_the_assistant_one_by_one_in_order(h: Harness) -> None:
    user = h.user()
    photos = [f"photo-{kind}-".encode() * 50 for kind in ("portrait", "front", "back")]
    for data in photos:
        await user.send_photo(data, media_group_id="album-1")
    await h.settle()
    assert [i.photo for i in inbounds(h, user)] == photos
    assert [m.visible_text[:13] for m in user.screen()] == ["Đã nhận ảnh 1", "Đã nhận ảnh 2", "Đã nhận ảnh 3"]


async def test_stickers_get_an_explanation_not_silence(h: Harness) -> None:
    user = h.user()
    await h.server.push(user.sticker_update())
    await h.settle()
    assert inbounds(h, user) == []
    assert "Ví dụ" in user.screen()[-1].visible_text or "ví dụ" in user.screen()[-1].visible_text


async def test_one_users_messages_stay_in_order_while_others_are_served(h: Harness) -> None:
    slow, quick = h.user(), h.user()
    h.assistant.delays[str(slow.id)] = 0.15
    for word in ("một", "hai", "ba"):
        await slow.say(word)
    await quick.say("nhanh")
    await h.server.wait_for(lambda: len(quick.screen()) == 1, timeout=5)
    assert len(slow.screen()) < 3  # the quick user did not wait for the slow one
    await h.settle()
    assert [m.visible_text for m in slow.screen()] == [f"Bạn vừa gửi: {w}" for w in ("một", "hai", "ba")]


async def test_a_redelivered_update_is_answered_once(h: Harness) -> None:
    user = h.user()
    update = user.text_update("xin chào")
    await h.server.push(update)
    await h.settle()
    await h.server.push(json.loads(json.dumps(update)))
    await h.settle()
    assert len(user.screen()) == 1
    assert len(inbounds(h, user)) == 1
    assert inbounds(h, user)[0].message_id == str(update["update_id"])


async def test_flood_control_is_waited_out_and_the_reply_still_arrives(h: Harness) -> None:
    user = h.user()
    h.server.fail("sendMessage", retry_after=1)
    started = time.monotonic()
    await user.say("xin chào")
    await h.settle()
    assert time.monotonic() - started >= 1.0
    assert [m.visible_text for m in user.screen()] == ["Bạn vừa gửi: xin chào"]
    assert [r.outcome for r in h.server.calls("sendMessage")[-2:]] == ["429", "ok"]


async def test_a_dropped_connection_does_not_lose_or_double_the_reply(h: Harness) -> None:
    user = h.user()
    h.server.drop("sendMessage", times=2)
    await user.say("xin chào")
    await h.settle()
    assert [m.visible_text for m in user.screen()] == ["Bạn vừa gửi: xin chào"]


async def test_replies_wait_out_an_outage_and_arrive_in_order(h: Harness) -> None:
    user = h.user()
    h.server.outage = True
    try:
        await user.say("một")
        await h.settle()
        assert user.screen() == []
        assert h.channel.core.pending(user.id) == 1
    finally:
        h.server.outage = False
    await user.say("hai")
    await h.settle()
    assert [m.visible_text for m in user.screen()] == ["Bạn vừa gửi: một", "Bạn vừa gửi: hai"]
    assert h.channel.core.pending(user.id) == 0


async def test_parked_replies_are_retried_on_their_own(h: Harness) -> None:
    user = h.user()
    h.server.outage = True
    await user.say("một")
    await h.settle()
    h.server.outage = False
    await h.server.wait_for(lambda: len(user.screen()) == 1, timeout=5)  # no new message needed
    assert user.screen()[0].visible_text == "Bạn vừa gửi: một"


async def test_an_assistant_failure_gets_an_apology(h: Harness) -> None:
    user = h.user()
    await user.say("hỏng")
    await h.settle()
    assert "gửi lại tin nhắn sau ít phút" in user.screen()[-1].visible_text


async def test_notifications_go_out_through_send(h: Harness) -> None:
    user = h.user()
    await user.say("xin chào")
    await h.settle()
    await h.channel.send(str(user.id), [Outbound("Hồ sơ của bạn đã được duyệt.")])
    assert [m.visible_text for m in user.screen()] == [
        "Bạn vừa gửi: xin chào",
        "Hồ sơ của bạn đã được duyệt.",
    ]


async def test_webhook_refuses_requests_without_the_secret(h: Harness) -> None:
    if h.mode != "webhook":
        pytest.skip("webhook only")
    user = h.user()
    update = user.text_update("giả mạo")
    async with aiohttp.ClientSession() as session:
        for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}):
            async with session.post(h.webhook_url, json=update, headers=headers) as resp:
                assert resp.status in (401, 403)
        async with session.post(
            h.webhook_url,
            json=user.text_update("thật"),
            headers={"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET},
        ) as resp:
            assert resp.status == 200
    await h.settle()
    assert [i.text for i in inbounds(h, user)] == ["thật"]


async def test_webhook_was_registered_with_the_secret(h: Harness) -> None:
    if h.mode != "webhook":
        pytest.skip("webhook only")
    registered = h.server.calls("setWebhook")[-1].params
    assert registered["url"] == h.webhook_url
    assert registered["secret_token"] == WEBHOOK_SECRET


async def test_concurrent_users_all_get_their_answers(h: Harness) -> None:
    users = [h.user() for _ in range(20)]
    await asyncio.gather(*(u.say(f"tin {n}") for n, u in enumerate(users)))
    await h.settle()
    assert [u.screen()[-1].visible_text for u in users] == [f"Bạn vừa gửi: tin {n}" for n in range(20)]


# ---------------------------------------------------------------- the wire


async def test_calls_go_as_utf8_json_objects_and_files_as_forms(h: Harness) -> None:
    user = h.user()
    first = len(h.server.requests)
    await user.say("/start")
    await h.settle()
    await user.press("Đăng ký")  # answers the query, removes the menu, asks with a new keyboard
    await h.settle()
    await user.say("tờ khai")
    await h.settle()
    sent = h.server.requests[first:]
    kinds = {r.name: r.content_type for r in sent}
    assert kinds.pop("senddocument") == "multipart/form-data"
    assert {"sendmessage", "answercallbackquery", "editmessagereplymarkup"} <= set(kinds)
    assert set(kinds.values()) == {"application/json"}  # getUpdates too when polling
    question = next(r for r in sent if r.name == "sendmessage" and "tỉnh/thành" in r.params["text"])
    assert "Bạn ở tỉnh/thành nào?".encode() in question.body  # UTF-8, not escaped
    wire = json.loads(question.body)
    assert wire["chat_id"] == user.id and wire["parse_mode"] == "HTML"
    assert [b["text"] for row in wire["reply_markup"]["inline_keyboard"] for b in row] == [
        "Hà Nội",
        "TP. Hồ Chí Minh",
    ]  # an object, not JSON in a string
    removal = json.loads(next(r for r in sent if r.name == "editmessagereplymarkup").body)
    assert set(removal) == {"chat_id", "message_id"} and isinstance(removal["message_id"], int)
    document = next(r for r in sent if r.name == "senddocument")
    assert document.params["document"].data == h.assistant.document.read_bytes()


async def test_a_message_refused_for_good_is_dropped_and_the_next_goes_out(h: Harness) -> None:
    user = h.user()
    h.server.fail("sendMessage", status=400)
    await user.say("một")
    await h.settle()
    assert user.screen() == [] and h.channel.core.pending(user.id) == 0
    assert h.server.calls("sendMessage")[-1].outcome == "400"  # tried once: retrying cannot help
    await user.say("hai")
    await h.settle()
    assert [m.visible_text for m in user.screen()] == ["Bạn vừa gửi: hai"]


async def test_error_answers_are_classified_as_before(h: Harness) -> None:
    from bot.retry import Failure

    api = h.channel.core.api
    cases = [
        (dict(status=429, retry_after=3), (Failure.RETRY_AFTER, 3.0)),
        (dict(status=400), (Failure.PERMANENT, 0.0)),
        (dict(status=403), (Failure.PERMANENT, 0.0)),
        (dict(status=502), (Failure.TRANSIENT, 0.0)),
    ]
    for failure, verdict in cases:
        h.server.fail("sendMessage", **failure)
        with pytest.raises(Exception) as raised:
            await api.send_text(h.user().id, "thử", None)
        assert api.classify(raised.value) == verdict, failure
    h.server.drop("sendMessage")
    with pytest.raises(Exception) as raised:
        await api.send_text(h.user().id, "thử", None)
    assert api.classify(raised.value) == (Failure.TRANSIENT, 0.0)
