"""From a question's scores to one of three outcomes:

- "answer": one entry clearly fits (`FaqResult.match`);
- "suggest": a few entries plausibly fit, the user picks ("did you mean", up to 3);
- "refuse": nothing fits well enough; the assistant says so and gives the hotline,
  rather than answering something wrong.

In order: a word only the out-of-scope topics use ("facebook", "vneid") refuses unless the
question names an anchor ("vssid", "bhxh", "tờ khai"); a known out-of-scope topic ahead of
(or not far behind) the best entry refuses; a top score under SUGGEST_THRESHOLD refuses;
the scope model (knowledge/faq/models.py) may still refuse what shares our words but not
our subject ("rút bhxh 1 lần"). Which entry comes first is the re-ranker's call, and an
outright answer needs the re-ranker to be sure (ANSWER_CONFIDENCE) and the first entry's
own score to be high enough (ANSWER_THRESHOLD) and near the best (ANSWER_MARGIN).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from knowledge.faq.data import FaqEntry, FaqMatch, FaqResult
from knowledge.faq.models import Ranker, Scope
from knowledge.faq.scoring import NO_CANDIDATE, Analysis, combined

ANSWER_CONFIDENCE = 0.6
"""The re-ranker's probability for its first entry (a softmax over the candidates' logits)
from which that entry is answered outright; below, the question gets suggestions. Chosen
on the tuning sets: 0.5 answers ~3 points more of them rightly and several more wrongly,
0.65 ~1.5 points fewer rightly and about as many wrongly."""
ANSWER_THRESHOLD = 50.0
"""The score the first entry itself needs to be answered outright (57 answers a point
fewer rightly on the tuning sets, none fewer wrongly)."""
ANSWER_MARGIN = 12.0
"""How far the first entry's score may trail the best score and still be answered
outright (the re-ranker prefers it; the scores must not clearly prefer another)."""
SURE_THRESHOLD = 70.0
SURE_MARGIN = 5.0
"""An answer is `sure` when the first entry also has the best score, at least SURE_THRESHOLD,
SURE_MARGIN ahead of the runner-up (the scores alone would answer with it)."""
SUGGEST_THRESHOLD = 57.0
"""Below this the question is out of scope: polite refusal with the hotline."""
ANCHORED_SUGGEST_THRESHOLD = 50.0
"""The same for a question that names an anchor."""
SUGGEST_WINDOW = 12.0
"""Runners-up within this many points of the top are offered as suggestions."""
MAX_SUGGESTIONS = 3
DECOY_MARGIN = -10.0
"""How far a known out-of-scope topic must lead the best entry to cause a refusal
(negative: a topic this far behind still wins, as topics are scored without the subset
bonus entries get; -8 refuses fewer on the tuning sets, -12 loses top-1)."""
ANCHORED_DECOY_MARGIN = -2.0
"""The same for a question that names an anchor ("vssid", "otp", "tờ khai"): a near tie
stays ours ("cài vssid trên android" is not "cài vneid")."""
SCOPE_THRESHOLD = 0.3
"""The scope model's probability that a question is ours below which it is refused
(cross-fitted on the tuning sets, 0.2-0.35 is flat; 0.3 sits in its middle)."""


class Decider:
    """The decision over one question's Analysis, with the learned re-ranker and scope model."""

    def __init__(self, entries: Sequence[FaqEntry], ranker: Ranker, scope: Scope) -> None:
        self.entries = tuple(entries)
        self.real = len(self.entries)
        self.ranker = ranker
        self.scope = scope

    def ranker_inputs(self, analysis: Analysis) -> tuple[list[int], np.ndarray]:
        """The real entries among the candidates and their score rows (Candidate.scores():
        coverages, fuzzy, naive Bayes, phrasing match): what the re-ranker scores, when
        answering and when fitted."""
        real = [c for c in analysis.components if c.entry < self.real]
        return [c.entry for c in real], np.array([c.scores() for c in real])

    def scope_row(self, analysis: Analysis) -> np.ndarray:
        """The scope model's inputs (models.SCOPE_FEATURES) for one question."""
        score = {c: combined(c) for c in analysis.components}
        real = [c for c in score if c.entry < self.real]
        best = max(real, key=score.__getitem__) if real else NO_CANDIDATE
        top = score.get(best, 0.0)
        decoy = max((v for c, v in score.items() if c.entry >= self.real), default=0.0)
        row = (
            top,
            *best.scores(),
            decoy,
            decoy - top,
            float(bool(analysis.foreign) and not analysis.anchored),
            float(analysis.anchored),
            analysis.unknown_share,
            math.log1p(analysis.content_words),
            analysis.ours_log_odds / 10.0,
        )
        return np.array(row, dtype=np.float64)

    def decide(self, text: str, analysis: Analysis) -> FaqResult:
        score = {c.entry: 100.0 * combined(c) for c in analysis.components}
        real, rows = self.ranker_inputs(analysis)
        if not real or self._refused_by_rules(analysis, score, real):
            return FaqResult(question=text, match=None, suggestions=())
        top = max(score[n] for n in real)
        # Which entry it means is the re-ranker's call, which weighs the same scores with
        # the naive-Bayes posterior and tells near-synonym entries apart better.
        logits = self.ranker.logits(rows)
        ranked = np.argsort(-logits, kind="stable")
        order = [real[i] for i in ranked]
        first = order[0]
        suggestions = tuple(
            FaqMatch(self.entries[n], score[n])
            for n in order
            if n == first or (score[n] >= SUGGEST_THRESHOLD and top - score[n] <= SUGGEST_WINDOW)
        )[:MAX_SUGGESTIONS]
        # What the rules let through can still be someone else's subject in our words
        # ("rút bhxh 1 lần", "quên mật khẩu sổ liên lạc"): the scope model weighs all of the
        # evidence together.
        if self.scope.probability(self.scope_row(analysis)) < SCOPE_THRESHOLD:
            return FaqResult(question=text, match=None, suggestions=(), related=suggestions)
        confidence = float(np.exp(logits[ranked[0]] - np.logaddexp.reduce(logits)))
        if (
            confidence >= ANSWER_CONFIDENCE
            and score[first] >= ANSWER_THRESHOLD
            and top - score[first] <= ANSWER_MARGIN
        ):
            match = FaqMatch(self.entries[first], score[first])
            runner_up = max((score[n] for n in real if n != first), default=0.0)
            sure = score[first] == top and top >= SURE_THRESHOLD and top - runner_up >= SURE_MARGIN
            return FaqResult(question=text, match=match, see_also=suggestions[1:], sure=sure)
        return FaqResult(question=text, match=None, suggestions=suggestions)

    def _refused_by_rules(self, analysis: Analysis, score: dict[int, float], real: list[int]) -> bool:
        top = max(score[n] for n in real)
        # A word only the out-of-scope topics use ("facebook", "vneid") names another
        # subject; "quên mật khẩu facebook" is not ours even though "quên mật khẩu" is. An
        # anchor word ("vssid", "bhxh", "tờ khai") keeps the question ours.
        if analysis.foreign and not analysis.anchored:
            return True
        # A known out-of-scope topic ahead, or not far behind (topics are scored without the
        # subset bonus entries get), means "not ours", however high the nearest entry
        # scored; when the question names an anchor only a near tie or better does.
        decoy = max((s for n, s in score.items() if n >= self.real), default=0.0)
        margin = ANCHORED_DECOY_MARGIN if analysis.anchored else DECOY_MARGIN
        floor = ANCHORED_SUGGEST_THRESHOLD if analysis.anchored else SUGGEST_THRESHOLD
        return top < floor or decoy > top + margin
