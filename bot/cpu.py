"""CPU-heavy work (photo checks, PDF layout) off the event loop and out of the I/O threads.

Blocking I/O (the stub backend's files, SQLite) runs in asyncio's default thread pool. If
photo decoding and PDF layout ran there too, a cheap backend call would queue behind a
100 ms decode, and the GIL would stall the event loop while it ran. So CPU work goes to
its own bounded pool: worker processes under `vssid-bot run` (`CpuPool.processes`), or
a small thread pool of its own elsewhere (terminal chat, tests).

At most `workers` jobs run at once; `busy` says when `capacity` jobs are running or waiting,
so the web API can answer 503 at once (the page retries by itself) instead of letting
requests pile up; Telegram and Zalo updates simply wait their turn (delayed, never dropped).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)

# Jobs allowed to wait per worker: a photo or a PDF takes tens of milliseconds, so a few
# seconds of work queued at most before callers are asked to come back.
QUEUE_PER_WORKER = 8


class CpuPool:
    """A bounded executor for CPU-heavy calls; `await pool.run(fn, *args)`."""

    def __init__(self, executor: Executor, workers: int, capacity: int | None = None) -> None:
        self._executor = executor
        self.workers = workers
        self.capacity = capacity or workers * QUEUE_PER_WORKER
        self._taken = 0  # jobs running or waiting in the executor

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
    def busy(self) -> bool:
        """Every slot is taken: a new job would wait behind `capacity` others."""
        return self._taken >= self.capacity

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` in the pool (fn and args must pickle for processes). Never refuses:
        past `capacity` the job waits its turn (callers that can say "later" check `busy`)."""
        self._taken += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        finally:
            self._taken -= 1

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
