"""`vssid-bot agencies`: list the BHXH office directory, or replace it with an operator's CSV.

`import` validates the whole file first (every bad row reported with its line number) and
only then copies it to `<data dir>/agencies.csv`, which the bot reads instead of the
packaged directory (`VSSID_AGENCIES_CSV`, when set, still wins).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from bot.cli_options import DataDirOption
from bot.config import load_settings
from bot.private import write_private
from knowledge.agencies import DATA_DIR_FILE, AgencyCsvError, AgencyDirectory

agencies_app = typer.Typer(
    help="The directory of BHXH offices users can choose: list it, or import a replacement CSV.",
    no_args_is_help=True,
    add_completion=False,
)


@agencies_app.command("import")
def import_csv(
    file: Annotated[
        Path,
        typer.Argument(help="CSV with columns code,name,phone,address,province_code,parent_code,source."),
    ],
    data_dir: DataDirOption = None,
) -> None:
    """Validate FILE and make it the directory the bot uses."""
    try:
        directory = AgencyDirectory.from_csv(file)
    except FileNotFoundError:
        typer.echo(f"{file}: no such file", err=True)
        raise typer.Exit(1) from None
    except AgencyCsvError as error:
        typer.echo(f"{file}: not imported, fix these rows and try again:", err=True)
        for problem in error.problems:
            typer.echo(f"  {problem}", err=True)
        raise typer.Exit(1) from None
    except (UnicodeDecodeError, OSError) as error:
        typer.echo(f"{file}: cannot read it as UTF-8 CSV ({error})", err=True)
        raise typer.Exit(1) from None
    settings = load_settings(data_dir=data_dir)
    target = settings.data_dir / DATA_DIR_FILE
    write_private(target, file.read_bytes())
    AgencyDirectory.clear_cache()
    typer.echo(f"Imported {len(directory)} agencies into {target}.")


@agencies_app.command("list")
def list_agencies(
    province: Annotated[
        int | None, typer.Option("--province", help="Only this province code, e.g. 79.")
    ] = None,
    search: Annotated[
        str | None, typer.Option("--search", help="Search as a user would type, e.g. 'quan 7'.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Print the directory in use (or the part for one province, or a search)."""
    settings = load_settings(data_dir=data_dir)
    try:
        directory = AgencyDirectory.default(settings.data_dir)
    except AgencyCsvError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(1) from None
    if search:
        agencies = directory.search(search, limit=20)
    elif province is not None:
        agencies = directory.for_province(province)
    else:
        agencies = list(directory)
    if as_json:
        rows = [
            {
                "code": a.code,
                "name": a.name,
                "phone": a.phone,
                "address": a.address,
                "province_code": a.province_code,
                "parent_code": a.parent_code,
                "source": a.source,
            }
            for a in agencies
        ]
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for a in agencies:
        details = " | ".join(x for x in (a.phone, a.address) if x)
        typer.echo(f"{directory.label(a)}" + (f"  ({details})" if details else ""))
