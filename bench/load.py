"""Full registrations over HTTP against N real `vssid-bot run` workers, one of them killed mid-run.

For each worker count: a stub backend served over HTTP (`vssid-bot backend serve`), N
`vssid-bot run` processes sharing one data dir (photos, PDFs, the link key) and one database
(SQLite for one worker; PostgreSQL for more, from VSSID_LOAD_POSTGRES_URL or
VSSID_TEST_POSTGRES_URL: that database is EMPTIED first), and `--conversations` parents at
once, each walking the whole registration through the web chat API: texts, buttons, three
photos, the OTP read from the stub's SMS outbox, and the Tờ khai PDF downloaded. Each
request goes to the next worker in turn (a load balancer without stickiness); a request
that fails (connection refused, 5xx) is sent again with the same message_id to the next
worker. A third of the way through, worker 1 is SIGKILLed and started again.

    python bench/load.py [--workers 1,2,4] [--conversations N] [--no-kill]

The last line printed is JSON: {"runs": [{"workers", "conversations", "registrations_per_s",
"p50_ms", "p99_ms", "lost", "duplicated", "steps"}], "scaling_4_over_1"}. `lost`: parents
without their PDF at the end; `duplicated`: declarations the backend received beyond one per
parent; `steps`: {"text", "photo", "pdf"} -> {"count", "p50_ms", "p99_ms"}, the reply time
as the parent sees it (retries after a 503 or a dead worker included) at text and button
steps, at photo steps, and at the OTP step that renders the Tờ khai. `--no-kill` leaves every
worker running (the one-process latency figures of issue 19: `--workers 1 --conversations
1000 --no-kill`); `--think-s S` makes each parent pause S seconds on average before each
message, as people read and type (without it every parent answers at once, and each reply
waits behind the other parents' messages: reply time ≈ parents / messages per second).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import resource
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import imagegen  # noqa: E402

RETRY_FOR_S = 120.0  # a message is given up after this long without an answer
MESSAGES_PER_REGISTRATION = 20
OTP = re.compile(r"là (\d{6})\b")


def _children() -> dict[int, list[int]]:
    """Every process's children, from /proc (Linux; empty elsewhere)."""
    tree: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            tree.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    return tree


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds `pid` has used so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_split(cluster: Cluster) -> dict[str, float]:
    """CPU seconds used so far by the workers' own processes, by their CPU pools (every
    descendant: fork server and pool workers), by the backend and by this client."""
    tree = _children()

    def descendants(pid: int) -> list[int]:
        found = list(tree.get(pid, []))
        for child in list(found):
            found += descendants(child)
        return found

    workers = [p.pid for p in cluster.processes.values()]
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "server": sum(_cpu_s(pid) for pid in workers),
        "pool": sum(_cpu_s(child) for pid in workers for child in descendants(pid)),
        "backend": sum(_cpu_s(pid) for pid in ([cluster.backend.pid] if cluster.backend else [])),
        "client": usage.ru_utime + usage.ru_stime,
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def empty_postgres(url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@dataclass
class Cluster:
    """The backend and the workers of one run, as child processes."""

    data_dir: Path
    database_url: str
    workers: int
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    backend_port: int = field(default_factory=free_port)
    ports: list[int] = field(default_factory=list)
    processes: dict[int, subprocess.Popen] = field(default_factory=dict)
    backend: subprocess.Popen | None = None

    @property
    def backend_url(self) -> str:
        return f"http://127.0.0.1:{self.backend_port}"

    def _env(self) -> dict[str, str]:
        env = {**os.environ, "VSSID_BACKEND_TOKEN": self.token, "VSSID_LOG_LEVEL": "WARNING"}
        env.update(VSSID_BACKEND_URL=self.backend_url, VSSID_DATABASE_URL=self.database_url)
        return env

    def _spawn(self, log_name: str, *args: str) -> subprocess.Popen:
        command = [sys.executable, "-m", "bot.cli", *args]
        with open(self.data_dir / f"{log_name}.log", "ab") as log:
            return subprocess.Popen(command, env=self._env(), cwd=ROOT, stdout=log, stderr=log)

    async def start(self, session: aiohttp.ClientSession) -> None:
        backend_dir = str(self.data_dir / "backend")
        self.backend = self._spawn(
            "backend", "backend", "serve", "--port", str(self.backend_port), "--data-dir", backend_dir
        )
        await wait_healthy(session, f"{self.backend_url}/health")
        self.ports = [free_port() for _ in range(self.workers)]
        for index in range(self.workers):  # one after the other: the first makes the shared keys
            await self.start_worker(session, index)

    async def start_worker(self, session: aiohttp.ClientSession, index: int) -> None:
        port = str(self.ports[index])
        self.processes[index] = self._spawn(
            f"worker-{index}", "run", "--port", port, "--data-dir", str(self.data_dir)
        )
        await wait_healthy(session, f"{self.url(index)}/healthz")

    def url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.ports[index]}"

    def kill(self, index: int) -> None:
        self.processes[index].send_signal(signal.SIGKILL)
        self.processes[index].wait()

    def stop(self) -> None:
        for process in [*self.processes.values(), self.backend]:
            if process is not None and process.poll() is None:
                process.terminate()
        for process in [*self.processes.values(), self.backend]:
            if process is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=30)
                if process.poll() is None:
                    process.kill()


async def wait_healthy(session: aiohttp.ClientSession, url: str, within_s: float = 120.0) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        with contextlib.suppress(aiohttp.ClientError, OSError):
            async with session.get(url) as response:
                if response.status == 200:
                    return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not come up within {within_s:.0f} s")


@dataclass
class Driver:
    """Sends each parent's messages to the workers in turn, retrying a failed one elsewhere."""

    cluster: Cluster
    session: aiohttp.ClientSession
    expected: int  # requests a run is expected to make
    latencies: list[float] = field(default_factory=list)
    by_step: dict[str, list[float]] = field(default_factory=dict)
    sent: int = 0
    busy: int = 0  # 503 answers with Retry-After (a busy worker) the parents waited out
    third_sent: asyncio.Event = field(default_factory=asyncio.Event)

    def _next_worker(self) -> str:
        self.sent += 1
        if self.sent >= self.expected // 3:
            self.third_sent.set()
        return self.cluster.url(self.sent % self.cluster.workers)

    async def post(
        self, conversation: str, message_id: str, body: dict[str, Any], step: str = "text"
    ) -> list[dict]:
        """Like the page: the same message_id until answered; after a 503 with Retry-After,
        wait as long as the server asks; after a dead worker, 0.2 s (a balancer's retry)."""
        started = time.monotonic()
        while time.monotonic() - started < RETRY_FOR_S:
            url = f"{self._next_worker()}/api/chat/{conversation}/messages"
            pause = 0.2
            with contextlib.suppress(aiohttp.ClientError, OSError, asyncio.TimeoutError):
                async with self.session.post(url, **_request(message_id, body)) as response:
                    if response.status == 200:
                        replies = (await response.json())["replies"]
                        self.latencies.append(time.monotonic() - started)
                        self.by_step.setdefault(step, []).append(time.monotonic() - started)
                        return replies
                    if response.status == 503 and (wait := _retry_after(response)):
                        self.busy += 1
                        pause = wait
            await asyncio.sleep(pause)
        raise RuntimeError("a message got no answer from any worker")

    async def get(self, path: str) -> bytes:
        for _ in range(int(RETRY_FOR_S / 0.2)):
            with contextlib.suppress(aiohttp.ClientError, OSError, asyncio.TimeoutError):
                async with self.session.get(self._next_worker() + path) as response:
                    if response.status == 200:
                        return await response.read()
            await asyncio.sleep(0.2)
        raise RuntimeError(f"{path} could not be fetched")

    async def backend(self, path: str) -> Any:
        headers = {"Authorization": f"Bearer {self.cluster.token}"}
        async with self.session.get(self.cluster.backend_url + path, headers=headers) as response:
            return await response.json()


def _retry_after(response: aiohttp.ClientResponse) -> float:
    """Seconds a busy server asked us to wait (0: it did not ask); at most 30, as the page."""
    try:
        return min(30.0, max(0.0, float(response.headers.get("Retry-After", "0"))))
    except ValueError:
        return 0.0


_BOUNDARY = secrets.token_hex(16)
_FORM_TYPE = {"Content-Type": f"multipart/form-data; boundary={_BOUNDARY}"}


def _form_tail(photo: bytes) -> bytes:
    """The photo part and the closing line of a form, encoded once per photo (not per
    request): the client's own CPU is part of what the machine spends."""
    head = (
        f'--{_BOUNDARY}\r\nContent-Disposition: form-data; name="photo"; filename="anh.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    )
    return head.encode() + photo + f"\r\n--{_BOUNDARY}--\r\n".encode()


def _request(message_id: str, body: dict[str, Any]) -> dict[str, Any]:
    if "photo" not in body:
        return {"json": {**body, "message_id": message_id}}
    field = f'--{_BOUNDARY}\r\nContent-Disposition: form-data; name="message_id"\r\n\r\n{message_id}\r\n'
    return {"data": field.encode() + body["photo"], "headers": _FORM_TYPE}


@dataclass
class Parent:
    """One parent registering through the web chat: the replies they see, the messages they send."""

    driver: Driver
    number: int
    think_s: float = 0.0  # mean pause before each message (reading, typing), uniform 0..2x
    conversation: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    replies: list[dict] = field(default_factory=list)
    count: int = 0

    @property
    def phone(self) -> str:
        return f"098{self.number:07d}"

    async def send(self, step: str = "", **body: Any) -> list[dict]:
        if self.think_s:
            await asyncio.sleep(random.uniform(0, 2 * self.think_s))
        self.count += 1
        step = step or ("photo" if "photo" in body else "text")
        self.replies = await self.driver.post(self.conversation, f"m{self.count}", body, step)
        return self.replies

    async def press(self, label: str) -> list[dict]:
        payload = next(b["payload"] for r in self.replies for b in r["buttons"] if b["label"] == label)
        return await self.send(button=payload)

    async def otp(self) -> str:
        for _ in range(100):
            texts = [m["text"] for m in await self.driver.backend(f"/v1/sms?phone={self.phone}")]
            codes = [m.group(1) for text in texts if "OTP" in text and (m := OTP.search(text))]
            if codes:
                return codes[-1]
            await asyncio.sleep(0.2)
        raise RuntimeError("no OTP arrived")


async def register(parent: Parent, photos: dict[str, bytes]) -> bool:
    """The whole registration; True when the parent downloaded their Tờ khai PDF."""
    await parent.send(text="/start")
    await parent.press("Đăng ký tài khoản VssID")
    for text in ("9299000107", "Bùi Thị Ngọc Trâm", "092195900007", parent.phone, "Hồ Chí Minh", "Bến Thành"):
        await parent.send(text=text)
    await parent.send(text="Số 12, đường Lê Lợi")
    for kind in ("portrait", "document", "document"):
        await parent.send(photo=photos[kind])
    await parent.press("[07901] BHXH Quận 1")
    await parent.press("Bỏ qua")
    await parent.press("Thông tin đúng, tiếp tục")
    await parent.press("Đồng ý")
    done = await parent.send(text=await parent.otp(), step="pdf")
    documents = [r["document"] for r in done if r.get("document")]
    if not documents:
        return False
    pdf = await parent.driver.get("/" + documents[0].split("//", 1)[1].split("/", 1)[1])
    return pdf.startswith(b"%PDF")


async def one_run(
    workers: int, conversations: int, postgres_url: str, kill: bool = True, think_s: float = 0.0
) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix="vssid-load-"))
    if workers > 1:
        if not postgres_url:
            raise SystemExit("several workers need PostgreSQL: set VSSID_LOAD_POSTGRES_URL")
        empty_postgres(postgres_url)
    database_url = postgres_url if workers > 1 else f"sqlite:///{data_dir / 'vssid.sqlite3'}"
    cluster = Cluster(data_dir, database_url, workers)
    photos = {
        "portrait": _form_tail(imagegen.encode(imagegen.portrait_image())),
        "document": _form_tail(imagegen.sharp_document_jpeg()),
    }
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0)) as session:
        try:
            await cluster.start(session)
            driver = Driver(cluster, session, expected=conversations * MESSAGES_PER_REGISTRATION)
            parents = [Parent(driver, n, think_s) for n in range(conversations)]
            started = time.monotonic()
            cpu_at_start = cpu_split(cluster)
            killer = asyncio.create_task(
                kill_and_restart(cluster, session, driver) if kill else asyncio.sleep(0)
            )
            done = await asyncio.gather(*(register(p, photos) for p in parents), return_exceptions=True)
            elapsed = time.monotonic() - started
            if not killer.done():  # the run ended (or failed) before a third of its messages
                killer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await killer
            declarations = await driver.backend("/v1/declarations")
            cpu = {k: round(v - cpu_at_start[k], 1) for k, v in cpu_split(cluster).items()}
        finally:
            cluster.stop()
    run = summary(workers, conversations, elapsed, driver.latencies, done, declarations, parents)
    steps = {step: _percentiles(times) for step, times in sorted(driver.by_step.items())}
    return run | {"steps": steps, "wall_s": round(elapsed, 1), "cpu_s": cpu, "busy_answers": driver.busy}


def _percentiles(times: list[float]) -> dict[str, int]:
    ordered = sorted(times) or [0.0]
    return {
        "count": len(times),
        "p50_ms": round(statistics.median(ordered) * 1000),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000),
    }


async def kill_and_restart(cluster: Cluster, session: aiohttp.ClientSession, driver: Driver) -> None:
    """SIGKILL worker 1 (or the only one) a third of the way through, then start it again."""
    await driver.third_sent.wait()
    victim = 1 % cluster.workers
    cluster.kill(victim)
    await cluster.start_worker(session, victim)


def summary(
    workers: int,
    conversations: int,
    elapsed: float,
    latencies: list[float],
    done: list,
    declarations: list,
    parents: list,
) -> dict[str, Any]:
    per_phone: dict[str, int] = {}
    for declaration in declarations:
        per_phone[declaration["phone"]] = per_phone.get(declaration["phone"], 0) + 1
    completed = sum(1 for result in done if result is True)
    ordered = sorted(latencies) or [0.0]
    return {
        "workers": workers,
        "conversations": conversations,
        "registrations_per_s": round(completed / elapsed, 3),
        "p50_ms": round(statistics.median(ordered) * 1000),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000),
        "lost": conversations - completed,
        "duplicated": sum(max(0, per_phone.get(p.phone, 0) - 1) for p in parents),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="1,2,4", help="worker counts to run, comma-separated")
    parser.add_argument("--conversations", type=int, default=40, help="parents registering at once")
    parser.add_argument("--no-kill", action="store_true", help="do not SIGKILL a worker mid-run")
    parser.add_argument(
        "--think-s",
        type=float,
        default=0.0,
        help="mean pause of a parent before each message (0: answer at once, a closed loop in "
        "which every reply waits for the N-1 others: reply time = N / throughput)",
    )
    args = parser.parse_args()
    postgres_url = os.environ.get("VSSID_LOAD_POSTGRES_URL") or os.environ.get("VSSID_TEST_POSTGRES_URL", "")
    runs = []
    for workers in [int(w) for w in args.workers.split(",") if w.strip()]:
        run = asyncio.run(
            one_run(workers, args.conversations, postgres_url, kill=not args.no_kill, think_s=args.think_s)
        )
        print(f"{workers} worker(s): {run}", file=sys.stderr)
        runs.append(run)
    rates = {run["workers"]: run["registrations_per_s"] for run in runs}
    scaling = round(rates[4] / rates[1], 2) if rates.get(1) and 4 in rates else None
    print(json.dumps({"runs": runs, "scaling_4_over_1": scaling}))


if __name__ == "__main__":
    main()
