"""One retry helper (tenacity) for every remote call the bot makes, and the policy of each.

A caller hands `retrying` an awaitable factory and a `classify` function that tells what a
failure means:

- `Failure.RETRY_AFTER` — the server said how long to wait (Telegram's 429): wait exactly
  that, then the same call again; at most `max_flood_waits` times per call.
- `Failure.TRANSIENT` — network error, timeout, 5xx, an expired token just refreshed: back
  off (`backoff_s`, doubled each time, at most `max_backoff_s`, optionally with jitter) and
  retry, `attempts` tries in all.
- `Failure.PERMANENT` or None — retrying cannot help: the exception propagates at once.

When the tries run out, `GaveUp` is raised from the last failure (its `__cause__`), and the
caller decides what waiting means for it (Telegram and Zalo keep the message in their
outbox and try again `outbox_retry_s` after; the backend client tells the engine it is down).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import TypeVar

import tenacity

T = TypeVar("T")
log = logging.getLogger(__name__)


class Failure(Enum):
    RETRY_AFTER = "retry_after"  # the server names the wait (429): wait it out, then again
    TRANSIENT = "transient"  # network, timeout, 5xx: back off and retry
    PERMANENT = "permanent"  # 4xx: retrying cannot help


Verdict = tuple[Failure, float] | None  # (kind, seconds the server asked to wait); None: not ours
Classify = Callable[[BaseException], Verdict]


@dataclass(frozen=True)
class RetryPolicy:
    """Defaults: Telegram's (`TELEGRAM`); every field is spelled out in the policies below."""

    attempts: int = 5  # tries of one call on transient failures before giving up
    backoff_s: float = 0.5  # first pause, doubled after every failure
    max_backoff_s: float = 30.0
    jitter: bool = False  # pause x uniform(0.5, 1): clients that failed together spread out
    max_flood_waits: int = 5  # server-named waits (429) tolerated in a row on one call
    outbox_retry_s: float = 30.0  # what was given up on is tried again this long after (outboxes)

    def pause(self, failures: int) -> float:
        """Seconds to wait after the `failures`-th transient failure of one call."""
        base = min(self.max_backoff_s, self.backoff_s * 2 ** (failures - 1))
        return base * (0.5 + random.random() / 2) if self.jitter else base  # noqa: S311 - jitter, not a secret


# The policies, side by side.
# Telegram: 429 waited out as told; network errors backed off (0.5, 1, 2, 4 s), then the replies
# are parked in the outbox and tried again every 30 s.
TELEGRAM = RetryPolicy(attempts=5, backoff_s=0.5, max_backoff_s=30.0, max_flood_waits=5, outbox_retry_s=30.0)
# Backend: a person is waiting for an answer: four quick tries with jitter, then the engine
# says "try again later" and keeps the input.
BACKEND = RetryPolicy(attempts=4, backoff_s=0.2, max_backoff_s=2.0, jitter=True)
# Zalo: only an expired token is retried, once, right after its refresh; anything else goes
# to the outbox at once, which is tried again every 60 s.
ZALO = RetryPolicy(attempts=2, backoff_s=0.0, max_backoff_s=0.0, outbox_retry_s=60.0)


class GaveUp(Exception):
    """The call still failed after the policy's tries; `__cause__` is the last failure."""


async def retrying(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    classify: Classify,
    *,
    before_retry: Callable[[BaseException], Awaitable[None]] | None = None,
    name: str = "call",
) -> T:
    """`call()` under `policy`; raises GaveUp, or the first failure retrying cannot help.

    The first try runs on its own: most calls succeed, and tenacity's machinery costs more
    than a fast call (~25 µs). A first failure is handed to the loop as its first try, so
    what follows (counting, waits, giving up) is the same as if the loop had made it.
    """
    try:
        return await call()
    except Exception as exc:
        first = exc
    return await _retry_loop(_replaying(first, call), policy, classify, before_retry, name)


def _replaying(failure: BaseException, call: Callable[[], Awaitable[T]]) -> Callable[[], Awaitable[T]]:
    """`call`, except that its first try raises `failure` (a try already made)."""
    pending = [failure]

    async def again() -> T:
        if pending:
            raise pending.pop()
        return await call()

    return again


async def _retry_loop(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    classify: Classify,
    before_retry: Callable[[BaseException], Awaitable[None]] | None,
    name: str,
) -> T:
    counts = {Failure.RETRY_AFTER: 0, Failure.TRANSIENT: 0}
    last: list[tuple[Failure, float, BaseException]] = []  # the failure being dealt with

    def should_retry(state: tenacity.RetryCallState) -> bool:
        # tenacity asks this once per failed try, before `wait` and `stop`: count here.
        assert state.outcome is not None
        exc = state.outcome.exception()
        found = classify(exc) if exc is not None else None
        if exc is None or found is None or found[0] is Failure.PERMANENT:
            return False
        counts[found[0]] += 1
        last[:] = [(found[0], found[1], exc)]
        return True

    def stop(state: tenacity.RetryCallState) -> bool:
        kind = last[0][0]
        if kind is Failure.RETRY_AFTER:
            return counts[kind] > policy.max_flood_waits
        return counts[kind] >= policy.attempts

    def wait(state: tenacity.RetryCallState) -> float:
        kind, seconds, exc = last[0]
        pause = seconds if kind is Failure.RETRY_AFTER else policy.pause(counts[kind])
        log.info("%s failed (%s), retry in %.2fs", name, type(exc).__name__, pause)
        return pause

    async def before_sleep(state: tenacity.RetryCallState) -> None:
        if before_retry is not None:
            await before_retry(last[0][2])

    try:
        async for attempt in tenacity.AsyncRetrying(
            retry=should_retry, stop=stop, wait=wait, before_sleep=before_sleep
        ):
            with attempt:
                return await call()
    except tenacity.RetryError as exc:
        raise GaveUp(name) from exc.last_attempt.exception()
    raise AssertionError("unreachable")  # pragma: no cover
