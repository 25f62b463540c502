"""One figure of bench/engine.py for this tree and an older revision, interleaved (A/B).

The VM is shared and its load moves by the minute, so a figure measured an hour ago says
little; this runs the same bench function against both trees in alternation, each round in
fresh processes, and prints the medians and the ratio (this tree / the base).

    python bench/compare.py --base REV pdf|photo_2mp|photo_12mp|cold [--rounds 5]

`pdf`, `photo_*`: bench/engine.py's `pdf_ms` / `photo_ms` (each a median of its own
repeats, in ms). `cold`: CPU time (user + sys, ms) and wall time of a fresh
`vssid-bot chat --jsonl` answering `/start`, of `vssid-bot faq "…"`, and of `python -c
pass`. The base is taken from git (`git archive REV`) into a temporary folder and run with
this tree's Python environment. Ends with one JSON line.
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
}
COLD = {
    "bare": (["-c", "pass"], None),
    "chat": (["-m", "bot.cli", "chat", "--jsonl", "--data-dir", "{data}"], '{"text": "/start"}\n'),
    "faq": (["-m", "bot.cli", "faq", "Mã OTP là gì?"], None),
}


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
        env={**os.environ, "PYTHONPATH": str(tree)},
    )
    wall = (time.perf_counter() - started) * 1000
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000
    return cpu, wall, done.stdout


def in_process(trees: dict[str, Path], figure: str, rounds: int) -> dict:
    code = f"import sys; sys.argv = ['x']; sys.path.insert(0, 'bench'); import engine; {IN_PROCESS[figure]}"
    runs: dict[str, list[float]] = {name: [] for name in trees}
    for _ in range(rounds):
        for name, tree in trees.items():
            runs[name].append(float(_run(tree, ["-c", code], None)[2].split()[-1]))
    medians = {name: statistics.median(values) for name, values in runs.items()}
    return {"figure": figure, "runs": runs, "median_ms": medians, "ratio": medians["this"] / medians["base"]}


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="git revision to compare with")
    parser.add_argument("figure", choices=[*IN_PROCESS, "cold"])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vssid-base-") as base:
        git = shutil.which("git") or "git"
        archive = subprocess.run([git, "archive", args.base], cwd=ROOT, capture_output=True, check=True)
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(base, filter="data")
        trees = {"base": Path(base), "this": ROOT}
        if args.figure == "cold":
            result = cold(trees, args.rounds)
        else:
            result = in_process(trees, args.figure, args.rounds)
    print(json.dumps(result | {"base": args.base, "load": round(os.getloadavg()[0], 1)}))


if __name__ == "__main__":
    main()
