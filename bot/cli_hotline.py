"""`vssid-bot handoff create` and `vssid-bot tickets ...`: the hotline's work from a shell.

They act on the same database as `vssid-bot run`. A reply or a hand-back made here is kept
as a notice for the citizen: the running server pushes it to Telegram and Zalo, the web
chat shows it at its next poll.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer

from bot.cli_options import DataDirOption, JsonOption, print_json
from bot.cli_texts import cli_text
from bot.config import Settings, load_settings

handoff_app = typer.Typer(
    help="Hotline handoffs: a link that takes a caller into the assistant with a note.",
    no_args_is_help=True,
    add_completion=False,
)
tickets_app = typer.Typer(
    help="Tickets: citizens who asked for a person. List, reply, hand back to the assistant.",
    no_args_is_help=True,
    add_completion=False,
)

StaffOption = Annotated[
    str, typer.Option("--staff", help="Act as this staff account (its name is shown to the citizen).")
]


def _settings(data_dir: Any) -> Settings:
    settings = load_settings(data_dir=data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return settings


def _staff(settings: Settings, username: str) -> Any:
    """The acting staff member: an active account, or the shell itself (no name)."""
    from bot.console.auth import Staff, StaffDirectory
    from bot.storage import make_engine

    directory = StaffDirectory(make_engine(settings.sqlalchemy_url, settings.keyring()))
    if not username:
        return directory, Staff("shell", "", "admin")
    staff = directory.get(username)
    if staff is None:
        typer.echo(f"Error: no active staff account {username!r}.", err=True)
        raise typer.Exit(1)
    return directory, staff


def _telegram_user(settings: Settings) -> str | None:
    """The bot's username: the setting, else getMe (only when Telegram is configured)."""
    if settings.telegram_bot_username or not settings.telegram_bot_token:
        return settings.telegram_bot_username.lstrip("@") or None
    from bot.schools.links import telegram_username

    return asyncio.run(telegram_username(settings))


@handoff_app.command("create")
def create(
    note: Annotated[str, typer.Option("--note", help="What the citizen reads first.")],
    flow: Annotated[
        str | None,
        typer.Option("--flow", help="registration, child_registration, install_guide or account_help."),
    ] = None,
    phone: Annotated[
        str | None, typer.Option("--phone", help="The caller's phone, offered for confirmation.")
    ] = None,
    staff: StaffOption = "",
    json_output: JsonOption = False,
    data_dir: DataDirOption = None,
) -> None:
    """Create a single-use link: `{"token", "expires_at", "links": {"web", "telegram", "zalo"}, "sms_text"}`."""
    from bot.hotline.handoffs import HandoffRefused, create_handoff
    from bot.hotline.store import HotlineStore

    settings = _settings(data_dir)
    directory, actor = _staff(settings, staff)
    try:
        result = create_handoff(
            settings,
            HotlineStore(directory.engine),
            note=note,
            flow=flow,
            phone=phone,
            staff=actor,
            telegram_user=_telegram_user(settings),
        )
    except HandoffRefused as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(1) from None
    directory.audit(actor.username, "handoff_create", flow or "", "")
    if json_output:
        print_json(result)
        return
    for channel, link in result["links"].items():
        typer.echo(f"{channel}: {link or '(not configured)'}")
    typer.echo(f"expires: {result['expires_at']}\nSMS: {result['sms_text']}")


@tickets_app.command("list")
def list_tickets(
    status: Annotated[str | None, typer.Option("--status", help="waiting, held or closed.")] = None,
    json_output: JsonOption = False,
    data_dir: DataDirOption = None,
) -> None:
    """`[{"id", "status", "channel", "conversation", "step", "reason", "created_at", "first_reply_at"}]`."""
    from bot.hotline.store import STATUSES, HotlineStore, ticket_json
    from bot.storage import make_engine

    if status is not None and status not in STATUSES:
        typer.echo(f"Error: --status is one of {', '.join(STATUSES)}.", err=True)
        raise typer.Exit(2)
    settings = _settings(data_dir)
    store = HotlineStore(make_engine(settings.sqlalchemy_url, settings.keyring()))
    rows = [ticket_json(t) for t in store.tickets(status)]
    if json_output:
        print_json(rows)
        return
    for r in rows:
        typer.echo(
            f"{r['id']}\t{r['status']}\t{r['channel']}\t{r['step'] or '-'}\t{r['reason']}\t{r['created_at']}"
        )


def _act(data_dir: Any, username: str, action: str, ticket_id: int, text: str = "") -> None:
    """Run one staff action on a ticket through the assistant (state, notices), then audit it."""
    from bot.assistant import build_assistant

    settings = _settings(data_dir)
    directory, actor = _staff(settings, username)

    async def run() -> Any:
        assistant = await build_assistant(settings)
        try:
            if action == "reply":
                return await assistant.desk.reply(ticket_id, actor, text)
            return await assistant.desk.hand_back(ticket_id, actor)
        finally:
            await assistant.close()

    if action == "reply" and not text.strip():
        typer.echo(cli_text("tickets.empty_reply"), err=True)
        raise typer.Exit(2)
    ticket = asyncio.run(run())
    if ticket is None:
        typer.echo(f"Error: no open ticket {ticket_id}.", err=True)
        raise typer.Exit(1)
    directory.audit(actor.username, f"ticket_{action.replace('-', '_')}", f"ticket:{ticket_id}", "")
    typer.echo(f"ticket {ticket_id}: {ticket.status}")


@tickets_app.command("reply")
def reply(ticket_id: int, text: str, staff: StaffOption = "", data_dir: DataDirOption = None) -> None:
    """Write to the citizen (takes the ticket if nobody held it; the assistant goes silent)."""
    _act(data_dir, staff, "reply", ticket_id, text)


@tickets_app.command("hand-back")
def hand_back(ticket_id: int, staff: StaffOption = "", data_dir: DataDirOption = None) -> None:
    """Close the ticket; the assistant asks the citizen the same step again."""
    _act(data_dir, staff, "hand-back", ticket_id)
