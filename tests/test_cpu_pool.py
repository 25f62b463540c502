"""The CPU pool under a burst: first come, first served, and full only at its capacity."""

from __future__ import annotations

import asyncio
import threading

from bot.cpu import HANDED_PER_WORKER, CpuPool


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
    pool = CpuPool.threads(workers=1, capacity=100)
    release = threading.Event()
    holders = await _occupied(pool, release)
    queued = [asyncio.ensure_future(pool.run(abs, -n)) for n in range(20)]
    await asyncio.sleep(0.05)
    assert not pool.full  # 20 jobs waiting, far from full: the web API keeps taking photos
    release.set()
    assert await asyncio.gather(*queued) == list(range(20))
    await asyncio.gather(*holders)
    await pool.close()


async def test_the_pool_is_full_at_capacity_and_takes_the_job_past_it_in_turn():
    pool = CpuPool.threads(workers=1, capacity=HANDED_PER_WORKER + 3)
    release = threading.Event()
    holders = await _occupied(pool, release)
    assert not pool.full  # the executor's places taken, nobody waiting
    waiting = [asyncio.ensure_future(pool.run(abs, -n)) for n in range(pool.capacity - pool.handed)]
    await asyncio.sleep(0.01)
    assert pool.full  # capacity jobs taken: new web photos get 503
    past = asyncio.ensure_future(pool.run(abs, -99))  # a Telegram update's photo: it waits
    await asyncio.sleep(0.01)
    assert not past.done()
    release.set()
    assert await past == 99
    await asyncio.gather(*waiting, *holders)
    assert not pool.full
    await pool.close()


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
    assert not pool.full and await pool.run(abs, -3) == 3  # no slot was lost
    await pool.close()
