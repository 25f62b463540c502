"""What the matcher reads in a normalised question: content words and word pairs, their
weights, near-certain typos, and whether a text is a question at all."""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from rapidfuzz.distance import OSA

from knowledge import yamlfile
from knowledge.text import fold

# Vietnamese word lists the matcher reads as data (knowledge/faq/words.yaml).
_WORDS_PATH = Path(__file__).with_name("words.yaml")
_WORDS = yamlfile.safe_load(_WORDS_PATH.read_text(encoding="utf-8"), kept_as=str(_WORDS_PATH))

PAIR_WEIGHT = 0.5
"""Word pairs confirm words already counted; half weight keeps one pair from dominating."""

# Words that shape a question but say nothing about its topic. They stay in the fuzzy
# strings (they help "ở đâu" vs "thế nào") but carry no weight in keyword coverage.
# Not "anh": folded, the pronoun "anh" is also "ảnh" (photo), a topic of ours. Nor "ma":
# folded, "mà" (but) is also "mã" (the number, the OTP code).
STOPWORDS = frozenset(
    """
    a ah ad admin ak ban bac bi cac cach can cho chi chu co cua da dang de di do duoc
    e em gi ha hay hoi huhu khi khong kia la lam len luon minh moi nguoi mot nao nay ne
    nhe nho nhu o oi phai ra roi se tai thenao thi thoi toi tu va vao vay ve voi vui xin
    nhung giup cam on nha nguoi no neu cung hom nua het hien ro ay nhi
    """.split()
)


def content_tokens(normalized: str) -> list[str]:
    return [t for t in normalized.split() if t not in STOPWORDS]


def weight(feature: str, idf: float) -> float:
    return idf * PAIR_WEIGHT if " " in feature else idf


def word_key(tokens: Sequence[str]) -> str:
    return " ".join(sorted(set(tokens)))


def features(tokens: Sequence[str]) -> set[str]:
    """Content words and adjacent content-word pairs ("mat khau" is rarer than "mat")."""
    feats = set(tokens)
    feats.update(f"{a} {b}" for a, b in itertools.pairwise(tokens))
    return feats


def topic_items(topic: str) -> list[str]:
    """An out-of-scope topic's comma-separated items, each a phrasing of its own."""
    return [item.strip() for item in re.split(r"[,;:]", topic) if item.strip()]


def top(scores: np.ndarray, k: int) -> np.ndarray:
    """The positions of the k highest scores, in no particular order."""
    if len(scores) <= k:
        return np.arange(len(scores))
    return np.argpartition(-scores, k - 1)[:k]


# --- typos -----------------------------------------------------------------------------

# A folded Vietnamese syllable: optional initial consonant, a vowel group, optional final.
# Typo correction only touches words that cannot be Vietnamese ("bhty", "iphoen", "emai"):
# a real syllable one letter away from a known word ("thue" tax / "the" card, "san" /
# "sang") is a different word far more often than a typo.
SYLLABLE = re.compile(
    r"(?:ngh|ng|gh|gi|kh|nh|ph|qu|th|tr|ch|[bcdghklmnprstvx])?[aeiouy]{1,3}(?:ch|ng|nh|[cmnpt])?"
)


def typo_length_ok(size: int, candidate_size: int) -> bool:
    """The lengths typo_ok can accept: one letter more at most for short words, else the
    OSA distance bounds the difference."""
    if size <= 4:
        return candidate_size in (size, size + 1)
    return abs(candidate_size - size) <= (1 if size <= 7 else 2)


def typo_ok(word: str, candidate: str) -> bool:
    if SYLLABLE.fullmatch(word):
        return False
    if len(word) <= 4:
        # one swap ("bhty") or one letter missing at the end ("pas", "emai")
        return (len(candidate) == len(word) and sorted(candidate) == sorted(word)) or (
            len(candidate) == len(word) + 1 and candidate.startswith(word)
        )
    return OSA.distance(word, candidate) <= (1 if len(word) <= 7 else 2)


# --- two questions in one message ----------------------------------------------------

# Where a message's questions part: sentence ends first, then commas, then the words
# that join two questions ("và", "với lại", "còn", "hay là", "rồi thì"), on the text as typed.
_SENTENCES = re.compile(r"[?!.;\n]+")
_COMMAS = re.compile(r",")
_JOINERS = re.compile(r"\s(?:" + "|".join(_WORDS["joiners"]) + r")\s", re.IGNORECASE)
MAX_PARTS = 3


def question_parts(text: str) -> list[str]:
    """A message cut into the questions it may hold, in order (at most MAX_PARTS; none
    when it holds one): "Quên mật khẩu thì sao? Đổi số điện thoại được không" -> both."""
    for splitter in (_SENTENCES, _COMMAS, _JOINERS):
        parts = [p.strip() for p in splitter.split(text) if len(p.split()) >= 2]
        if len(parts) >= 2:
            return parts[:MAX_PARTS]
    return []


# --- is it a question? -------------------------------------------------------------------

# Question words after normalisation. Anywhere in the text: these only occur in questions.
QUESTION_ANYWHERE = re.compile(
    r"(?:^|\s)(?:gi|la gi|thenao|bao gio|bao nhieu|bao lau|o dau|tai sao|khi nao|lam sao|"
    r"cho hoi|xin hoi|muon hoi|lam the nao|co phai|phai khong|duoc khong|co khong|nhu nao|kieu gi)(?:\s|$)"
)
# Question phrases that no name or address contains, on folded text as typed.
PLAIN_QUESTION_PHRASES = (
    "la gi|the nao|bao gio|bao nhieu|bao lau|o dau|tai sao|khi nao|lam sao|cho hoi|"
    "xin hoi|muon hoi|co phai|phai khong|duoc khong|dc khong|dc ko|duoc ko|co khong|co ko|"
    "nhu nao|kieu gi"
)
# Question phrases read WITH their accents (lower case, as typed): folded, "thì sao" is
# "Thị Sao" and "làm gì" could be a place; accented, no name or address holds them.
ACCENTED_QUESTION_PHRASES = "|".join(_WORDS["accented_question_phrases"])
# Both searched in single-spaced text with a space added at each end (" la gi "): a phrase
# whole-word without `(?:^|\s)`, which made the regex engine try every position.
PLAIN_QUESTION = re.compile(f" (?:{PLAIN_QUESTION_PHRASES}) ")
PLAIN_QUESTION_ACCENTED = re.compile(f" (?:{ACCENTED_QUESTION_PHRASES})[ .!…]")
# Both kinds of phrase on the folded text, in one search: a text where it finds nothing (a
# name, an address, a number: most messages) holds neither ("thì sao." folds to "thi sao").
PLAIN_OR_ACCENTED_FOLDED = re.compile(
    " (?:"
    + "|".join([PLAIN_QUESTION_PHRASES, *(fold(p) for p in _WORDS["accented_question_phrases"])])
    + ") "
)
# At the end only, and only after at least one other word: alone, "không" / "chưa" / "có"
# are answers to the bot's own yes/no questions, not questions.
QUESTION_ENDINGS = frozenset({"khong", "chua", "nao", "sao", "ha", "may", "dau", "hong"})
