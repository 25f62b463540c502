"""The console's pages on the web chat's aiohttp app, under `/staff`.

    console = Console(directory, secure_cookies=settings.public_url.startswith("https"))
    console.add_nav("Phiếu hỗ trợ", "/staff/tickets")            # a menu entry
    console.add_templates(Path(...))                             # a feature's own templates

    @console.page(roles={"hotline", "admin"})                    # no session -> login / 401
    async def tickets(request, staff): ...                       # POST: CSRF checked first
        return console.render(request, "tickets.html.j2", staff, rows=...)

    console.add_routes(app)

No page answers without a session: a GET is sent to the login page (401 for `/staff/api/`),
a POST is refused with 401. Every POST must carry the session's CSRF token (form field
`csrf`, or header `X-CSRF-Token`), else 403. Pages load nothing from elsewhere and run no
script: plain HTML forms, one style sheet.
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from aiohttp import web

from bot.console.auth import SESSION_TTL, Staff, StaffDirectory
from dialogs.catalog import Catalog, catalog

HERE = Path(__file__).parent
PREFIX = "/staff"
SESSION_COOKIE = "vssid_staff"
LOGIN_CSRF_COOKIE = "vssid_staff_login"

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

Handler = Callable[[web.Request, Staff], Awaitable[web.StreamResponse]]
Panel = Callable[[Staff], Awaitable[dict[str, Any]]]


def console_texts() -> Catalog:
    return catalog(HERE / "texts.yaml")


@dataclass(frozen=True)
class NavEntry:
    label: str
    href: str
    roles: frozenset[str]


class Console:
    def __init__(self, directory: StaffDirectory, *, secure_cookies: bool = False) -> None:
        self.directory = directory
        self.secure_cookies = secure_cookies
        self.texts = console_texts()
        self.nav: list[NavEntry] = []
        # (template, async context) pairs shown on the home page, in order.
        self.panels: list[tuple[str, Panel]] = []
        self._loaders: list[jinja2.BaseLoader] = [jinja2.FileSystemLoader(HERE / "templates")]
        self._env: jinja2.Environment | None = None
        self._routes: list[tuple[str, str, Callable[[web.Request], Awaitable[web.StreamResponse]]]] = []

    # ------------------------------------------------------------ extension points

    def add_nav(self, label: str, href: str, roles: Iterable[str] = ("hotline", "admin")) -> None:
        self.nav.append(NavEntry(label, href, frozenset(roles)))

    def add_panel(self, template: str, context: Panel) -> None:
        self.panels.append((template, context))

    def add_templates(self, directory: Path) -> None:
        self._loaders.insert(0, jinja2.FileSystemLoader(directory))
        self._env = None

    def route(self, method: str, path: str, handler: Handler, roles: Iterable[str] | None = None) -> None:
        """Mount `handler` (behind `page`) at PREFIX + path when `add_routes` runs."""
        self._routes.append((method, PREFIX + path, self.page(roles)(handler)))

    # ------------------------------------------------------------ rendering

    @property
    def env(self) -> jinja2.Environment:
        if self._env is None:
            self._env = jinja2.Environment(
                loader=jinja2.ChoiceLoader(self._loaders),
                autoescape=True,
                undefined=jinja2.StrictUndefined,
                trim_blocks=True,
                lstrip_blocks=True,
            )
        return self._env

    def render(
        self, request: web.Request, template: str, staff: Staff | None, *, status: int = 200, **context: Any
    ) -> web.Response:
        nav = [n for n in self.nav if staff is not None and staff.role in n.roles]
        html = self.env.get_template(template).render(
            staff=staff, nav=nav, path=request.path, prefix=PREFIX, **context
        )
        return web.Response(text=html, status=status, content_type="text/html", headers=SECURITY_HEADERS)

    # ------------------------------------------------------------ the guard

    def page(self, roles: Iterable[str] | None = None) -> Callable[[Handler], Any]:
        allowed = frozenset(roles) if roles is not None else None

        def decorate(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
            @wraps(handler)
            async def guarded(request: web.Request) -> web.StreamResponse:
                token = request.cookies.get(SESSION_COOKIE, "")
                staff = await asyncio.to_thread(self.directory.session, token) if token else None
                if staff is None:
                    return self._unauthenticated(request)
                if request.method == "POST" and not await self._csrf_ok(request, staff):
                    return self.render(
                        request, "message.html.j2", staff, status=403, message=self.texts("csrf_failed")
                    )
                if allowed is not None and staff.role not in allowed:
                    return self.render(
                        request, "message.html.j2", staff, status=403, message=self.texts("forbidden")
                    )
                return await handler(request, staff)

            return guarded

        return decorate

    def _unauthenticated(self, request: web.Request) -> web.StreamResponse:
        if request.method != "GET" or request.path.startswith(PREFIX + "/api/"):
            return web.json_response({"error": "login_required"}, status=401, headers=SECURITY_HEADERS)
        raise web.HTTPSeeOther(f"{PREFIX}/login?next={quote(request.path_qs, safe='')}")

    @staticmethod
    async def _csrf_ok(request: web.Request, staff: Staff) -> bool:
        sent = request.headers.get("X-CSRF-Token")
        if sent is None and request.content_type in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            posted = (await request.post()).get("csrf")
            sent = posted if isinstance(posted, str) else None
        return isinstance(sent, str) and hmac.compare_digest(sent, staff.csrf)

    # ------------------------------------------------------------ routes

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get(PREFIX + "/login", self._login_form)
        app.router.add_post(PREFIX + "/login", self._login)
        app.router.add_get(PREFIX + "/static/console.css", self._css)
        app.router.add_get(PREFIX, self.page()(self._home))
        app.router.add_get(PREFIX + "/", self.page()(self._home))
        app.router.add_post(PREFIX + "/logout", self.page()(self._logout))
        app.router.add_get(PREFIX + "/audit", self.page(roles={"admin"})(self._audit))
        for method, path, handler in self._routes:
            app.router.add_route(method, path, handler)
        # Last: an unknown console path answers as a page would (login first), then 404.
        app.router.add_route("*", PREFIX + "/{tail:.*}", self.page()(self._not_found))

    async def _not_found(self, request: web.Request, staff: Staff) -> web.StreamResponse:
        raise web.HTTPNotFound()

    async def _css(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(
            HERE / "console.css", headers={**SECURITY_HEADERS, "Content-Type": "text/css; charset=utf-8"}
        )

    def _login_page(self, request: web.Request, error: str = "", status: int = 200) -> web.Response:
        token = secrets.token_urlsafe(24)
        response = self.render(
            request,
            "login.html.j2",
            None,
            status=status,
            error=error,
            csrf=token,
            next=_safe_next(request.query.get("next", "")),
        )
        response.set_cookie(LOGIN_CSRF_COOKIE, token, **self._cookie_flags(max_age=3600))
        return response

    async def _login_form(self, request: web.Request) -> web.StreamResponse:
        return self._login_page(request)

    async def _login(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        sent = str(form.get("csrf", ""))
        if not expected or not hmac.compare_digest(sent, expected):
            return self._login_page(request, self.texts("login_expired_form"), status=403)
        username = str(form.get("username", "")).strip().lower()
        result = await asyncio.to_thread(self.directory.login, username, str(form.get("password", "")))
        if result.staff is None:
            await asyncio.to_thread(self.directory.audit, username[:64], f"login_{result.refused}")
            key = {"wrong": "login_failed", "locked": "login_locked", "disabled": "login_disabled"}
            message = self.texts(key[result.refused], minutes=result.minutes_left)
            return self._login_page(request, message, status=401 if result.refused == "wrong" else 403)
        await asyncio.to_thread(self.directory.audit, result.staff.username, "login")
        response = web.HTTPSeeOther(_safe_next(str(form.get("next", ""))) or PREFIX)
        response.set_cookie(
            SESSION_COOKIE, result.token, **self._cookie_flags(max_age=int(SESSION_TTL.total_seconds()))
        )
        response.del_cookie(LOGIN_CSRF_COOKIE, path=PREFIX)
        raise response

    async def _logout(self, request: web.Request, staff: Staff) -> web.StreamResponse:
        await asyncio.to_thread(self.directory.logout, request.cookies.get(SESSION_COOKIE, ""))
        await asyncio.to_thread(self.directory.audit, staff.username, "logout")
        response = self._login_page(request, self.texts("logged_out"))
        response.del_cookie(SESSION_COOKIE, path=PREFIX)
        return response

    async def _home(self, request: web.Request, staff: Staff) -> web.StreamResponse:
        panels = [(template, await context(staff)) for template, context in self.panels]
        return self.render(request, "home.html.j2", staff, panels=panels)

    async def _audit(self, request: web.Request, staff: Staff) -> web.StreamResponse:
        entries = await asyncio.to_thread(self.directory.audit_entries, 300)
        return self.render(request, "audit.html.j2", staff, entries=list(reversed(entries)))

    def _cookie_flags(self, *, max_age: int) -> dict[str, Any]:
        return {
            "path": PREFIX,
            "httponly": True,
            "samesite": "Strict",
            "secure": self.secure_cookies,
            "max_age": max_age,
        }


def _safe_next(value: str) -> str:
    """Only a path inside the console (never another site) is followed after login."""
    if value.startswith(PREFIX) and not value.startswith("//") and "\\" not in value:
        return value
    return ""
