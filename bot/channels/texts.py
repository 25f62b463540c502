"""The channels' own Vietnamese messages (transport problems), read from texts.yaml."""

from __future__ import annotations

from pathlib import Path

from dialogs.catalog import catalog

_TEXTS_FILE = Path(__file__).with_name("texts.yaml")


def channel_text(key: str, **params: object) -> str:
    """The message `key` from texts.yaml with `params` filled in (KeyError on an unknown key)."""
    return catalog(_TEXTS_FILE)(key, **params)
