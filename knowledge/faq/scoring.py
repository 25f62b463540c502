"""How well each candidate entry fits a question, all on `normalize_question` text (no
accents, teencode expanded, numbers joined):

1. Keyword coverage: the share of the question's content words and word pairs, weighted
   by how rare they are in the base (IDF), that the entry's phrasings also contain.
   Words the base has never seen count fully against the question, which is what sends
   "gia hạn hộ chiếu" or "thời tiết" to a refusal even when the sentence shape
   ("... ở đâu", "... thế nào") resembles an entry. Computed for every entry at once with
   numpy over the inverted index; it also picks the candidates for step 2.
2. Fuzzy similarity (rapidfuzz) between the question and each candidate's phrasings:
   a mix of token_set_ratio (word subsets, short questions) and token_sort_ratio (word
   order and typos); best phrasing per entry. Also the phrasing coverage (the share of the
   best phrasing's own weighted words the question has) and the phrasing match (their
   weighted overlap both ways, Dice), which prefers the phrasing that says what the
   question says, no more and no less.
3. The entries' naive Bayes posterior among the candidates (knowledge/faq/models.py).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from rapidfuzz import fuzz, process

from knowledge.faq.features import (
    SYLLABLE,
    content_tokens,
    features,
    top,
    typo_ok,
    weight,
    word_key,
)
from knowledge.faq.tables import Tables
from knowledge.text import expand_abbreviations, fold_question

SCORE_WEIGHTS = (0.15, 0.15, 0.7)
"""Final score mix: question coverage, phrasing match, fuzzy similarity (chosen on the
tuning sets, cross-fitted; (0.2, 0.1, 0.7) and (0.2, 0.2, 0.6) do slightly worse)."""
FUZZY_MIX = (0.6, 0.4)
"""Fuzzy similarity mix: token_set_ratio, token_sort_ratio (partial_ratio scored worse)."""
CANDIDATES = 12
"""Entries re-ranked with rapidfuzz per question (16 gives the same tuning figures; 10 or 8 fewer)."""
DECOY_CANDIDATES = 6
"""Out-of-scope topics re-ranked per question (3 to 12 give the same tuning figures)."""
TYPO_CHOICES = 5
"""Known words of close length a non-Vietnamese word is checked against for a typo."""
SET_RATIO_ENTRIES = 6
"""Entries (the best by the cheaper scores) whose phrasings get token_set_ratio, the costly
scorer; the others keep token_sort. 4 to 12 give the same tuning figures; 3 answers one
more wrongly."""
SET_RATIO_PHRASINGS = 10
"""Phrasings per such entry scored with token_set_ratio: 10 gives the same tuning figures
as all of them; 6 fewer."""


class Candidate(NamedTuple):
    """One candidate entry's scores for a question, each 0-1; the fields after `entry` are
    the re-ranker's FEATURES, in order."""

    entry: int  # position in the index (out-of-scope topics after the real entries)
    question_coverage: float  # share of the question's weighted words the entry has
    phrasing_coverage: float  # share of the best phrasing's own weighted words the question has
    fuzzy: float  # best rapidfuzz similarity to a phrasing
    naive_bayes: float  # posterior among the real candidates (0 for topics)
    phrasing_match: float  # best phrasing's overlap with the question, both ways (Dice)

    def scores(self) -> tuple[float, ...]:
        return tuple(self[1:])


NO_CANDIDATE = Candidate(0, 0.0, 0.0, 0.0, 0.0, 0.0)


@dataclass(frozen=True)
class Analysis:
    """What the decision needs: per-candidate components and the out-of-scope signals."""

    components: tuple[Candidate, ...]
    foreign: frozenset[str]  # out-of-scope-only words or pairs the question contains
    anchored: bool  # the question names one of our anchor words (vssid, bhxh, tờ khai...)
    unknown_share: float  # share of the question's weight in words and pairs the base lacks
    content_words: int
    ours_log_odds: float  # naive Bayes: entries' phrasings against out-of-scope topics


def combined(candidate: Candidate) -> float:
    """A candidate's score, 0-1: SCORE_WEIGHTS over its question coverage, phrasing match
    and fuzzy similarity (the other scores are the learned models')."""
    wq, wp, wf = SCORE_WEIGHTS
    return wq * candidate.question_coverage + wp * candidate.phrasing_match + wf * candidate.fuzzy


def normalize(tables: Tables, text: str) -> str:
    """normalize_question plus correction of near-certain typos against the base's words."""
    fixed: list[str] = []
    for w in fold_question(text).split():
        # A real syllable ("gai", "lop") is never taken for a typo (see typo_ok): no search.
        if w in tables.typo_known or len(w) < 3 or not w.isalpha() or SYLLABLE.fullmatch(w):
            fixed.append(w)
            continue
        targets = tables.typo_targets.get(len(w), [])
        # The closest few, not only the closest: "bhty" is as close to "bhtn" as to
        # "bhyt", and only the swap is a typo typo_ok accepts.
        hits = process.extract(w, targets, scorer=fuzz.ratio, score_cutoff=66, limit=TYPO_CHOICES)
        fixed.append(next((hit[0] for hit in hits if typo_ok(w, hit[0])), w))
    return expand_abbreviations(" ".join(fixed))


def analyse(tables: Tables, query: str) -> Analysis:
    """Everything the decision reads, for a question already `normalize`d."""
    content = content_tokens(query)
    feats = features(content)
    weights = [(tables.idf.get(f), weight(f, tables.unknown_idf)) for f in sorted(feats)]
    unknown = sum(fallback for known, fallback in weights if known is None)
    total = sum(fallback if known is None else known for known, fallback in weights)
    # Both naive Bayes models share the space: the question is vectorised once.
    vector = tables.bayes.space.vector(query)
    ours, theirs = tables.ours_bayes.log_likelihoods(vector, [0, 1]) if query else (0.0, 0.0)
    return Analysis(
        components=tuple(_components(tables, query, vector)),
        foreign=frozenset(feats & tables.foreign),
        anchored=any(a in f" {query} " for a in tables.anchors),
        unknown_share=unknown / total if total else 0.0,
        content_words=len(content),
        ours_log_odds=float(ours - theirs),
    )


@dataclass(frozen=True)
class _Query:
    """A question's content words, its known features with their weights, and the weight
    of all its features."""

    content: list[str]
    weights: dict[str, float]
    total: float


def _query_weights(tables: Tables, query: str) -> _Query | None:
    # A number the base has never seen ("3 ngày", "con 7 tuổi") says nothing about the topic.
    content = [t for t in content_tokens(query) if not t.isdigit() or t in tables.idf]
    total = 0.0
    weights: dict[str, float] = {}
    for f in sorted(features(content)):  # sorted: the same sums whatever the hash seed
        w = tables.idf.get(f)
        if w is None:
            w = weight(f, tables.unknown_idf)
        else:
            weights[f] = w
        total += w
    return _Query(content, weights, total) if weights else None


def _candidates(tables: Tables, q: _Query) -> tuple[list[int], np.ndarray]:
    """The entries worth a fuzzy look, and every entry's keyword coverage."""
    # Every known feature's weight onto the entries that have it, in one pass.
    postings = [tables.postings[f] for f in q.weights]
    coverage = (
        np.bincount(
            np.concatenate(postings),
            weights=np.repeat(list(q.weights.values()), [len(p) for p in postings]),
            minlength=tables.size,
        )
        / q.total
    )
    # The best real entries and, separately, the best out-of-scope topics, so a crowd of
    # real entries sharing one common word cannot keep a fitting topic out.
    real = tables.real
    cand = [
        int(n)
        for part, offset, k in ((coverage[:real], 0, CANDIDATES), (coverage[real:], real, DECOY_CANDIDATES))
        for n in top(part, k) + offset
        if coverage[n] > 0
    ]
    # Short questions cover many entries fully ("đăng ký vssid"), and which of the tied make
    # the cut is arbitrary: an entry with a phrasing of exactly the question's words does.
    cand += [n for n in tables.exact_words.get(word_key(q.content), ()) if n not in cand]
    return [n for n in cand if tables.text_start[n + 1] > tables.text_start[n]], coverage


def _components(tables: Tables, query: str, vector: tuple[np.ndarray, np.ndarray]) -> list[Candidate]:
    """The candidates' scores (the naive-Bayes posterior is over the real entries among them)."""
    q = _query_weights(tables, query)
    if q is None:
        return []
    cand, coverage = _candidates(tables, q)
    if not cand:
        return []
    ranges = [range(tables.text_start[n], tables.text_start[n + 1]) for n in cand]
    text_ids = np.fromiter(itertools.chain.from_iterable(ranges), dtype=np.int64)
    starts = np.cumsum([0, *map(len, ranges[:-1])])
    shared = _shared_weight(tables, ranges, text_ids, q.weights)
    own = tables.text_weight[text_ids]
    pcov = shared / own
    best_pcov = np.maximum.reduceat(pcov, starts)
    best_match = np.maximum.reduceat(2 * shared / (own + q.total), starts)
    cheap = SCORE_WEIGHTS[0] * coverage[np.asarray(cand)] + SCORE_WEIGHTS[1] * best_match
    best_fuzzy = _fuzzy(tables, query, cand, text_ids, starts, pcov, best_pcov, cheap)
    real = [n for n in cand if n < tables.real]
    bayes = dict(zip(real, tables.bayes.posterior(vector, real), strict=True))
    return [
        Candidate(n, float(coverage[n]), float(p), float(f), float(bayes.get(n, 0.0)), float(m))
        for n, p, f, m in zip(cand, best_pcov, best_fuzzy, best_match, strict=True)
    ]


def _fuzzy(
    tables: Tables,
    query: str,
    cand: list[int],
    text_ids: np.ndarray,
    starts: np.ndarray,
    pcov: np.ndarray,
    best_pcov: np.ndarray,
    cheap: np.ndarray,
) -> np.ndarray:
    """Each candidate's best fuzzy similarity to one of its phrasings, 0-1.

    Only phrasings that share a content word with the question are compared (the same
    figures as scoring them all, at about two thirds of the cost); an entry reached
    through its keywords alone is scored on its first phrasing."""
    keep = pcov > 0
    keep[starts[best_pcov == 0]] = True
    kept = np.flatnonzero(keep)
    chosen = text_ids[kept]
    # token_sort_ratio is ratio() on sorted words, and phrasings are stored sorted:
    # rapidfuzz then compares many strings at once, several times faster.
    sorted_query = " ".join(sorted(query.split()))
    sort_sims = process.cdist([sorted_query], tables.sorted_texts[chosen].tolist(), scorer=fuzz.ratio)[0]
    sort_only = np.zeros(len(text_ids))
    sort_only[kept] = sort_sims / 100.0
    best = _set_ratio_choices(tables, cand, kept, starts, sort_sims, pcov, cheap, sort_only)
    set_sims = sort_sims.copy()
    finalists = tables.texts[chosen[best]].tolist()
    set_sims[best] = process.cdist([query], finalists, scorer=fuzz.token_set_ratio)[0]
    sims = np.zeros(len(text_ids))
    sims[kept] = (FUZZY_MIX[0] * set_sims + FUZZY_MIX[1] * sort_sims) / 100.0
    return np.maximum.reduceat(sims, starts)


def _set_ratio_choices(
    tables: Tables,
    cand: list[int],
    kept: np.ndarray,
    starts: np.ndarray,
    sort_sims: np.ndarray,
    pcov: np.ndarray,
    cheap: np.ndarray,
    sort_only: np.ndarray,
) -> np.ndarray:
    """Which kept phrasings get token_set_ratio, the costly scorer: those of the
    SET_RATIO_ENTRIES entries that lead on the cheaper scores, and there their
    SET_RATIO_PHRASINGS most promising phrasings (by token_sort and phrasing coverage); the
    rest keep their token_sort score, which token_set_ratio rarely falls below. Out-of-scope
    topics never get it: token_set_ratio would score "đổi mật khẩu" 100 against "đổi mật
    khẩu tiktok" (a subset), and the question never named TikTok."""
    cand_arr = np.asarray(cand)
    cheap = cheap + SCORE_WEIGHTS[2] * np.maximum.reduceat(sort_only, starts)
    cheap[cand_arr >= tables.real] = -1.0
    finalists = np.zeros(len(cand), dtype=bool)
    finalists[np.argsort(-cheap)[:SET_RATIO_ENTRIES]] = True
    finalists &= cand_arr < tables.real
    group = np.searchsorted(starts, kept, side="right") - 1
    order = np.lexsort((-(sort_sims / 100.0 + pcov[kept]), group))
    rank = np.arange(len(order)) - np.searchsorted(group[order], group[order], side="left")
    return order[(rank < SET_RATIO_PHRASINGS) & finalists[group[order]]]


def _shared_weight(
    tables: Tables, ranges: list[range], text_ids: np.ndarray, weights: dict[str, float]
) -> np.ndarray:
    """The weight of each candidate phrasing's features that the question has too.

    Read off the phrasings' feature rows, so the work is the size of the candidates'
    phrasings, not of the base (a long question's common words would otherwise touch
    most phrasings of a big base)."""
    query_weights = np.zeros(len(tables.feature_id))
    for f, w in weights.items():
        query_weights[tables.feature_id[f]] = w
    bounds = tables.text_feature_start
    ids = np.concatenate([tables.text_feature_ids[bounds[r.start] : bounds[r.stop]] for r in ranges])
    running = np.concatenate(([0.0], np.cumsum(query_weights[ids])))
    lengths = bounds[text_ids + 1] - bounds[text_ids]
    ends = np.cumsum(lengths)
    return running[ends] - running[ends - lengths]
