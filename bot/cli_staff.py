"""`vssid-bot staff ...`: the console's accounts and its audit log, from a shell."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from bot.cli_options import DataDirOption, JsonOption, print_json
from bot.cli_texts import cli_text
from bot.config import load_settings

staff_app = typer.Typer(
    help="Staff accounts of the console (/staff): add, list, disable, read the audit log.",
    no_args_is_help=True,
    add_completion=False,
)


def open_directory(data_dir: Path | None) -> Any:
    """The staff directory on the configured database (the data dir's SQLite by default)."""
    from bot.console.auth import StaffDirectory
    from bot.storage import make_engine

    settings = load_settings(data_dir=data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return StaffDirectory(make_engine(settings.sqlalchemy_url, settings.keyring()))


@staff_app.command("add")
def add(
    username: Annotated[str, typer.Argument(help="Login name, e.g. lan.nguyen.")],
    role: Annotated[str, typer.Option("--role", help="hotline, admin or school.")] = "hotline",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin.")
    ] = False,
    display_name: Annotated[
        str, typer.Option("--display-name", help=cli_text("staff.display_name_help"))
    ] = "",
    school: Annotated[
        str | None,
        typer.Option("--school", help="With --role school: the school's code (it sees only that school)."),
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Create a staff account (the password never goes on the command line)."""
    from bot.console.auth import StaffError
    from bot.schools import accounts

    if not password_stdin:
        typer.echo("Error: give the password on stdin with --password-stdin.", err=True)
        raise typer.Exit(2)
    password = sys.stdin.readline().rstrip("\r\n")
    directory = open_directory(data_dir)
    problem = accounts.assign_problem(directory.engine, role, school) if school is not None else None
    if problem:
        typer.echo(f"Error: {problem}.", err=True)
        raise typer.Exit(1)
    try:
        directory.add(username, password, role, display_name)
    except StaffError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(1) from None
    if school is not None:
        accounts.assign(directory.engine, username, school)
    typer.echo(f"staff account {username} added ({role})")


@staff_app.command("list")
def list_accounts(json_output: JsonOption = False, data_dir: DataDirOption = None) -> None:
    """Every account: `[{"username", "display_name", "role", "active", "created_at"}]`."""
    rows = open_directory(data_dir).accounts()
    if json_output:
        print_json(rows)
        return
    for row in rows:
        state = "active" if row["active"] else "disabled"
        typer.echo(f"{row['username']}\t{row['role']}\t{state}\t{row['display_name']}")


@staff_app.command("disable")
def disable(username: str, data_dir: DataDirOption = None) -> None:
    """Disable an account: it cannot log in and its open sessions end."""
    if not open_directory(data_dir).disable(username):
        typer.echo(f"Error: no staff account {username!r}.", err=True)
        raise typer.Exit(1)
    typer.echo(f"staff account {username} disabled")


@staff_app.command("audit")
def audit(
    json_output: JsonOption = False,
    limit: Annotated[int, typer.Option("--limit", help="The last N entries.")] = 1000,
    data_dir: DataDirOption = None,
) -> None:
    """Who did what, oldest first: `[{"at", "staff", "action", "target", "detail"}]`."""
    entries = open_directory(data_dir).audit_entries(limit)
    if json_output:
        print_json(entries)
        return
    for e in entries:
        typer.echo(f"{e['at']}\t{e['staff']}\t{e['action']}\t{e['target']}\t{e['detail']}")
