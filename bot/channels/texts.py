"""The channels' own Vietnamese messages (transport problems), read from texts.yaml."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import jinja2
import yaml

_TEXTS_FILE = Path(__file__).with_name("texts.yaml")


@cache
def _templates() -> dict[str, jinja2.Template]:
    # Plain chat text, not HTML: each channel escapes for its own markup (Telegram HTML-escapes).
    env = jinja2.Environment(
        autoescape=False,  # noqa: S701 - see above
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
    )
    raw = yaml.safe_load(_TEXTS_FILE.read_text(encoding="utf-8"))
    return {key: env.from_string(str(value)) for key, value in raw.items()}


def channel_text(key: str, **params: object) -> str:
    """The message `key` from texts.yaml with `params` filled in (KeyError on an unknown key)."""
    return _templates()[key].render(**params).strip()
