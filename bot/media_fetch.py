"""Fetching a URL a user's message carries (a Zalo image) without letting it reach inside.

A webhook event names the URL; whoever can send one could point it at 127.0.0.1, the
cloud metadata address or a private service. So a URL is fetched only when

- its scheme is http(s) and its host is one of the platform's media hosts (or a
  sub-domain of one), never an IP literal, and
- every address its host resolves to is public: the session's resolver checks the
  addresses it hands to the connector, so the address checked is the address connected
  to (no second lookup a rebinding DNS server could answer differently).

Redirects are followed by hand, each hop checked the same way.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

log = logging.getLogger(__name__)

MAX_REDIRECTS = 3


class RefusedUrl(Exception):
    """The URL is not one we fetch; the message says why (no part of the URL in it)."""


class TooLarge(Exception):
    """The body is over `max_bytes` (by its declared length or by what arrived)."""


def is_public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


class PublicOnlyResolver(AbstractResolver):
    """Resolves like aiohttp's default resolver and refuses a host with any non-public address."""

    def __init__(self) -> None:
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if not results or not all(is_public_address(r["host"]) for r in results):
            raise OSError(f"refusing a media host that resolves to a non-public address ({len(results)})")
        return results

    async def close(self) -> None:
        await self._inner.close()


class MediaFetcher:
    """Downloads user-named media from `hosts` only (see the module docstring)."""

    def __init__(
        self,
        hosts: tuple[str, ...],
        *,
        max_bytes: int,
        timeout_s: float = 20.0,
        private_addresses_ok: bool = False,  # tests only: fake platforms listen on loopback
    ) -> None:
        self.hosts = tuple(h.strip().lower().strip(".") for h in hosts if h.strip())
        self.max_bytes = max_bytes
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._private_ok = private_addresses_ok
        self._session: aiohttp.ClientSession | None = None

    def check(self, url: str) -> None:
        """Raise RefusedUrl unless `url` names an allowed media host over http(s)."""
        try:
            parts = urlsplit(url)
            host = (parts.hostname or "").lower().rstrip(".")
        except ValueError:
            raise RefusedUrl("malformed URL") from None
        if parts.scheme not in ("http", "https") or not host:
            raise RefusedUrl("not an http(s) URL with a host")
        if parts.username or parts.password:
            raise RefusedUrl("credentials in the URL")
        if not self._private_ok:
            try:
                ipaddress.ip_address(host)
            except ValueError:
                pass
            else:
                raise RefusedUrl("an IP address, not a media host name")
        if not any(host == allowed or host.endswith("." + allowed) for allowed in self.hosts):
            raise RefusedUrl("not one of the platform's media hosts")

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(resolver=None if self._private_ok else PublicOnlyResolver())
            self._session = aiohttp.ClientSession(timeout=self._timeout, connector=connector)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def fetch(self, url: str) -> bytes:
        """The body of `url`; RefusedUrl, TooLarge (over max_bytes) or aiohttp/timeout errors."""
        for _ in range(MAX_REDIRECTS + 1):
            self.check(url)
            async with self._client().get(url, allow_redirects=False) as response:
                if response.status in (301, 302, 303, 307, 308) and "Location" in response.headers:
                    url = urljoin(url, response.headers["Location"])
                    continue
                if response.status != 200:
                    raise aiohttp.ClientResponseError(
                        response.request_info, (), status=response.status, message="not 200"
                    )
                return await self._read(response)
        raise RefusedUrl("too many redirects")

    async def _read(self, response: Any) -> bytes:
        if (response.content_length or 0) > self.max_bytes:
            raise TooLarge
        data = bytearray()
        async for chunk in response.content.iter_chunked(64 * 1024):
            data += chunk
            if len(data) > self.max_bytes:
                raise TooLarge
        return bytes(data)
