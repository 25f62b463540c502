"""`vssid-bot schools` (the registry, links, posters, the district's deadline) and
`vssid-bot report schools` (the funnel counts per school, as JSON)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from bot.config import Settings, load_settings

schools_app = typer.Typer(
    help="Schools: import the registry, list it, make a school's links and poster, set the deadline.",
    no_args_is_help=True,
    add_completion=False,
)
report_app = typer.Typer(
    help="Reports for the district: counts only.", no_args_is_help=True, add_completion=False
)

DataDirOption = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Data directory (default: VSSID_DATA_DIR or ./vssid-data)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
ProvinceOption = Annotated[int | None, typer.Option("--province", help="Only this province code, e.g. 79.")]


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2))


def _fail(message: str) -> None:
    typer.echo(message, err=True)
    raise typer.Exit(1)


@contextmanager
def _database(settings: Settings) -> Iterator[Any]:
    """The bot's database, migrated to the newest schema (as `vssid-bot run` would)."""
    from bot.assistant import prepare_data_dir
    from bot.storage import ConversationStore

    prepare_data_dir(settings)
    store = ConversationStore(settings.sqlalchemy_url, keyring=settings.keyring())
    try:
        yield store.engine
    finally:
        store.close()


@schools_app.command("import")
def import_schools(
    file: Annotated[Path, typer.Argument(help="CSV with columns code,name,province,ward,contact[,pupils].")],
    data_dir: DataDirOption = None,
) -> None:
    """Check the whole FILE, then add its schools (a school already known is updated)."""
    from bot.schools.registry import SchoolCsvError, SchoolRegistry, read_csv

    try:
        records = read_csv(file)
    except FileNotFoundError:
        _fail(f"{file}: no such file")
    except (UnicodeDecodeError, OSError) as error:
        _fail(f"{file}: cannot read it as a UTF-8 CSV ({error})")
    except SchoolCsvError as error:
        typer.echo(f"{file}: nothing imported; fix these lines and try again:", err=True)
        for problem in error.problems:
            typer.echo(f"  {problem}", err=True)
        raise typer.Exit(1) from None
    with _database(load_settings(data_dir=data_dir)) as engine:
        SchoolRegistry(engine).save(records)
    typer.echo(f"Imported {len(records)} schools.")


@schools_app.command("list")
def list_schools(
    province: ProvinceOption = None, as_json: JsonOption = False, data_dir: DataDirOption = None
) -> None:
    """The registered schools, by province and ward."""
    from bot.schools.registry import SchoolRegistry

    with _database(load_settings(data_dir=data_dir)) as engine:
        schools = SchoolRegistry(engine).list(province=province)
    if as_json:
        _print_json([s.as_json() for s in schools])
        return
    for s in schools:
        pupils = f", {s.pupils} pupils" if s.pupils else ""
        typer.echo(f"{s.code}  {s.name} — {s.ward}, {s.province}{pupils}")


@schools_app.command("link")
def link(
    code: Annotated[str, typer.Argument(help="The school's code, as imported.")],
    as_json: JsonOption = False,
    data_dir: DataDirOption = None,
) -> None:
    """The school's links (web, Telegram, Zalo) and its A4 poster with the QR code of the web link."""
    from bot.schools.links import school_links
    from bot.schools.poster import write_poster
    from bot.schools.registry import SchoolRegistry

    settings = load_settings(data_dir=data_dir)
    with _database(settings) as engine:
        school = SchoolRegistry(engine).get(code)
    if school is None:
        _fail(f"No school with the code «{code}»: see `vssid-bot schools list`, or import it first.")
        return
    links = asyncio.run(school_links(settings, school.code))
    poster = write_poster(settings.data_dir / "posters", school, links["web"] or "")
    result = {"code": school.code, "name": school.name, "links": links, "poster": str(poster.resolve())}
    if as_json:
        _print_json(result)
        return
    for channel, url in links.items():
        typer.echo(f"{channel}: {url or '(not configured)'}")
    typer.echo(f"poster: {result['poster']}")


def _date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"«{value}» is not a date YYYY-MM-DD (e.g. 2026-12-31)") from None


@schools_app.command("deadline")
def deadline(
    day: Annotated[str | None, typer.Argument(help="YYYY-MM-DD; omit to show the current one.")] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the deadline.")] = False,
    data_dir: DataDirOption = None,
) -> None:
    """The date the district set for 100 %: the console counts the days left to it."""
    from bot.schools.deadline import get_deadline, set_deadline

    when = _date(day)
    with _database(load_settings(data_dir=data_dir)) as engine:
        if clear or when is not None:
            set_deadline(engine, None if clear else when)
        current = get_deadline(engine)
    typer.echo(current.isoformat() if current else "No deadline set.")


@schools_app.command("assign")
def assign(
    username: Annotated[str, typer.Argument(help="A console account with the role `school`.")],
    code: Annotated[str, typer.Argument(help="The school's code, as imported.")],
    data_dir: DataDirOption = None,
) -> None:
    """Let a `school` console account see this school's figures (and only these)."""
    from bot.console.auth import StaffDirectory
    from bot.schools import accounts

    with _database(load_settings(data_dir=data_dir)) as engine:
        staff = StaffDirectory(engine).get(username)
        problem = accounts.assign_problem(engine, staff.role if staff else None, code)
        if staff is None:
            problem = (
                f"no staff account {username!r}: add it with `vssid-bot staff add {username} --role school`"
            )
        if problem:
            _fail(f"Error: {problem}.")
        accounts.assign(engine, username, code)
    typer.echo(f"{username} now sees the figures of {code}.")


async def _collect(settings: Settings, engine: Any) -> None:
    """Bring the approvals and rejections up to date from the backend (if it answers)."""
    from bot.backend import make_backend
    from bot.schools.funnel import SchoolFunnel
    from dialogs.ports import BackendUnavailable

    backend = make_backend(settings)
    try:
        await SchoolFunnel(engine, {}).collect_decisions(backend)
    except BackendUnavailable:
        typer.echo("Warning: the backend did not answer; approvals and rejections may be behind.", err=True)
    finally:
        await backend.close()


@report_app.command("schools")
def report_schools(
    province: ProvinceOption = None,
    since: Annotated[str | None, typer.Option("--since", help="Count from this day (YYYY-MM-DD).")] = None,
    as_json: JsonOption = False,
    data_dir: DataDirOption = None,
) -> None:
    """Per school, for the citizen's own registration and for children: started, reached the
    summary, submitted, OTP confirmed, approved, rejected."""
    from bot.schools.report import school_report

    start = _date(since)
    settings = load_settings(data_dir=data_dir)
    with _database(settings) as engine:
        asyncio.run(_collect(settings, engine))
        report = school_report(engine, province=province, since=start)
    if as_json:
        _print_json(report)
        return
    _print_table(report, lambda g: " ".join(f"{k}={v}" for k, v in g.items()))


def _print_table(report: list[dict], fmt: Callable[[dict], str]) -> None:
    for item in report:
        typer.echo(f"{item['code']}  {item['name']}")
        typer.echo(f"  self:     {fmt(item['self'])}")
        typer.echo(f"  children: {fmt(item['children'])}")
