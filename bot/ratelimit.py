"""Fair use: a token bucket per conversation.

A conversation may send `burst` messages at once and then `per_minute` a minute on
average; a message over the limit is not handled. Only the first one refused in a row is
answered (a polite "slow down" with the wait), the rest are dropped silently, so a flood
costs no replies. Buckets live in memory, the oldest forgotten beyond `max_tracked`.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    at: float
    warned: bool = False


class ConversationRateLimit:
    def __init__(
        self,
        burst: int,
        per_minute: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_tracked: int = 100_000,
    ) -> None:
        if burst < 1 or per_minute <= 0:
            raise ValueError("a rate limit needs burst >= 1 and per_minute > 0")
        self.burst = burst
        self.rate = per_minute / 60.0  # tokens per second
        self._clock = clock
        self._max_tracked = max_tracked
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, key: str) -> tuple[bool, float, bool]:
        """(allowed, seconds until the next message is allowed, first refusal in a row)."""
        now = self._clock()
        bucket = self._buckets.pop(key, None) or _Bucket(float(self.burst), now)
        self._buckets[key] = bucket
        if len(self._buckets) > self._max_tracked:
            self._buckets.popitem(last=False)
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            bucket.warned = False
            return True, 0.0, False
        first = not bucket.warned
        bucket.warned = True
        return False, (1.0 - bucket.tokens) / self.rate, first
