"""Why an operator action (approve/reject) cannot be done, shared by the stub and its HTTP client.

Kept apart from the stub so the HTTP client can raise the same errors without loading the
stub's store and seed data.
"""

from __future__ import annotations


class OperatorError(Exception):
    """An operator action (approve/reject) that cannot be done; the message says why."""


class UnknownReceipt(OperatorError, LookupError):
    def __init__(self, receipt: str) -> None:
        super().__init__(f"No declaration with receipt {receipt!r}.")
        self.receipt = receipt


class InvalidTransition(OperatorError, ValueError):
    def __init__(self, receipt: str, status: str, action: str) -> None:
        hint = {
            "awaiting_otp": "it has not been confirmed by OTP yet",
            "approved": "it was already approved",
            "rejected": "it was already rejected",
        }.get(status, f"its status is {status}")
        super().__init__(f"Cannot {action} {receipt}: {hint}; only a 'received' declaration can be decided.")
        self.receipt = receipt
        self.status = status
