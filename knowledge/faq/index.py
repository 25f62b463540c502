"""`FaqIndex`: the matcher over a knowledge base. Build once, ask many times (thread-safe)."""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from knowledge.faq import decision, scoring
from knowledge.faq.data import (
    FAQ_PATH,
    TRAINING_PATH,
    EvalCase,
    FaqDataError,
    FaqEntry,
    FaqResult,
    load_eval,
    read_faq,
)
from knowledge.faq.features import (
    PLAIN_OR_ACCENTED_FOLDED,
    PLAIN_QUESTION,
    PLAIN_QUESTION_ACCENTED,
    QUESTION_ANYWHERE,
    QUESTION_ENDINGS,
    question_parts,
)
from knowledge.faq.models import LearnedWeights, Ranker, Scope
from knowledge.faq.tables import build_tables
from knowledge.text import fold, normalize_question


class FaqIndex:
    """Precomputed matcher over a list of entries."""

    def __init__(
        self,
        entries: Sequence[FaqEntry],
        out_of_scope: Sequence[str] = (),
        anchors: Sequence[str] = (),
        ranker: Ranker | None = None,
        scope: Scope | None = None,
        training: Sequence[EvalCase] = (),
    ) -> None:
        """`out_of_scope`: known foreign topics, which compete with the entries (winning
        means "refuse"); `anchors`: words that keep a question ours; `training`: labelled
        questions (knowledge/faq_training.tsv) that only the naive Bayes models learn
        from; `ranker` and `scope`: the learned weights (default: knowledge/faq_ranker.json)."""
        if not entries:
            raise FaqDataError("the FAQ has no entries")
        self.entries: tuple[FaqEntry, ...] = tuple(entries)
        self._by_id = {e.id: e for e in self.entries}
        if len(self._by_id) != len(self.entries):
            raise FaqDataError("two FAQ entries share an id")
        # Old ids of merged or renamed entries keep working (evaluation labels, buttons).
        for entry in self.entries:
            for old in entry.formerly:
                if old in self._by_id:
                    raise FaqDataError(f"{entry.id}: former id {old!r} is taken")
                self._by_id[old] = entry
        self.tables = build_tables(self.entries, out_of_scope, anchors, training)
        if ranker is None or scope is None:
            learned = LearnedWeights.load()
            ranker = ranker if ranker is not None else learned.ranker
            scope = scope if scope is not None else learned.scope
        self.decider = decision.Decider(self.entries, ranker, scope)

    @classmethod
    def from_entries(
        cls,
        entries: Iterable[FaqEntry],
        out_of_scope: Iterable[str] = (),
        anchors: Iterable[str] = (),
        training: Iterable[EvalCase] = (),
    ) -> FaqIndex:
        return cls(list(entries), list(out_of_scope), list(anchors), training=list(training))

    @classmethod
    def from_file(cls, path: Path, training_path: Path = TRAINING_PATH) -> FaqIndex:
        faq = read_faq(path)
        return cls(faq.entries, faq.out_of_scope, faq.anchors, training=load_eval(training_path))

    @classmethod
    def default(cls) -> FaqIndex:
        return _default_index()

    def get(self, entry_id: str) -> FaqEntry:
        """The entry with this id, or with this id among its former ones."""
        try:
            return self._by_id[entry_id]
        except KeyError:
            raise KeyError(f"no FAQ entry with id {entry_id!r}") from None

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def ranker(self) -> Ranker:
        return self.decider.ranker

    # matching -------------------------------------------------------------------------

    def normalize(self, text: str) -> str:
        """normalize_question plus correction of near-certain typos against the base's words."""
        return scoring.normalize(self.tables, text)

    def analyse(self, text: str) -> scoring.Analysis:
        """Everything `ask` decides on; split out so the evaluation can replay decisions."""
        return scoring.analyse(self.tables, self.normalize(text))

    def decide(self, text: str, analysis: scoring.Analysis) -> FaqResult:
        return self.decider.decide(text, analysis)

    def ask(self, text: str) -> FaqResult:
        """The outcome for a message; one that hesitates as a whole and holds several
        questions is answered with the first of them that is answered outright, the
        others' answers offered after it (`see_also`)."""
        result = self.decide(text, self.analyse(text))
        if result.outcome != "suggest":
            return result
        # Only the parts worded as questions: parents often set the scene first ("cô giáo
        # nhắn cài vssid cho con, ...") and that part alone would be answered beside the point.
        parts = [p for p in question_parts(text) if self.looks_like_question(p)]
        results = [r for r in map(self._ask_part, parts) if r.match is not None]
        answered = [r.match for r in results if r.match is not None]
        if not answered:
            return result
        first = answered[0]
        others = [m for m in (*answered[1:], *result.suggestions) if m.entry is not first.entry]
        unique = tuple({m.entry.id: m for m in others}.values())
        return FaqResult(
            question=text, match=first, suggestions=(), see_also=unique[: decision.MAX_SUGGESTIONS]
        )

    def _ask_part(self, part: str) -> FaqResult:
        return self.decide(part, self.analyse(part))

    def ranker_inputs(self, analysis: scoring.Analysis) -> tuple[list[int], np.ndarray]:
        return self.decider.ranker_inputs(analysis)

    def scope_row(self, analysis: scoring.Analysis) -> np.ndarray:
        return self.decider.scope_row(analysis)

    # is it a question? -----------------------------------------------------------------

    def looks_like_question(self, text: str) -> bool:
        """Cheap check the dialog engine uses mid-form: is this a question, not a field value?

        True for a "?" or Vietnamese question words after normalisation ("ko có cccd thì sao",
        "mk là j", "đăng ký ở đâu"). Field values ("0912345678", "Trần Văn An") are not.
        """
        if "?" in text:
            return True
        norm = normalize_question(text)
        if QUESTION_ANYWHERE.search(norm):
            return True
        words = norm.split()
        return len(words) >= 2 and words[-1] in QUESTION_ENDINGS

    def plainly_a_question(self, text: str) -> bool:
        """A "?" or a question phrase of two words or more ("bao giờ", "ở đâu", "cho hỏi"),
        which a name or an address never holds. Read on the text as typed (folded), not
        with abbreviations expanded: "Sao" and "J" would become "thế nào" and "gì" ("Nguyễn
        Thị Sao", "Lô J"); nor a question's last word alone ("Nguyễn Thu Hà", "thôn Đầu"). A
        few phrases are read with their accents ("mất thì sao" is a question, "Thị Sao" a name)."""
        if "?" in text:
            return True
        folded = f" {fold(text)} "
        if PLAIN_OR_ACCENTED_FOLDED.search(folded) is None:  # most texts: no phrase of either kind
            return False
        if PLAIN_QUESTION.search(folded):
            return True
        accented = " ".join(unicodedata.normalize("NFC", text).lower().split())
        return bool(PLAIN_QUESTION_ACCENTED.search(f" {accented} "))


@functools.cache
def _default_index() -> FaqIndex:
    return FaqIndex.from_file(FAQ_PATH)
