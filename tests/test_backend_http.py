"""The bot's HTTP client against the real stub service on loopback: retries, timeouts, outages."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp import web
from typer.testing import CliRunner

from bot.backend import (
    BackendRequestError,
    HttpBackend,
    InvalidTransition,
    StubBackend,
    UnknownReceipt,
    make_backend,
)
from bot.backend.http_server import Faults, PathOnlyAccessLogger, create_app
from bot.config import load_settings
from dialogs.ports import BackendUnavailable
from tests.test_backend_stub import CHILD, HUNG, PARENT, child, individual, last_otp

TOKEN = "test-service-token-" + "x" * 24


class Service:
    def __init__(self, url: str, stub: StubBackend, faults: Faults) -> None:
        self.url, self.stub, self.faults = url, stub, faults


async def start_service(tmp_path: Path, *, testing: bool = False):
    stub = StubBackend(f"sqlite:///{tmp_path / 'stub.sqlite3'}")
    faults = Faults()
    app = create_app(stub, faults, token=TOKEN, testing=testing, close_stub=True)
    runner = web.AppRunner(app, access_log_class=PathOnlyAccessLogger, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, Service(f"http://127.0.0.1:{port}", stub, faults)


@pytest.fixture
async def service(tmp_path: Path):
    runner, started = await start_service(tmp_path)
    yield started
    await runner.cleanup()


@pytest.fixture
async def client(service: Service):
    c = HttpBackend(service.url, timeout_s=0.5, retries=3, backoff_s=0.01, token=TOKEN)
    yield c
    await c.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_a_whole_registration_over_http(service: Service, client: HttpBackend):
    sub = await client.submit(individual(), "key-1")
    assert sub.created and sub.status == "awaiting_otp"
    assert (await client.submit(individual(), "key-1")).receipt == sub.receipt
    assert (await client.send_declaration_otp(sub.receipt)).reason == "too_soon"
    code = await last_otp(service.stub, HUNG["phone"])
    assert (
        await client.verify_declaration_otp(sub.receipt, "000000" if code != "000000" else "111111")
    ).attempts_left == 4
    assert (await client.verify_declaration_otp(sub.receipt, code)).ok
    assert (await client.status(sub.receipt)).status == "received"
    approved = await client.approve(sub.receipt)
    assert approved.status == "approved"
    events = await client.events(after=0)
    assert [(e.receipt, e.status) for e in events] == [(sub.receipt, "approved")]
    texts = [m["text"] for m in await client.sms_outbox(HUNG["phone"])]
    assert "Mật khẩu đăng nhập lần đầu" in texts[-1]
    assert [d["receipt"] for d in await client.list_declarations()] == [sub.receipt]


async def test_lookups_and_guardian_otp_over_http(service: Service, client: HttpBackend):
    assert await client.status("VSS-2026-000404") is None
    assert await client.id_verified(HUNG["id"])
    assert await client.lookup_social_insurance_code("LE MINH KHANG", CHILD["dob"], 79) == CHILD["code"]
    assert await client.lookup_social_insurance_code("Không Có Ai", CHILD["dob"], 79) is None
    assert (await client.send_account_otp(PARENT["code"], "0999999999")).reason == "phone_mismatch"
    assert (await client.send_account_otp(PARENT["code"], PARENT["phone"])).sent
    code = await last_otp(service.stub, PARENT["phone"])
    assert (await client.verify_account_otp(PARENT["code"], code)).ok


async def test_operator_errors_are_not_retried(service: Service, client: HttpBackend):
    sub = await client.submit(child(), "k")
    before = service.faults.api_requests
    with pytest.raises(InvalidTransition):
        await client.approve(sub.receipt)  # not confirmed by OTP yet
    with pytest.raises(UnknownReceipt):
        await client.reject("VSS-2026-000404", "Sai tên")
    with pytest.raises(BackendRequestError) as bad:
        await client.submit(individual(), "")  # no idempotency key: the server refuses
    assert bad.value.status == 400
    assert service.faults.api_requests - before == 3  # one request each


async def test_retries_through_injected_503s(service: Service, client: HttpBackend):
    service.faults.inject(2, "503")
    sub = await client.submit(individual(), "k")
    assert sub.created
    assert service.faults.api_requests == 3
    assert len(await service.stub.list_declarations()) == 1


async def test_too_many_503s_raise_backend_unavailable(service: Service, client: HttpBackend):
    service.faults.inject(10, "503")
    with pytest.raises(BackendUnavailable):
        await client.submit(individual(), "k")
    assert service.faults.api_requests == 4  # 1 try + 3 retries
    assert await service.stub.list_declarations() == []


async def test_a_lost_response_is_retried_without_a_second_declaration(service: Service):
    # The server does the work, then holds the answer past the client's timeout.
    service.faults.inject(1, "hang", hang_s=5)
    async with HttpBackend(service.url, timeout_s=0.3, retries=2, backoff_s=0.01, token=TOKEN) as c:
        sub = await c.submit(individual(), "k")
    assert service.faults.api_requests == 2
    declarations = await service.stub.list_declarations()
    assert [d["receipt"] for d in declarations] == [sub.receipt]
    assert len(await service.stub.sms_outbox(HUNG["phone"])) == 1  # one OTP, not two


async def test_stub_outage_reaches_the_client_as_unavailable(service: Service, client: HttpBackend):
    service.stub.set_outage(True)
    with pytest.raises(BackendUnavailable):
        await client.id_verified(HUNG["id"])
    service.stub.set_outage(False)
    assert await client.id_verified(HUNG["id"])


async def test_server_down_raises_backend_unavailable():
    async with HttpBackend(f"http://127.0.0.1:{free_port()}", timeout_s=0.3, retries=2, backoff_s=0.01) as c:
        with pytest.raises(BackendUnavailable, match="3 attempts"):
            await c.status("VSS-2026-000001")


async def test_cli_approves_through_the_http_service(service: Service, client: HttpBackend, tmp_path: Path):
    sub = await client.submit(individual(), "k")
    await client.verify_declaration_otp(sub.receipt, await last_otp(service.stub, HUNG["phone"]))
    from bot.cli import app

    env = {"VSSID_BACKEND_URL": service.url, "VSSID_BACKEND_TOKEN": TOKEN}
    args = ["backend", "approve", sub.receipt, "--json", "--data-dir", str(tmp_path / "elsewhere")]
    # The CLI runs its own event loop: keep it off this one, which serves the requests.
    result = await asyncio.to_thread(CliRunner().invoke, app, args, env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["status"] == "approved"
    listed = await asyncio.to_thread(CliRunner().invoke, app, ["declarations", "--json"], env=env)
    assert [d["status"] for d in json.loads(listed.stdout)] == ["approved"]


def test_backend_serve_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("VSSID_BACKEND_URL", raising=False)
    monkeypatch.delenv("VSSID_BACKEND_TOKEN", raising=False)
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "bot.cli",
        "backend",
        "serve",
        "--port",
        str(port),
        "--data-dir",
        str(tmp_path),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    async def use_it() -> str:
        # Without VSSID_BACKEND_TOKEN the service makes a token file in its data dir (0600),
        # which a client on the same data dir uses.
        token_file = tmp_path / "backend.token"
        for _ in range(200):
            if token_file.exists() and token_file.stat().st_size:
                break
            await asyncio.sleep(0.05)
        assert token_file.stat().st_mode & 0o777 == 0o600
        backend = make_backend(load_settings(data_dir=tmp_path, backend_url=f"http://127.0.0.1:{port}"))
        # Generous retries: they also wait out the server's start-up.
        backend.retries, backend.backoff_s, backend.max_backoff_s = 50, 0.1, 0.2
        async with backend as c:
            return (await c.submit(individual(), "k")).receipt

    try:
        receipt = asyncio.run(use_it())
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0, out
    # The access log names the path and status, never the phone or ID from the body.
    assert "POST /v1/declarations 201" in out
    assert HUNG["phone"] not in out and HUNG["id"] not in out
    # The store is the data dir's: the CLI reads the same declaration.
    from bot.cli import app

    listed = CliRunner().invoke(app, ["declarations", "--json", "--data-dir", str(tmp_path)])
    assert [d["receipt"] for d in json.loads(listed.stdout)] == [receipt]


# -- the service token ---------------------------------------------------------------------

ENDPOINTS = [
    ("POST", "/v1/declarations"),
    ("GET", "/v1/declarations"),
    ("GET", "/v1/declarations/VSS-2026-000001"),
    ("POST", "/v1/declarations/VSS-2026-000001/otp"),
    ("POST", "/v1/declarations/VSS-2026-000001/otp/verify"),
    ("POST", "/v1/declarations/VSS-2026-000001/approve"),
    ("POST", "/v1/declarations/VSS-2026-000001/reject"),
    ("POST", "/v1/accounts/otp"),
    ("POST", "/v1/accounts/otp/verify"),
    ("POST", "/v1/ids/verified"),
    ("POST", "/v1/social-insurance-codes/lookup"),
    ("GET", "/v1/events"),
    ("GET", "/v1/sms"),
]


async def test_every_endpoint_refuses_a_call_without_the_token(service: Service, client: HttpBackend):
    sub = await client.submit(individual(), "k")
    await client.verify_declaration_otp(sub.receipt, await last_otp(service.stub, HUNG["phone"]))
    import aiohttp

    async with aiohttp.ClientSession() as http:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            for method, path in ENDPOINTS:
                path = path.replace("VSS-2026-000001", sub.receipt)
                async with http.request(method, service.url + path, json={}, headers=headers) as resp:
                    assert resp.status == 401, (method, path, headers)
                    body = await resp.json()
                    assert body["error"] == "unauthorized"
                    assert HUNG["phone"] not in json.dumps(body)
        async with http.get(service.url + "/health") as resp:
            assert resp.status == 200  # a load balancer's probe needs no secret
    # Nothing was decided by the refused calls; the rightful client still gets through.
    assert (await client.status(sub.receipt)).status == "received"
    assert (await client.approve(sub.receipt)).status == "approved"


async def test_admin_endpoints_exist_only_for_testing(service: Service, tmp_path: Path):
    import aiohttp

    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession(headers=auth) as http:
        for path in ("/_admin/outage", "/_admin/faults"):
            async with http.post(service.url + path, json={"on": True}) as resp:
                assert resp.status == 404
        assert not service.stub.outage
        runner, testing = await start_service(tmp_path / "testing", testing=True)
        try:
            async with http.post(testing.url + "/_admin/outage", json={"on": True}) as resp:
                assert resp.status == 200
            assert testing.stub.outage
            async with aiohttp.ClientSession() as anonymous:
                async with anonymous.post(testing.url + "/_admin/outage", json={"on": False}) as resp:
                    assert resp.status == 401
            assert testing.stub.outage
        finally:
            await runner.cleanup()


def test_serve_refuses_to_listen_beyond_loopback_without_a_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("VSSID_BACKEND_TOKEN", raising=False)
    from bot.cli import app

    everywhere = "0.0.0.0"  # noqa: S104 - what the test checks is refused
    args = ["backend", "serve", "--host", everywhere, "--port", "0", "--data-dir", str(tmp_path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "VSSID_BACKEND_TOKEN" in result.output
    assert not (tmp_path / "backend.token").exists()
