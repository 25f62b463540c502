"""KeyedLocks: one holder per key, first come first served, nothing kept for idle keys,
waiters that give up (cancelled) never hold or block the line."""

from __future__ import annotations

import asyncio
import random

import pytest

from bot.channels.locks import KeyedLocks


async def test_a_free_key_is_taken_at_once_and_a_held_one_is_not():
    locks = KeyedLocks()
    assert locks.try_take("a")
    assert not locks.try_take("a")
    assert locks.try_take("b")  # other keys are independent
    locks.release("a")
    locks.release("b")
    assert locks._held == {}  # nothing kept for idle keys
    assert locks.try_take("a")


async def test_waiters_get_the_key_in_the_order_they_asked_and_nobody_slips_in():
    locks = KeyedLocks()
    order: list[int] = []
    locks.try_take("k")

    async def waiter(i: int) -> None:
        await locks.take("k")
        order.append(i)
        await asyncio.sleep(0)
        locks.release("k")

    tasks = [asyncio.create_task(waiter(i)) for i in range(5)]
    await asyncio.sleep(0)  # all five wait
    locks.release("k")
    assert not locks.try_take("k")  # handed to the first waiter, not free for a newcomer
    await asyncio.wait_for(asyncio.gather(*tasks), 2)
    assert order == [0, 1, 2, 3, 4]
    assert locks._held == {}


@pytest.mark.parametrize("handed_over", [False, True])
async def test_a_cancelled_waiter_never_keeps_the_key_from_the_next_one(handed_over: bool):
    """Cancelled while waiting it leaves the line; cancelled once the key was handed to it
    (before it ran) it hands the key on."""
    locks = KeyedLocks()
    locks.try_take("k")
    first = asyncio.create_task(locks.take("k"))
    second = asyncio.create_task(locks.take("k"))
    await asyncio.sleep(0)
    if handed_over:
        locks.release("k")
        first.cancel()
    else:
        first.cancel()
        await asyncio.sleep(0)
        locks.release("k")
    await asyncio.wait_for(second, 2)  # the key went to the one still waiting
    with pytest.raises(asyncio.CancelledError):
        await first
    locks.release("k")
    assert locks._held == {}


async def test_a_waiter_cancelled_before_release_passes_it_over_even_when_it_has_not_run_yet():
    locks = KeyedLocks()
    locks.try_take("k")
    only = asyncio.create_task(locks.take("k"))
    await asyncio.sleep(0)
    only.cancel()  # cancelled, but its CancelledError has not reached it yet
    locks.release("k")
    assert locks._held == {}  # freed, not handed to the cancelled waiter
    with pytest.raises(asyncio.CancelledError):
        await only
    assert locks._held == {}


@pytest.mark.parametrize("seed", range(20))
async def test_random_tasks_hold_each_key_alone_in_arrival_order(seed: int):
    rng = random.Random(seed)
    locks = KeyedLocks()
    holders: dict[str, int] = {}
    entered: dict[str, list[int]] = {"a": [], "b": [], "c": []}
    asked: dict[str, list[int]] = {"a": [], "b": [], "c": []}

    async def job(i: int, key: str, pauses: int) -> None:
        asked[key].append(i)
        if not locks.try_take(key):
            await locks.take(key)
        try:
            assert key not in holders
            holders[key] = i
            entered[key].append(i)
            for _ in range(pauses):
                await asyncio.sleep(0)
        finally:
            del holders[key]
            locks.release(key)

    tasks = []
    for i in range(60):
        key = rng.choice("abc")
        tasks.append(asyncio.create_task(job(i, key, rng.randrange(3))))
        if rng.random() < 0.3:
            await asyncio.sleep(0)
    cancelled = set()
    for task in rng.sample(tasks, 10):
        task.cancel()
        cancelled.add(tasks.index(task))
    await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 5)
    for key in "abc":  # whoever got in, got in in the order they asked
        got = entered[key]
        assert got == [i for i in asked[key] if i in got]
        assert set(asked[key]) - set(got) <= cancelled
    assert locks._held == {} and holders == {}


async def test_run_holds_the_key_while_the_answer_runs():
    locks = KeyedLocks()
    seen: list[str] = []

    async def answer(name: str) -> str:
        seen.append(f"{name} in")
        await asyncio.sleep(0)
        seen.append(f"{name} out")
        return name

    results = await asyncio.gather(locks.run("k", lambda: answer("x")), locks.run("k", lambda: answer("y")))
    assert results == ["x", "y"]
    assert seen == ["x in", "x out", "y in", "y out"]
    assert locks._held == {}
