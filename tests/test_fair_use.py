"""Closed surfaces: header and body timeouts, quiet 400s, the per-conversation rate limit,
media fetches kept to the platform's hosts, quiet third-party logs."""

from __future__ import annotations

import asyncio
import logging
from datetime import date
from pathlib import Path

import pytest
from aiohttp import web

from bot.assistant import build_assistant
from bot.channels.texts import channel_text
from bot.channels.zalo import ZALO_MEDIA_HOSTS
from bot.http_guard import GuardedAppRunner, body_deadline
from bot.logs import setup_logging
from bot.media_fetch import MediaFetcher, RefusedUrl
from bot.ratelimit import ConversationRateLimit
from tests.chat_harness import Chat, isolated_settings

PHONE = "0901000101"


async def echo(request: web.Request) -> web.Response:
    return web.Response(text=(await request.read()).decode() or "ok")


@pytest.fixture
async def guarded():
    app = web.Application(middlewares=[body_deadline(0.4)])
    app.router.add_route("*", "/{tail:.*}", echo)
    runner = GuardedAppRunner(app, header_timeout_s=0.4)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield runner.addresses[0][1]
    await runner.cleanup()


async def exchange(port: int, data: bytes, wait_s: float = 3.0) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(65536), wait_s)
    finally:
        writer.close()


async def test_a_connection_that_never_finishes_its_headers_is_dropped(guarded: int):
    loop = asyncio.get_running_loop()
    started = loop.time()
    answer = await exchange(guarded, b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    assert answer == b""  # closed without an answer
    assert loop.time() - started < 2.5
    # A complete request on a fresh connection is answered as usual.
    assert b"200 OK" in await exchange(guarded, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")


async def test_many_half_sent_requests_do_not_hold_the_server(guarded: int):
    answers = await asyncio.gather(*(exchange(guarded, b"POST / HTTP/1.1\r\nHost: x\r\n") for _ in range(50)))
    assert answers == [b""] * 50  # each one closed by the server


async def test_a_body_that_does_not_arrive_in_time_gets_408(guarded: int):
    head = b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    answer = await exchange(guarded, head + b'{"text": "')
    assert answer.startswith(b"HTTP/1.1 408")


async def test_a_very_long_url_gets_a_bare_400_without_echo_or_traceback(guarded: int, caplog):
    caplog.set_level(logging.DEBUG)
    url = b"/api/chat/" + PHONE.encode() * 1000
    answer = await exchange(guarded, b"GET " + url + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400") or answer.startswith(b"HTTP/1.0 400")
    assert PHONE.encode() not in answer
    assert PHONE not in caplog.text and "Traceback" not in caplog.text
    assert not any(r.exc_info for r in caplog.records)


# -- the per-conversation rate limit --------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_flood_to_one_conversation_gets_one_polite_answer_then_silence(tmp_path: Path):
    assistant = await build_assistant(isolated_settings(tmp_path))
    clock = Clock()
    assistant.limiter = ConversationRateLimit(5, 30, clock=clock)
    try:
        chat = Chat(assistant, user="flood")
        await chat.text("/start")
        await chat.text("đăng ký")
        for _ in range(3):
            await chat.text("nhầm")  # three more within the burst of five: answered
        mistake = chat.said
        assert chat.replies and "đợi" not in mistake
        refused = await chat.text("0123456789")
        assert len(refused) == 1
        assert refused[0].text == channel_text("rate_limited", seconds=2)
        for _ in range(200):
            assert await chat.text("0123456789") == []  # no reply per message of the flood
        other = Chat(assistant, user="someone-else")
        assert await other.text("/start")  # other conversations are not slowed down
        clock.now += 2.0
        # After the wait the conversation is where it was: none of the refused codes was taken.
        await chat.text("nhầm")
        assert chat.said == mistake
    finally:
        await assistant.close()


def test_the_bucket_refills_at_the_configured_rate():
    clock = Clock()
    limit = ConversationRateLimit(2, 60, clock=clock)
    assert limit.take("a")[0] and limit.take("a")[0]
    allowed, wait, first = limit.take("a")
    assert (allowed, round(wait, 3), first) == (False, 1.0, True)
    assert limit.take("a")[2] is False  # not the first refusal any more
    clock.now += 1.0
    assert limit.take("a")[0]


# -- media fetches ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x.jpg",
        "http://10.0.0.5/x.jpg",
        "http://[::1]/x.jpg",
        "http://169.254.169.254/latest/meta-data/",
        "file:///etc/passwd",
        "https://evil.example/x.jpg",
        "https://zdn.vn.evil.example/x.jpg",
        "https://user:pw@f1.zdn.vn/x.jpg",
    ],
)
def test_urls_outside_the_media_hosts_are_refused(url: str):
    with pytest.raises(RefusedUrl):
        MediaFetcher(ZALO_MEDIA_HOSTS, max_bytes=1000).check(url)


def test_the_platform_media_hosts_are_allowed():
    fetcher = MediaFetcher(ZALO_MEDIA_HOSTS, max_bytes=1000)
    fetcher.check("https://f21-zpc.zdn.vn/123/photo.jpg")
    fetcher.check("https://s120-ava-talk.zadn.vn/a.jpg")


@pytest.fixture
async def counting_server():
    hits: list[str] = []

    async def image(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(body=b"\xff\xd8 not really a jpeg", content_type="image/jpeg")

    app = web.Application()
    app.router.add_get("/{name}", image)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield runner.addresses[0][1], hits
    await runner.cleanup()


async def test_an_allowed_host_that_resolves_to_loopback_is_never_connected_to(counting_server):
    port, hits = counting_server
    fetcher = MediaFetcher(("localhost",), max_bytes=10_000)
    try:
        with pytest.raises(OSError):
            await fetcher.fetch(f"http://localhost:{port}/photo.jpg")
    finally:
        await fetcher.close()
    assert hits == []


# -- quiet logs ------------------------------------------------------------------------------


async def test_a_pdf_leaves_no_third_party_lines_even_at_debug(tmp_path: Path, caplog):
    from bot.documents import PdfDocumentRenderer
    from tests.test_backend_stub import individual

    setup_logging("DEBUG")
    caplog.set_level(logging.DEBUG)
    renderer = PdfDocumentRenderer(tmp_path, today=lambda: date(2026, 3, 1))
    await renderer.declaration_pdf("VSS-2026-000001", individual(), {"code": "79001", "name": "BHXH"})
    names = {record.name.split(".")[0] for record in caplog.records}
    assert names <= {"bot"}, names


class _ReferenceLimit:
    """The token bucket as first written (an OrderedDict of dataclass buckets): the model."""

    def __init__(self, burst: int, per_minute: float, clock, max_tracked: int) -> None:
        from collections import OrderedDict

        self.burst, self.rate, self.clock, self.max_tracked = burst, per_minute / 60.0, clock, max_tracked
        self.buckets: OrderedDict[str, list] = OrderedDict()

    def take(self, key: str) -> tuple[bool, float, bool]:
        now = self.clock()
        bucket = self.buckets.pop(key, None) or [float(self.burst), now, False]
        self.buckets[key] = bucket
        if len(self.buckets) > self.max_tracked:
            self.buckets.popitem(last=False)
        bucket[0] = min(float(self.burst), bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        if bucket[0] >= 1.0:
            bucket[0] -= 1.0
            bucket[2] = False
            return True, 0.0, False
        first = not bucket[2]
        bucket[2] = True
        return False, (1.0 - bucket[0]) / self.rate, first


@pytest.mark.parametrize("seed", range(10))
def test_the_limit_answers_like_the_reference_bucket_and_forgets_the_least_recent(seed: int):
    import random

    rng = random.Random(seed)
    clock = Clock()
    burst, per_minute = rng.randint(1, 5), rng.choice([6, 30, 60, 120])
    limit = ConversationRateLimit(burst, per_minute, clock=clock, max_tracked=4)
    model = _ReferenceLimit(burst, per_minute, clock, 4)
    for _ in range(2000):
        clock.now += rng.choice([0.0, 0.0, 0.1, 0.5, 1.0, 3.0])
        key = rng.choice("abcdefg")
        assert limit.take(key) == model.take(key)
        assert list(limit._buckets) == list(model.buckets)
