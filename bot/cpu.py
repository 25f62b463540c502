"""CPU-heavy work (photo checks, PDF layout) off the event loop and out of the I/O threads.

Blocking I/O (the stub backend's files, SQLite) runs in asyncio's default thread pool. If
photo decoding and PDF layout ran there too, a cheap backend call would queue behind a
100 ms decode, and the GIL would stall the event loop while it ran. So CPU work goes to
its own bounded pool: worker processes under `vssid-bot run` (`CpuPool.processes`), or
a small thread pool of its own elsewhere (terminal chat, tests).

Jobs wait their turn in one first-come-first-served queue of our own; a few per worker are
handed to the executor at once so a worker never idles between jobs. The queue never
refuses: `full` (it holds `capacity` jobs) is a safety net the web API reads to answer new
photos 503 + Retry-After (the page sends them again by itself); Telegram and Zalo updates
simply wait their turn (delayed, never dropped). Below that a burst simply queues: refusing
it would not finish anything sooner, and a refused photo comes back with its bytes again
and lands behind the ones that waited. (Measured under 1,000 parents at once: refusing new
messages while the queue was behind, its head waiting 3 s or 64 jobs per worker, gave
28,000-30,000 busy answers and photo reply p99 79-82 s; queueing them, none and 22-31 s.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)

# Jobs allowed to wait per worker before `full`: a safety net (the web API bounds the
# photos it holds by their bytes); 1,000 parents at once queue a few hundred jobs.
QUEUE_PER_WORKER = 512
# Jobs handed to the executor per worker, so a worker's next ones are already there: the
# executor's own thread feeds them, while our queue moves only when the event loop gets to
# it (tens of milliseconds under load: with one job ahead, the workers sat idle; measured
# a quarter of a core used while 128 photos waited).
HANDED_PER_WORKER = 4


class CpuPool:
    """A bounded executor for CPU-heavy calls; `await pool.run(fn, *args)`."""

    def __init__(self, executor: Executor, workers: int, capacity: int | None = None) -> None:
        self._executor = executor
        self.workers = workers
        self.capacity = capacity or workers * QUEUE_PER_WORKER
        self._taken = 0  # jobs running or waiting
        self._in_executor = 0
        self.handed = workers * HANDED_PER_WORKER  # jobs in the executor at most
        self._waiting: deque[asyncio.Future[None]] = deque()  # each waiting job's wake-up

    @classmethod
    def threads(cls, workers: int = 2, capacity: int | None = None) -> CpuPool:
        return cls(ThreadPoolExecutor(workers, thread_name_prefix="cpu"), workers, capacity)

    @classmethod
    def processes(
        cls, workers: int | None = None, capacity: int | None = None, preload: tuple[str, ...] = ()
    ) -> CpuPool:
        """Worker processes, forked from a clean fork server (not from this process: it runs
        threads and an event loop, which a fork would copy in an unknown state) that has
        imported `preload` once. They start on first use."""
        count = workers or max(1, min(4, os.cpu_count() or 1))
        context: multiprocessing.context.BaseContext
        if os.name == "posix":
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(list(preload))
        else:  # pragma: no cover - Windows
            context = multiprocessing.get_context("spawn")
        return cls(ProcessPoolExecutor(count, mp_context=context), count, capacity)

    @property
    def full(self) -> bool:
        """`capacity` jobs taken: even a message already asked to wait once must wait again."""
        return self._taken >= self.capacity

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` in the pool (fn and args must pickle for processes). Never refuses:
        past `capacity` the job waits its turn (callers that can say "later" check `full`)."""
        self._taken += 1
        try:
            await self._turn()
            try:
                return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
            finally:
                self._in_executor -= 1
                self._wake_next()
        finally:
            self._taken -= 1

    async def _turn(self) -> None:
        """Wait until this job may go to the executor: first come, first served."""
        if not self._waiting and self._in_executor < self.handed:
            self._in_executor += 1
            return
        wake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(wake)
        try:
            await wake  # the slot is handed over with the wake-up (_wake_next counted it)
        except BaseException:
            if wake.done() and not wake.cancelled():
                self._in_executor -= 1  # woken and cancelled at once: pass the slot on
                self._wake_next()
            else:
                with contextlib.suppress(ValueError):  # _wake_next may have dropped it already
                    self._waiting.remove(wake)
            raise

    def _wake_next(self) -> None:
        while self._waiting and self._in_executor < self.handed:
            wake = self._waiting.popleft()
            if not wake.done():
                self._in_executor += 1
                wake.set_result(None)

    def warm_up(self, fn: Callable[[], Any]) -> None:
        """Start the workers now and let each run `fn` (imports, caches) before real work."""
        for _ in range(self.workers):
            self._executor.submit(fn)

    async def close(self) -> None:
        await asyncio.to_thread(self._executor.shutdown, True, cancel_futures=True)


_shared: CpuPool | None = None


def default_pool() -> CpuPool:
    """The process's pool when none was given: two threads of its own."""
    global _shared
    if _shared is None:
        _shared = CpuPool.threads()
    return _shared
