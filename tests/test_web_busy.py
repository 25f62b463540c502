"""The web API's back-pressure: when the CPU work queue is full a photo is answered 503 with
Retry-After and a Vietnamese sentence, and comes back in its turn; texts never wait for it."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.channels.web import CLIENT_MAX_SIZE, DocumentLinks, WebChannel
from bot.cpu import CpuPool
from bot.runner import start_service
from dialogs.messages import Inbound, Outbound
from tests import imagegen
from tests.fake_assistant import ScriptedAssistant
from tests.test_run import settings_for

CID = "test-conversation-01-5f0c2a9e47b13d86"
OTHER = "test-conversation-02-0a1b2c3d4e5f6a7b"
PHOTO = imagegen.encode(imagegen.portrait_image(300, 400))
SENT_AT_ONCE = 4096


class HeldPhotos(ScriptedAssistant):
    """Photos are answered once `release` is set (a long check); everything else at once."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.checking = asyncio.Event()  # a photo reached the assistant

    async def _answer(self, inbound: Inbound) -> list[Outbound]:
        if inbound.photo is not None:
            self.checking.set()
            await self.release.wait()
        return await super()._answer(inbound)


@contextlib.asynccontextmanager
async def served(channel: WebChannel) -> AsyncIterator[TestClient]:
    """A test client of `channel`'s routes, with `.channel` and `.assistant` at hand."""
    app = web.Application(client_max_size=CLIENT_MAX_SIZE)
    channel.add_routes(app)
    async with TestClient(TestServer(app)) as client:
        client.channel = channel  # type: ignore[attr-defined]
        client.assistant = channel.assistant  # type: ignore[attr-defined]
        yield client


@pytest.fixture
async def chat(tmp_path: Path):
    assistant = HeldPhotos()
    assistant.release.set()
    async with served(WebChannel(assistant, DocumentLinks.from_data_dir(tmp_path))) as client:
        yield client


def photo_form(message_id: str, photo_first: bool = False) -> aiohttp.FormData:
    """The page's form (its small fields first), or an older page's (the photo first)."""
    form = aiohttp.FormData()
    if not photo_first:
        form.add_field("message_id", message_id)
    form.add_field("photo", PHOTO, filename="a.jpg", content_type="image/jpeg")
    if photo_first:
        form.add_field("message_id", message_id)
    return form


async def send_photo(
    chat: TestClient, message_id: str, cid: str = CID, photo_first: bool = False
) -> aiohttp.ClientResponse:
    return await chat.post(f"/api/chat/{cid}/messages", data=photo_form(message_id, photo_first))


async def assert_busy(response: aiohttp.ClientResponse) -> None:
    assert response.status == 503
    assert response.headers["Retry-After"] == "2"
    body = await response.json()
    assert body["error"] == "busy"
    assert "đang bận" in body["message"] and "tự gửi lại sau 2 giây" in body["message"]
    assert body["replies"][0]["text"] == body["message"]


async def test_run_wires_the_web_api_to_the_cpu_pool_being_full(tmp_path: Path):
    """`vssid-bot run` hands the web channel the pool's own `full`: with every place of the
    pool taken, a photo is refused and a text goes through."""
    assistant = ScriptedAssistant()
    pool = CpuPool.threads(workers=1, capacity=1)
    assistant.cpu = pool  # type: ignore[attr-defined]
    service = await start_service(settings_for(tmp_path), assistant=assistant)
    release = threading.Event()
    holding = asyncio.ensure_future(pool.run(release.wait, 10))  # a long photo check
    await asyncio.sleep(0)
    url = service.url + f"api/chat/{CID}/messages"
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(url, data=photo_form("p-1")) as refused:
                await assert_busy(refused)
            async with http.post(url, json={"text": "xin chào", "message_id": "t-1"}) as typed:
                assert typed.status == 200  # a typed answer does not wait behind photos
            release.set()
            await holding
            async with http.post(url, data=photo_form("p-1")) as again:
                assert again.status == 200  # the same photo, sent again, is taken
    finally:
        release.set()
        await service.stop()
        await pool.close()
    assert [m.message_id for m in assistant.received] == ["t-1", "p-1"]


async def test_photos_held_in_memory_up_to_the_limit_make_the_next_photo_wait(tmp_path: Path):
    assistant = HeldPhotos()
    channel = WebChannel(assistant, DocumentLinks.from_data_dir(tmp_path), max_photo_bytes_held=len(PHOTO))
    async with served(channel) as client:
        first = asyncio.ensure_future(send_photo(client, "p-1"))
        await asyncio.wait_for(assistant.checking.wait(), 5)  # taken, held while it is checked
        await assert_busy(await send_photo(client, "p-2", OTHER))
        assistant.release.set()
        assert (await first).status == 200
        assert (await send_photo(client, "p-2", OTHER)).status == 200
    assert [m.message_id for m in assistant.received] == ["p-1", "p-2"]


@pytest.mark.parametrize("photo_first", [False, True])
async def test_a_photo_that_waited_out_a_busy_answer_goes_in_before_newcomers(chat, photo_first):
    async def send(message_id: str, cid: str = CID) -> aiohttp.ClientResponse:
        return await send_photo(chat, message_id, cid, photo_first)

    full = True
    chat.channel.full = lambda: full
    await assert_busy(await send("p-1"))
    assert chat.assistant.received == []  # refused at the door, nothing half done
    full = False
    # The queue has room again, but p-1 was told to wait first: a newcomer queues behind it.
    await assert_busy(await send("p-2", OTHER))
    full = True  # the queue cannot take one more: even a photo that waited waits again
    await assert_busy(await send("p-1"))
    full = False
    assert (await send("p-1")).status == 200
    assert (await send("p-2", OTHER)).status == 200
    assert [m.message_id for m in chat.assistant.received] == ["p-1", "p-2"]
    assert [m.photo for m in chat.assistant.received] == [PHOTO, PHOTO]


async def held_back_upload(
    client: TestClient, message_id: str, photo: bytes = PHOTO
) -> tuple[aiohttp.ClientResponse, asyncio.Event]:
    """POST a photo form whose small field comes first and whose photo is held back after its
    first 4 KB (a real upload's next bytes follow its headers at once; aiohttp's form reader
    looks that far ahead for the next boundary) until the answer has come: an answer at all
    means the server did not read the photo."""
    boundary = "vssid-test-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="message_id"\r\n\r\n{message_id}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="photo"; filename="a.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    answered = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        yield head + photo[:SENT_AT_ONCE]
        await answered.wait()
        yield photo[SENT_AT_ONCE:] + tail

    headers = {
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Content-Length": str(len(head) + len(photo) + len(tail)),
    }
    try:
        response = await asyncio.wait_for(
            client.post(f"/api/chat/{CID}/messages", data=body(), headers=headers), 5
        )
    finally:
        answered.set()
    return response, answered


@pytest.mark.parametrize(
    ("message_id", "size", "full", "status", "error"),
    [
        ("p-1", len(PHOTO), True, 503, "busy"),
        ("p-1", 2 * 2**20, False, 413, "photo_too_large"),  # declared: more than the limit
        ("not an id!", len(PHOTO), False, 400, "bad_message_id"),
    ],
)
async def test_a_photo_is_refused_before_its_bytes_are_read(chat, message_id, size, full, status, error):
    chat.channel.full = lambda: full
    chat.channel.max_photo_bytes = 2**20
    response, _ = await held_back_upload(chat, message_id, PHOTO + b"\0" * (size - len(PHOTO)))
    assert response.status == status
    assert (await response.json())["error"] == error
    if status == 503:
        assert response.headers["Retry-After"] == "2"
    assert chat.assistant.received == []
