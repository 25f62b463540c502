"""The matcher keeps its measured quality on the six evaluation sets.

faq_eval.tsv, faq_heldout.tsv and faq_tune2.tsv are the sets thresholds, weights,
teencode and out-of-scope topics are tuned on (the held-out set only since the third
session; faq_tune2.tsv, written blind to the base like the untouched sets, since the fifth);
faq_fresh.tsv, faq_blind.tsv and faq_sealed.tsv (sixth session) were written blind to
faq.yaml and to the other sets and are never looked at: their figures are the honest
estimate of how the matcher does on new questions (see knowledge/faq/).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rapidfuzz import fuzz, process

from knowledge.faq import (
    OUT_OF_SCOPE,
    TRAINING_PATH,
    FaqIndex,
    load_entries,
    load_eval,
    load_out_of_scope,
)
from knowledge.faq.training import evaluate
from knowledge.text import normalize_question

DATA = Path(__file__).parent / "data"
EVAL = DATA / "faq_eval.tsv"
HELDOUT = DATA / "faq_heldout.tsv"
TUNE2 = DATA / "faq_tune2.tsv"
FRESH = DATA / "faq_fresh.tsv"
BLIND = DATA / "faq_blind.tsv"
SEALED = DATA / "faq_sealed.tsv"
ALL_SETS = (EVAL, HELDOUT, TUNE2, FRESH, BLIND, SEALED)

# Floors just under what the matcher reaches (issue 3's target is 95 % / 95 %); see
# knowledge/faq/decision.py for the thresholds and `vssid-bot faq --eval [--eval-file ...]` for the
# confusions. When set (seventh session, with knowledge/faq_training.tsv; eighth: tuning
# 96.5 %, the rest unchanged): tuning 95.9 %
# top-1 / 98.2 % refused / 1 of 315 answered wrongly; held-out 96.4 % / 100 % / 3 of 194;
# tune2 99.1 % / 97.7 % / 1 of 232; fresh 97.0 % / 97.5 % / 0 of 363; blind 96.5 % / 96.8 %
# / 2 of 371; sealed 94.7 % / 97.8 % / 3 of 360. About a point of slack on the untouched
# sets, so that a change judged on the tuning sets does not fail over one or two of their
# questions (which would invite tuning on them); the tuning sets' floors sit half a point
# under.
FLOORS = {
    # file: (top-1 floor, refusal floor, wrong-answer ceiling as a share of in-scope)
    EVAL: (0.96, 0.96, 0.007),
    HELDOUT: (0.958, 0.975, 0.02),
    TUNE2: (0.985, 0.97, 0.01),
    FRESH: (0.96, 0.96, 0.008),
    BLIND: (0.955, 0.955, 0.01),
    SEALED: (0.935, 0.965, 0.012),
}


@pytest.fixture(scope="module")
def phrasings() -> list[str]:
    texts = [q for e in load_entries() for q in e.questions] + load_out_of_scope()
    return [normalize_question(q) for q in texts]


@pytest.mark.parametrize(
    ("path", "in_scope", "out_of_scope"),
    [
        (EVAL, 250, 40),
        (HELDOUT, 120, 40),
        (TUNE2, 200, 150),
        (FRESH, 250, 40),
        (BLIND, 250, 40),
        (SEALED, 250, 40),
    ],
)
def test_eval_set_is_big_enough(path: Path, in_scope: int, out_of_scope: int) -> None:
    cases = load_eval(path)
    assert sum(c.expected != OUT_OF_SCOPE for c in cases) >= in_scope
    assert sum(c.expected == OUT_OF_SCOPE for c in cases) >= out_of_scope


@pytest.mark.parametrize("path", ALL_SETS)
def test_every_entry_is_asked_about(path: Path) -> None:
    asked = {c.expected for c in load_eval(path)}
    assert {e.id for e in load_entries()} <= asked


# Not faq_fresh.tsv, faq_blind.tsv, faq_sealed.tsv nor faq_tune2.tsv: they and faq.yaml's
# newer phrasings were written blind to each other, and new phrasings or out-of-scope items
# close to any of fresh's or blind's questions were dropped; 61 of fresh's 444, 62 of
# blind's 466, 75 of sealed's 450 and 60 of tune2's 403 questions still sit within ratio 85
# of an older phrasing ("otp la gi" ~ "Mã OTP là gì?"): short questions parents ask in the
# words the base already had, kept in as they were written.
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


def test_training_questions_are_not_copies_of_any_evaluation_set() -> None:
    """The naive Bayes models learn from knowledge/faq_training.tsv; a question there close to
    one of an evaluation set would be answered from memory and flatter the figures."""
    asked = [normalize_question(c.question) for path in ALL_SETS for c in load_eval(path)]
    training = [normalize_question(c.question) for c in load_eval(TRAINING_PATH)]
    close = process.cdist(training, asked, scorer=fuzz.ratio, score_cutoff=85, dtype=np.uint8, workers=-1)
    pairs = [(training[i], asked[j]) for i, j in zip(*np.nonzero(close), strict=True)]
    assert not pairs, f"{len(pairs)} training questions are too close to evaluation ones, e.g. {pairs[:3]}"


@pytest.mark.parametrize("path", ALL_SETS)
def test_accuracy_and_refusal_hold_their_floor(path: Path) -> None:
    top1_floor, refusal_floor, wrong_ceiling = FLOORS[path]
    report = evaluate(FaqIndex.default(), load_eval(path))
    assert report.top1_accuracy >= top1_floor
    assert report.refusal_rate >= refusal_floor
    assert report.answered_wrong <= wrong_ceiling * report.in_scope
