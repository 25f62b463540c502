"""Engine throughput and terminal cold start, with in-process baselines (quote medians and ratios).

    python bench/engine.py [--rounds 5]

Figures:
  registrations/s   complete scripted registrations (start -> PDF) through the assistant
                    with SQLite persistence, the stub backend, real Pillow checks and PDF rendering
  messages/s        single text messages at a form step, engine only (in memory) vs the full
                    assistant (dedupe + versioned SQLite write per message): ratio = persistence cost
  cold start        `vssid-bot chat --jsonl` answering one line, vs a bare `python -c pass`
Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
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
    """The same message at the same step: in-memory engine vs the persisted assistant."""
    assistant = await build_assistant(isolated_settings(Path(tempfile.mkdtemp(prefix="vssid-bench-"))))
    engine = assistant.engine
    state = ConversationState()
    for inbound in (Inbound("b", "mem", text="/start"), Inbound("b", "mem", button="flow:registration")):
        state, _ = await engine.handle(state, inbound)
    # A wrong answer keeps the conversation at the same step: every message does the same work.
    message = "12345"
    started = time.perf_counter()
    for _ in range(count):
        probe = state.model_copy(deep=True)
        await engine.handle(probe, Inbound("b", "mem", text=message))
    in_memory = count / (time.perf_counter() - started)

    await assistant.handle(Inbound("b", "db", "s1", text="/start"))
    await assistant.handle(Inbound("b", "db", "s2", button="flow:registration"))
    started = time.perf_counter()
    for i in range(count):
        await assistant.handle(Inbound("b", "db", f"x{i}", text=message))
    persisted = count / (time.perf_counter() - started)
    await assistant.close()
    return in_memory, persisted


def cold_start_s(rounds: int) -> tuple[float, float]:
    data_dir = tempfile.mkdtemp(prefix="vssid-bench-")
    chat_times, bare_times = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        bare_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "bot.cli", "chat", "--jsonl", "--data-dir", data_dir],
            input='{"text": "/start"}\n',
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        chat_times.append(time.perf_counter() - started)
    return statistics.median(chat_times), statistics.median(bare_times)


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

    print(f"complete registrations/s (SQLite, stub, Pillow, PDF): median {statistics.median(regs):.2f}")
    print(f"messages/s in memory (engine only):                    median {in_memory:.0f}")
    print(f"messages/s persisted (dedupe + versioned SQLite):      median {persisted:.0f}")
    print(f"  ratio persisted / in memory:                          {persisted / in_memory:.2f}")
    print(f"cold start `vssid-bot chat --jsonl` to first reply:      median {chat_s * 1000:.0f} ms")
    print(
        f"  bare `python -c pass`:                                median {bare_s * 1000:.0f} ms (ratio {chat_s / bare_s:.1f}x)"
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
                "cold_start_ms": {
                    "chat": round(chat_s * 1000),
                    "bare_python": round(bare_s * 1000),
                    "ratio": round(chat_s / bare_s, 2),
                },
            }
        )
    )


if __name__ == "__main__":
    main()
