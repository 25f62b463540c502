"""The schools' Vietnamese texts (texts.yaml): the poster and the console page."""

from __future__ import annotations

from pathlib import Path

from dialogs.catalog import catalog

_FILE = Path(__file__).with_name("texts.yaml")


def school_text(key: str, **params: object) -> str:
    """The text `key` with `params` filled in (KeyError on an unknown key)."""
    return catalog(_FILE)(key, **params)
