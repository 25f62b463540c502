"""Engine throughput and terminal cold start, with in-process baselines (quote medians and ratios).

    python bench/engine.py [--rounds 5]

Figures:
  registrations/s   complete scripted registrations (start -> PDF) through the assistant
                    with SQLite persistence, the stub backend, real Pillow checks and PDF rendering
  messages/s        single text messages at a form step, engine only (in memory) vs the full
                    assistant (dedupe + versioned SQLite write per message, no rate limit):
                    ratio = persistence cost
  cold start        `vssid-bot chat --jsonl` answering one line and `vssid-bot faq "…"` answering
                    one question, each a fresh process, vs a bare `python -c pass`; after one
                    untimed run of each (bytecode written as an install would, the data dir at
                    the newest schema, the FAQ index and flows in the cache dir): an installed
                    bot's start, not its very first one
  PDF               one Tờ khai rendered and written (PdfDocumentRenderer.declaration_pdf)
  photo             one phone photo (JPEG, 2 MP and 12 MP) checked and stored as an ID's back
                    (FilePhotoStore.store: decode, size, sharpness, metadata dropped; the front's
                    QR read is `QR read` below)
  QR read           a card's QR in a 12 MP phone photo (JPEG bytes -> parsed card, bot/cardscan.py),
                    over synthetic CCCD/BHYT photos across the envelope of tests/test_cardscan.py,
                    vs the plain way: full-size decode and zxing-cpp on the whole picture (goal 150 ms)
Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.assistant import build_assistant  # noqa: E402
from dialogs.messages import Inbound  # noqa: E402
from dialogs.state import ConversationState  # noqa: E402
from tests.chat_harness import Chat, fill_registration_until_summary, isolated_settings, otp_from_sms  # noqa: E402


async def registrations_per_second(count: int) -> float:
    assistant = await build_assistant(
        isolated_settings(Path(tempfile.mkdtemp(prefix="vssid-bench-"))), warm_up=True
    )
    await assistant._warmup
    backend = assistant.engine.services.backend
    started = time.perf_counter()
    for i in range(count):
        chat = Chat(assistant, user=f"u{i}")
        await fill_registration_until_summary(chat)
        await chat.press("summary:ok")
        await chat.press("confirm:yes")
        await chat.text(otp_from_sms(await backend.sms_outbox(phone="0987654321"), "0987654321"))
        assert chat.document is not None
    elapsed = time.perf_counter() - started
    await assistant.close()
    return count / elapsed


async def messages_per_second(count: int) -> tuple[float, float]:
    """The same message at the same step: in-memory engine vs the persisted assistant.

    Both walk one conversation on (the engine keeps its state object, the assistant stores
    and loads it), so both do the same engine work. The rate limit is off: at its default
    it refused all but the first 60 messages, which then cost almost nothing.
    """
    settings = isolated_settings(Path(tempfile.mkdtemp(prefix="vssid-bench-")), rate_limit_burst=0)
    assistant = await build_assistant(settings)
    engine = assistant.engine
    state = ConversationState()
    for inbound in (Inbound("b", "mem", text="/start"), Inbound("b", "mem", button="flow:registration")):
        state, _ = await engine.handle(state, inbound)
    # A wrong answer keeps the conversation at the same step: every message does the same work.
    message = "12345"
    state, _ = await engine.handle(state, Inbound("b", "mem", text=message))  # loads what it needs
    started = time.perf_counter()
    for _ in range(count):
        state, _ = await engine.handle(state, Inbound("b", "mem", text=message))
    in_memory = count / (time.perf_counter() - started)

    await assistant.handle(Inbound("b", "db", "s1", text="/start"))
    await assistant.handle(Inbound("b", "db", "s2", button="flow:registration"))
    started = time.perf_counter()
    for i in range(count):
        await assistant.handle(Inbound("b", "db", f"x{i}", text=message))
    persisted = count / (time.perf_counter() - started)
    await assistant.close()
    return in_memory, persisted


def _cli_s(args: list[str], stdin: str | None = None) -> float:
    """Wall time of one fresh `python args` in this tree (bytecode written, as an install has it)."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, *args], input=stdin, capture_output=True, text=True, check=True, cwd=ROOT, env=env
    )
    return time.perf_counter() - started


def cold_start_s(rounds: int) -> tuple[float, float]:
    data_dir = tempfile.mkdtemp(prefix="vssid-bench-")
    chat = ["-m", "bot.cli", "chat", "--jsonl", "--data-dir", data_dir]
    _cli_s(chat, '{"text": "/start"}\n')  # untimed: bytecode, the new data dir's schema, caches
    chat_times, bare_times = [], []
    for _ in range(rounds):
        bare_times.append(_cli_s(["-c", "pass"]))
        chat_times.append(_cli_s(chat, '{"text": "/start"}\n'))
    return statistics.median(chat_times), statistics.median(bare_times)


def faq_cold_start_s(rounds: int) -> float:
    faq = ["-m", "bot.cli", "faq", "Mã OTP là gì?"]
    _cli_s(faq)  # untimed: bytecode, the FAQ index cache
    return statistics.median(_cli_s(faq) for _ in range(rounds))


def _timed_ms(make, rounds: int) -> float:
    """Median wall time of `await make()` over `rounds` calls, after one untimed warm-up."""

    async def run() -> float:
        await make()
        times = []
        for _ in range(rounds):
            started = time.perf_counter()
            await make()
            times.append(time.perf_counter() - started)
        return statistics.median(times) * 1000

    return asyncio.run(run())


def pdf_ms(rounds: int) -> float:
    from bot.documents import PdfDocumentRenderer
    from tests.test_documents import AGENCY, individual

    renderer = PdfDocumentRenderer(Path(tempfile.mkdtemp(prefix="vssid-bench-")) / "documents")
    declaration = individual()
    return _timed_ms(lambda: renderer.declaration_pdf("HS-BENCH-1", declaration, AGENCY), rounds)


def photo_ms(rounds: int) -> dict:
    from bot.photos import FilePhotoStore
    from tests import imagegen

    store = FilePhotoStore(Path(tempfile.mkdtemp(prefix="vssid-bench-")) / "uploads")
    figures = {}
    for name, size in (("2mp", (1600, 1200)), ("12mp", (4000, 3000))):
        data = imagegen.encode(imagegen.phone_photo(*size), quality=88)
        figures[name] = round(_timed_ms(lambda data=data: store.store("bench", "id_back", data), rounds), 1)
    return figures


def _card_photos() -> list[bytes]:
    from tests import cardgen

    who = cardgen.person("Đặng Văn Hùng")
    cards = [cardgen.card(cardgen.cccd_payload(who)), cardgen.card(cardgen.bhyt_payload(who), kind="bhyt")]
    envelope = [(0.3, -30, 1.5, True), (0.3, 20, 0.0, False), (0.45, 12, 2.0, True), (0.7, -18, 3.5, False)]
    return [
        cardgen.phone_photo(card, card_fraction=f, angle=a, blur=b, glare=g, seed=i)
        for i, (card, (f, a, b, g)) in enumerate((c, e) for c in cards for e in envelope)
    ]


def _plain_full_size_read(data: bytes) -> list[str]:
    import io

    import zxingcpp
    from PIL import Image

    gray = Image.open(io.BytesIO(data)).convert("L")
    return [b.text for b in zxingcpp.read_barcodes(gray, formats=zxingcpp.BarcodeFormat.QRCode)]


def qr_read_ms(rounds: int) -> dict:
    """Per-photo medians over rounds; `read` counts photos whose card was parsed."""
    from bot.cardscan import read_card_qr

    photos = _card_photos()
    ours: list[list[float]] = [[] for _ in photos]
    plain: list[list[float]] = [[] for _ in photos]
    read = 0
    for r in range(rounds):
        for i, photo in enumerate(photos):
            started = time.perf_counter()
            result = read_card_qr(photo)
            ours[i].append(time.perf_counter() - started)
            read += r == 0 and result.card is not None
            started = time.perf_counter()
            _plain_full_size_read(photo)
            plain[i].append(time.perf_counter() - started)
    per_photo = sorted(statistics.median(t) * 1000 for t in ours)
    plain_ms = statistics.median(statistics.median(t) * 1000 for t in plain)
    return {
        "photos": len(photos),
        "read": read,
        "median": round(statistics.median(per_photo)),
        "max": round(per_photo[-1]),
        "plain_full_size_median": round(plain_ms),
        "ratio": round(statistics.median(per_photo) / plain_ms, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--registrations", type=int, default=5)
    parser.add_argument("--messages", type=int, default=300)
    args = parser.parse_args()

    regs = [
        asyncio.run(registrations_per_second(args.registrations)) for _ in range(max(1, args.rounds // 2))
    ]
    msgs = [asyncio.run(messages_per_second(args.messages)) for _ in range(args.rounds)]
    in_memory = statistics.median(m[0] for m in msgs)
    persisted = statistics.median(m[1] for m in msgs)
    chat_s, bare_s = cold_start_s(args.rounds)
    faq_s = faq_cold_start_s(args.rounds)
    qr = qr_read_ms(args.rounds)
    pdf = pdf_ms(args.rounds * 4)
    photo = photo_ms(args.rounds * 2)

    print(f"complete registrations/s (SQLite, stub, Pillow, PDF): median {statistics.median(regs):.2f}")
    print(f"messages/s in memory (engine only):                    median {in_memory:.0f}")
    print(f"messages/s persisted (dedupe + versioned SQLite):      median {persisted:.0f}")
    print(f"  ratio persisted / in memory:                          {persisted / in_memory:.2f}")
    print(f"cold start `vssid-bot chat --jsonl` to first reply:      median {chat_s * 1000:.0f} ms")
    print(
        f"  bare `python -c pass`:                                median {bare_s * 1000:.0f} ms (ratio {chat_s / bare_s:.1f}x)"
    )
    print(
        f"cold start `vssid-bot faq` one question:                median {faq_s * 1000:.0f} ms (ratio {faq_s / bare_s:.1f}x)"
    )
    print(f"Tờ khai PDF, rendered and written:                    median {pdf:.1f} ms")
    print(f"photo check and store, 2 MP / 12 MP JPEG:             median {photo['2mp']} / {photo['12mp']} ms")
    print(
        f"QR read, 12 MP card photo ({qr['read']}/{qr['photos']} read):         median {qr['median']} ms, "
        f"slowest photo {qr['max']} ms (goal 150)"
    )
    print(
        f"  full-size decode + zxing on the whole photo:          median {qr['plain_full_size_median']} ms "
        f"(ratio {qr['ratio']})"
    )
    print(
        json.dumps(
            {
                "registrations_per_s": round(statistics.median(regs), 2),
                "messages_per_s": {
                    "in_memory": round(in_memory),
                    "persisted": round(persisted),
                    "ratio": round(persisted / in_memory, 3),
                },
                "qr_read_ms": qr,
                "pdf_ms": round(pdf, 1),
                "photo_ms": photo,
                "cold_start_ms": {
                    "chat": round(chat_s * 1000),
                    "faq": round(faq_s * 1000),
                    "bare_python": round(bare_s * 1000),
                    "ratio": round(chat_s / bare_s, 2),
                },
            }
        )
    )


if __name__ == "__main__":
    main()
