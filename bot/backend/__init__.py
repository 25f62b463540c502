"""The social-insurance backend as the bot meets it: a stub in-process or the same stub over HTTP.

`make_backend(settings)` picks one: `VSSID_BACKEND_URL` set -> `HttpBackend`, otherwise
`StubBackend` on the stub store in the data dir. Both implement
`dialogs.ports.RegistrationBackend` and the operator actions (approve, reject, listings).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, overload

if TYPE_CHECKING:
    from bot.backend.errors import InvalidTransition, OperatorError, UnknownReceipt
    from bot.backend.http_client import BackendRequestError, HttpBackend
    from bot.backend.stub import StubBackend
    from bot.config import Settings

# Imported on first use: the terminal chat should not pay for aiohttp when the stub runs in-process.
_LAZY = {
    "BackendRequestError": "bot.backend.http_client",
    "HttpBackend": "bot.backend.http_client",
    "InvalidTransition": "bot.backend.errors",
    "OperatorError": "bot.backend.errors",
    "StubBackend": "bot.backend.stub",
    "UnknownReceipt": "bot.backend.errors",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)


__all__ = [
    "BackendRequestError",
    "HttpBackend",
    "InvalidTransition",
    "LazyBackend",
    "OperatorError",
    "StubBackend",
    "UnknownReceipt",
    "make_backend",
]


@overload
def make_backend(settings: Settings, *, lazy: Literal[False] = False) -> StubBackend | HttpBackend: ...
@overload
def make_backend(settings: Settings, *, lazy: Literal[True]) -> LazyBackend: ...


def make_backend(settings: Settings, *, lazy: bool = False) -> StubBackend | HttpBackend | LazyBackend:
    """The backend the settings ask for (with `lazy`, made on first use: `LazyBackend`); close
    it with `await backend.close()`."""
    if lazy:
        return LazyBackend(lambda: make_backend(settings))
    if settings.backend_url:
        from bot.backend.http_client import HttpBackend

        return HttpBackend(
            settings.backend_url,
            timeout_s=settings.backend_timeout_s,
            token=settings.backend_token_value(),
        )
    from bot.backend.stub import StubBackend

    return StubBackend(settings.backend_store_url, keyring=settings.keyring())


class LazyBackend:
    """A backend made on first use: a terminal chat that answers `/start` and leaves never
    opens the stub's store (creating its tables and seeding its accounts, importing sqlmodel:
    about a fifth of its cold start). Everything else is the backend's own."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        self._made: Any = None
        self._lock = threading.Lock()

    def _backend(self) -> Any:
        if self._made is None:
            with self._lock:  # two threads asking at once make one backend
                if self._made is None:
                    self._made = self._make()
        return self._made

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend(), name)

    async def close(self) -> None:
        if self._made is not None:
            await self._made.close()
