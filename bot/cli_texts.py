"""What the command line says (bot/cli_texts.yaml), through the one text loader."""

from __future__ import annotations

from pathlib import Path

from dialogs.catalog import catalog

_FILE = Path(__file__).with_name("cli_texts.yaml")


def cli_text(key: str, **params: object) -> str:
    """The text `key` with `params` filled in (KeyError on an unknown key)."""
    return catalog(_FILE)(key, **params)
