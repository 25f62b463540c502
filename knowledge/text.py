"""Vietnamese text normalisation shared by every fuzzy lookup.

Parents type without accents, in abbreviations and with typos; every matcher
compares folded text so "Hồ Chí Minh", "ho chi minh" and "HO CHI MINH" meet.
"""

from __future__ import annotations

import re
import unicodedata

_SPACES = re.compile(r"\s+")
_NON_WORD = re.compile(r"[^\w\s]", re.UNICODE)


def nfc(text: str) -> str:
    """Unicode NFC: the one form we store (Telex/VNI keyboards emit either form)."""
    return unicodedata.normalize("NFC", text)


def collapse_spaces(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def strip_diacritics(text: str) -> str:
    """Remove Vietnamese tone and vowel marks; đ/Đ become d/D (NFD does not split them)."""
    decomposed = unicodedata.normalize("NFD", text)
    bare = "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")
    return bare.replace("đ", "d").replace("Đ", "D")


def has_diacritics(text: str) -> bool:
    """True when the text carries at least one Vietnamese mark (or đ)."""
    return strip_diacritics(nfc(text)) != nfc(text)


def fold(text: str) -> str:
    """Lower-case, accent-free, punctuation-free, single-spaced: the matching key."""
    text = strip_diacritics(nfc(text)).lower()
    text = _NON_WORD.sub(" ", text).replace("_", " ")
    return collapse_spaces(text)
