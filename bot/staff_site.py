"""The staff console as `vssid-bot run` mounts it: the shared login and audit pages plus
each feature's pages (the hotline's tickets and handoffs, the schools' figures)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.config import Settings
from bot.console.auth import StaffDirectory
from bot.console.web import Console
from bot.storage import make_engine


def mount_console(app: web.Application, settings: Settings, assistant: Any) -> Console:
    store = getattr(assistant, "store", None)
    engine = store.engine if store is not None else make_engine(settings.sqlalchemy_url, settings.keyring())
    console = Console(StaffDirectory(engine), secure_cookies=settings.public_url.startswith("https://"))
    desk = getattr(assistant, "desk", None)
    if desk is not None:
        from bot.hotline.pages import HotlinePages

        HotlinePages(console, desk, settings).mount()
    from bot.schools.pages import SchoolPages

    services = getattr(getattr(assistant, "engine", None), "services", None)
    SchoolPages(console, engine, getattr(services, "backend", None)).mount()
    console.add_routes(app)
    return console
