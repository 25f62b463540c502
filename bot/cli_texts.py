"""What the command line says (bot/cli_texts.yaml).

A text with a template is rendered by the one text loader's renderer (dialogs.catalog.render:
the same jinja2 sandbox and StrictUndefined as every catalog); a plain one is returned as
written without importing jinja2: `vssid-bot faq` reads its help text at start-up, and its
cold start is measured (bench/engine.py).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

_FILE = Path(__file__).with_name("cli_texts.yaml")


@cache
def _entries() -> dict[str, Any]:
    import yaml

    # libyaml's safe loader when present: a twentieth of the pure-Python one's time at start-up.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    entries: dict[str, Any] = yaml.load(_FILE.read_text(encoding="utf-8"), Loader=loader)  # noqa: S506 - a safe loader
    return entries


def cli_text(key: str, **params: object) -> str:
    """The text `key` with `params` filled in (KeyError on an unknown key)."""
    node: Any = _entries()
    for part in key.split("."):
        node = node[part]
    source = str(node)
    if "{" not in source:  # no template: what the renderer would return, without loading it
        return source.strip()
    from dialogs.catalog import render

    return render(source, **params)
