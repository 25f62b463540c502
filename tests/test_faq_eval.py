"""The matcher keeps its measured quality on the three evaluation sets.

faq_eval.tsv is the set the thresholds, weights, teencode and out-of-scope topics are
tuned on; faq_heldout.tsv is never tuned on; faq_fresh.tsv was written last, blind to
faq.yaml and to the other sets, and never looked at: its figures are the honest estimate
of how the matcher does on new questions (see knowledge/faq.py).
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
FRESH = DATA / "faq_fresh.tsv"

# Floors at what the matcher honestly reaches (issue 3's target is 95 % / 95 %); see
# knowledge/faq.py for the thresholds and `vssid-bot faq --eval [--eval-file ...]` for the
# confusions. When set: tuning set 94.3 % top-1 / 98.2 % refused / 6 of 315 answered
# wrongly; held-out 85.1 % / 89.6 % / 12 of 194; fresh 88.7 % / 91.4 % / 12 of 363. The
# gap between the tuning set and the others is how much tuning flatters the matcher.
FLOORS = {
    # file: (top-1 floor, refusal floor, wrong-answer ceiling as a share of in-scope)
    EVAL: (0.94, 0.98, 0.02),
    HELDOUT: (0.85, 0.89, 0.065),
    FRESH: (0.88, 0.91, 0.035),
}


@pytest.fixture(scope="module")
def phrasings() -> list[str]:
    texts = [q for e in load_entries() for q in e.questions] + load_out_of_scope()
    return [normalize_question(q) for q in texts]


@pytest.mark.parametrize(
    ("path", "in_scope", "out_of_scope"), [(EVAL, 250, 40), (HELDOUT, 120, 40), (FRESH, 250, 40)]
)
def test_eval_set_is_big_enough(path: Path, in_scope: int, out_of_scope: int) -> None:
    cases = load_eval(path)
    assert sum(c.expected != OUT_OF_SCOPE for c in cases) >= in_scope
    assert sum(c.expected == OUT_OF_SCOPE for c in cases) >= out_of_scope


@pytest.mark.parametrize("path", [EVAL, HELDOUT, FRESH])
def test_every_entry_is_asked_about(path: Path) -> None:
    asked = {c.expected for c in load_eval(path)}
    assert {e.id for e in load_entries()} <= asked


# Not faq_fresh.tsv: it and faq.yaml's newer phrasings were written blind to each other,
# and new phrasings close to any of its questions were dropped; 61 of its 444 questions
# still sit within ratio 85 of an older phrasing ("otp la gi" ~ "Mã OTP là gì?"): short
# questions parents ask in the words the base already had, kept in as they were written.
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


@pytest.mark.parametrize("path", [EVAL, HELDOUT, FRESH])
def test_accuracy_and_refusal_hold_their_floor(path: Path) -> None:
    top1_floor, refusal_floor, wrong_ceiling = FLOORS[path]
    report = evaluate(FaqIndex.default(), load_eval(path))
    assert report.top1_accuracy >= top1_floor
    assert report.refusal_rate >= refusal_floor
    assert report.answered_wrong <= wrong_ceiling * report.in_scope
