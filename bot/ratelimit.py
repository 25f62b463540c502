"""Fair use: a token bucket per conversation.

A conversation may send `burst` messages at once and then `per_minute` a minute on
average; a message over the limit is not handled. Only the first one refused in a row is
answered (a polite "slow down" with the wait), the rest are dropped silently, so a flood
costs no replies. Buckets live in memory, the oldest forgotten beyond `max_tracked`.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class _Bucket:
    __slots__ = ("at", "tokens", "warned")

    def __init__(self, tokens: float, at: float) -> None:
        self.tokens = tokens
        self.at = at
        self.warned = False


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
        # Least recently used first: a dict keeps insertion order, and a bucket is taken out
        # and put back at every message (a plain dict does both faster than an OrderedDict).
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str) -> tuple[bool, float, bool]:
        """(allowed, seconds until the next message is allowed, first refusal in a row)."""
        now = self._clock()
        buckets = self._buckets
        bucket = buckets.pop(key, None)
        if bucket is None:
            bucket = _Bucket(float(self.burst), now)
        buckets[key] = bucket
        if len(buckets) > self._max_tracked:
            del buckets[next(iter(buckets))]
        tokens = bucket.tokens + (now - bucket.at) * self.rate
        bucket.tokens = tokens = tokens if tokens < self.burst else float(self.burst)
        bucket.at = now
        if tokens >= 1.0:
            bucket.tokens = tokens - 1.0
            bucket.warned = False
            return True, 0.0, False
        first = not bucket.warned
        bucket.warned = True
        return False, (1.0 - tokens) / self.rate, first
