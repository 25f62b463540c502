"""The social-insurance backend as the bot meets it: a stub in-process or the same stub over HTTP.

`make_backend(settings)` picks one: `VSSID_BACKEND_URL` set -> `HttpBackend`, otherwise
`StubBackend` on the stub store in the data dir. Both implement
`dialogs.ports.RegistrationBackend` and the operator actions (approve, reject, listings).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.backend.http_client import BackendRequestError, HttpBackend
from bot.backend.stub import InvalidTransition, OperatorError, StubBackend, UnknownReceipt

if TYPE_CHECKING:
    from bot.config import Settings

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
        return HttpBackend(settings.backend_url, timeout_s=settings.backend_timeout_s)
    return StubBackend(settings.backend_store_url)
