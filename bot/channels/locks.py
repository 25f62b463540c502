"""One lock per key (a conversation, a user's deliveries), freed when nobody holds or waits on it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")


class KeyedLocks:
    """One lock per conversation (a page's messages are answered in order), freed when idle."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextmanager
    def _ref(self, key: str) -> Iterator[asyncio.Lock]:
        lock, users = self._locks.get(key, (None, 0))
        lock = lock or asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            yield lock
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    async def run(self, key: str, answer: Callable[[], Awaitable[T]]) -> T:
        with self._ref(key) as lock:
            async with lock:
                return await answer()
