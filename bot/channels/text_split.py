"""Cutting a long text into messages a messenger accepts (Telegram, Zalo)."""

from __future__ import annotations

from collections.abc import Callable


def utf16_len(text: str) -> int:
    """Telegram counts message length in UTF-16 code units (an emoji counts twice)."""
    return len(text.encode("utf-16-le")) // 2


def _units(ch: str, measure: Callable[[str], int]) -> int:
    if measure is utf16_len:
        return 2 if ord(ch) > 0xFFFF else 1
    return measure(ch)


def split_text(text: str, limit: int, measure: Callable[[str], int] = len) -> list[str]:
    """Cut `text` into pieces of at most `limit` (as `measure` counts), preferring paragraph,
    line, then word breaks; only a word longer than the limit is cut inside. Whitespace at
    the cuts goes, nothing else."""
    pieces: list[str] = []
    rest = text
    while measure(rest) > limit:
        # Largest prefix within the limit, walking characters so surrogate pairs stay whole.
        units, end = 0, 0
        for end, ch in enumerate(rest):  # noqa: B007 - `end` is used after the loop
            units += _units(ch, measure)
            if units > limit:
                break
        head = rest[:end]
        # A paragraph break in the second half first (no tiny first piece), then any break,
        # and only a word longer than the limit is cut inside.
        found = [head.rfind(sep) for sep in ("\n\n", "\n", " ")]
        cut = next((pos for pos in found if pos >= len(head) // 2), max(found))
        if cut <= 0:
            cut = end
        piece = rest[:cut].rstrip()
        if piece:
            pieces.append(piece)
        rest = rest[cut:].lstrip("\n ")
    if rest.strip() or not pieces:
        pieces.append(rest)
    return pieces
