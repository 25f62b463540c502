"""Vietnamese text normalisation shared by every fuzzy lookup.

Parents type without accents, in abbreviations and with typos; every matcher
compares folded text so "Hồ Chí Minh", "ho chi minh" and "HO CHI MINH" meet.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from pathlib import Path

from knowledge import yamlfile


def nfc(text: str) -> str:
    """Unicode NFC: the one form we store (Telex/VNI keyboards emit either form)."""
    return unicodedata.normalize("NFC", text)


def collapse_spaces(text: str) -> str:
    """Each run of blank space one space, none at the ends: `re.sub(r"\\s+", " ", text).strip()`
    (str.split() splits on the same Unicode blanks), a few times faster on Vietnamese text."""
    return " ".join(text.split())


_CACHED_BELOW = 0x2000  # Latin, combining marks and Vietnamese (U+1EA0-U+1EF9)


# đ and Đ (U+0111, U+0110) have no NFD decomposition: their bare letters by code point.
_D_WITH_STROKE = {0x0111: "d", 0x0110: "D"}


class _BareLetters(dict):
    """str.translate table, filled on first sight of each character: a marked letter maps
    to its NFD base letters, a combining mark to nothing, đ/Đ to d/D (NFD keeps them whole).
    Every message is folded at least once; per-character NFD and category lookups cost
    more than the engine's own work on it."""

    def __missing__(self, codepoint: int) -> str:
        decomposed = unicodedata.normalize("NFD", chr(codepoint))
        bare = "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")
        bare = bare.translate(_D_WITH_STROKE)
        if codepoint < _CACHED_BELOW:  # the table stays small whatever users type
            self[codepoint] = bare
        return bare


_BARE_LETTERS = _BareLetters()


class _WordCharacters(dict):
    """str.translate table keeping letters, digits and blank space and turning anything else
    (punctuation, symbols, "_") into a space: `re.sub(r"[^\\w\\s]", " ", text).replace("_", " ")`
    in one pass (the regex's \\w is str.isalnum() or "_", its \\s str.isspace())."""

    def __missing__(self, codepoint: int) -> str:
        char = chr(codepoint)
        kept = char if char.isalnum() or char.isspace() else " "
        if codepoint < _CACHED_BELOW:
            self[codepoint] = kept
        return kept


_WORD_CHARACTERS = _WordCharacters()


def strip_diacritics(text: str) -> str:
    """Remove Vietnamese tone and vowel marks; đ/Đ become d/D (NFD does not split them)."""
    if text.isascii():
        return text
    return text.translate(_BARE_LETTERS)


def has_diacritics(text: str) -> bool:
    """True when the text carries at least one Vietnamese mark (or đ)."""
    text = nfc(text)
    return strip_diacritics(text) != text


@functools.lru_cache(maxsize=4096)
def fold(text: str) -> str:
    """Lower-case, accent-free, punctuation-free, single-spaced: the matching key.

    Kept for the latest texts: one message is folded by several readers in turn (the
    hotline's "a person, please?", the interpreter, the FAQ's question check), and the
    labels a typed text is compared with are folded on every message."""
    text = strip_diacritics(nfc(text)).lower()
    return collapse_spaces(text.translate(_WORD_CHARACTERS))


# --- question normalisation (FAQ matching) ------------------------------------------

_TEENCODE_PATH = Path(__file__).with_name("teencode.yaml")
# "1900 9068", "0906.090.075" and "19009068" must meet: after folding, digit groups
# separated by single spaces are one number.
_DIGIT_GAP = re.compile(r"(?<=\d) (?=\d)")


# Words and what lies between them: re.split keeps the words at the odd indexes.
_WORDS = re.compile(r"(\w+)")


@functools.cache
def _teencode() -> tuple[dict[str, str], int]:
    """The abbreviation table (folded variant -> folded canonical spelling) and how many words
    its longest variant has."""
    raw = yamlfile.safe_load(_TEENCODE_PATH.read_text(encoding="utf-8"), kept_as=str(_TEENCODE_PATH)) or {}
    table: dict[str, str] = {}
    for canonical, variants in raw.items():
        target = fold(str(canonical))
        for variant in [canonical, *(variants or [])]:
            key = fold(str(variant))
            if key:
                # The canonical spelling maps to itself: as a variant of its own it is
                # consumed whole, so "giay khai sinh" is not read as "giay" + "khai sinh"
                # and expanded to "giay giay khai sinh".
                table.setdefault(key, target)
    return table, max((key.count(" ") + 1 for key in table), default=0)


def expand_abbreviations(folded: str) -> str:
    """Replace chat abbreviations in already folded text by their canonical spelling.

    Whole words only, the longest variant first, in one pass from the left, so a canonical
    form is never expanded again ("k" -> "khong" stays). The same as one whole-word regex of
    every variant, longest first, without compiling it (~40 ms in each process).
    """
    table, longest = _teencode()
    parts = _WORDS.split(folded)
    count = len(parts) // 2
    out = [parts[0]]
    start = 0
    while start < count:
        taken, target = 1, parts[2 * start + 1]
        for n in range(min(longest, count - start), 0, -1):
            # A variant of several words matches words one space apart, nothing else between.
            if any(parts[2 * k + 2] != " " for k in range(start, start + n - 1)):
                continue
            found = table.get(" ".join(parts[2 * start + 1 : 2 * (start + n) : 2]))
            if found is not None:
                taken, target = n, found
                break
        out += (target, parts[2 * (start + taken)])
        start += taken
    return "".join(out)


def abbreviation_words() -> frozenset[str]:
    """Every single-word spelling the abbreviation table knows (typo correction aims at them)."""
    table, _ = _teencode()
    return frozenset(k for k in table if " " not in k)


def fold_question(text: str) -> str:
    """fold() plus digit groups joined: "0906.090.075" -> "0906090075"."""
    return _DIGIT_GAP.sub("", fold(text))


def normalize_question(text: str) -> str:
    """The key a question is matched on: folded, numbers joined, abbreviations expanded.

    "Ko có SĐT thì đk đc ko?" -> "khong co sdt thi dang ky duoc khong".
    """
    return expand_abbreviations(fold_question(text))
