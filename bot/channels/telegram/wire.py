"""How our transports write a Bot API call that uploads no file: one UTF-8 JSON object.

The Bot API takes `application/json` bodies for every method ("Making requests"); the
server keeps a string value as the string and any other value (number, boolean, object,
array) as its JSON text, which is what a form field holds, so both bodies mean the same
call. A form percent-encodes every byte of a Vietnamese letter's UTF-8 (3 bytes become 9),
which cost ~24 µs a reply and made the body ~2.5x the text; JSON writes the text once, as
UTF-8. Calls with a file stay multipart forms (the adapters' transports fall back to their
framework's own request).

Both adapters' transports (`ptb_adapter.JsonHttpxRequest`, `aiogram_adapter.JsonAiohttpSession`)
and bench/telegram.py's full stack write bodies with `json_body`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

CONTENT_TYPE = "application/json"

# Compact, not ASCII-escaped; plain JSON values only (no cycles to look for).
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode


class JsonText(str):
    """A parameter value that is already JSON text (a keyboard written once per distinct
    keyboard): `json_body` puts it in as the object it writes, a form as its text."""

    __slots__ = ()


def to_json_text(value: Any) -> JsonText:
    """`value` (plain JSON values) written as `json_body` writes it."""
    return JsonText(_encode(value))


def json_body(params: Mapping[str, Any]) -> bytes:
    """The call's parameters as a UTF-8 JSON object; None values are left out (a form has
    no field for them), top-level `JsonText` values go in as the JSON they are."""
    plain: dict[str, Any] = {}
    written = ""  # the JsonText members, each after a comma
    for key, value in params.items():
        if value is None:
            continue
        if type(value) is JsonText:
            written += f",{_encode(key)}:{value}"
        else:
            plain[key] = value
    text = _encode(plain)
    if written:
        text = f"{text[:-1]}{written}}}" if plain else f"{{{written[1:]}}}"
    return text.encode()
