"""A staff member at the console over real HTTP: login, CSRF tokens read from the pages."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

import aiohttp

CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(page: str) -> str:
    found = CSRF_FIELD.search(page)
    assert found, "the page carries no CSRF token"
    return html.unescape(found.group(1))


@dataclass
class StaffClient:
    """One browser-like session (its own cookie jar) against the console at `base`."""

    base: str
    http: aiohttp.ClientSession
    set_cookies: list[str] = field(default_factory=list)  # of the last login answer

    @classmethod
    def open(cls, base: str) -> StaffClient:
        jar = aiohttp.CookieJar(unsafe=True)  # cookies for 127.0.0.1
        return cls(base.rstrip("/"), aiohttp.ClientSession(cookie_jar=jar))

    async def close(self) -> None:
        await self.http.close()

    def url(self, path: str) -> str:
        return self.base + path

    async def get(self, path: str, **kwargs) -> tuple[int, str]:
        async with self.http.get(self.url(path), **kwargs) as response:
            return response.status, await response.text()

    async def login(self, username: str, password: str) -> tuple[int, str]:
        _, form = await self.get("/staff/login")
        data = {"csrf": csrf_of(form), "username": username, "password": password, "next": ""}
        async with self.http.post(self.url("/staff/login"), data=data, allow_redirects=False) as response:
            self.set_cookies = response.headers.getall("Set-Cookie", [])
            if response.status != 303:
                return response.status, await response.text()
            location = response.headers["Location"]
        return await self.get(location)

    async def post_form(self, path: str, data: dict, *, from_page: str | None = None) -> tuple[int, str]:
        """POST a console form with the CSRF token of `from_page` (default: the home page)."""
        _, page = await self.get(from_page or "/staff")
        async with self.http.post(self.url(path), data={"csrf": csrf_of(page), **data}) as response:
            return response.status, await response.text()

    def session_cookie_header(self) -> str:
        return next(c for c in self.set_cookies if c.startswith("vssid_staff="))
