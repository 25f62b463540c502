"""Updates per second of the Telegram channel: the full stack next to a bare echo bot.

For each framework (aiogram, python-telegram-bot) two bots run in the same process on
the same updates:

- full: our adapter + the real assistant (engine, SQLite conversation store, in-process
  stub backend), each user walking the registration's text and button steps;
- bare: the framework's plain echo bot (text echoed, button answered and echoed).

Both are fed raw update dicts (aiogram: `Dispatcher.feed_raw_update`; PTB:
`Update.de_json` + `Application.process_update`, its equivalent) and talk to a session
that does the real request serialisation and response parsing but no network. Each
bot's body is what its own transport posts: the bare echo bots keep their framework's
default (PTB: its parameters url-encoded as httpx writes a form; aiogram: its form data),
while the full stack writes the UTF-8 JSON body our production transport posts for a call
without a file (`ptb_adapter.request_body`, `JsonAiohttpSession.json_body`: the same
functions, imported; an older tree without them, as compare.py's base, posts its forms as
its production did; `--bodies framework` makes the full stack post the framework's forms too,
to show how much of the ratio is the body's encoding). Updates go in rounds: every user
sends its next message, then the round is awaited (as users wait for the answer before
typing on).

    python bench/telegram.py [--users 200] [--repeats 5] [--clock wall|cpu] [--bodies ours|framework]

The last line printed is JSON: {"aiogram": {"full_per_s", "bare_per_s", "ratio"}, "ptb": {...}}.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named telegram.py: its folder must not shadow the `telegram` package (PTB).
ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import contextlib  # noqa: E402
import gc  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Awaitable, Callable  # noqa: E402
from typing import Any  # noqa: E402
from urllib.parse import urlencode  # noqa: E402

TOKEN = "123456789:BENCH-no-network-token"
BOT_USER = {"id": 123456789, "is_bot": True, "first_name": "VssID", "username": "vssid_bench_bot"}

# A synthetic parent (not a circular's sample person); what they type at each step.
SCRIPT: list[tuple[str, str]] = [
    ("text", "/start"),
    ("press", "Đăng ký tài khoản VssID"),
    ("text", "7912345670"),
    ("text", "Lê Thị Hồng Nhung"),
    ("text", "079195001234"),
    ("text", "0987 654 321"),
    ("text", "hcm"),
    ("text", "Phường Tân Hưng"),
    ("text", "Số 8, đường số 9, khu phố 2"),
]
LAST_PROMPT = "ảnh chân dung"  # where the script leaves every user
# What a rate counts: the wall clock, or (--clock cpu) the process's CPU time, steadier when
# other work shares the machine's cores (the bots run in one thread and wait on nothing).
CLOCK = [time.perf_counter]
# The full stack's request bodies: our transport's JSON ("ours"), or (--bodies framework) the
# framework's default form, as the bare echo bots post.
FULL_BODIES = ["ours"]


# ---------------------------------------------------------------- a Bot API without network


class FakeReplies:
    """Answers Bot API calls like a server would, and remembers keyboards for the users' taps."""

    def __init__(self) -> None:
        self.message_ids = itertools.count(1)
        self.keyboards: dict[int, tuple[int, dict[str, str]]] = {}  # chat -> (message_id, label -> data)
        self.last_text: dict[int, str] = {}
        self.calls = 0

    def result(self, method: str, params: dict[str, Any]) -> Any:
        self.calls += 1
        name = method.lower()
        if name == "getme":
            return BOT_USER
        if name in {"answercallbackquery", "deletewebhook", "setwebhook"}:
            return True
        chat_id = int(params.get("chat_id", 0))
        message = {
            "message_id": int(params.get("message_id") or next(self.message_ids)),
            "date": 1_760_000_000,
            "chat": {"id": chat_id, "type": "private", "first_name": "Nhung"},
            "from": BOT_USER,
            "text": params.get("text", ""),
        }
        if name == "sendmessage":
            self.last_text[chat_id] = params["text"]
            markup = params.get("reply_markup")
            if markup:
                rows = json.loads(markup)["inline_keyboard"]
                labels = {b["text"]: b["callback_data"] for row in rows for b in row}
                self.keyboards[chat_id] = (message["message_id"], labels)
                message["reply_markup"] = json.loads(markup)
        return message


def aiogram_session(replies: FakeReplies, ours: bool = False) -> Any:
    """aiogram's session without the network; `ours`: writing bodies as our transport does."""
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiohttp import FormData

    base: type = AiohttpSession
    if ours:
        with contextlib.suppress(
            ImportError
        ):  # a tree from before JSON bodies (compare.py's base) posts forms
            from bot.channels.telegram.aiogram_adapter import JsonAiohttpSession

            base = JsonAiohttpSession

    class NoNetworkSession(base):  # type: ignore[valid-type,misc]
        """The body's encoding and response validation; the HTTP round trip left out."""

        async def make_request(self, bot: Any, method: Any, timeout: int | None = None) -> Any:  # noqa: ASYNC109 - aiogram signature
            body = self.build_form_data(bot=bot, method=method)  # ours: JSON unless a file goes
            if isinstance(body, FormData):
                body()  # encode the form, as sending would
            params = {k: v for k, v in method.model_dump(warnings=False).items() if v is not None}
            params = {k: self.prepare_value(v, bot=bot, files={}) for k, v in params.items()}
            body = json.dumps({"ok": True, "result": replies.result(method.__api_method__, params)})
            return self.check_response(bot=bot, method=method, status_code=200, content=body).result

        async def close(self) -> None:
            return None

    return NoNetworkSession()


def ptb_request(replies: FakeReplies, ours: bool = False) -> Any:
    """PTB's request without the network; `ours`: writing bodies as our transport does."""
    from telegram.request import BaseRequest

    try:
        from bot.channels.telegram.ptb_adapter import request_body
    except ImportError:  # a tree from before JSON bodies (compare.py's base) posts forms
        ours = False

    class NoNetworkRequest(BaseRequest):
        """PTB serialises parameters before `do_request` and parses the bytes after it."""

        @property
        def read_timeout(self) -> float | None:
            return None

        async def initialize(self) -> None:
            return None

        async def shutdown(self) -> None:
            return None

        async def do_request(
            self, url: str, method: str, request_data: Any = None, **_: Any
        ) -> tuple[int, bytes]:
            params = request_data.json_parameters if request_data else {}
            if not ours or request_body(request_data) is None:  # a file goes as a form
                urlencode(params)  # what httpx does with them
            result = replies.result(url.rsplit("/", 1)[-1], params)
            return 200, json.dumps({"ok": True, "result": result}).encode()

    return NoNetworkRequest()


# ---------------------------------------------------------------- updates


class Updates:
    def __init__(self) -> None:
        self.ids = itertools.count(1)

    def text(self, user: int, text: str) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": next(self.ids),
            "date": 1_760_000_000,
            "chat": {"id": user, "type": "private", "first_name": "Nhung"},
            "from": {"id": user, "is_bot": False, "first_name": "Nhung"},
            "text": text,
        }
        if text.startswith("/"):
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        return {"update_id": next(self.ids), "message": message}

    def press(self, user: int, message_id: int, data: str) -> dict[str, Any]:
        return {
            "update_id": next(self.ids),
            "callback_query": {
                "id": f"cb{next(self.ids)}",
                "from": {"id": user, "is_bot": False, "first_name": "Nhung"},
                "chat_instance": f"ci{user}",
                "data": data,
                "message": {
                    "message_id": message_id,
                    "date": 1_760_000_000,
                    "chat": {"id": user, "type": "private", "first_name": "Nhung"},
                    "from": BOT_USER,
                    "text": "menu",
                },
            },
        }


async def run_rounds(
    users: list[int],
    replies: FakeReplies,
    feed: Callable[[dict[str, Any]], Awaitable[Any]],
    settle: Callable[[], Awaitable[Any]],
) -> tuple[int, float]:
    """Every user sends its next scripted message; the round ends when all are answered."""
    updates = Updates()
    count = 0
    gc.collect()  # the set-up's garbage (a full bot builds a database) is not the updates' cost
    started = CLOCK[0]()
    for kind, value in SCRIPT:
        batch = []
        for user in users:
            if kind == "text":
                batch.append(updates.text(user, value))
            else:
                message_id, labels = replies.keyboards[user]
                batch.append(updates.press(user, message_id, labels.get(value, next(iter(labels.values())))))
        for update in batch:
            await feed(update)
        await settle()
        count += len(batch)
    return count, CLOCK[0]() - started


async def nothing() -> None:
    return None


# ---------------------------------------------------------------- the four bots


def settings_for(framework: str, data_dir: Path) -> Any:
    from bot.config import Settings

    return Settings(_env_file=None).model_copy(
        update={
            "data_dir": data_dir,
            "database_url": "",
            "backend_url": "",
            "telegram_bot_token": TOKEN,
            "telegram_framework": framework,
            "telegram_mode": "polling",  # never started: updates are fed directly
        }
    )


async def start_like_run(settings: Any) -> Any:
    """The assistant as `vssid-bot run` starts it (backend, hotline store and FAQ index made
    and loaded at start-up, not by the first users' messages), its warm-up awaited."""
    from bot.assistant import build_assistant

    assistant = await build_assistant(settings, warm_up=True)
    if assistant._warmup is not None:  # what the server does meanwhile is not the updates' cost
        await assistant._warmup
    return assistant


async def full_stack(framework: str, users: list[int]) -> float:
    from bot.channels.telegram import build_telegram_channel

    replies = FakeReplies()
    with tempfile.TemporaryDirectory(prefix="vssid-bench-") as tmp:
        settings = settings_for(framework, Path(tmp))
        assistant = await start_like_run(settings)
        transport = (
            {"session": aiogram_session(replies, ours=FULL_BODIES[0] == "ours")}
            if framework == "aiogram"
            else {"request": ptb_request(replies, ours=FULL_BODIES[0] == "ours")}
        )
        channel = build_telegram_channel(settings, assistant, **transport)
        assistant.add_channel(channel)
        try:
            count, elapsed = await run_rounds(users, replies, channel.feed_raw_update, channel.idle)
        finally:
            await channel.stop()
            await assistant.close()
    behind = [u for u in users if LAST_PROMPT not in replies.last_text.get(u, "")]
    if behind:
        print(
            f"warning: {len(behind)} users did not reach the photo step (e.g. {replies.last_text.get(behind[0])!r})"
        )
    return count / elapsed


async def assistant_alone(users: list[int]) -> float:
    """The same script straight into `assistant.handle`: the ceiling for any channel."""
    from dialogs.messages import Inbound

    with tempfile.TemporaryDirectory(prefix="vssid-bench-") as tmp:
        assistant = await start_like_run(settings_for("aiogram", Path(tmp)))
        count = 0
        started = CLOCK[0]()
        try:
            for step, (kind, value) in enumerate(SCRIPT):
                content = {"button": "flow:registration"} if kind == "press" else {"text": value}
                await asyncio.gather(
                    *(
                        assistant.handle(Inbound("telegram", str(u), message_id=str(step), **content))
                        for u in users
                    )
                )
                count += len(users)
            elapsed = CLOCK[0]() - started
        finally:
            await assistant.close()
    return count / elapsed


async def bare_aiogram(users: list[int]) -> float:
    from aiogram import Bot, Dispatcher, Router
    from aiogram.types import CallbackQuery, Message

    replies = FakeReplies()
    bot = Bot(TOKEN, session=aiogram_session(replies))
    dispatcher = Dispatcher()
    router = Router()

    async def echo(message: Message) -> None:
        await message.answer(message.text or "", reply_markup=None)

    async def echo_button(query: CallbackQuery) -> None:
        await query.answer()
        await bot.send_message(query.message.chat.id, query.data or "")  # type: ignore[union-attr]

    router.message.register(echo)
    router.callback_query.register(echo_button)
    dispatcher.include_router(router)
    # The bare bot has no keyboards of its own: give the users the same tap to make.
    for user in users:
        replies.keyboards[user] = (1, {"Đăng ký tài khoản VssID": "flow:registration"})

    async def feed(update: dict[str, Any]) -> None:
        await dispatcher.feed_raw_update(bot, update)

    count, elapsed = await run_rounds(users, replies, feed, nothing)
    return count / elapsed


async def bare_ptb(users: list[int]) -> float:
    from telegram import Update
    from telegram.ext import Application, CallbackQueryHandler, MessageHandler, filters

    replies = FakeReplies()
    request = ptb_request(replies)
    app = (
        Application.builder().token(TOKEN).request(request).get_updates_request(request).updater(None).build()
    )

    async def echo(update: Update, context: Any) -> None:
        await update.effective_message.reply_text(update.effective_message.text or "")  # type: ignore[union-attr]

    async def echo_button(update: Update, context: Any) -> None:
        query = update.callback_query
        await query.answer()  # type: ignore[union-attr]
        await context.bot.send_message(update.effective_chat.id, query.data or "")  # type: ignore[union-attr]

    app.add_handler(MessageHandler(filters.ALL, echo))
    app.add_handler(CallbackQueryHandler(echo_button))
    await app.initialize()
    for user in users:
        replies.keyboards[user] = (1, {"Đăng ký tài khoản VssID": "flow:registration"})

    async def feed(update: dict[str, Any]) -> None:
        await app.process_update(Update.de_json(update, app.bot))

    try:
        count, elapsed = await run_rounds(users, replies, feed, nothing)
    finally:
        await app.shutdown()
    return count / elapsed


async def main(n_users: int, repeats: int) -> dict[str, dict[str, float]]:
    from bot.assistant import freeze_long_lived_objects

    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("aiogram").setLevel(logging.WARNING)
    users = [7_000_000 + i for i in range(n_users)]
    # Warm-up: imports, pydantic schema builds and SQLite files are not what we measure.
    await full_stack("aiogram", users[:3])
    await full_stack("ptb", users[:3])
    await bare_aiogram(users[:3])
    await bare_ptb(users[:3])
    freeze_long_lived_objects()  # as `vssid-bot run` does once start-up has loaded its data

    # Bare and full run in pairs, back to back, several times: the machine is noisy, and a
    # pair shares its moment's noise; which of the two goes first alternates. Figures are
    # medians; the ratio is the median pair's.
    result: dict[str, dict[str, float]] = {}
    for framework, bare in (("aiogram", bare_aiogram), ("ptb", bare_ptb)):
        pairs = []
        for repeat in range(repeats):
            if repeat % 2:
                full_rate = await full_stack(framework, users)
                bare_rate = await bare(users)
            else:
                bare_rate = await bare(users)
                full_rate = await full_stack(framework, users)
            pairs.append((full_rate / bare_rate, full_rate, bare_rate))
        ratio = statistics.median(p[0] for p in pairs)
        full_rate = statistics.median(p[1] for p in pairs)
        bare_rate = statistics.median(p[2] for p in pairs)
        result[framework] = {
            "full_per_s": round(full_rate, 1),
            "bare_per_s": round(bare_rate, 1),
            "ratio": round(ratio, 3),
        }
        print(
            f"{framework}: full {full_rate:.0f}/s, bare echo {bare_rate:.0f}/s, ratio {ratio:.2f} "
            f"(median of {repeats} pairs: {', '.join(f'{p[0]:.2f}' for p in pairs)})"
        )
    # Not part of the result: shows how much of the gap is the assistant itself, not the channel.
    print(f"assistant alone (no Telegram): {await assistant_alone(users):.0f}/s")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=200, help="simulated parents (each sends 9 updates)")
    parser.add_argument("--repeats", type=int, default=5, help="bare/full pairs per framework")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall", help="what a rate counts")
    parser.add_argument(
        "--bodies", choices=["ours", "framework"], default="ours", help="the full stack's request bodies"
    )
    args = parser.parse_args()
    if args.clock == "cpu":
        CLOCK[0] = time.process_time
    FULL_BODIES[0] = args.bodies
    print(json.dumps(asyncio.run(main(args.users, args.repeats))))
