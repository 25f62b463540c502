"""Several workers on one database: each notice is sent by exactly one of them, in order per
user, and a worker killed mid-send loses nothing.

Runs on SQLite always and on PostgreSQL when VSSID_TEST_POSTGRES_URL is set.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bot.assistant import build_assistant
from bot.notifications import NotificationPump, outbounds_to_payload
from dialogs.messages import Outbound
from tests.chat_harness import isolated_settings
from tests.databases import KINDS, empty_database_url


class SlowPushChannel:
    """A pushing channel (as Telegram) whose every send takes a moment, so workers overlap."""

    name = "test"

    def __init__(self, sent: list[tuple[str, str]]) -> None:
        self.sent = sent

    async def send(self, user_id: str, replies: list[Outbound]) -> None:
        await asyncio.sleep(0.01)
        self.sent.extend((user_id, r.text) for r in replies)


@pytest.fixture(params=KINDS)
def database(request, tmp_path):
    return empty_database_url(request.param, tmp_path)


async def _workers(tmp_path, database, count: int, sent: list) -> list:
    settings = isolated_settings(tmp_path, database_url=database)
    workers = [await build_assistant(settings) for _ in range(count)]
    for worker in workers:
        worker.add_channel(SlowPushChannel(sent))
    return workers


def _queue(store, notices: int, users: int) -> None:
    for i in range(notices):
        user = f"u{i % users}"
        store.enqueue_notice(f"event:{i}", f"test:{user}", outbounds_to_payload([Outbound(f"thông báo {i}")]))


async def test_each_notice_is_sent_by_exactly_one_of_three_workers_in_order_per_user(tmp_path, database):
    sent: list[tuple[str, str]] = []
    workers = await _workers(tmp_path, database, 3, sent)
    _queue(workers[0].store, notices=60, users=4)

    pumps = [NotificationPump(worker) for worker in workers]
    while len(sent) < 60:
        before = len(sent)
        await asyncio.gather(*(pump.deliver() for pump in pumps for _ in range(2)))
        assert len(sent) > before, "the workers stopped delivering"

    assert sorted(text for _, text in sent) == sorted(f"thông báo {i}" for i in range(60))  # none twice
    for user in range(4):
        mine = [int(text.rsplit(" ", 1)[1]) for who, text in sent if who == f"u{user}"]
        assert mine == sorted(mine), "a user's notices arrive in the order they were queued"
    assert not any(worker.store.owes_notices(f"test:u{u}") for worker in workers for u in range(4))
    for worker in workers:
        await worker.close()


async def test_a_notice_held_by_a_worker_killed_mid_send_is_sent_by_another_once_its_lease_ends(
    tmp_path, database
):
    sent: list[tuple[str, str]] = []
    killed, survivor = await _workers(tmp_path, database, 2, sent)
    _queue(killed.store, notices=2, users=1)
    # The first worker takes the user's first notice and dies before sending it.
    taken = killed.store.claim_notices("killed-worker", ("test:",), timedelta(seconds=1))
    assert [n.key for n in taken] == ["event:0"]

    await NotificationPump(survivor).deliver()
    assert sent == []  # held, and the second waits behind it: nothing twice, nothing out of order
    await asyncio.sleep(1.1)
    await NotificationPump(survivor).deliver()
    assert sent == [("u0", "thông báo 0"), ("u0", "thông báo 1")]
    for worker in (killed, survivor):
        await worker.close()
