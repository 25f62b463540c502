"""The matcher keeps its measured quality on every evaluation set.

tests/data/faq_tune3_*.tsv (one file per kind of writer: voice, terse, worker, genz, double,
parent) are the current tuning sets: written blind to faq.yaml and to every earlier set, from
the circulars and a topic list; labels "a|b" mark a message asking two things. The earlier
sets (faq_eval, faq_heldout, faq_tune2, faq_fresh, faq_blind, faq_sealed) are kept as
regression: their floors say the matcher has not collapsed on them, not how well it does on
new writers (that figure comes from a set nobody tuned on; see README.md).
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
from knowledge.faq.training import EvalReport, evaluate, pooled
from knowledge.text import normalize_question

DATA = Path(__file__).parent / "data"
EVAL = DATA / "faq_eval.tsv"
HELDOUT = DATA / "faq_heldout.tsv"
TUNE2 = DATA / "faq_tune2.tsv"
FRESH = DATA / "faq_fresh.tsv"
BLIND = DATA / "faq_blind.tsv"
SEALED = DATA / "faq_sealed.tsv"
ALL_SETS = (EVAL, HELDOUT, TUNE2, FRESH, BLIND, SEALED)

PERSONAS = ("voice", "terse", "worker", "genz", "double", "parent")
TUNE3 = tuple(DATA / f"faq_tune3_{persona}.tsv" for persona in PERSONAS)

# Floors a little under what the matcher reaches (`vssid-bot faq --eval --eval-file F ...`
# prints the figures and the confusions). Top-1 and refusal floors are issue 3's; an outright
# answer now comes when the re-ranker is sure, so about 95 % of questions of ours are answered
# outright and the ceiling on wrong outright answers is issue 18's 2 % (3 % on heldout, a
# tuning set whose 194 questions make one answer half a point).
FLOORS = {
    # file: (top-1 floor, refusal floor, wrong-answer ceiling as a share of in-scope)
    EVAL: (0.96, 0.96, 0.02),
    HELDOUT: (0.958, 0.975, 0.03),
    TUNE2: (0.985, 0.97, 0.01),
    FRESH: (0.96, 0.96, 0.02),
    BLIND: (0.955, 0.955, 0.02),
    SEALED: (0.935, 0.965, 0.02),
}
ANSWERED_FLOOR = 0.93
"""Share of each set's questions of ours answered outright with the right entry."""
TUNE3_FLOORS = (0.94, 0.02, 0.85)
"""Per kind of writer: answered outright and right, answered outright and wrongly, refused."""
TUNE3_POOLED_FLOORS = (0.95, 0.01, 0.96)
SEALED2 = tuple(DATA / f"faq_sealed2_{persona}.tsv" for persona in PERSONAS)
"""The persona set written blind in the next round and scored once (see README.md); seen
since, so it is a regression set too."""
SEALED2_FLOORS = (0.88, 0.034, 0.94)
SEALED2_POOLED_FLOORS = (0.95, 0.01, 0.98)
SEALED3 = tuple(DATA / f"faq_sealed3_{persona}.tsv" for persona in PERSONAS)
"""The persona set written blind by six new writers for the next round and scored once on
commit 7fa9752 (README's table); its floors are what that score was, so any change that loses
one of its answers is seen."""
SEALED3_FLOORS = (0.866, 0.034, 0.944)
SEALED3_POOLED_FLOORS = (0.933, 0.02, 0.99)


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
    assert report.answered_rate >= ANSWERED_FLOOR


@pytest.fixture(scope="module")
def tune3_reports() -> dict[Path, EvalReport]:
    index = FaqIndex.default()
    return {path: evaluate(index, load_eval(path)) for path in TUNE3}


@pytest.mark.parametrize("path", TUNE3, ids=PERSONAS)
def test_each_kind_of_writer_is_answered_outright(path: Path, tune3_reports: dict[Path, EvalReport]) -> None:
    answered, wrong, refused = TUNE3_FLOORS
    report = tune3_reports[path]
    assert report.answered_rate >= answered
    assert report.wrong_rate <= wrong
    assert report.refusal_rate >= refused


def test_the_writers_together_meet_the_goal(tune3_reports: dict[Path, EvalReport]) -> None:
    answered, wrong, refused = TUNE3_POOLED_FLOORS
    report = pooled(list(tune3_reports.values()))
    assert report.answered_rate >= answered
    assert report.wrong_rate <= wrong
    assert report.refusal_rate >= refused


@pytest.mark.parametrize("path", TUNE3, ids=PERSONAS)
def test_new_sets_are_big_enough_and_labelled_with_real_entries(path: Path) -> None:
    cases = load_eval(path)
    index = FaqIndex.default()
    assert sum(c.expected != OUT_OF_SCOPE for c in cases) >= 55
    assert sum(c.expected == OUT_OF_SCOPE for c in cases) >= 15
    for case in cases:
        if case.expected != OUT_OF_SCOPE:
            for label in case.accepted:
                index.get(label)  # a typo in a label fails here


@pytest.fixture(scope="module")
def blind_reports() -> dict[Path, EvalReport]:
    index = FaqIndex.default()
    return {path: evaluate(index, load_eval(path)) for path in (*SEALED2, *SEALED3)}


BLIND_SETS = {"sealed2": (SEALED2, SEALED2_FLOORS), "sealed3": (SEALED3, SEALED3_FLOORS)}
BLIND_POOLS = {"sealed2": (SEALED2, SEALED2_POOLED_FLOORS), "sealed3": (SEALED3, SEALED3_POOLED_FLOORS)}


def _holds(report: EvalReport, floors: tuple[float, float, float]) -> None:
    answered, wrong, refused = floors
    assert report.answered_rate >= answered
    assert report.wrong_rate <= wrong
    assert report.refusal_rate >= refused


@pytest.mark.parametrize(
    ("path", "floors"),
    [(path, floors) for paths, floors in BLIND_SETS.values() for path in paths],
    ids=[f"{name}-{persona}" for name in BLIND_SETS for persona in PERSONAS],
)
def test_each_kind_of_writer_of_the_blind_sets_holds(
    path: Path, floors: tuple[float, float, float], blind_reports: dict[Path, EvalReport]
) -> None:
    _holds(blind_reports[path], floors)


@pytest.mark.parametrize(("paths", "floors"), list(BLIND_POOLS.values()), ids=list(BLIND_POOLS))
def test_each_blind_set_together_holds(
    paths: tuple[Path, ...], floors: tuple[float, float, float], blind_reports: dict[Path, EvalReport]
) -> None:
    _holds(pooled([blind_reports[path] for path in paths]), floors)
