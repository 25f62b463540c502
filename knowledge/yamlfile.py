"""YAML parsed with libyaml when PyYAML has it: the same safe loader, about ten times faster.

Every catalog, flow and the FAQ file is parsed at start-up; with PyYAML's pure-Python
parser that was most of a cold start (faq.yaml alone ~0.2 s of CPU).

A file's text read with a `kept_as` name may instead come from `keeper`, when a program
sets one (the bot's command line does: bot/disk_cache.py keeps what a text parsed to, named
by its hash, so a fresh process reads faq.yaml back in a millisecond instead of parsing it
again in tens).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

# keeper(name, text, parse) -> parse(text), or what it gave for that same text before.
keeper: Callable[[str, str, Callable[[str], Any]], Any] | None = None


def safe_load(source: Any, *, kept_as: str | None = None) -> Any:
    """`yaml.safe_load` (of a str or an open file), through libyaml when available; a str with
    `kept_as` (a name for the file, the same each time) through `keeper` when one is set."""
    if kept_as is not None and keeper is not None and isinstance(source, str):
        return keeper(kept_as, source, _parse)
    return _parse(source)


@functools.cache
def _loader() -> Any:
    import yaml  # here: a start whose files all come from the keeper never imports PyYAML

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _parse(source: Any) -> Any:
    import yaml

    return yaml.load(source, Loader=_loader())  # noqa: S506 - a safe loader (C or Python)
