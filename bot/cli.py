"""The `vssid-bot` command line. Each command's body lives next to what it drives;
this module only assembles them so `vssid-bot --help` lists everything."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="vssid-bot",
    help="VssID registration assistant: chat, run the channels, query the FAQ, operate the stub backend.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Command registrations (one line each; the functions live in their own modules).


def main() -> None:
    app()


if __name__ == "__main__":
    main()
