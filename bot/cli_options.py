"""Options and output the sub-commands share (kept light: no command's own imports)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

DataDirOption = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Data directory (default: VSSID_DATA_DIR or ./vssid-data)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2))
