"""The terminal channel behind `vssid-bot chat`: interactive, or JSON lines for other programs.

JSON-lines contract (keep exactly): one object per input line,
{"text": ...} | {"button": ...} | {"photo": "<path>"}, and for each exactly one output line
{"replies": [{"text", "buttons": [{"label", "payload"}], "document": <path or null>}]}.
The stored PDF is sealed; the path handed out is a clear 0600 copy (bot/handout.py).

Kept apart from the command's options (bot/cli_chat.py, typer) so that the JSON-lines form
programs call starts without typer (bot/cli.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from pathlib import Path

from bot.channels.replies import terminal_replies
from bot.cli_texts import cli_text
from dialogs.messages import Button, Inbound, Outbound

CHANNEL = "terminal"


def _error_reply(text: str) -> dict:
    return terminal_replies([Outbound(text)])


def _inbound_from_json(line: str, user: str) -> Inbound | dict:
    """An Inbound, or an error reply (the conversation itself is untouched)."""
    try:
        message = json.loads(line)
    except json.JSONDecodeError:
        return _error_reply(cli_text("chat.not_json"))
    if not isinstance(message, dict):
        return _error_reply(cli_text("chat.not_an_object"))
    if isinstance(message.get("text"), str):
        return Inbound(channel=CHANNEL, user_id=user, text=message["text"])
    if isinstance(message.get("button"), str):
        return Inbound(channel=CHANNEL, user_id=user, button=message["button"])
    if isinstance(message.get("photo"), str):
        try:
            data = Path(message["photo"]).expanduser().read_bytes()
        except OSError:
            return _error_reply(cli_text("chat.json_photo_unreadable", path=message["photo"]))
        return Inbound(channel=CHANNEL, user_id=user, photo=data)
    return _error_reply(cli_text("chat.no_known_key"))


def _print_reply(reply: Outbound, out) -> list[Button]:
    print(f"\n🤖 {reply.text}", file=out)
    if reply.progress:
        print("   " + cli_text("chat.progress", step=reply.progress[0], total=reply.progress[1]), file=out)
    if reply.document:
        print("   " + cli_text("chat.document", path=reply.document), file=out)
    for number, button in enumerate(reply.buttons, start=1):
        print(f"   [{number}] {button.label}", file=out)
    return list(reply.buttons)


async def _answer(assistant, inbound: Inbound) -> list[Outbound]:
    """The assistant's replies, a PDF among them as the terminal user's clear copy."""
    from bot.handout import hand_out

    replies = await assistant.handle(inbound)
    data_dir = getattr(assistant, "data_dir", None)
    if data_dir is None:
        return replies
    keyring = assistant.store.keyring

    def copied(reply: Outbound) -> Outbound:
        if reply.document is None:
            return reply
        copy = hand_out(data_dir, keyring, inbound.conversation_id, reply.document)
        return dataclasses.replace(reply, document=copy)

    return await asyncio.to_thread(lambda: [copied(r) for r in replies])


def _photo_from_command(line: str, user: str) -> Inbound | None:
    path = Path(line[len("/photo") :].strip()).expanduser()
    try:
        return Inbound(channel=CHANNEL, user_id=user, photo=path.read_bytes())
    except OSError:
        print(cli_text("chat.photo_unreadable", path=path))
        return None


async def _interactive(assistant, user: str) -> None:
    from knowledge.text import fold

    print(cli_text("chat.welcome"))
    buttons: list[Button] = []
    pending: Inbound | None = Inbound(channel=CHANNEL, user_id=user, text="/start")
    while True:
        if pending is not None:
            replies = await _answer(assistant, pending)
            shown = [b for r in replies for b in _print_reply(r, sys.stdout)]
            buttons = shown or buttons
        try:
            line = await asyncio.to_thread(input, "\n> ")
        except (EOFError, KeyboardInterrupt):
            print()
            return
        line = line.strip()
        pending = None
        if not line:
            continue
        if line.startswith("/photo"):
            pending = await asyncio.to_thread(_photo_from_command, line, user)
            continue
        chosen = None
        if line.isdigit() and 1 <= int(line) <= len(buttons):
            chosen = buttons[int(line) - 1]
        else:
            chosen = next((b for b in buttons if fold(b.label) == fold(line)), None)
        if chosen is not None:
            pending = Inbound(channel=CHANNEL, user_id=user, button=chosen.payload)
        else:
            pending = Inbound(channel=CHANNEL, user_id=user, text=line)


async def _jsonl(assistant, user: str) -> None:
    while True:
        line = await asyncio.to_thread(sys.stdin.readline)
        if not line:
            return
        if not line.strip():
            continue
        inbound = await asyncio.to_thread(_inbound_from_json, line, user)
        if isinstance(inbound, dict):
            payload = inbound
        else:
            replies = await _answer(assistant, inbound)
            payload = terminal_replies(replies)
        sys.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")
        sys.stdout.flush()


def run(user: str = "local", data_dir: Path | None = None, jsonl: bool = False) -> None:
    """Chat with the assistant in the terminal (buttons become numbered choices)."""
    from bot.assistant import build_assistant
    from bot.config import load_settings
    from bot.logs import setup_logging

    settings = load_settings(data_dir=data_dir)
    setup_logging(settings.log_level, quiet=jsonl)

    async def main() -> None:
        assistant = await build_assistant(settings)
        # The first round 2 s after start: a program asking one line and leaving pays for none.
        assistant.start_notifications(interval_s=2.0, first_round_after_s=2.0)
        try:
            await (_jsonl(assistant, user) if jsonl else _interactive(assistant, user))
        finally:
            await assistant.close()

    asyncio.run(main())
