"""Offline work on the matcher, never imported by the running bot: measuring it on labelled
question sets (`vssid-bot faq --eval`) and fitting its learned weights (`vssid-bot faq
--fit-ranker`, which needs scikit-learn: the `train` extra)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from knowledge.faq.data import FAQ_PATH, OUT_OF_SCOPE, TRAINING_PATH, EvalCase, FaqResult, load_eval, read_faq
from knowledge.faq.decision import (
    ANSWER_CONFIDENCE,
    ANSWER_MARGIN,
    ANSWER_THRESHOLD,
    SCOPE_THRESHOLD,
    SUGGEST_THRESHOLD,
)
from knowledge.faq.index import FaqIndex
from knowledge.faq.models import LearnedWeights, Ranker, Scope, ranker_rows


@dataclass(frozen=True)
class EvalReport:
    in_scope: int
    out_of_scope: int
    top1_correct: int  # best-ranked entry (answer or first suggestion) is the expected one
    answered_correct: int  # answered confidently and right
    answered_wrong: int  # answered confidently and wrong: the costly mistake
    in_scope_refused: int
    refused: int  # out-of-scope questions refused
    oos_answered: int  # out-of-scope questions answered confidently (worst case)
    confusions: tuple[tuple[EvalCase, FaqResult], ...]

    @property
    def top1_accuracy(self) -> float:
        return self.top1_correct / self.in_scope if self.in_scope else 0.0

    @property
    def refusal_rate(self) -> float:
        return self.refused / self.out_of_scope if self.out_of_scope else 0.0

    @property
    def answered_rate(self) -> float:
        """Questions of ours answered outright and right (the figure a parent feels)."""
        return self.answered_correct / self.in_scope if self.in_scope else 0.0

    @property
    def wrong_rate(self) -> float:
        return self.answered_wrong / self.in_scope if self.in_scope else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "in_scope": self.in_scope,
            "out_of_scope": self.out_of_scope,
            "top1_accuracy": round(self.top1_accuracy, 4),
            "refusal_rate": round(self.refusal_rate, 4),
            "answered_correct": self.answered_correct,
            "answered_wrong": self.answered_wrong,
            "in_scope_refused": self.in_scope_refused,
            "out_of_scope_answered": self.oos_answered,
            "thresholds": {
                "answer": ANSWER_THRESHOLD,
                "answer_margin": ANSWER_MARGIN,
                "answer_confidence": ANSWER_CONFIDENCE,
                "suggest": SUGGEST_THRESHOLD,
                "scope": SCOPE_THRESHOLD,
            },
        }


def evaluate(index: FaqIndex, cases: Iterable[EvalCase]) -> EvalReport:
    """Ask every question; an entry is right when it is any of the case's labels ("a|b": a
    message asking two things), old ids of merged entries included."""
    counts = dict.fromkeys(("in", "oos", "top1", "ok", "wrong", "in_refused", "refused", "oos_answered"), 0)
    confusions: list[tuple[EvalCase, FaqResult]] = []
    for case in cases:
        result = index.ask(case.question)
        if case.expected == OUT_OF_SCOPE:
            counts["oos"] += 1
            if result.outcome == "refuse":
                counts["refused"] += 1
            else:
                confusions.append((case, result))
                counts["oos_answered"] += result.outcome == "answer"
            continue
        # index.get: a typo in the eval file must fail loudly
        right = {index.get(label).id for label in case.accepted}
        counts["in"] += 1
        best = result.best
        if best is not None and best.entry.id in right:
            counts["top1"] += 1
        else:
            confusions.append((case, result))
        if result.match is not None:
            counts["ok" if result.match.entry.id in right else "wrong"] += 1
        elif result.outcome == "refuse":
            counts["in_refused"] += 1
    return EvalReport(
        in_scope=counts["in"],
        out_of_scope=counts["oos"],
        top1_correct=counts["top1"],
        answered_correct=counts["ok"],
        answered_wrong=counts["wrong"],
        in_scope_refused=counts["in_refused"],
        refused=counts["refused"],
        oos_answered=counts["oos_answered"],
        confusions=tuple(confusions),
    )


def pooled(reports: Sequence[EvalReport]) -> EvalReport:
    """Several files' reports as one."""
    fields = [f for f in EvalReport.__dataclass_fields__ if f != "confusions"]
    totals = {f: sum(getattr(r, f) for r in reports) for f in fields}
    return EvalReport(**totals, confusions=tuple(c for r in reports for c in r.confusions))


def fit_learned(
    cases: Iterable[EvalCase], path: Path = FAQ_PATH, training_path: Path = TRAINING_PATH
) -> LearnedWeights:
    """Fit the re-ranker and the scope model on labelled questions (the tuning sets).

    Neither model's inputs depend on the models, so the index is built with neutral ones.
    The ranker learns from the questions of ours whose entry is among the candidates (the
    others teach it nothing); the scope model from every question."""
    faq = read_faq(path)
    index = FaqIndex(
        faq.entries,
        faq.out_of_scope,
        faq.anchors,
        ranker=Ranker.neutral(),
        scope=Scope.permissive(),
        training=load_eval(training_path),
    )
    ranked: list[tuple[np.ndarray, int]] = []
    scope_rows: list[np.ndarray] = []
    ours: list[bool] = []
    for case in cases:
        analysis = index.analyse(case.question)
        scope_rows.append(index.scope_row(analysis))
        ours.append(case.expected != OUT_OF_SCOPE)
        if case.expected == OUT_OF_SCOPE:
            continue
        real, rows = index.ranker_inputs(analysis)
        ids = [index.entries[n].id for n in real]
        # the first of a message's questions whose entry is among the candidates
        hits = [ids.index(i) for i in (index.get(label).id for label in case.accepted) if i in ids]
        if hits:
            ranked.append((rows, hits[0]))
    return LearnedWeights(fit_ranker(ranked), fit_scope(np.array(scope_rows), np.array(ours)))


def fit_ranker(questions: Sequence[tuple[np.ndarray, int]], regularisation: float = 3.0) -> Ranker:
    """Fit on (candidate components, index of the right candidate) per question: answering
    is then a dot product."""
    from sklearn.linear_model import LogisticRegression

    rows = np.vstack([ranker_rows(c) for c, _ in questions])
    labels = np.concatenate([np.arange(len(c)) == right for c, right in questions])
    model = LogisticRegression(C=regularisation, tol=1e-10, max_iter=20000).fit(rows, labels)
    return Ranker(model.coef_[0], model.intercept_[0])


def fit_scope(rows: np.ndarray, ours: np.ndarray, regularisation: float = 1.0) -> Scope:
    """Fit on one row per labelled question, in scope or not; the classes are weighted
    equally (the tuning sets hold about three questions of ours per foreign one)."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=regularisation, class_weight="balanced", tol=1e-10, max_iter=20000)
    model.fit(rows, ours)
    return Scope(model.coef_[0], model.intercept_[0])
