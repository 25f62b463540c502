"""`RegistrationBackend` over HTTP: the bot's client for `vssid-bot backend serve`.

Each attempt has its own timeout; connection errors, timeouts and 5xx are retried with
exponential backoff and jitter, then `BackendUnavailable` is raised so the engine keeps
the user's input and says "try again later". 4xx are the caller's mistakes and are never
retried. Retrying a submit is safe: the idempotency key travels in the `Idempotency-Key`
header and the server answers a repeat with the first receipt. Every call carries the
service token (`Authorization: Bearer`, VSSID_BACKEND_TOKEN).
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import date
from typing import Any

import aiohttp

from bot.backend.errors import InvalidTransition, UnknownReceipt
from bot.retry import BACKEND, Failure, GaveUp, Verdict, retrying
from dialogs.ports import (
    BackendUnavailable,
    Declaration,
    DeclarationStatus,
    OtpCheck,
    OtpSent,
    StatusEvent,
    Submission,
)

log = logging.getLogger(__name__)

API = "/v1"


class BackendRequestError(Exception):
    """The backend refused the request as malformed (4xx): retrying would not help."""

    def __init__(self, status: int, body: Any) -> None:
        message = body.get("message") if isinstance(body, dict) else None
        super().__init__(f"backend answered {status}: {message or body!r}")
        self.status = status
        self.body = body


class _ServerError(Exception):
    """A 5xx answer: the service is there but cannot answer now."""


def _classify(exc: BaseException) -> Verdict:
    if isinstance(exc, _ServerError | TimeoutError | aiohttp.ClientError):
        return Failure.TRANSIENT, 0.0
    return None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, _ServerError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class HttpBackend:
    """Client of the stub's HTTP service; also offers its operator actions (approve, reject, listings)."""

    def __init__(
        self,
        base_url: str,
        timeout_s: float = 5.0,
        retries: int = BACKEND.attempts - 1,
        *,
        token: str = "",
        backoff_s: float = BACKEND.backoff_s,
        max_backoff_s: float = BACKEND.max_backoff_s,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.retries = max(retries, 0)  # attempts = 1 + retries
        self.policy = dataclasses.replace(
            BACKEND, attempts=self.retries + 1, backoff_s=backoff_s, max_backoff_s=max_backoff_s
        )
        self._auth = {"Authorization": f"Bearer {token}"} if token else {}
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> HttpBackend:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        # Created lazily: a ClientSession must be made inside the running loop.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout_s), headers=self._auth
            )
        return self._session

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """(status, JSON body) of the first non-5xx answer; raises BackendUnavailable after the retries."""
        url = self.base_url + path

        async def attempt() -> tuple[int, Any]:
            try:
                async with self._client().request(
                    method, url, json=json, params=params, headers=headers
                ) as resp:
                    if resp.status >= 500:
                        raise _ServerError(f"HTTP {resp.status}")
                    body = await resp.json(content_type=None) if resp.content_length != 0 else None
                    return resp.status, body
            except (_ServerError, TimeoutError, aiohttp.ClientError) as exc:
                log.warning("backend %s %s: %s", method, path, _describe(exc))
                raise

        try:
            return await retrying(attempt, self.policy, _classify, name=f"backend {method} {path}")
        except GaveUp as exc:
            last = _describe(exc.__cause__) if exc.__cause__ else "no attempt"
            raise BackendUnavailable(
                f"{method} {path} failed after {self.policy.attempts} attempts ({last})"
            ) from None

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        status, body = await self._request(method, path, **kwargs)
        if status >= 400:
            self._raise_operator_error(status, body, path)
            raise BackendRequestError(status, body)
        return body

    @staticmethod
    def _raise_operator_error(status: int, body: Any, path: str) -> None:
        error = body.get("error") if isinstance(body, dict) else None
        parts = path.split("/")
        receipt = parts[3] if len(parts) > 3 and parts[2] == "declarations" else ""
        if status == 404 and error == "unknown_receipt":
            raise UnknownReceipt(receipt)
        if status == 409 and error == "invalid_transition":
            raise InvalidTransition(receipt, str(body.get("status")), parts[-1])

    # ----- RegistrationBackend ------------------------------------------------------

    async def submit(self, declaration: Declaration, idempotency_key: str) -> Submission:
        body = await self._call(
            "POST",
            f"{API}/declarations",
            json=declaration.model_dump(mode="json"),
            headers={"Idempotency-Key": idempotency_key},
        )
        return Submission.model_validate(body)

    async def send_declaration_otp(self, receipt: str) -> OtpSent:
        return OtpSent.model_validate(await self._call("POST", f"{API}/declarations/{receipt}/otp"))

    async def verify_declaration_otp(self, receipt: str, code: str) -> OtpCheck:
        body = await self._call("POST", f"{API}/declarations/{receipt}/otp/verify", json={"code": code})
        return OtpCheck.model_validate(body)

    async def send_account_otp(self, social_insurance_code: str, phone: str) -> OtpSent:
        body = await self._call(
            "POST",
            f"{API}/accounts/otp",
            json={"social_insurance_code": social_insurance_code, "phone": phone},
        )
        return OtpSent.model_validate(body)

    async def verify_account_otp(self, social_insurance_code: str, code: str) -> OtpCheck:
        body = await self._call(
            "POST",
            f"{API}/accounts/otp/verify",
            json={"social_insurance_code": social_insurance_code, "code": code},
        )
        return OtpCheck.model_validate(body)

    async def status(self, receipt: str) -> DeclarationStatus | None:
        try:
            body = await self._call("GET", f"{API}/declarations/{receipt}")
        except UnknownReceipt:
            return None
        return DeclarationStatus.model_validate(body)

    async def id_verified(self, id_number: str) -> bool:
        body = await self._call("POST", f"{API}/ids/verified", json={"id_number": id_number})
        return bool(body["verified"])

    async def lookup_social_insurance_code(
        self, full_name: str, date_of_birth: date, province_code: int
    ) -> str | None:
        body = await self._call(
            "POST",
            f"{API}/social-insurance-codes/lookup",
            json={
                "full_name": full_name,
                "date_of_birth": date_of_birth.isoformat(),
                "province_code": province_code,
            },
        )
        return body["social_insurance_code"]

    async def events(self, after: int = 0, limit: int = 100) -> list[StatusEvent]:
        body = await self._call("GET", f"{API}/events", params={"after": str(after), "limit": str(limit)})
        return [StatusEvent.model_validate(item) for item in body]

    # ----- operator actions ----------------------------------------------------------

    async def approve(self, receipt: str) -> DeclarationStatus:
        return DeclarationStatus.model_validate(
            await self._call("POST", f"{API}/declarations/{receipt}/approve")
        )

    async def reject(self, receipt: str, reason: str) -> DeclarationStatus:
        body = await self._call("POST", f"{API}/declarations/{receipt}/reject", json={"reason": reason})
        return DeclarationStatus.model_validate(body)

    async def sms_outbox(self, phone: str | None = None) -> list[dict[str, str]]:
        return await self._call("GET", f"{API}/sms", params={"phone": phone} if phone else None)

    async def list_declarations(self) -> list[dict[str, Any]]:
        return await self._call("GET", f"{API}/declarations")
