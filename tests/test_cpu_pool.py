"""The CPU pool under a burst: first come, first served, and busy only when truly behind."""

from __future__ import annotations

import asyncio
import threading

from bot.cpu import CpuPool


async def _occupied(pool: CpuPool, release: threading.Event) -> list[asyncio.Future]:
    """Every slot the executor gets held by a job that waits for `release`."""
    holders = [asyncio.ensure_future(pool.run(release.wait, 10)) for _ in range(pool.handed)]
    await asyncio.sleep(0)
    return holders


async def test_photos_queued_behind_a_full_pool_are_checked_in_the_order_they_came():
    pool = CpuPool.threads(workers=1, capacity=100)
    release = threading.Event()
    holders = await _occupied(pool, release)
    order: list[int] = []
    queued = []
    for number in range(6):
        queued.append(asyncio.ensure_future(pool.run(order.append, number)))
        await asyncio.sleep(0)
    release.set()
    await asyncio.gather(*holders, *queued)
    assert order == [0, 1, 2, 3, 4, 5]
    await pool.close()


async def test_a_burst_below_capacity_is_queued_not_refused():
    pool = CpuPool.threads(workers=1, capacity=100, max_wait_s=60)
    release = threading.Event()
    holders = await _occupied(pool, release)
    queued = [asyncio.ensure_future(pool.run(abs, -n)) for n in range(20)]
    await asyncio.sleep(0)
    assert not pool.busy  # 20 jobs waiting, far from full: the web API keeps taking messages
    release.set()
    assert await asyncio.gather(*queued) == list(range(20))
    await asyncio.gather(*holders)
    await pool.close()


async def test_the_pool_says_busy_when_its_oldest_job_has_waited_too_long_or_it_is_full():
    pool = CpuPool.threads(workers=1, capacity=100, max_wait_s=0.0)
    release = threading.Event()
    holders = await _occupied(pool, release)
    assert not pool.busy  # running, nobody waiting
    waiting = asyncio.ensure_future(pool.run(abs, -1))
    await asyncio.sleep(0.01)
    assert pool.busy  # its head has waited past max_wait_s: new web messages get 503
    release.set()
    await asyncio.gather(waiting, *holders)
    assert not pool.busy

    small = CpuPool.threads(workers=1, capacity=2)
    release.clear()
    held = [asyncio.ensure_future(small.run(release.wait, 10)) for _ in range(2)]
    await asyncio.sleep(0)
    assert small.busy  # capacity jobs taken
    release.set()
    await asyncio.gather(*held)
    await asyncio.gather(pool.close(), small.close())


async def test_a_cancelled_waiting_job_gives_its_turn_to_the_next():
    pool = CpuPool.threads(workers=1, capacity=100)
    release = threading.Event()
    holders = await _occupied(pool, release)
    cancelled = asyncio.ensure_future(pool.run(abs, -1))
    kept = asyncio.ensure_future(pool.run(abs, -2))
    await asyncio.sleep(0)
    cancelled.cancel()
    release.set()
    assert await kept == 2
    await asyncio.gather(*holders)
    assert not pool.busy and await pool.run(abs, -3) == 3  # no slot was lost
    await pool.close()
