"""Bot API calls as our transports write them: JSON bodies that mean what each framework's
form meant, multipart forms for uploads.

The Bot API server reads a JSON body's string values as they are and any other value as its
JSON text, which is what a form field holds (telegram-bot-api's HttpReader); `read` below
does the same, and every call is compared with the form the framework itself would post.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import FormData
from hypothesis import given
from hypothesis import strategies as st

from bot.channels.telegram.events import ALLOWED_UPDATES
from bot.channels.telegram.wire import JsonText, json_body, to_json_text

TOKEN = "123456789:ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghi"
KEYBOARD = [
    [("Đăng ký tài khoản VssID", "flow:registration")],
    [("Gặp nhân viên", "human"), ('A & <b> "x" \\', "pick:3")],
]
TEXT = "Họ tên: <b>Lê Thị Hồng Nhung</b> &amp; 0987 654 321 😀\nĐúng chưa?"
BOT_USER = {"id": 123456789, "is_bot": True, "first_name": "VssID", "username": "vssid_test_bot"}


def read(body: bytes) -> dict[str, Any]:
    """A JSON body as the Bot API server reads it: a string as it is, any other value decoded."""
    params = json.loads(body.decode("utf-8"))
    assert isinstance(params, dict)
    return params


def same_call(form: dict[str, str], body: bytes) -> None:
    """The JSON body carries exactly the form's parameters, each meaning the same."""
    params = read(body)
    assert set(params) == set(form)
    for key, value in params.items():
        if isinstance(value, str):
            assert value == form[key], key
        else:  # an object, array, number or boolean: the form field held its JSON text
            assert value == json.loads(form[key]), key


# ---------------------------------------------------------------- json_body

plain_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@given(
    st.dictionaries(st.text(max_size=8), plain_values | plain_values.map(to_json_text), max_size=6),
)
def test_json_body_writes_every_value_as_json_and_kept_json_as_the_object(params: dict[str, Any]) -> None:
    expected = {
        key: json.loads(value) if isinstance(value, JsonText) else value
        for key, value in params.items()
        if value is not None
    }
    assert json.loads(json_body(params)) == expected


def test_json_body_is_utf8_without_escapes_or_spaces() -> None:
    body = json_body({"chat_id": 42, "text": "Lê 😀\n", "reply_markup": to_json_text({"a": ["Đồng ý"]})})
    assert body == '{"chat_id":42,"text":"Lê 😀\\n","reply_markup":{"a":["Đồng ý"]}}'.encode()
    assert json_body({"reply_markup": to_json_text([1])}) == b'{"reply_markup":[1]}'
    assert json_body({}) == b"{}"
    assert json_body({"text": None}) == b"{}"


def test_kept_json_text_stays_a_string_to_a_form() -> None:
    kept = to_json_text({"inline_keyboard": []})
    assert isinstance(kept, str) and kept == '{"inline_keyboard":[]}'


# ---------------------------------------------------------------- python-telegram-bot


def _capture() -> Any:
    """PTB's request as ours is made, recording what PTB hands it and answering like the server."""
    from bot.channels.telegram.ptb_adapter import JsonHttpxRequest

    class Capture(JsonHttpxRequest):
        sent: list[tuple[str, Any]]

        async def do_request(self, url: str, method: str, request_data: Any = None, **_: Any) -> Any:
            name = url.rsplit("/", 1)[-1].lower()
            self.sent.append((name, request_data))
            if name == "getme":
                result: Any = BOT_USER
            elif name.startswith("send"):
                result = {"message_id": 7, "date": 0, "chat": {"id": 42, "type": "private"}}
            else:
                result = [] if name == "getupdates" else True
            return 200, json.dumps({"ok": True, "result": result}).encode()

    capture = Capture()
    capture.sent = []
    return capture


async def test_ptb_posts_json_meaning_what_its_form_meant_and_uploads_as_a_form() -> None:
    from telegram.ext import Application

    from bot.channels.telegram.ptb_adapter import PtbBotApi, request_body

    capture = _capture()
    app = Application.builder().token(TOKEN).request(capture).get_updates_request(capture).build()
    api = PtbBotApi(app)
    await app.bot.initialize()
    await api.send_text(42, TEXT, KEYBOARD)
    await app.bot.send_message(42, TEXT, parse_mode="HTML", reply_markup=api.markup(KEYBOARD))
    await api.send_text(42, "x", None)
    await api.remove_keyboard(42, 7)
    await api.answer_callback("cbq-1", None)
    await api.answer_callback("cbq-2", "Câu hỏi cũ")
    await app.bot.send_message(42, "y", disable_notification=True, protect_content=False)
    await app.bot.get_updates(offset=5, timeout=25, allowed_updates=list(ALLOWED_UPDATES))
    await app.bot.set_webhook("https://example.org/hook", secret_token="s_1", allowed_updates=["message"])
    await api.send_document(42, b"%PDF-1.4 synthetic", "to-khai.pdf", "Tờ khai", KEYBOARD)
    sent = capture.sent[1:]  # after getMe
    assert [name for name, _ in sent] == [
        "sendmessage", "sendmessage", "sendmessage", "editmessagereplymarkup", "answercallbackquery",
        "answercallbackquery", "sendmessage", "getupdates", "setwebhook", "senddocument",
    ]  # fmt: skip
    for _, data in sent[:-1]:
        same_call(data.json_parameters, request_body(data))
    ours, theirs = (request_body(data) for _, data in sent[:2])
    assert read(ours) == read(theirs)  # the kept keyboard, as PTB's own markup object
    assert isinstance(read(ours)["reply_markup"], dict)  # an object, not JSON in a string
    assert read(request_body(sent[6][1]))["disable_notification"] is True
    assert read(request_body(sent[7][1]))["allowed_updates"] == list(ALLOWED_UPDATES)
    assert sent[-1][1].contains_files and request_body(sent[-1][1]) is None


async def test_ptb_request_keeps_the_pool_and_timeouts_ptb_gives_by_default() -> None:
    from telegram.ext import Application

    from bot.channels.telegram.ptb_adapter import JsonHttpxRequest, json_requests

    updates_request, request = Application.builder().token(TOKEN).build().bot._request  # PTB's own
    for ours, theirs in zip(json_requests(), (request, updates_request), strict=True):
        assert isinstance(ours, JsonHttpxRequest)
        assert type(theirs).__name__ == "HTTPXRequest"
        assert ours._client_kwargs == theirs._client_kwargs  # pool size, timeouts, proxy, HTTP version
        assert ours._media_write_timeout == theirs._media_write_timeout


# ---------------------------------------------------------------- aiogram


def _form(bot: Any, method: Any) -> dict[str, Any]:
    """The form aiogram's own session would post for `method`."""
    from aiogram.client.session.aiohttp import AiohttpSession

    form = AiohttpSession.build_form_data(bot.session, bot, method)
    return {options["name"]: value for options, _, value in form._fields}


def test_aiogram_posts_json_meaning_what_its_form_meant_and_uploads_as_a_form() -> None:
    from aiogram import Bot
    from aiogram.enums import MessageEntityType
    from aiogram.methods import (
        AnswerCallbackQuery,
        BanChatMember,
        GetUpdates,
        SendDocument,
        SendMessage,
        SetWebhook,
    )
    from aiogram.types import BufferedInputFile, LinkPreviewOptions, MessageEntity

    from bot.channels.telegram.aiogram_adapter import (
        AiogramBotApi,
        JsonAiohttpSession,
        _RemoveKeyboard,
        _SendText,
    )

    session = JsonAiohttpSession()
    bot = Bot(TOKEN, session=session)
    api = AiogramBotApi(bot)
    ours = _SendText(chat_id=42, text=TEXT, parse_mode="HTML", reply_markup=api.sent_markup(KEYBOARD))
    theirs = SendMessage(chat_id=42, text=TEXT, parse_mode="HTML", reply_markup=api.markup(KEYBOARD))
    calls = [
        ours,
        theirs,
        _SendText(chat_id=42, text="x", parse_mode="HTML", reply_markup=api.sent_markup(None)),
        _RemoveKeyboard(chat_id=42, message_id=7),
        AnswerCallbackQuery(callback_query_id="cbq-1"),
        AnswerCallbackQuery(callback_query_id="cbq-2", text="Câu hỏi cũ"),
        AnswerCallbackQuery(callback_query_id="cbq-3", text=""),
        SendMessage(chat_id=42, text="y", disable_notification=True, protect_content=False),
        GetUpdates(offset=5, timeout=25, allowed_updates=list(ALLOWED_UPDATES)),
        SetWebhook(url="https://example.org/hook", secret_token="s_1", allowed_updates=["message"]),
        SendMessage(
            chat_id="@kenh",
            text="z",
            entities=[MessageEntity(type=MessageEntityType.BOLD, offset=0, length=1)],
            link_preview_options=LinkPreviewOptions(is_disabled=True),
        ),
        BanChatMember(chat_id=42, user_id=7, until_date=datetime(2030, 1, 2, tzinfo=UTC)),
    ]
    for method in calls:
        body = session.json_body(bot, method)
        assert body is not None
        same_call(_form(bot, method), body)
    assert read(session.json_body(bot, ours)) == read(session.json_body(bot, theirs))  # type: ignore[arg-type]
    assert isinstance(read(session.json_body(bot, ours))["reply_markup"], dict)  # type: ignore[arg-type]
    assert read(session.json_body(bot, calls[7]))["protect_content"] is False  # type: ignore[arg-type]
    no_keyboard = SendMessage(chat_id=42, text="x", parse_mode="HTML")
    assert session.json_body(bot, calls[2]) == session.json_body(bot, no_keyboard)
    upload = SendDocument(
        chat_id=42, document=BufferedInputFile(b"%PDF-1.4", filename="to-khai.pdf"), caption="Tờ khai"
    )
    assert session.json_body(bot, upload) is None
    # What aiogram's own make_request posts: the JSON body with its content type, or the form.
    posted = session.build_form_data(bot, ours)
    assert posted.content_type == "application/json" and posted._value == session.json_body(bot, ours)
    assert isinstance(session.build_form_data(bot, upload), FormData)


@pytest.mark.parametrize("framework", ["aiogram", "ptb"])
def test_the_kept_keyboard_is_the_frameworks_own_markup(framework: str) -> None:
    if framework == "ptb":
        from telegram.ext import Application
        from telegram.request._requestparameter import RequestParameter

        from bot.channels.telegram.ptb_adapter import PtbBotApi

        api: Any = PtbBotApi(Application.builder().token(TOKEN).build())
        written = RequestParameter.from_input("reply_markup", api.markup(KEYBOARD)).json_value
    else:
        from aiogram import Bot

        from bot.channels.telegram.aiogram_adapter import AiogramBotApi

        bot = Bot(TOKEN)
        api = AiogramBotApi(bot)
        written = bot.session.prepare_value(api.markup(KEYBOARD), bot=bot, files={})
    kept = api.sent_markup(KEYBOARD)
    assert type(kept) is JsonText and json.loads(kept) == json.loads(written)
    assert api.sent_markup([list(row) for row in KEYBOARD]) is kept  # written once
    assert api.sent_markup(None) is None
