"""CLI for the stub backend: serve it over HTTP, decide declarations, read its SMS outbox.

Commands act on the stub store in the data dir; when VSSID_BACKEND_URL is set they call
that HTTP service instead (the bot then talks to it, so that is where its SMS and
declarations are). `backend serve` always serves the data dir's store.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from bot.backend import HttpBackend, OperatorError, StubBackend, make_backend
from bot.cli_options import DataDirOption, JsonOption, print_json
from bot.config import load_settings
from dialogs.ports import BackendUnavailable, DeclarationStatus

T = TypeVar("T")

backend_app = typer.Typer(
    help="Operate the stub social-insurance backend (serve it over HTTP, approve or reject declarations).",
    no_args_is_help=True,
    add_completion=False,
)


def _with_backend(data_dir: Path | None, action: Callable[[StubBackend | HttpBackend], Awaitable[T]]) -> T:
    """Run one backend action, turning its failures into a message on stderr and exit code 1."""

    async def run() -> T:
        backend = make_backend(load_settings(data_dir=data_dir))
        try:
            return await action(backend)
        finally:
            await backend.close()

    try:
        return asyncio.run(run())
    except OperatorError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(1) from None
    except BackendUnavailable as exc:
        typer.echo(f"Error: the backend is unavailable ({exc}).", err=True)
        raise typer.Exit(1) from None
    except ValueError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(1) from None


def _print_decision(result: DeclarationStatus, json_output: bool) -> None:
    if json_output:
        print_json(result.model_dump(mode="json"))
    elif result.status == "approved":
        typer.echo(f"{result.receipt} approved: account created, first password sent by SMS.")
    else:
        typer.echo(f"{result.receipt} rejected: {result.reason}")


@backend_app.command("serve")
def serve(
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8090,
    data_dir: DataDirOption = None,
    testing: Annotated[
        bool, typer.Option("--testing", help="Also serve /_admin/* (inject outages and faults): tests only.")
    ] = False,
) -> None:
    """Run the stub backend as an HTTP service (JSON API under /v1) until interrupted.

    Every call needs VSSID_BACKEND_TOKEN; without it the service keeps to loopback and
    writes a token to backend.token in the data dir, which clients on the same data dir read.
    """
    from bot.backend.http_server import ServeRefused
    from bot.backend.http_server import serve as run_server

    try:
        run_server(host, port, data_dir, testing=testing)
    except ServeRefused as exc:
        typer.echo(f"vssid-bot backend serve: {exc}", err=True)
        raise typer.Exit(2) from None


@backend_app.command("approve")
def approve(receipt: str, data_dir: DataDirOption = None, json_output: JsonOption = False) -> None:
    """Approve a received declaration: checks the code and name, creates the account, texts the password.

    If the checks fail the declaration is rejected with the reason instead.
    """
    _print_decision(_with_backend(data_dir, lambda b: b.approve(receipt)), json_output)


@backend_app.command("reject")
def reject(
    receipt: str,
    reason: Annotated[str, typer.Option("--reason", help="Why, in Vietnamese: it is texted to the citizen.")],
    data_dir: DataDirOption = None,
    json_output: JsonOption = False,
) -> None:
    """Reject a received declaration with a reason (sent to the citizen by SMS)."""
    _print_decision(_with_backend(data_dir, lambda b: b.reject(receipt, reason)), json_output)


def sms(
    json_output: JsonOption = False,
    phone: Annotated[str | None, typer.Option("--phone", help="Only the SMS sent to this phone.")] = None,
    data_dir: DataDirOption = None,
) -> None:
    """The stub backend's SMS outbox (OTPs, receipts, passwords, rejections), oldest first."""
    messages = _with_backend(data_dir, lambda b: b.sms_outbox(phone))
    if json_output:
        print_json(messages)
        return
    if not messages:
        typer.echo("No SMS.")
    for m in messages:
        typer.echo(f"{m['sent_at']}  {m['phone']}  {m['text']}")


def declarations(json_output: JsonOption = False, data_dir: DataDirOption = None) -> None:
    """Declarations the stub backend received, oldest first."""
    items = _with_backend(data_dir, lambda b: b.list_declarations())
    if json_output:
        print_json(items)
        return
    if not items:
        typer.echo("No declarations.")
    for d in items:
        typer.echo(
            f"{d['receipt']}  {d['kind']:<10}  {d['status']:<12}  {d['social_insurance_code']}  "
            f"{d['full_name']}  (agency {d['agency_code']})"
        )
