"""Every scripted parent journey (tests/journeys/*.yaml), played through the engine and
through the web chat's HTTP API of a real server whose backend is the stub over HTTP.

One server and one stub per module: many conversations, each a fresh parent.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from bot.assistant import build_assistant
from bot.backend.http_server import PathOnlyAccessLogger, create_app
from bot.backend.stub import StubBackend
from bot.runner import start_service
from tests.chat_harness import isolated_settings
from tests.journey_runner import EngineDriver, Player, ShiftedClock, WebDriver, World, load_journeys

JOURNEYS = load_journeys()
TOKEN = "journeys-backend-token"
# The kinds of step questions were asked at, as the engine journeys found them.
ASKED_AT: dict[str, set[str]] = {}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def engine_world(tmp_path_factory):
    settings = isolated_settings(tmp_path_factory.mktemp("journeys-engine"))
    settings.data_dir.mkdir(parents=True)
    clock = ShiftedClock()
    stub = StubBackend(f"sqlite:///{settings.data_dir / 'stub.sqlite3'}", clock=clock)
    assistant = await build_assistant(settings, backend=stub)
    yield assistant.engine, World(stub, clock)
    await assistant.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def web_world(tmp_path_factory):
    root: Path = tmp_path_factory.mktemp("journeys-web")
    clock = ShiftedClock()
    stub = StubBackend(f"sqlite:///{root / 'stub.sqlite3'}", clock=clock)
    backend = web.AppRunner(
        create_app(stub, token=TOKEN, close_stub=True), access_log_class=PathOnlyAccessLogger
    )
    await backend.setup()
    await web.TCPSite(backend, "127.0.0.1", 0).start()
    settings = isolated_settings(
        root,
        backend_url=f"http://127.0.0.1:{backend.addresses[0][1]}",
        backend_token=TOKEN,
        web_host="127.0.0.1",
        web_port=0,
    )
    service = await start_service(settings, assistant=await build_assistant(settings))
    async with aiohttp.ClientSession() as session:
        yield session, service.url, World(stub, clock)
    await service.stop()
    await backend.cleanup()


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("journey", JOURNEYS, ids=str)
async def test_the_journey_through_the_engine(journey, engine_world):
    engine, world = engine_world
    player = Player(journey, EngineDriver(engine, user=f"{journey.name}-{id(world)}"), world)
    await player.play()
    ASKED_AT[journey.name] = player.asked_at


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("journey", JOURNEYS, ids=str)
async def test_the_journey_over_the_web_chat_api(journey, web_world):
    session, url, world = web_world
    await Player(journey, WebDriver(session, url), world).play()


def test_the_journeys_take_every_detour_issue_17_asks_for():
    assert len(JOURNEYS) >= 30
    declared = [d for j in JOURNEYS for d in j.declarations]
    names = {word for d in declared for word in d["full_name"].split()}
    assert {"Hà", "Sao", "Nào", "Gì", "Hả"} <= names
    provinces = {d["address"]["province"] for d in declared}
    assert {"Thành phố Hà Nội", "Thành phố Huế", "Thành phố Hồ Chí Minh"} <= provinces
    assert any(d["address"]["ward"] == "Phường Tân Hưng" and d["agency_code"] == "07919" for d in declared)

    def lines(journey):
        return [(k, v) for action in journey.script for k, v in action.items()]

    def some(predicate) -> bool:
        return any(predicate(lines(j), j) for j in JOURNEYS)

    assert some(lambda ls, j: ("reload", True) in ls)
    assert some(lambda ls, j: ("tap", "Dừng và xóa") in ls and not j.declarations)
    assert some(lambda ls, j: ("type", "quay lại") in ls)
    for kind in ("individual", "child"):
        assert some(
            lambda ls, j: ("tap", "Sửa một mục") in ls and any(d["kind"] == kind for d in j.declarations)  # noqa: B023
        )
    assert some(
        lambda ls, j: ("otp", "wrong") in ls and ("wait", 61) in ls and ("tap", "Gửi lại mã OTP") in ls
    )
    assert some(lambda ls, j: any(k == "photo" and isinstance(v, dict) for k, v in ls))


def test_a_question_was_asked_at_every_kind_of_step():
    if len(ASKED_AT) < len(JOURNEYS):
        pytest.skip("runs after every journey through the engine")
    kinds = set().union(*ASKED_AT.values())
    assert {"text", "choice", "photo", "summary", "confirm", "otp"} <= kinds, kinds
