"""The assistant's words: dialogs/texts.yaml (and the field texts), rendered with jinja2.

Templates run in jinja2's sandbox: flow and text files are data a reviewer edits, and a
typo there must not be able to execute anything.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jinja2 import ChainableUndefined
from jinja2.sandbox import SandboxedEnvironment

HERE = Path(__file__).parent


def _label(key: str) -> Any:
    return Texts.default().raw(f"labels.{key}")


def id_kind_label(kind: Any) -> str:
    return (
        str(_label("id_kinds").get(str(kind)) or _label("id_kind_unknown"))
        if kind
        else _label("id_kind_unknown")
    )


def agency_label(agency: Any) -> str:
    if not isinstance(agency, dict) or not agency.get("code"):
        return str(_label("agency_unknown"))
    if agency.get("label"):  # the directory's own label (offices without an official code show no code)
        return agency["label"]
    return f"[{agency['code']}] {agency.get('name', '')}".strip()


def relationship_label(value: Any) -> str:
    return str(_label("relationships").get(str(value), str(value or "")))


def _agency_examples(values: Any) -> str:
    """What to type at the agency step, from the user's own province (flows' prompts)."""
    from dialogs.address_fields import agency_examples

    return agency_examples(values if isinstance(values, dict) else {})


def vn_date(value: Any) -> str:
    """'2015-09-03' -> '03/09/2015', as Vietnamese forms write dates; anything else as is."""
    text = str(value or "")
    parts = text.split("-")
    if len(parts) == 3 and all(p.isdigit() for p in parts) and len(parts[0]) == 4:
        return f"{parts[2]}/{parts[1]}/{parts[0]}"
    return text


@cache
def environment() -> SandboxedEnvironment:
    env = SandboxedEnvironment(undefined=ChainableUndefined, autoescape=False, trim_blocks=True)
    env.globals.update(
        id_kind_label=id_kind_label,
        agency_label=agency_label,
        relationship_label=relationship_label,
        agency_examples=_agency_examples,
    )
    env.filters["vn_date"] = vn_date
    return env


@cache
def _compiled(source: str):
    return environment().from_string(source)


def render(source: str, **context: Any) -> str:
    if "{" not in source:  # no jinja syntax at all: most phrases are plain text
        return source.strip()
    return _compiled(source).render(**context).strip()


@cache
def _condition(expression: str):
    return environment().compile_expression(expression, undefined_to_none=False)


def holds(expression: str, **context: Any) -> bool:
    return bool(_condition(expression)(**context))


class Texts:
    """Lookup of the engine's phrases; missing keys fail loudly in tests, not silently in chat."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    @classmethod
    @cache
    def default(cls) -> Texts:
        data = yaml.safe_load((HERE / "texts.yaml").read_text(encoding="utf-8"))
        return cls(data)

    def raw(self, key: str) -> Any:
        node: Any = self._data
        for part in key.split("."):
            node = node[part]
        return node

    def __call__(self, key: str, **context: Any) -> str:
        return render(self.raw(key), **context)
