"""`vssid-bot chat`: the command's options; the terminal channel itself is bot/terminal.py."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bot import terminal


def chat(
    user: Annotated[str, typer.Option("--user", help="Conversation id for this terminal user.")] = "local",
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Where state, uploads and PDFs live.")
    ] = None,
    jsonl: Annotated[
        bool, typer.Option("--jsonl", help="Machine mode: JSON lines in, JSON lines out.")
    ] = False,
) -> None:
    """Chat with the assistant in the terminal (buttons become numbered choices)."""
    terminal.run(user, data_dir, jsonl)
