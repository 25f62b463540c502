"""Shortcuts on the per-message path give what the general path they skip gives, on many inputs.

Each shortcut is taken for the common case only (a plain mobile number, a template that only
names values) and hands everything else to the general path; these tests compare the two
where the shortcut answers, so a shortcut that drifts from the general path fails here.
"""

from __future__ import annotations

import copy
import functools
import operator
import random
import re
import sys
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jinja2 import UndefinedError

from bot.hotline.desk import asks_for_person, hotline_texts
from dialogs import asking, catalog
from dialogs.contact_fields import _plain_mobile, _typed_phone, parse_phone
from dialogs.conversation import Services
from dialogs.engine import Engine, new_run_id
from dialogs.fields import _NOT_IN_NAMES, _is_name_letter
from dialogs.flow import Step
from dialogs.messages import Inbound
from dialogs.state import ConversationState
from knowledge.faq.features import ACCENTED_QUESTION_PHRASES, PLAIN_QUESTION_PHRASES
from knowledge.faq.index import FaqIndex
from knowledge.old_address import looks_like_old_address
from knowledge.text import collapse_spaces, fold, nfc, strip_diacritics

# ---------------------------------------------------------------- the phone number

_SEPARATORS = st.sampled_from(["", "", "", " ", ".", "-", "  ", " - "])


@st.composite
def _numbers(draw: st.DrawFn) -> str:
    """Ten (or about ten) digits from a 0, as people type them, separators anywhere."""
    digits = draw(st.text(alphabet="0123456789", min_size=8, max_size=11))
    head = draw(st.sampled_from(["0", "0", "0", "", "+84", "84", "00"]))
    return head + "".join(draw(_SEPARATORS) + d for d in digits)


def _same_as_general(text: str) -> None:
    typed = collapse_spaces(nfc(text))
    assert parse_phone(text, {}) == _typed_phone(typed), text


@settings(max_examples=1000, deadline=None)
@given(text=st.one_of(_numbers(), st.text(alphabet="0123456789 .-+()x", max_size=16)))
def test_a_typed_number_is_read_as_the_general_reading_reads_it(text):
    _same_as_general(text)


def test_every_national_prefix_is_read_as_the_general_reading_reads_it():
    """Which numbers are mobiles is decided by their first four digits after the 0 (the
    longest prefix in phonenumbers' patterns for Vietnam): every one of them."""
    tails = random.Random(19)
    for prefix in range(10_000):
        _same_as_general(f"0{prefix:04d}{tails.randrange(100_000):05d}")


def test_the_shortcut_takes_the_common_numbers():
    """Not a test of the answer (above) but that the shortcut is taken at all."""
    assert _plain_mobile("0987 654 321") == "0987654321"
    assert _plain_mobile("091.234.5678") == "0912345678"
    assert _plain_mobile("028 3812 3456") is None  # a landline: the general path says so
    assert _plain_mobile("+84 912345678") is None


# ---------------------------------------------------------------- templates naming values

_KEYS = st.sampled_from(["v", "name", "province", "items", "keys", "get", "id", "kind", "_x", "true", "self"])
_VALUES = st.recursive(
    st.one_of(st.none(), st.integers(), st.text(max_size=5), st.booleans()),
    lambda inner: st.dictionaries(_KEYS, inner, max_size=4) | st.lists(inner, max_size=2),
    max_leaves=8,
)


@st.composite
def _templates(draw: st.DrawFn) -> str:
    pieces = []
    for _ in range(draw(st.integers(1, 4))):
        pieces.append(draw(st.text(alphabet="ab \n{}.|%#-", max_size=6)))
        path = ".".join(draw(st.lists(_KEYS, min_size=1, max_size=3)))
        pieces.append(draw(st.sampled_from(["{{ %s }}", "{{%s}}", "{{  %s }}", "{{ %s|upper }}"])) % path)
    return "".join(pieces)


def _outcome(render, source: str, context: dict) -> object:
    try:
        return render(source, context)
    except UndefinedError:
        return UndefinedError
    except Exception as error:  # a template jinja2 cannot parse, or a call it refuses
        return type(error)


def _by_jinja2(source: str, context: dict) -> str:
    return catalog._compiled(source).render(**context).strip()


@settings(max_examples=600, deadline=None)
@given(source=_templates(), context=st.dictionaries(_KEYS, _VALUES, max_size=4))
def test_a_template_naming_values_renders_as_jinja2_renders_it(source, context):
    context.pop("self", None)  # Template.render's own first parameter, never a template's value
    assert _outcome(lambda s, c: catalog.render(s, **c), source, context) == _outcome(
        _by_jinja2, source, context
    )


class _Formatted:
    """A value whose str() and format() differ: a template says its str(), as jinja2 does."""

    def __str__(self) -> str:
        return "str"

    def __format__(self, spec: str) -> str:
        return "format"


@pytest.mark.parametrize(
    ("source", "context"),
    [
        ("thuộc {{ v.province.name }})?", {"v": {"province": {"name": "Hà Nội"}}}),
        ("{{ v.id.number }}", {"v": {"id": {"number": 12}}}),
        ("{{ name }}", {"name": None}),
        ("{ {{ name }} } {{ count }}}", {"name": _Formatted(), "count": 3}),
    ],
)
def test_the_shortcut_takes_names_and_keys(source, context):
    parts = catalog._names_only(source)
    assert parts is not None and catalog._filled(parts, context) == _by_jinja2(source, context)


def test_the_shortcut_leaves_dict_attributes_and_missing_keys_to_jinja2():
    assert catalog._names_only("{{ v.items }}") is None
    assert catalog._filled(catalog._names_only("{{ v.a }}"), {"v": {}}) is None
    with pytest.raises(UndefinedError):
        catalog.render("{{ v.a }}", v={})


# ---------------------------------------------------------------- text normalisation

_BLANKS = re.compile(r"\s+")
_NON_WORD = re.compile(r"[^\w\s]")


def _collapse_by_regex(text: str) -> str:
    return _BLANKS.sub(" ", text).strip()


def _fold_by_regex(text: str) -> str:
    """fold() as it was written with regular expressions."""
    text = strip_diacritics(nfc(text)).lower()
    return _collapse_by_regex(_NON_WORD.sub(" ", text).replace("_", " "))


def test_every_character_is_collapsed_and_folded_as_the_regexes_do():
    """Both read a text character by character: every character once, between letters."""
    for start in range(0, sys.maxunicode + 1, 0x10000):
        text = "".join(f"a{chr(c)} " for c in range(start, start + 0x10000))
        assert collapse_spaces(text) == _collapse_by_regex(text), hex(start)
        assert fold.__wrapped__(text) == _fold_by_regex(text), hex(start)


@settings(max_examples=500, deadline=None)
@given(
    text=st.text(alphabet=st.characters(codec="utf-8"), max_size=40)
    | st.text(" \t\n\u00a0_-.,aàđĐ1", max_size=20)
)
def test_a_text_is_collapsed_and_folded_as_the_regexes_do(text):
    assert collapse_spaces(text) == _collapse_by_regex(text)
    assert fold.__wrapped__(text) == _fold_by_regex(text)


# ---------------------------------------------------------------- plainly a question


def _plainly_by_regex(text: str) -> bool:
    """FaqIndex.plainly_a_question as it was written: the phrases between `(?:^|\\s)` and `(?:\\s|$)`."""
    plain = re.compile(r"(?:^|\s)(?:" + PLAIN_QUESTION_PHRASES + r")(?:\s|$)")
    accented = re.compile(r"(?:^|\s)(?:" + ACCENTED_QUESTION_PHRASES + r")(?:\s|$|[.!…])")
    if "?" in text or plain.search(fold(text)):
        return True
    return bool(accented.search(" ".join(nfc(text).lower().split())))


_QUESTION_WORDS = st.sampled_from(
    [
        "là gì",
        "la gi",
        "thì sao",
        "Thị Sao",
        "ở đâu",
        "được không ạ",
        "dc ko",
        "Nguyễn",
        "Hà",
        "sao",
        "gì",
        "ạ",
        "THÌ SAO",
        "Gì Ạ",
        "được  không\tạ",
        "İ",
    ]
)


def _texts_of(words: st.SearchStrategy[str], letters: str) -> st.SearchStrategy[str]:
    """Texts of a few of `words` and bits of `letters`, one space between them."""
    return st.lists(words | st.text(letters, max_size=4), max_size=6).map(" ".join)


@settings(max_examples=500, deadline=None)
@given(text=_texts_of(_QUESTION_WORDS, " .!…,aàt"))
def test_a_question_is_told_from_a_value_as_the_regexes_did(text):
    assert FaqIndex.default().plainly_a_question(text) == _plainly_by_regex(text)


# ---------------------------------------------------------------- a full name's characters


@settings(max_examples=500, deadline=None)
@given(
    name=st.text(alphabet=st.characters(codec="utf-8"), max_size=12)
    | st.text("Lê Thị1 -.ĐđàÀ\u0301", max_size=12)
)
def test_a_name_left_with_nothing_is_one_without_digits_or_symbols(name):
    """parse_full_name reads a name in one pass (what the letters table leaves); the checks
    it spares, character by character, find nothing exactly when nothing is left."""
    name = collapse_spaces(nfc(name))
    digits = "".join(ch for ch in name if ch.isdigit())
    strange = "".join(ch for ch in name if ch != " " and not _is_name_letter(ch))
    assert bool(name.translate(_NOT_IN_NAMES)) == bool(digits or strange)


# ---------------------------------------------------------------- an old address's hint

_OLD_HINT_BY_WORD_BOUNDS = re.compile(r"\b(quan|huyen|thi xa|tx|thi tran|tt)\b|\bq\s?\d+\b|,")
_ADDRESS_WORDS = st.sampled_from(
    [
        "quan",
        "Quận",
        "huyen",
        "thi",
        "xa",
        "tx",
        "tran",
        "tt",
        "q",
        "q7",
        "q 7",
        "q.12",
        "7",
        "quan7",
        "aq",
        "٣",
        ",",
        "p",
    ]
)


@settings(max_examples=1000, deadline=None)
@given(words=st.lists(_ADDRESS_WORDS | st.text(" ,.-qt7", max_size=3), max_size=6))
def test_an_old_address_is_told_as_the_word_bound_regex_did(words):
    text = " ".join(words)
    expected = bool(_OLD_HINT_BY_WORD_BOUNDS.search(fold(text)) or "," in text)
    assert looks_like_old_address(text) == expected


# ---------------------------------------------------------------- asking for a person


def _asks_by_word_bounds(text: str) -> bool:
    """The hotline's "a person, please?" as it was written: one regex with `^…$` and `\\b`."""
    words = hotline_texts()
    verbs = "|".join(map(re.escape, words.raw("human_verbs")))
    people = "|".join(map(re.escape, words.raw("human_people")))
    exact = "|".join(map(re.escape, words.raw("human_exact")))
    pattern = re.compile(
        rf"^(?:{exact})$|\b(?:{verbs})(?: voi| sang| cho| den| qua)?(?: mot)? (?:{people})\b"
    )
    return pattern.search(fold(text)) is not None


_PERSON_WORDS = st.sampled_from(
    [
        *hotline_texts().raw("human_exact"),
        *hotline_texts().raw("human_verbs"),
        *hotline_texts().raw("human_people"),
        "Gặp",
        "NHÂN VIÊN",
        "với",
        "một",
        "cho",
        "agap",
        "gap_",
        "nhan vienx",
        "٣",
    ]
)


@settings(max_examples=1500, deadline=None)
@given(text=_texts_of(_PERSON_WORDS, " ,.?_-aàn7\n"))
def test_a_person_is_asked_for_as_the_word_bound_regex_said(text):
    assert asks_for_person(Inbound("test", "u", text=text)) == _asks_by_word_bounds(text)


def test_whole_message_phrases_and_phrases_inside_a_message_both_ask_for_a_person():
    for text in ("Nhân viên", "người thật ạ", "cho mình gặp nhân viên tư vấn", "muốn gặp một người thật"):
        assert asks_for_person(Inbound("test", "u", text=text)) and _asks_by_word_bounds(text)


# ---------------------------------------------------------------- a step's buttons typed


def _pressed_by_label(engine: Engine, step: Step, folded: str) -> str | None:
    """The step's buttons besides its options as the interpreter read them: each label folded
    in turn, its own buttons first, then «resend» and «retry»."""
    labels = [(b["label"], b["payload"]) for b in step.buttons]
    if step.resend:
        labels.append((engine.texts("resend_otp"), "resend"))
    if step.kind == "action":
        labels.append((engine.texts("retry"), "retry"))
    return next((payload for label, payload in labels if fold(label) == folded), None)


def test_a_steps_button_typed_by_its_label_presses_what_folding_every_label_pressed():
    engine = Engine(Services(backend=None, photos=None, documents=None))  # type: ignore[arg-type]
    state = ConversationState()
    typed = 0
    for flow in engine.flows.values():
        for step in flow.steps:
            labels = [b["label"] for b in step.buttons] + [engine.texts("resend_otp"), engine.texts("retry")]
            for text in [*labels, *(label.upper() for label in labels), "1", "khong", "", "x"]:
                folded = fold(text)
                expected = _pressed_by_label(engine, step, folded)
                assert asking.typed_buttons(engine, state, step).get(folded) == expected
                typed += expected is not None
    assert typed > 20  # the steps' buttons, «gửi lại mã» and «thử lại» were all pressed


def test_the_current_step_is_found_as_looking_it_up_by_flow_and_id_found_it():
    engine = Engine(Services(backend=None, photos=None, documents=None))  # type: ignore[arg-type]
    flow_ids = [None, "", "nowhere", *engine.flows]
    step_ids = [None, "", "nowhere", *(s.id for f in engine.flows.values() for s in f.steps)]
    for flow_id in flow_ids:
        for step_id in step_ids:
            state = ConversationState(flow=flow_id, step=step_id)
            flow = engine.flows.get(flow_id) if flow_id else None
            expected = flow.step(step_id) if flow is not None and step_id in flow.index else None
            assert engine.step(state) is expected


# ---------------------------------------------------------------- a value by its path


def _value_by_parts(values: dict, path: str) -> object:
    node: object = values
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _set_by_parts(values: dict, path: str, value: object) -> None:
    parts = path.split(".")
    node = values
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


_PATH_PARTS = st.sampled_from(["phone", "id", "number", "photos", "portrait", "", "x.y"])
_PATHS = st.lists(_PATH_PARTS, min_size=1, max_size=3).map(".".join)
_STATE_VALUES = st.dictionaries(
    _PATH_PARTS,
    st.none() | st.integers() | st.dictionaries(_PATH_PARTS, st.none() | st.text(max_size=2)),
    max_size=4,
)


@settings(max_examples=500, deadline=None)
@given(values=_STATE_VALUES, path=_PATHS)
def test_a_value_is_read_and_written_by_its_path_as_walking_its_parts_did(values, path):
    state = ConversationState(values=copy.deepcopy(values))
    assert state.get_value(path) == _value_by_parts(values, path)
    expected = copy.deepcopy(values)
    try:
        _set_by_parts(expected, path, "new")
    except (AttributeError, TypeError) as error:  # a part on the way holds no dict
        with pytest.raises(type(error)):
            state.set_value(path, "new")
        return
    state.set_value(path, "new")
    assert state.values == expected


# ---------------------------------------------------------------- a form's run id


def test_a_run_id_is_a_random_uuid4_in_hex_as_uuid4_made_it():
    ids = {new_run_id() for _ in range(2000)}
    assert len(ids) == 2000
    for run_id in ids:
        made = uuid.UUID(hex=run_id)
        assert made.hex == run_id and made.version == 4 and made.variant == uuid.RFC_4122
    # every other bit varies, as os.urandom's do: none is stuck at 0 or 1 across 2,000 ids
    bits = [int(run_id, 16) for run_id in ids]
    fixed = 0xF000 << 64 | 0xC000 << 48  # the version nibble and the variant's two bits
    assert functools.reduce(operator.or_, bits) | fixed == (1 << 128) - 1
    assert functools.reduce(operator.and_, bits) & ~fixed == 0
