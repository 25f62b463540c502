"""One figure of bench/engine.py for this tree and an older revision, interleaved (A/B).

The VM is shared and its load moves by the minute, so a figure measured an hour ago says
little; this runs the same bench function against both trees in alternation, each round in
fresh processes, and prints the medians and the ratio (this tree / the base).

    python bench/compare.py --base REV pdf|photo_2mp|photo_12mp|messages|assistant|cold|telegram [--rounds 5]

`pdf`, `photo_*`: bench/engine.py's `pdf_ms` / `photo_ms` (each a median of its own
repeats, in ms). `messages`: the persisted assistant's messages/s as bench/engine.py
measures it (one conversation, a wrong answer at a form step, dedupe and versioned SQLite
write each). `assistant`: bench/telegram.py's script straight into `assistant.handle`, as
its "assistant alone" (100 users, a round per step). Both with the rate limit off, a median
of three runs after an untimed one; they report `median_per_s` (wall clock) and
`median_per_cpu_s` (the process's CPU time, steadier on a busy machine) instead of
`median_ms`. `cold`: CPU time (user + sys, ms) and wall time of a fresh `vssid-bot chat
--jsonl` answering `/start`, of `vssid-bot faq "…"`, and of `python -c pass`, after one
untimed run of each (bytecode written, the data dir at the newest schema, each tree's own
cache dir filled: the start of an installed bot, not of its first run). `telegram`:
bench/telegram.py's full and bare updates per second and their ratio per framework (`--users`,
one bare/full pair a round; `--clock cpu` counts the process's CPU time); the base runs this
tree's bench/telegram.py too, so both are measured the same way. The base is taken from git
(`git archive REV`) into a temporary folder and run with this tree's Python environment.
Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

IN_PROCESS = {
    "pdf": "print(engine.pdf_ms(10))",
    "photo_2mp": "print(engine.photo_ms(8)['2mp'])",
    "photo_12mp": "print(engine.photo_ms(8)['12mp'])",
    # Written out here, not taken from each tree's bench files: an older tree's
    # messages_per_second counted rate-limit refusals. Both print messages/s by the wall
    # clock and by the process's CPU time (steadier when other work shares the cores).
    "messages": """
from bench_rates import Inbound, new_assistant, rates

async def one_conversation(assistant):
    await assistant.handle(Inbound("b", "db", "s1", text="/start"))
    await assistant.handle(Inbound("b", "db", "s2", button="flow:registration"))
    await assistant.handle(Inbound("b", "db", "warm", text="12345"))
    return [[Inbound("b", "db", f"x{i}", text="12345")] for i in range(500)]

rates(one_conversation)
""",
    "assistant": """
from bench_rates import Inbound, SCRIPT, rates

async def script_rounds(assistant):
    users = range(7_000_000, 7_000_100)
    def content(kind, value):
        return {"button": "flow:registration"} if kind == "press" else {"text": value}
    return [
        [Inbound("telegram", str(u), message_id=str(step), **content(kind, value)) for u in users]
        for step, (kind, value) in enumerate(SCRIPT)
    ]

rates(script_rounds)
""",
}
# The helpers of the two figures above, written into the base tree's run too.
RATES_HELPERS = """
import asyncio, importlib.util, statistics, sys, tempfile, time
from pathlib import Path
from bot.assistant import build_assistant, freeze_long_lived_objects
from dialogs.messages import Inbound
from tests.chat_harness import isolated_settings

spec = importlib.util.spec_from_file_location("telegram_bench", "bench/telegram.py")
telegram_bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(telegram_bench)
SCRIPT = telegram_bench.SCRIPT

async def new_assistant():
    data_dir = Path(tempfile.mkdtemp(prefix="vssid-bench-"))
    return await build_assistant(isolated_settings(data_dir, rate_limit_burst=0))

async def measure(prepare):
    assistant = await new_assistant()
    rounds = await prepare(assistant)
    count = sum(len(batch) for batch in rounds)
    wall, cpu = time.perf_counter(), time.process_time()
    for batch in rounds:
        await asyncio.gather(*(assistant.handle(inbound) for inbound in batch))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    await assistant.close()
    return count / wall, count / cpu

def rates(prepare, repeats=3):
    asyncio.run(measure(prepare))  # warm-up: imports, templates, the FAQ index
    freeze_long_lived_objects()
    runs = [asyncio.run(measure(prepare)) for _ in range(repeats)]
    print(statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs))
"""
RATES = {"messages", "assistant"}  # figures in messages per second (wall, CPU), not milliseconds
COLD = {
    "bare": (["-c", "pass"], None),
    "chat": (["-m", "bot.cli", "chat", "--jsonl", "--data-dir", "{data}"], '{"text": "/start"}\n'),
    "faq": (["-m", "bot.cli", "faq", "Mã OTP là gì?"], None),
}


def _env(tree: Path) -> dict[str, str]:
    """The child's environment: `tree` first on the path, its own cache dir (two trees must
    not evict each other's FAQ index or flows), bytecode written as an install would."""
    env = {**os.environ, "PYTHONPATH": str(tree), "VSSID_CACHE_DIR": str(tree / ".bench-cache")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _run(tree: Path, args: list[str], stdin: str | None) -> tuple[float, float, str]:
    """(CPU ms, wall ms, stdout) of one child process run in `tree`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
        cwd=tree,
        env=_env(tree),
    )
    wall = (time.perf_counter() - started) * 1000
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000
    return cpu, wall, done.stdout


def in_process(trees: dict[str, Path], figure: str, rounds: int) -> dict:
    code = f"import sys; sys.argv = ['x']; sys.path.insert(0, 'bench'); import engine\n{IN_PROCESS[figure]}"
    if figure in RATES:
        return rates(trees, figure, code, rounds)
    runs: dict[str, list[float]] = {name: [] for name in trees}
    for _ in range(rounds):
        for name, tree in trees.items():
            runs[name].append(float(_run(tree, ["-c", code], None)[2].split()[-1]))
    medians = {name: statistics.median(values) for name, values in runs.items()}
    return {"figure": figure, "runs": runs, "median_ms": medians, "ratio": medians["this"] / medians["base"]}


def rates(trees: dict[str, Path], figure: str, code: str, rounds: int) -> dict:
    """messages/s by wall clock and by CPU time, each tree's helpers written beside its code."""
    wall: dict[str, list[float]] = {name: [] for name in trees}
    cpu: dict[str, list[float]] = {name: [] for name in trees}
    helpers = Path(tempfile.mkdtemp(prefix="vssid-compare-"))
    (helpers / "bench_rates.py").write_text(RATES_HELPERS)
    code = f"import sys; sys.path.insert(0, {str(helpers)!r})\n{code}"
    for _ in range(rounds):
        for name, tree in trees.items():
            by_wall, by_cpu = _run(tree, ["-c", code], None)[2].split()[-2:]
            wall[name].append(round(float(by_wall)))
            cpu[name].append(round(float(by_cpu)))
    per_s = {name: statistics.median(values) for name, values in wall.items()}
    per_cpu_s = {name: statistics.median(values) for name, values in cpu.items()}
    return {
        "figure": figure,
        "runs": wall,
        "median_per_s": per_s,
        "ratio": per_s["this"] / per_s["base"],
        "runs_cpu": cpu,
        "median_per_cpu_s": per_cpu_s,
        "ratio_cpu": per_cpu_s["this"] / per_cpu_s["base"],
    }


def cold(trees: dict[str, Path], rounds: int) -> dict:
    data = {name: tempfile.mkdtemp(prefix="vssid-compare-") for name in trees}

    def args(name: str, case: str) -> list[str]:
        return [a.format(data=data[name]) for a in COLD[case][0]]

    for name, tree in trees.items():  # untimed: bytecode, migrations, the FAQ index cache
        for case in COLD:
            _run(tree, args(name, case), COLD[case][1])
    times: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for _ in range(rounds):
        for case in COLD:
            for name, tree in trees.items():
                times.setdefault((name, case), []).append(_run(tree, args(name, case), COLD[case][1])[:2])
    result: dict = {}
    for (name, case), values in times.items():
        result.setdefault(case, {})[name] = {
            "cpu_ms": round(statistics.median(v[0] for v in values)),
            "wall_ms": round(statistics.median(v[1] for v in values)),
        }
    for by_tree in result.values():
        by_tree["ratio_cpu"] = round(by_tree["this"]["cpu_ms"] / max(1, by_tree["base"]["cpu_ms"]), 2)
    return {"figure": "cold", **result}


def telegram(trees: dict[str, Path], rounds: int, users: int, clock: str) -> dict:
    shutil.copy(ROOT / "bench" / "telegram.py", trees["base"] / "bench" / "telegram.py")
    args = ["bench/telegram.py", "--users", str(users), "--repeats", "1", "--clock", clock]
    runs: dict[str, list[dict]] = {name: [] for name in trees}
    for _ in range(rounds):
        for name, tree in trees.items():
            runs[name].append(json.loads(_run(tree, args, None)[2].strip().splitlines()[-1]))
    result: dict = {"figure": "telegram", "users": users, "clock": clock}
    for framework in ("aiogram", "ptb"):
        medians = {
            name: {
                key: round(statistics.median(run[framework][key] for run in values), 3)
                for key in ("full_per_s", "bare_per_s", "ratio")
            }
            for name, values in runs.items()
        }
        full_gain = medians["this"]["full_per_s"] / medians["base"]["full_per_s"]
        result[framework] = medians | {"full_this_over_base": round(full_gain, 2)}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="git revision to compare with")
    parser.add_argument("figure", choices=[*IN_PROCESS, "cold", "telegram"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--users", type=int, default=100, help="telegram: simulated parents")
    parser.add_argument(
        "--clock", choices=["wall", "cpu"], default="wall", help="telegram: what a rate counts"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vssid-base-") as base:
        git = shutil.which("git") or "git"
        archive = subprocess.run([git, "archive", args.base], cwd=ROOT, capture_output=True, check=True)
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(base, filter="data")
        trees = {"base": Path(base), "this": ROOT}
        if args.figure == "cold":
            result = cold(trees, args.rounds)
        elif args.figure == "telegram":
            result = telegram(trees, args.rounds, args.users, args.clock)
        else:
            result = in_process(trees, args.figure, args.rounds)
    print(json.dumps(result | {"base": args.base, "load": round(os.getloadavg()[0], 1)}))


if __name__ == "__main__":
    main()
