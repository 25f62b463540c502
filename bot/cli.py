"""The `vssid-bot` command line.

Each command's body lives next to what it drives; this module only assembles them. Only the
module of the command being run is imported, so `vssid-bot chat` starts without loading the
web server, the Telegram frameworks or the PDF library.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
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


def _plain_form(args: list[str]) -> Callable[[], None] | None:
    """The two forms programs call, run without typer: `faq "question"` (one question) and
    `chat --jsonl` (with `--user U`, `--data-dir D`). typer's parsing builds a pydantic
    validator per option, and importing typer and pydantic was half of `faq`'s start (its
    answer needs neither), typer a tenth of `chat`'s. The same function gets the same values
    typer would give it; any other form (`--help`, `--user=U`, a value starting with "-")
    goes through typer. None: not one of these forms."""
    if len(args) == 2 and args[0] == "faq" and not args[1].startswith("-"):
        from bot.faq_text import print_answer

        return lambda: print_answer(args[1])
    if not args or args[0] != "chat" or "--jsonl" not in args:
        return None
    options: dict[str, str] = {}
    rest = [a for a in args[1:] if a != "--jsonl"]
    if len(rest) != len(args) - 2 or len(rest) % 2:
        return None  # --jsonl twice, or an option without its value
    for name, value in zip(rest[::2], rest[1::2], strict=True):
        if name not in ("--user", "--data-dir") or name in options or value.startswith("-"):
            return None
        options[name] = value
    from bot import terminal

    data_dir = Path(options["--data-dir"]) if "--data-dir" in options else None
    return lambda: terminal.run(options.get("--user", "local"), data_dir, jsonl=True)


def _as_typer_ends(run: Callable[[], None]) -> None:
    """`run()`, its interrupts and a closed output ending the process as typer's command line
    ends them (exit 130; "Aborted!" and 1; quietly 1)."""
    try:
        run()
    except KeyboardInterrupt:
        sys.exit(130)
    except EOFError:
        print("\nAborted!", file=sys.stderr)
        sys.exit(1)
    except BrokenPipeError:
        sys.stdout = sys.stderr = open(os.devnull, "w")
        sys.exit(1)


def main() -> None:
    from bot.disk_cache import keep_parsed_yaml

    keep_parsed_yaml()
    plain = _plain_form(sys.argv[1:])
    if plain is not None:
        _as_typer_ends(plain)
        return
    requested = sys.argv[1] if len(sys.argv) > 1 else None
    build_app(only=requested if requested in COMMANDS else None)()


if __name__ == "__main__":
    main()
