"""Checks requests against the Telegram Bot API specification in ../shared/telegram-bot-api/api.json.

`problems(method, params)` lists what a real Bot API server would reject: an unknown
method, a missing required parameter, an unknown parameter, a value of the wrong type
(JSON objects are checked field by field against the spec's types), and the limits
Telegram enforces on what we send (text 1-4096 and captions 0-1024 characters after
entity parsing, callback_data 1-64 bytes, HTML that parses).
"""

from __future__ import annotations

import html
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

SPEC_PATH = Path(__file__).resolve().parents[2] / "shared" / "telegram-bot-api" / "api.json"
if not SPEC_PATH.exists():  # the repository checked out elsewhere: /work/shared is the canonical place
    SPEC_PATH = Path("/work/shared/telegram-bot-api/api.json")

_HTML_TAGS = {
    "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler",
    "a", "code", "pre", "blockquote", "tg-emoji",
}  # fmt: skip
_ENTITY = re.compile(r"&(?:lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);")
_TAG = re.compile(r"</?([a-z-]+)(?:\s[^<>]*)?>")


@cache
def spec() -> dict[str, Any]:
    return json.loads(SPEC_PATH.read_text(encoding="utf-8"))


@cache
def _methods() -> dict[str, dict[str, Any]]:
    return {name.lower(): m for name, m in spec()["methods"].items()}


def problems(method: str, params: dict[str, Any]) -> list[str]:
    """Everything wrong with one request; an empty list means a Bot API server would accept it."""
    found: list[str] = []
    described = _methods().get(method.lower())
    if described is None:
        return [f"{method}: no such Bot API method"]
    fields = {f["name"]: f for f in described.get("fields", [])}
    for name, f in fields.items():
        if f["required"] and name not in params:
            found.append(f"{method}: required parameter {name!r} missing")
    for name, value in params.items():
        f = fields.get(name)
        if f is None:
            found.append(f"{method}: unknown parameter {name!r}")
            continue
        if not any(_value_fits(value, t) for t in f["types"]):
            found.append(f"{method}.{name}: {_short(value)} is not {' or '.join(f['types'])}")
    found.extend(_limits(method, params))
    return found


def check_all(requests: list[Any]) -> list[str]:
    """Problems of every recorded request (objects with `.method` and `.params`)."""
    return [p for r in requests for p in problems(r.method, r.params)]


# ---------------------------------------------------------------------- types


def _value_fits(value: Any, type_name: str) -> bool:
    """A form/JSON-encoded parameter value against one spec type."""
    if type(value).__name__ == "UploadedFile":
        return type_name == "InputFile"
    if not isinstance(value, str):
        return _json_fits(value, type_name)
    if type_name == "String":
        return True
    if type_name == "InputFile":
        return False
    if type_name == "Integer":
        return re.fullmatch(r"-?\d+", value) is not None
    if type_name == "Float":
        try:
            float(value)
        except ValueError:
            return False
        return True
    if type_name == "Boolean":
        return value.lower() in {"true", "false"}
    try:
        decoded = json.loads(value)
    except ValueError:
        return False
    return _json_fits(decoded, type_name)


def _json_fits(value: Any, type_name: str) -> bool:
    if type_name.startswith("Array of "):
        inner = type_name[len("Array of ") :]
        return isinstance(value, list) and all(_json_fits(v, inner) for v in value)
    if type_name == "String":
        return isinstance(value, str)
    if type_name == "Integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if type_name == "Float":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if type_name == "Boolean":
        return isinstance(value, bool)
    if type_name == "InputFile":
        return isinstance(value, str) and value.startswith("attach://")
    described = spec()["types"].get(type_name)
    if described is None:
        return False
    subtypes = described.get("subtypes")
    if subtypes:
        return any(_json_fits(value, s) for s in subtypes)
    if not isinstance(value, dict):
        return False
    fields = {f["name"]: f for f in described.get("fields", [])}
    if any(name not in fields for name in value):
        return False
    for name, f in fields.items():
        if name not in value:
            if f["required"]:
                return False
            continue
        if not any(_json_fits(value[name], t) for t in f["types"]):
            return False
    return True


# ---------------------------------------------------------------------- limits


def _limits(method: str, params: dict[str, Any]) -> list[str]:
    found: list[str] = []
    mode = params.get("parse_mode")
    if isinstance(mode, str) and mode not in {"HTML", "MarkdownV2", "Markdown"}:
        found.append(f"{method}: parse_mode {mode!r} unknown")
    for name, low, high in (("text", 1, 4096), ("caption", 0, 1024)):
        value = params.get(name)
        if not isinstance(value, str):
            continue
        shown = value
        if mode == "HTML":
            error = _html_error(value)
            if error:
                found.append(f"{method}.{name}: can't parse entities: {error}")
            shown = html.unescape(_TAG.sub("", value))
        length = len(shown.encode("utf-16-le")) // 2
        if not low <= length <= high:
            found.append(f"{method}.{name}: {length} characters after entity parsing (allowed {low}-{high})")
    markup = params.get("reply_markup")
    if isinstance(markup, str):
        try:
            rows = json.loads(markup).get("inline_keyboard", [])
        except (ValueError, AttributeError):
            rows = []
        for row in rows:
            for button in row:
                data = button.get("callback_data")
                if data is not None and not 1 <= len(data.encode("utf-8")) <= 64:
                    found.append(
                        f"{method}: callback_data of {button.get('text')!r} is {len(data.encode())} bytes"
                    )
    return found


def _html_error(text: str) -> str | None:
    """Telegram's HTML mode: only its few tags, and every < & written as an entity."""
    stack: list[str] = []
    pos = 0
    while pos < len(text):
        ch = text[pos]
        if ch == "<":
            tag = _TAG.match(text, pos)
            if tag is None or tag.group(1) not in _HTML_TAGS:
                return f"unexpected '<' at {pos}"
            name = tag.group(1)
            if tag.group(0).startswith("</"):
                if not stack or stack.pop() != name:
                    return f"unmatched </{name}>"
            else:
                stack.append(name)
            pos = tag.end()
        elif ch == "&":
            entity = _ENTITY.match(text, pos)
            if entity is None:
                return f"unescaped '&' at {pos}"
            pos = entity.end()
        elif ch == ">":
            return f"unescaped '>' at {pos}"
        else:
            pos += 1
    return f"unclosed <{stack[-1]}>" if stack else None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 60 else text[:57] + "..."
