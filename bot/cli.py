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
from bot.cli_faq import faq  # noqa: E402

app.command("faq")(faq)
from bot.cli_chat import chat  # noqa: E402

app.command("chat")(chat)
from bot.cli_backend import backend_app, declarations, sms  # noqa: E402

app.add_typer(backend_app, name="backend")
app.command("sms")(sms)
app.command("declarations")(declarations)
from bot.runner import run  # noqa: E402

app.command("run")(run)
from bot.cli_agencies import agencies_app  # noqa: E402

app.add_typer(agencies_app, name="agencies")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
