"""The `vssid-bot` command line.

Each command's body lives next to what it drives; this module only assembles them. Only the
module of the command being run is imported, so `vssid-bot chat` starts without loading the
web server, the Telegram frameworks or the PDF library.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import typer

# command name -> ("module:attribute", kind): "command" is a function, "group" a typer app.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("bot.runner:run", "command"),
    "chat": ("bot.cli_chat:chat", "command"),
    "faq": ("bot.cli_faq:faq", "command"),
    "sms": ("bot.cli_backend:sms", "command"),
    "declarations": ("bot.cli_backend:declarations", "command"),
    "backend": ("bot.cli_backend:backend_app", "group"),
    "agencies": ("bot.cli_agencies:agencies_app", "group"),
    "schools": ("bot.cli_schools:schools_app", "group"),
    "report": ("bot.cli_schools:report_app", "group"),
    "staff": ("bot.cli_staff:staff_app", "group"),
    "handoff": ("bot.cli_hotline:handoff_app", "group"),
    "tickets": ("bot.cli_hotline:tickets_app", "group"),
    "keys": ("bot.cli_keys:keys_app", "group"),
}


def build_app(only: str | None = None) -> typer.Typer:
    import typer

    app = typer.Typer(
        name="vssid-bot",
        help="VssID registration assistant: chat, run the channels, query the FAQ, operate the stub backend.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )

    @app.callback()
    def _root() -> None:
        """VssID registration assistant."""  # keeps sub-commands even when only one is loaded

    for name, (target, kind) in COMMANDS.items():
        if only is not None and name != only:
            continue
        module, _, attribute = target.partition(":")
        obj = getattr(importlib.import_module(module), attribute)
        if kind == "group":
            app.add_typer(obj, name=name)
        else:
            app.command(name)(obj)
    return app


def __getattr__(name: str) -> Any:
    # `from bot.cli import app` (tests, typer's CliRunner) gets every command.
    if name == "app":
        return build_app()
    raise AttributeError(name)


def _plain_faq(args: list[str]) -> bool:
    """`vssid-bot faq "question"`, the form programs call once per question: answered without
    typer, whose parsing builds a pydantic validator per option (importing pydantic was about
    40 % of the command's start, typer itself a tenth, and nothing else here needs them).
    The same answer as `faq` prints for it; every other form goes through typer."""
    if len(args) != 2 or args[0] != "faq" or args[1].startswith("-"):
        return False
    from bot.faq_text import print_answer

    print_answer(args[1])
    return True


def main() -> None:
    from bot.disk_cache import keep_parsed_yaml

    keep_parsed_yaml()
    if _plain_faq(sys.argv[1:]):
        return
    requested = sys.argv[1] if len(sys.argv) > 1 else None
    build_app(only=requested if requested in COMMANDS else None)()


if __name__ == "__main__":
    main()
