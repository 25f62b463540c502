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


# ---------------------------------------------------------------- Zalo behind two workers


@pytest.fixture
async def zalo_api():
    from tests.fake_zalo_api import FakeZaloApi

    fake = await FakeZaloApi().start()
    yield fake
    await fake.close()


async def _zalo_worker(tmp_path, database, api):
    """One worker: a real assistant on the shared database and data dir, its Zalo webhook on loopback."""
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    from bot.channels.web import CLIENT_MAX_SIZE
    from tests.test_zalo import Harness, make_channel

    settings = isolated_settings(tmp_path, database_url=database)
    assistant = await build_assistant(settings)
    channel = make_channel(assistant, api, settings.data_dir)
    assistant.add_channel(channel)
    app = web.Application(client_max_size=CLIENT_MAX_SIZE)
    channel.add_routes(app)
    await channel.start()
    client = TestClient(TestServer(app))
    await client.start_server()
    return Harness(client, channel, api, assistant)  # type: ignore[arg-type]


@pytest.mark.postgres
async def test_a_zalo_event_redelivered_to_two_workers_is_answered_once_and_the_user_goes_on_in_order(
    tmp_path, zalo_api
):
    """PostgreSQL only: several workers share a server database (SQLite is for one process)."""
    from tests.fake_zalo_api import text_event

    database = empty_database_url("postgres", tmp_path)

    first = await _zalo_worker(tmp_path, database, zalo_api)
    second = await _zalo_worker(tmp_path, database, zalo_api)
    user = "8492990001070999001"
    start = text_event(user, "/start")
    # Zalo redelivers the event (no answer in time): both workers get it at once.
    assert await asyncio.gather(first.post(start), second.post(start)) == [200, 200]
    assert len(zalo_api.texts(user)) == 1 and "trợ lý VssID" in zalo_api.texts(user)[0]

    # The user's next messages land on alternate workers and are answered in order.
    tapped = zalo_api.last_buttons(user)[0]["payload"]
    assert await second.post(text_event(user, tapped)) == 200
    assert zalo_api.texts(user)[-1].startswith("Nhập mã số BHXH")
    assert await first.post(text_event(user, "9299000107")) == 200
    assert "họ và tên" in zalo_api.texts(user)[-1]
    state, version = first.assistant.store.load(f"zalo:{user}")
    assert state.flow == "registration" and version == 3
    for worker in (first, second):
        await worker.channel.stop()
        await worker.client.close()
        await worker.assistant.close()
