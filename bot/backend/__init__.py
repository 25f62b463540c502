"""The social-insurance backend as the bot meets it: a stub in-process or the same stub over HTTP.

`make_backend(settings)` picks one: `VSSID_BACKEND_URL` set -> `HttpBackend`, otherwise
`StubBackend` on the stub store in the data dir. Both implement
`dialogs.ports.RegistrationBackend` and the operator actions (approve, reject, listings).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
    "OperatorError",
    "StubBackend",
    "UnknownReceipt",
    "make_backend",
]


def make_backend(settings: Settings) -> StubBackend | HttpBackend:
    """The backend the settings ask for; close it with `await backend.close()`."""
    if settings.backend_url:
        from bot.backend.http_client import HttpBackend

        return HttpBackend(
            settings.backend_url,
            timeout_s=settings.backend_timeout_s,
            token=settings.backend_token_value(),
        )
    from bot.backend.stub import StubBackend

    return StubBackend(settings.backend_store_url, keyring=settings.keyring())
