"""One lock per key (a conversation, a user's deliveries), freed when nobody holds or waits on it."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class KeyedLocks:
    """One lock per key, taken in the order asked (first come, first served), nothing kept
    for a key nobody holds.

    Taking a free key is two dict operations and no await: one user rarely sends a second
    message before the first is answered, so the common case makes no lock object and no
    future (an `asyncio.Lock` per key, made and awaited per message, cost several times
    that). Only a key asked for while held gets a queue of waiters; giving it back hands it
    to the oldest waiter at once, so nobody can slip in between.
    """

    def __init__(self) -> None:
        # key -> who waits for it, oldest first; None while held with nobody waiting.
        self._held: dict[str, deque[asyncio.Future[None]] | None] = {}

    def try_take(self, key: str) -> bool:
        """Take `key` if nobody holds it (then `release` it); False when it is held."""
        if key in self._held:
            return False
        self._held[key] = None
        return True

    async def take(self, key: str) -> None:
        """Hold `key` once everyone who asked before has released it; `release` it after."""
        if self.try_take(key):
            return
        waiting = self._held[key]
        if waiting is None:
            waiting = self._held[key] = deque()
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiting.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.cancelled():  # still waiting: leave the line
                with contextlib.suppress(ValueError):  # `release` already passed over it
                    waiting.remove(turn)
            else:  # handed over just as we were cancelled: hand it on
                self.release(key)
            raise

    def release(self, key: str) -> None:
        """Give `key` back: to the oldest waiter still waiting, or free it."""
        waiting = self._held[key]
        while waiting:
            turn = waiting.popleft()
            if not turn.done():  # a cancelled waiter is passed over
                turn.set_result(None)
                return
        del self._held[key]

    async def run(self, key: str, answer: Callable[[], Awaitable[T]]) -> T:
        """`answer()` holding `key`."""
        if not self.try_take(key):
            await self.take(key)
        try:
            return await answer()
        finally:
            self.release(key)
