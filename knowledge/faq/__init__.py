"""Answer citizens' questions from the circulars: a fuzzy, fast FAQ matcher.

The knowledge base is knowledge/faq.yaml (reviewable by a non-programmer). The parts:

- `data`: faq.yaml read once, the labelled question files, the result types;
- `features`: content words, word pairs, typos, "is it a question?";
- `tables`: the index built once per base (phrasings, inverted index, naive Bayes models);
- `scoring`: each candidate entry's scores for a question (rapidfuzz at the core);
- `models`: the learned parts (TF-IDF space, naive Bayes, re-ranker, scope model);
- `decision`: answer, suggest or refuse;
- `index`: `FaqIndex`, the one object the bot uses;
- `training`: evaluation and fitting, offline only (never imported by the bot).
"""

from typing import TYPE_CHECKING

from knowledge.faq.data import (
    FAQ_PATH,
    OUT_OF_SCOPE,
    TRAINING_PATH,
    EvalCase,
    FaqDataError,
    FaqEntry,
    FaqMatch,
    FaqResult,
    hotline,
    load_anchors,
    load_entries,
    load_eval,
    load_out_of_scope,
    message,
    read_faq,
)

__all__ = [
    "FAQ_PATH",
    "OUT_OF_SCOPE",
    "TRAINING_PATH",
    "Analysis",
    "Candidate",
    "EvalCase",
    "FaqDataError",
    "FaqEntry",
    "FaqIndex",
    "FaqMatch",
    "FaqResult",
    "hotline",
    "load_anchors",
    "load_entries",
    "load_eval",
    "load_out_of_scope",
    "message",
    "read_faq",
]

if TYPE_CHECKING:  # imported on first use (below); type checkers see them as usual
    from knowledge.faq.index import FaqIndex
    from knowledge.faq.scoring import Analysis, Candidate


def __getattr__(name: str) -> object:
    # The matcher itself (numpy, rapidfuzz) is imported on first use, not with the package:
    # most start-ups (a terminal chat, a channel) answer their first message without it.
    if name == "FaqIndex":
        from knowledge.faq.index import FaqIndex

        return FaqIndex
    if name in ("Analysis", "Candidate"):
        from knowledge.faq import scoring

        return getattr(scoring, name)
    raise AttributeError(name)
