"""The matcher keeps its measured quality on the held-out evaluation set."""

from __future__ import annotations

from pathlib import Path

import pytest
from rapidfuzz import fuzz, process

from knowledge.faq import OUT_OF_SCOPE, FaqIndex, evaluate, load_entries, load_eval, load_out_of_scope
from knowledge.text import normalize_question

EVAL = Path(__file__).parent / "data" / "faq_eval.tsv"

# Floors at what the matcher honestly reaches (91.1 % / 81.8 % when set; the issue's
# target is 95 % / 95 %); see knowledge/faq.py for the thresholds and
# `vssid-bot faq --eval` for the confusions.
TOP1_FLOOR = 0.90
REFUSAL_FLOOR = 0.80
WRONG_ANSWER_CEILING = 0.03


@pytest.fixture(scope="module")
def cases():
    return load_eval(EVAL)


def test_eval_set_is_big_enough(cases) -> None:
    assert sum(c.expected != OUT_OF_SCOPE for c in cases) >= 250
    assert sum(c.expected == OUT_OF_SCOPE for c in cases) >= 40


def test_every_entry_is_asked_about_in_the_eval_set(cases) -> None:
    asked = {c.expected for c in cases}
    assert {e.id for e in load_entries()} <= asked


def test_eval_questions_are_held_out_from_the_knowledge_base(cases) -> None:
    """No eval question is (nearly) a phrasing of faq.yaml, or the figures would flatter us."""
    phrasings = [normalize_question(q) for e in load_entries() for q in e.questions]
    phrasings += [normalize_question(q) for q in load_out_of_scope()]
    for case in cases:
        hit = process.extractOne(normalize_question(case.question), phrasings, scorer=fuzz.ratio)
        assert hit[1] < 85, f"{case.question!r} is too close to {hit[0]!r}"


def test_accuracy_and_refusal_hold_their_floor(cases) -> None:
    report = evaluate(FaqIndex.default(), cases)
    assert report.top1_accuracy >= TOP1_FLOOR
    assert report.refusal_rate >= REFUSAL_FLOOR
    assert report.answered_wrong <= WRONG_ANSWER_CEILING * report.in_scope
