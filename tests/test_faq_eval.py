"""The matcher keeps its measured quality on both held-out evaluation sets.

faq_eval.tsv is the set the thresholds, weights, teencode and out-of-scope topics are
tuned on; faq_heldout.tsv was written before the last retuning and is never tuned on, so
its figures are the honest estimate of how the matcher does on new questions.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rapidfuzz import fuzz, process

from knowledge.faq import OUT_OF_SCOPE, FaqIndex, evaluate, load_entries, load_eval, load_out_of_scope
from knowledge.text import normalize_question

DATA = Path(__file__).parent / "data"
EVAL = DATA / "faq_eval.tsv"
HELDOUT = DATA / "faq_heldout.tsv"

# Floors at what the matcher honestly reaches (issue 3's target is 95 % / 95 %); see
# knowledge/faq.py for the thresholds and `vssid-bot faq --eval [--eval-file ...]` for the
# confusions. When set: tuning set 91.4 % top-1 / 96.4 % refused / 6 of 315 answered
# wrongly; untouched set 72.2 % / 87.5 % / 14 of 194 answered wrongly. The gap between
# the two is the honest measure of how much the tuning set flatters the matcher.
FLOORS = {
    # file: (top-1 floor, refusal floor, wrong-answer ceiling as a share of in-scope)
    EVAL: (0.91, 0.96, 0.03),
    HELDOUT: (0.72, 0.87, 0.08),
}


@pytest.fixture(scope="module")
def phrasings() -> list[str]:
    texts = [q for e in load_entries() for q in e.questions] + load_out_of_scope()
    return [normalize_question(q) for q in texts]


@pytest.mark.parametrize(("path", "in_scope", "out_of_scope"), [(EVAL, 250, 40), (HELDOUT, 120, 40)])
def test_eval_set_is_big_enough(path: Path, in_scope: int, out_of_scope: int) -> None:
    cases = load_eval(path)
    assert sum(c.expected != OUT_OF_SCOPE for c in cases) >= in_scope
    assert sum(c.expected == OUT_OF_SCOPE for c in cases) >= out_of_scope


@pytest.mark.parametrize("path", [EVAL, HELDOUT])
def test_every_entry_is_asked_about(path: Path) -> None:
    asked = {c.expected for c in load_eval(path)}
    assert {e.id for e in load_entries()} <= asked


@pytest.mark.parametrize("path", [EVAL, HELDOUT])
def test_eval_questions_are_not_copies_of_the_knowledge_base(path: Path, phrasings: list[str]) -> None:
    """No question is (nearly) a phrasing of faq.yaml, or the figures would flatter us."""
    for case in load_eval(path):
        hit = process.extractOne(normalize_question(case.question), phrasings, scorer=fuzz.ratio)
        assert hit[1] < 85, f"{case.question!r} is too close to {hit[0]!r}"


def test_the_untouched_set_does_not_repeat_the_tuning_set() -> None:
    tuned = [normalize_question(c.question) for c in load_eval(EVAL)]
    for case in load_eval(HELDOUT):
        hit = process.extractOne(normalize_question(case.question), tuned, scorer=fuzz.ratio)
        assert hit[1] < 85, f"{case.question!r} is too close to the tuning set's {hit[0]!r}"


@pytest.mark.parametrize("path", [EVAL, HELDOUT])
def test_accuracy_and_refusal_hold_their_floor(path: Path) -> None:
    top1_floor, refusal_floor, wrong_ceiling = FLOORS[path]
    report = evaluate(FaqIndex.default(), load_eval(path))
    assert report.top1_accuracy >= top1_floor
    assert report.refusal_rate >= refusal_floor
    assert report.answered_wrong <= wrong_ceiling * report.in_scope
