"""The FAQ matcher's learned parts: which of the close candidates a question means, and
whether a question the rules let through is ours at all.

Fuzzy similarity and keyword coverage (knowledge/faq/scoring.py) tell whether a question is ours
and find a dozen candidate entries; they are weakest between near-synonym entries
("đăng nhập" vs "đổi mật khẩu", "con cần gì" vs "chuẩn bị gì"). Two parts help there:

- `NaiveBayes`: a multinomial naive Bayes over character 2-4-grams (within words) and
  word 1-2-grams of the normalised phrasings, TF-IDF weighted: it learns from all of an
  entry's phrasings together which pieces of words point to it. Trained on faq.yaml's
  phrasings and the labelled questions of knowledge/faq_training.tsv, at index build, by
  counting; scored for the candidates only, so its cost per question does not grow with
  the base.
- `Ranker`: a logistic regression over each candidate's scores (question coverage,
  phrasing coverage, fuzzy similarity, naive-Bayes posterior, phrasing match) and their
  gaps to the best candidate's. Ten weights, fitted on the tuning sets (`vssid-bot faq
  --fit-ranker`, knowledge/faq/training.py) and kept in knowledge/faq_ranker.json; they describe how to weigh kinds of
  evidence, not entries, so they stay valid when faq.yaml grows.
- `Scope`: a logistic regression over one question's evidence (its best entry's scores,
  the best out-of-scope topic's, anchor and foreign words, the share of words the base
  has never seen, and a second naive Bayes that weighs "ours" against "not ours", each
  side's phrasings or topics and training questions): the probability the question is
  ours. The rules in knowledge/faq/decision.py refuse first; this refuses questions that merely
  share words with ours ("rút bhxh 1 lần", "quên mật khẩu sổ liên lạc"). Fitted on the
  tuning sets with the ranker.

The vectoriser reproduces scikit-learn's TfidfVectorizer (char_wb and word analysers,
sublinear tf, smoothed idf, l2 per analyser; tests/test_faq_ranker.py checks it against
scikit-learn) because scikit-learn's transform costs ~0.45 ms per single question, a
quarter of the whole latency budget; this one costs a few tens of microseconds.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np

RANKER_PATH = Path(__file__).resolve().parent.parent / "faq_ranker.json"

NB_ALPHA = 0.1
"""Additive smoothing (0.03 and 0.3 ranked fewer tuning questions first)."""
NB_TEMPERATURE = 10.0
"""Naive Bayes log-likelihoods are divided by this before the softmax over candidates:
raw, they are so far apart that the posterior is 0 or 1 (1 and 30 ranked worse)."""
DENSE_CELLS = 2_000_000
"""Classes x features up to which naive Bayes also keeps a dense table (16 MB at most)."""
CHAR_NGRAMS = (2, 4)
WORD_NGRAMS = (1, 2)

# A candidate's scores (knowledge/faq/scoring.py Candidate fields, in that order).
FEATURES = ("question_coverage", "phrasing_coverage", "fuzzy", "naive_bayes", "phrasing_match")
SCOPE_FEATURES = (
    "score",  # the best entry's combined score, 0-1
    *FEATURES,  # that entry's components
    "out_of_scope_score",  # the best out-of-scope topic's combined score
    "out_of_scope_lead",  # how far that topic is ahead of the best entry
    "foreign_word",  # a word only out-of-scope topics use, and no anchor
    "anchor_word",  # vssid, bảo hiểm xã hội, tờ khai...
    "unknown_share",  # share of the question's weight in words and pairs the base lacks
    "length",  # log(1 + content words)
    "ours_log_odds",  # naive Bayes, entries' phrasings against out-of-scope topics, / 10
)


def char_ngrams(text: str) -> list[str]:
    """Character n-grams inside space-padded words (scikit-learn's "char_wb")."""
    return list(itertools.chain.from_iterable(map(_word_char_ngrams, text.split())))


@functools.lru_cache(maxsize=1 << 16)
def _word_char_ngrams(word: str) -> tuple[str, ...]:
    # Cached: a base and its questions reuse a few thousand words over and over.
    grams: list[str] = []
    lo, hi = CHAR_NGRAMS
    padded = f" {word} "
    size = len(padded)
    for n in range(lo, hi + 1):
        if n >= size:
            # a word no longer than n yields itself once, as scikit-learn's does
            grams.append(padded)
            break
        grams.extend([padded[i : i + n] for i in range(size - n + 1)])
    return tuple(grams)


def word_ngrams(text: str) -> list[str]:
    words = text.split()
    grams = list(words)
    for n in range(2, WORD_NGRAMS[1] + 1):
        grams.extend(" ".join(words[i : i + n]) for i in range(len(words) - n + 1))
    return grams


ANALYSERS = (char_ngrams, word_ngrams)


class TfidfSpace:
    """Sparse TF-IDF vectors of normalised text; each analyser's part is l2-normalised."""

    def __init__(self, texts: Sequence[str]) -> None:
        self._vocab: list[dict[str, int]] = []
        idf: list[float] = []
        offset = 0
        n_docs = len(texts)
        for analyse in ANALYSERS:
            df: Counter[str] = Counter()
            for text in texts:
                df.update(set(analyse(text)))
            grams = sorted(df)
            vocab = {g: offset + i for i, g in enumerate(grams)}
            idf.extend(math.log((1 + n_docs) / (1 + df[g])) + 1.0 for g in grams)
            self._vocab.append(vocab)
            offset += len(vocab)
        self._idf = np.array(idf)
        self.size = offset
        # A word's character n-grams are the same in every text: their ids are looked up
        # once per word (the base and its questions reuse a few thousand words).
        self._char_ids = functools.lru_cache(maxsize=1 << 16)(self._word_char_ids)

    def _word_char_ids(self, word: str) -> tuple[int, ...]:
        vocab = self._vocab[0]
        return tuple(i for i in map(vocab.get, _word_char_ngrams(word)) if i is not None)

    def vector(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """(sorted feature ids, weights); n-grams outside the vocabulary are dropped."""
        id_parts: list[np.ndarray] = []
        weight_parts: list[np.ndarray] = []
        word_vocab = self._vocab[1]
        # In ANALYSERS' order: character n-grams, then word n-grams.
        for found in (
            list(itertools.chain.from_iterable(map(self._char_ids, text.split()))),
            [i for i in map(word_vocab.get, word_ngrams(text)) if i is not None],
        ):
            if not found:
                continue
            # np.unique sorts, and each analyser's ids lie above the previous one's.
            ids, tf = np.unique(np.array(found, dtype=np.int64), return_counts=True)
            weights = (1.0 + np.log(tf)) * self._idf[ids]
            id_parts.append(ids)
            weight_parts.append(weights / math.sqrt(float(weights @ weights)))
        if not id_parts:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        return np.concatenate(id_parts), np.concatenate(weight_parts)


class NaiveBayes:
    """Multinomial naive Bayes over `TfidfSpace` vectors, one class per entry.

    log P(entry | question) up to a constant is
        sum_f x_f * log((N_f,e + a) / (N_e + a * V)) + log prior_e
    and, as the words an entry has never seen contribute x_f * log a to every entry alike,
    only the features the entry has need reading: log1p(N_f,e / a) per (entry, feature),
    under sorted keys entry * V + feature, so scoring a few candidates is one binary
    search per (candidate, question feature) whatever the size of the base.
    """

    def __init__(
        self,
        space: TfidfSpace,
        vectors: Sequence[tuple[np.ndarray, np.ndarray]],
        owners: Sequence[int],
        classes: int,
    ) -> None:
        """`vectors` are `space.vector` of the training texts (computed once by the caller
        and shared by both models), `owners` their classes."""
        self.space = space
        owner_arr = np.repeat(np.asarray(owners, dtype=np.int64), [len(ids) for ids, _ in vectors])
        feature_arr = np.concatenate([ids for ids, _ in vectors]) if vectors else np.zeros(0, dtype=np.int64)
        value_arr = np.concatenate([w for _, w in vectors]) if vectors else np.zeros(0)
        # Sum duplicates (entry, feature) in one pass; the sorted keys entry * V + feature
        # are then the rows, entry by entry, that scoring looks features up in.
        key = owner_arr * space.size + feature_arr
        self._keys, inverse = np.unique(key, return_inverse=True)
        counts = np.bincount(inverse, weights=value_arr, minlength=len(self._keys))
        self._values = np.log1p(counts / NB_ALPHA)
        totals = np.bincount(self._keys // space.size, weights=counts, minlength=classes)
        self._log_denominator = np.log(totals + NB_ALPHA * space.size)
        docs = np.bincount(np.asarray(owners, dtype=np.int64), minlength=classes).astype(np.float64)
        with np.errstate(divide="ignore"):
            self._log_prior = np.log(docs / max(1.0, docs.sum()))
        # A small table (the ours-against-theirs model, a base of a few dozen entries) is
        # also kept dense: a lookup is then an index, not a binary search.
        self._dense: np.ndarray | None = None
        if classes * space.size <= DENSE_CELLS:
            dense = np.zeros(classes * space.size)
            dense[self._keys] = self._values
            self._dense = dense.reshape(classes, space.size)

    def log_likelihoods(self, vector: tuple[np.ndarray, np.ndarray], entries: Sequence[int]) -> np.ndarray:
        """Joint log-likelihood of each given class for a question's `space.vector`, up to a
        constant shared by all."""
        entries_arr = np.asarray(entries, dtype=np.int64)
        ids, x = vector
        sums = np.zeros(len(entries_arr))
        if len(ids) and self._dense is not None:
            sums = self._dense[entries_arr[:, None], ids[None, :]] @ x
        elif len(ids) and len(self._keys):
            # every (candidate, question feature) pair, looked up among the stored keys
            wanted = entries_arr[:, None] * self.space.size + ids[None, :]
            pos = np.minimum(np.searchsorted(self._keys, wanted), len(self._keys) - 1)
            sums = np.where(self._keys[pos] == wanted, self._values[pos] * x, 0.0).sum(axis=1)
        return sums - x.sum() * self._log_denominator[entries_arr] + self._log_prior[entries_arr]

    def posterior(self, vector: tuple[np.ndarray, np.ndarray], entries: Sequence[int]) -> np.ndarray:
        """Softmax over the given entries of the tempered log-likelihoods."""
        if not len(entries):
            return np.zeros(0)
        ll = self.log_likelihoods(vector, entries) / NB_TEMPERATURE
        p = np.exp(ll - ll.max())
        return p / p.sum()


def ranker_rows(components: np.ndarray) -> np.ndarray:
    """The ranker's inputs for one question's candidates: each score and its gap to the
    best candidate's (a candidate's standing among the others matters, not only its value)."""
    return np.hstack([components, components - components.max(axis=0)])


class _Linear:
    """Weights of a logistic regression over named features, as kept in faq_ranker.json."""

    name: str
    features: tuple[str, ...]

    def __init__(self, coefficients: Sequence[float], intercept: float) -> None:
        self.coefficients = np.asarray(coefficients, dtype=np.float64)
        self.intercept = float(intercept)
        if self.coefficients.shape != (len(self.features),):
            raise ValueError(f"the {self.name} needs {len(self.features)} coefficients")

    def to_json(self) -> dict[str, Any]:
        return {
            "features": list(self.features),
            "coefficients": [round(float(c), 6) for c in self.coefficients],
            "intercept": round(self.intercept, 6),
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Self:
        # Weights saved for other features (or another order) would be silently misread.
        if tuple(raw.get("features", cls.features)) != cls.features:
            raise ValueError(f"the {cls.name}'s saved features differ from {cls.features}: refit")
        return cls(raw["coefficients"], raw["intercept"])


class Ranker(_Linear):
    """Logistic regression over `ranker_rows`; higher logit = likelier the entry asked about."""

    name = "ranker"
    features = (*FEATURES, *(f"{f}_gap_to_best" for f in FEATURES))

    def logits(self, components: np.ndarray) -> np.ndarray:
        return ranker_rows(components) @ self.coefficients + self.intercept

    @classmethod
    def neutral(cls) -> Ranker:
        """All weights zero: keeps the candidates in their given order (used while fitting)."""
        return cls([0.0] * len(cls.features), 0.0)


class Scope(_Linear):
    """Logistic regression over one question's `SCOPE_FEATURES`: P(the question is ours)."""

    name = "scope model"
    features = SCOPE_FEATURES

    def probability(self, row: np.ndarray) -> float:
        logit = float(row @ self.coefficients) + self.intercept
        # Written both ways so exp() cannot overflow, whatever the features.
        if logit >= 0:
            return 1.0 / (1.0 + math.exp(-logit))
        return math.exp(logit) / (1.0 + math.exp(logit))

    @classmethod
    def permissive(cls) -> Scope:
        """Every question is ours: the rules alone decide (used while fitting)."""
        return cls([0.0] * len(cls.features), 50.0)


@dataclass(frozen=True)
class LearnedWeights:
    """Both models' weights, kept together in faq_ranker.json (they are fitted together)."""

    ranker: Ranker
    scope: Scope

    @classmethod
    def load(cls, path: Path = RANKER_PATH) -> LearnedWeights:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return cls(Ranker.from_json(raw["ranker"]), Scope.from_json(raw["scope"]))

    def save(self, path: Path = RANKER_PATH, trained_on: Sequence[str] = ()) -> None:
        doc = {
            "about": "Weights of the FAQ re-ranker and scope model (knowledge/faq/models.py); "
            "regenerate with: vssid-bot faq --fit-ranker",
            "trained_on": list(trained_on),
            "ranker": self.ranker.to_json(),
            "scope": self.scope.to_json(),
        }
        path.write_text(json.dumps(doc, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
