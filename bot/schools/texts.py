"""The schools' Vietnamese texts (texts.yaml): the poster and the console page."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import jinja2
import yaml

_FILE = Path(__file__).with_name("texts.yaml")


@cache
def _catalog() -> dict[str, jinja2.Template]:
    # Plain chat and report text, not HTML: each channel escapes for its own markup.
    env = jinja2.Environment(autoescape=False, undefined=jinja2.StrictUndefined)  # noqa: S701 - see above
    raw = yaml.safe_load(_FILE.read_text(encoding="utf-8"))
    return {key: env.from_string(str(value)) for key, value in raw.items()}


def school_text(key: str, **params: object) -> str:
    """The text `key` with `params` filled in (KeyError on an unknown key)."""
    return _catalog()[key].render(**params).strip()
