"""Chat abbreviations expanded in a question (knowledge/text.py): whole words, the longest
variant first, one pass, exactly as one whole-word regex of every variant would."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from knowledge.text import _teencode, expand_abbreviations, normalize_question

TABLE, _ = _teencode()
_ALTERNATIVES = "|".join(re.escape(k) for k in sorted(TABLE, key=len, reverse=True))
_ONE_REGEX = re.compile(rf"(?<!\w)(?:{_ALTERNATIVES})(?!\w)")
WORDS = sorted({w for key in TABLE for w in key.split()} | set(TABLE.values()) | {"ab", "1900", "x_y"})


def by_one_regex(folded: str) -> str:
    return _ONE_REGEX.sub(lambda m: TABLE[m.group(0)], folded)


def test_a_parents_question_reads_in_full() -> None:
    assert normalize_question("Ko có SĐT thì đk đc ko?") == "khong co sdt thi dang ky duoc khong"


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(WORDS), st.sampled_from([" ", " ", " ", "  ", ", ", "", "-", "\n"]))),
    st.sampled_from(["", " ", ","]),
)
def test_abbreviations_are_expanded_as_one_whole_word_regex_would(words, lead) -> None:
    text = lead + "".join(word + gap for word, gap in words)
    assert expand_abbreviations(text) == by_one_regex(text)
