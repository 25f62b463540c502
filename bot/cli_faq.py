"""`vssid-bot faq`: ask the knowledge base from a terminal or another program.

- `vssid-bot faq "câu hỏi"`         the answer for a person (or suggestions, or a refusal)
- `vssid-bot faq --json "câu hỏi"`  one JSON object (shape fixed by issue 3)
- `vssid-bot faq --json`            questions on stdin, one JSON object per line, in order
- `vssid-bot faq --eval`            top-1 accuracy, refusal rate and confusions on the eval set
- `vssid-bot faq --fit-ranker`      refit the re-ranker and the scope model on the tuning sets
                                    (knowledge/faq_ranker.json; needs the train extra)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bot.cli_texts import cli_text
from bot.faq_text import render
from knowledge.faq import FaqIndex, load_eval
from knowledge.faq.models import RANKER_PATH

if TYPE_CHECKING:
    from knowledge.faq.training import EvalReport

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
DEFAULT_EVAL = DATA / "faq_eval.tsv"
# The sets the learned models (and the thresholds) are tuned on; faq_fresh.tsv,
# faq_blind.tsv and faq_sealed.tsv stay out of it so their figures remain an honest estimate.
TUNING_SETS = (DATA / "faq_eval.tsv", DATA / "faq_heldout.tsv", DATA / "faq_tune2.tsv")


def _dump(obj: object) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()  # a program reading line by line must not wait for a buffer


def faq(
    question: Annotated[str | None, typer.Argument(help=cli_text("faq.question_help"))] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON; without a question, read stdin line by line.")
    ] = False,
    run_eval: Annotated[
        bool, typer.Option("--eval", help="Measure the matcher on the evaluation set.")
    ] = False,
    eval_file: Annotated[
        list[Path] | None,
        typer.Option(
            help="Evaluation TSV (expected id <TAB> question; 'a|b' when either answers it). "
            "Repeat it for figures per file and pooled."
        ),
    ] = None,
    refit_ranker: Annotated[
        bool,
        typer.Option(
            "--fit-ranker", help="Refit the re-ranker and scope model on the tuning sets; save them."
        ),
    ] = False,
    ranker_file: Annotated[Path, typer.Option(help="Where --fit-ranker writes the weights.")] = RANKER_PATH,
) -> None:
    """Answer a citizen's question from the circulars (VssID FAQ)."""
    if refit_ranker:
        _fit_ranker(ranker_file)
        return
    from bot.faq_cache import faq_index

    index = faq_index()  # built once, then read from the disk cache (bot/faq_cache.py)
    if run_eval:
        paths = eval_file or [DEFAULT_EVAL]
        if len(paths) == 1:
            _print_eval(index, paths[0], as_json)
        else:
            _print_evals(index, paths, as_json)
    elif question is not None:
        _answer(index, question, as_json)
    else:
        _answer_stdin(index, as_json)


def _answer(index: FaqIndex, question: str, as_json: bool) -> None:
    result = index.ask(question)
    if as_json:
        _dump(result.to_json())
    else:
        typer.echo(render(result))


def _answer_stdin(index: FaqIndex, as_json: bool) -> None:
    """One JSON object per question line; without --json there is nothing to read stdin for."""
    if not as_json:
        typer.echo(cli_text("faq.missing_question"), err=True)
        raise typer.Exit(2)
    for line in sys.stdin:
        line = line.rstrip("\r\n")
        _dump(index.ask(line).to_json())


def _evaluate(index: FaqIndex, path: Path) -> EvalReport:
    from knowledge.faq.training import evaluate  # offline work: the bot never loads it

    if not path.is_file():
        typer.echo(f"Evaluation file not found: {path} (pass --eval-file).", err=True)
        raise typer.Exit(2)
    return evaluate(index, load_eval(path))


def _print_evals(index: FaqIndex, paths: list[Path], as_json: bool) -> None:
    """Each file's report (a JSON object per line with its "file"), then in text a table of
    the figures per file and pooled."""
    from knowledge.faq.training import pooled

    reports = [_evaluate(index, path) for path in paths]
    named = [(path.name, report) for path, report in zip(paths, reports, strict=True)]
    for name, report in named:
        if as_json:
            _dump({"file": name, **report.to_json()})
        else:
            typer.echo(f"== {name}")
            _print_report(index, report)
    if as_json:
        return
    typer.echo("file: in scope, answered outright right / wrong, top-1; out of scope, refused")
    for name, report in [*named, ("pooled", pooled(reports))]:
        typer.echo(
            f"  {name}: {report.in_scope}, {report.answered_rate:.1%} / {report.wrong_rate:.1%}, "
            f"{report.top1_accuracy:.1%}; {report.out_of_scope}, {report.refusal_rate:.1%}"
        )


def _print_eval(index: FaqIndex, path: Path, as_json: bool) -> None:
    report = _evaluate(index, path)
    if as_json:
        _dump(report.to_json())
        return
    _print_report(index, report)


def _print_report(index: FaqIndex, report: EvalReport) -> None:
    typer.echo(
        f"entries: {len(index)}   questions: {report.in_scope} in scope, {report.out_of_scope} out of scope"
    )
    typer.echo(
        f"top-1 accuracy (in scope):   {report.top1_accuracy:.1%}  ({report.top1_correct}/{report.in_scope})"
    )
    typer.echo(
        f"refusal rate (out of scope): {report.refusal_rate:.1%}  ({report.refused}/{report.out_of_scope})"
    )
    typer.echo(
        f"confident answers: {report.answered_correct} right, {report.answered_wrong} wrong; "
        f"in-scope refused: {report.in_scope_refused}; out-of-scope answered: {report.oos_answered}"
    )
    typer.echo("confusions (expected -> got [outcome] question):")
    for case, result in report.confusions:
        got = result.best.entry.id if result.best else "-"
        score = f"{result.best.score:.0f}" if result.best else ""
        typer.echo(f"  {case.expected} -> {got} {score} [{result.outcome}] {case.question}")


def _fit_ranker(ranker_file: Path) -> None:
    from knowledge.faq.training import fit_learned

    cases = [case for path in TUNING_SETS for case in load_eval(path)]
    try:
        learned = fit_learned(cases)
    except ImportError:
        typer.echo("Fitting needs scikit-learn: pip install -e '.[train]' (or ./dev test once).", err=True)
        raise typer.Exit(2) from None
    learned.save(ranker_file, trained_on=[f"tests/data/{p.name}" for p in TUNING_SETS])
    typer.echo(f"re-ranker and scope model fitted on {len(cases)} questions, saved to {ranker_file}")
