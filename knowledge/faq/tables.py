"""The index a question is scored against, built once from the entries, the out-of-scope
topics, the anchors and the training questions: phrasings, an inverted index with IDF
weights, both naive Bayes models, the foreign words and the typo targets."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from knowledge.faq.data import OUT_OF_SCOPE, EvalCase, FaqDataError, FaqEntry
from knowledge.faq.features import (
    SYLLABLE,
    content_tokens,
    features,
    topic_items,
    typo_length_ok,
    weight,
    word_key,
)
from knowledge.faq.models import NaiveBayes, TfidfSpace
from knowledge.text import abbreviation_words, normalize_question

UNKNOWN_WORD_WEIGHT = 1.0
"""IDF of a word the base has never seen, relative to the rarest known word."""


@dataclass(frozen=True)
class Phrasings:
    """Every phrasing, normalised, entry after entry (out-of-scope topics after the real
    entries, each comma-separated item of a topic a phrasing of its own)."""

    texts: list[str]
    owners: list[int]  # the entry (or topic) of each phrasing
    features: list[frozenset[str]]  # each phrasing's content words and pairs
    entry_features: list[set[str]]  # each entry's, keywords included
    exact_words: dict[str, set[int]]  # a phrasing's content words, sorted -> its entries


@dataclass(frozen=True)
class Tables:
    """What scoring reads. Built once; read-only afterwards (thread-safe)."""

    real: int  # the real entries; positions from here on are out-of-scope topics
    size: int  # real entries and topics
    texts: np.ndarray  # object array of the normalised phrasings
    sorted_texts: np.ndarray  # the same with their words sorted (token_sort_ratio is ratio on them)
    exact_words: dict[str, set[int]]
    text_start: np.ndarray  # per entry, where its phrasings start in `texts` (+ the end)
    postings: dict[str, np.ndarray]  # feature -> entries that have it
    idf: dict[str, float]  # feature -> its weight (IDF, halved for pairs)
    unknown_idf: float
    text_weight: np.ndarray  # each phrasing's total feature weight
    feature_id: dict[str, int]
    text_feature_ids: np.ndarray  # each phrasing's features as ids, phrasing after phrasing
    text_feature_start: np.ndarray
    foreign: frozenset[str]
    anchors: tuple[str, ...]  # " normalised anchor " (space-padded for a whole-word test)
    typo_known: frozenset[str]
    typo_targets: dict[int, list[str]]
    bayes: NaiveBayes  # one class per real entry
    ours_bayes: NaiveBayes  # class 0: ours, class 1: out of scope


def decoy_entries(out_of_scope: Sequence[str]) -> list[FaqEntry]:
    """Known out-of-scope topics as entries, so they compete for a question (winning means
    "refuse"). Each item is one phrasing: "bằng lái" must meet the item "bằng lái", not a
    whole line of unrelated items that drowns the fuzzy score."""
    return [
        FaqEntry(f"{OUT_OF_SCOPE}#{i}", tuple(topic_items(q)), "", "", None, False)
        for i, q in enumerate(out_of_scope)
    ]


def build_tables(
    entries: Sequence[FaqEntry],
    out_of_scope: Sequence[str],
    anchors: Sequence[str],
    training: Sequence[EvalCase],
) -> Tables:
    everything = [*entries, *decoy_entries(out_of_scope)]
    real = len(entries)
    phr = _phrasings(everything)
    bayes, ours_bayes = _bayes_models(phr, entries, real, training)
    postings, idf, unknown_idf = _inverted_index(phr.entry_features)
    feature_id = {f: i for i, f in enumerate(postings)}
    typo_known, typo_targets = _typo_tables(postings, phr.texts)
    return Tables(
        real=real,
        size=len(everything),
        texts=np.array(phr.texts, dtype=object),
        sorted_texts=np.array([" ".join(sorted(t.split())) for t in phr.texts], dtype=object),
        exact_words=phr.exact_words,
        text_start=_starts(phr.owners, len(everything)),
        postings=postings,
        idf=idf,
        unknown_idf=unknown_idf,
        text_weight=np.array([sum(idf[f] for f in sorted(pf)) or 1.0 for pf in phr.features]),
        feature_id=feature_id,
        text_feature_ids=np.fromiter(
            (feature_id[f] for pf in phr.features for f in sorted(pf)), dtype=np.int64
        ),
        text_feature_start=np.cumsum([0, *map(len, phr.features)]),
        foreign=_foreign_words(entries, phr.entry_features[:real], out_of_scope),
        anchors=tuple(f" {normalize_question(a)} " for a in anchors if normalize_question(a)),
        typo_known=typo_known,
        typo_targets=typo_targets,
        bayes=bayes,
        ours_bayes=ours_bayes,
    )


def _phrasings(entries: Sequence[FaqEntry]) -> Phrasings:
    """Phrasings (not keywords: a one-word keyword would be a perfect fuzzy subset of every
    question containing that word) are the fuzzy and phrasing-coverage targets."""
    phr = Phrasings([], [], [], [], {})
    for n, entry in enumerate(entries):
        feats: set[str] = set()
        for phrase in entry.questions:
            norm = normalize_question(phrase)
            if not norm:
                continue
            tokens = content_tokens(norm)
            pf = frozenset(features(tokens))
            phr.texts.append(norm)
            phr.exact_words.setdefault(word_key(tokens), set()).add(n)
            phr.owners.append(n)
            phr.features.append(pf)
            feats |= pf
        for keyword in entry.keywords:
            feats |= features(content_tokens(normalize_question(keyword)))
        phr.entry_features.append(feats)
    return phr


def _bayes_models(
    phr: Phrasings, entries: Sequence[FaqEntry], real: int, training: Sequence[EvalCase]
) -> tuple[NaiveBayes, NaiveBayes]:
    """The entries' model (phrasings and training questions of ours) and the ours-against-
    theirs model (class 0: entries' phrasings and training questions, class 1: the topics'
    items and out-of-scope training questions). Training questions say how people actually
    word an entry; they stay out of the fuzzy and coverage scores, whose cost grows with
    the phrasings a question is compared with."""
    examples = _training_examples(entries, training)
    texts, owners = phr.texts, phr.owners
    space = TfidfSpace(texts + [text for text, _ in examples])
    vectors = [space.vector(t) for t in texts]
    ours = [(space.vector(text), n) for text, n in examples if n is not None]
    theirs = [space.vector(text) for text, n in examples if n is None]
    real_texts = sum(1 for n in owners if n < real)
    bayes = NaiveBayes(
        space, vectors[:real_texts] + [v for v, _ in ours], owners[:real_texts] + [n for _, n in ours], real
    )
    ours_bayes = NaiveBayes(
        space,
        vectors + [v for v, _ in ours] + theirs,
        [int(n >= real) for n in owners] + [0] * len(ours) + [1] * len(theirs),
        2,
    )
    return bayes, ours_bayes


def _training_examples(
    entries: Sequence[FaqEntry], training: Sequence[EvalCase]
) -> list[tuple[str, int | None]]:
    """Training questions, normalised, with their entry's position (None: out of scope)."""
    position = {i: n for n, e in enumerate(entries) for i in (e.id, *e.formerly)}
    examples: list[tuple[str, int | None]] = []
    for case in training:
        if case.expected != OUT_OF_SCOPE and case.expected not in position:
            raise FaqDataError(f"training question {case.question!r}: no entry {case.expected!r}")
        if norm := normalize_question(case.question):
            examples.append((norm, position.get(case.expected)))
    return examples


def _starts(owners: list[int], size: int) -> np.ndarray:
    """Per entry, the start of its phrasings (they are stored entry by entry), so a
    candidate's phrasings are one slice and per-entry maxima one reduceat."""
    starts = np.zeros(size + 1, dtype=np.int64)
    for n in owners:
        starts[n + 1] += 1
    np.cumsum(starts, out=starts)
    return starts


def _inverted_index(
    entry_features: list[set[str]],
) -> tuple[dict[str, np.ndarray], dict[str, float], float]:
    """feature -> entries, IDF over entries (smoothed, always > 0), and the weight of an
    unknown word: more than the rarest known word, as an unseen topic word ("facebook",
    "visa") must pull coverage down harder than a known one pulls it up."""
    postings: dict[str, list[int]] = {}
    for n, feats in enumerate(entry_features):
        for f in sorted(feats):  # sorted: the same tables whatever the hash seed
            postings.setdefault(f, []).append(n)
    total = len(entry_features)
    arrays = {f: np.asarray(ns, dtype=np.int32) for f, ns in postings.items()}
    idf = {f: weight(f, math.log(1 + total / len(ns))) for f, ns in postings.items()}
    return arrays, idf, UNKNOWN_WORD_WEIGHT * math.log(1 + total)


def _foreign_words(
    entries: Sequence[FaqEntry], entry_features: list[set[str]], out_of_scope: Sequence[str]
) -> frozenset[str]:
    """Words only the out-of-scope topics have, that no entry (questions, keywords or
    answer) uses and that cannot be a folded Vietnamese syllable: "facebook", "vneid",
    "tiktok"; not "xe" or "tho". Not word pairs: with ~200 topic items, pairs of two words
    of ours ("trên android", "chuyển tiền") would refuse questions of ours."""
    ours: set[str] = set().union(*entry_features)
    for entry in entries:
        ours |= features(content_tokens(normalize_question(entry.answer)))
    return frozenset(
        f
        for topic in out_of_scope
        for item in topic_items(topic)
        for f in content_tokens(normalize_question(item))
        if f not in ours and not SYLLABLE.fullmatch(f)
    )


def _typo_tables(
    postings: dict[str, np.ndarray], texts: list[str]
) -> tuple[frozenset[str], dict[int, list[str]]]:
    """The words typos are corrected to (the base's and the abbreviation table's: typos are
    corrected before abbreviations are expanded, so "pas" can reach "pass"), and per
    length the ones typo_ok could accept."""
    words = {f for f in postings if " " not in f}
    for t in texts:
        words.update(t.split())
    targets = sorted(words | abbreviation_words())
    longest = max(map(len, targets), default=0)
    by_length = {size: [t for t in targets if typo_length_ok(size, len(t))] for size in range(3, longest + 3)}
    return frozenset(targets), by_length
