"""The one text loader (dialogs.catalog): one rule for a value a template names but nobody passed."""

from __future__ import annotations

import pytest
from jinja2 import UndefinedError

from dialogs.catalog import Catalog, catalog, holds, render
from dialogs.texts import default_texts


def test_a_template_naming_a_value_nobody_passed_raises():
    with pytest.raises(UndefinedError):
        render("Bạn đang làm dở «{{ flow_title }}».")
    with pytest.raises(UndefinedError):
        default_texts()("resume")


def test_a_condition_on_an_answer_not_given_yet_does_not_hold_either_way_round():
    # (A misspelt name fails when its flow loads instead: tests/test_registration.py.)
    assert not holds("v.id.kind == 'passport'", v={})
    assert not holds("v.id.kind != 'passport' and not flags.id_verified", v={}, flags={})
    assert holds("v.id.kind != 'passport'", v={"id": {"kind": "cccd"}})
    assert not holds("v.get('id', {}).get('kind') == 'passport'", v={})
    with pytest.raises(TypeError):  # any other error in a condition is still a bug to see
        holds("v.id.kind > 3", v={"id": {"kind": "cccd"}})


def test_an_unknown_key_raises_and_a_known_one_renders(tmp_path):
    path = tmp_path / "texts.yaml"
    path.write_text('a:\n  b: "Chào {{ name }}"\n"poster.title": "Áp phích"\n', encoding="utf-8")
    texts = catalog(path)
    assert texts("a.b", name="An") == "Chào An"
    assert texts("poster.title") == "Áp phích"
    with pytest.raises(KeyError):
        texts("a.c")


def test_templates_cannot_reach_python_internals():
    from jinja2.exceptions import SecurityError

    with pytest.raises(SecurityError):
        Catalog({"x": "{{ ''.__class__.__subclasses__() }}"})("x")
