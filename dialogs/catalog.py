"""The one text loader: every YAML catalog of the assistant's words goes through here.

A catalog is a YAML file of messages (nested mappings; lists and numbers are data the code
reads with `raw`). Messages are jinja2 templates rendered in jinja2's sandbox (catalogs and
flows are data a reviewer edits: a typo there must not be able to execute anything) with
one undefined-variable rule, `StrictUndefined`: a template naming a value nobody passed
raises instead of silently saying less. A value that may be absent is written as such in
the template (`{% if v.email is defined %}`, `v.get('email')`).

Used by dialogs/ (texts.yaml, the field, address and card texts, the flows' prompts) and
by bot/ (each package's texts.yaml): `catalog(Path(__file__).with_name("texts.yaml"))`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from knowledge import yamlfile

if TYPE_CHECKING:
    from jinja2 import Template
    from jinja2.sandbox import SandboxedEnvironment

# Helpers every template may call, registered by the modules that own them (dialogs.texts
# registers the label helpers); registration happens before the first render.
_GLOBALS: dict[str, Callable[..., Any]] = {}
_FILTERS: dict[str, Callable[..., Any]] = {}


def register(
    *, globals: Mapping[str, Callable[..., Any]] = {}, filters: Mapping[str, Callable[..., Any]] = {}
) -> None:
    """Make helpers callable from every template (one environment for every catalog)."""
    _GLOBALS.update(globals)
    _FILTERS.update(filters)
    if environment.cache_info().currsize:  # already built: add to it
        environment().globals.update(globals)
        environment().filters.update(filters)


@cache
def environment() -> SandboxedEnvironment:
    # jinja2 is imported with the first template, not with this module: a plain text needs
    # none, and `vssid-bot faq` reads its help text at start-up (its cold start is measured).
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    # Plain chat text, not HTML: each channel escapes for its own markup (Telegram HTML-escapes).
    env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, trim_blocks=True)
    env.globals.update(_GLOBALS)
    env.filters.update(_FILTERS)
    return env


@cache
def _compiled(source: str) -> Template:
    return environment().from_string(source)


def render(source: str, **context: Any) -> str:
    """A template filled in, without surrounding blank space."""
    if "{" not in source:  # no jinja syntax at all: most phrases are plain text
        return source.strip()
    parts = _names_only(source)
    if parts is not None:
        filled = _filled(parts, context)
        if filled is not None:
            return filled
    return _compiled(source).render(**context).strip()


def _filled(template: tuple[str | None, tuple[Any, ...]], context: dict[str, Any]) -> str | None:
    """What jinja2 makes of `{{ name }}` and `{{ name.key.key }}`: `str()` of the value, each
    key looked up in a plain dict (what jinja2 does when a dict has no attribute of that
    name); done here without its context and generator (one such phrase is said per message).
    None when a name is not passed or a key is missing: jinja2 renders those (a global, or
    undefined and must raise)."""
    names_only, parts = template
    if names_only is not None:  # names without keys (most phrases): str.format_map does it all
        try:
            return names_only.format_map(context).strip()
        except KeyError:
            return None
    out = []
    for i, part in enumerate(parts):
        if i % 2 == 0:
            out.append(part)
            continue
        name, *keys = part
        if name not in context:
            return None
        value = context[name]
        for key in keys:
            if type(value) is not dict or key not in value:
                return None
            value = value[key]
        out.append(str(value))
    return "".join(out).strip()


_NAME = re.compile(r"\{\{ *([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*) *\}\}")


@cache
def _names_only(source: str) -> tuple[str | None, tuple[Any, ...]] | None:
    """A template whose only jinja syntax is `{{ name }}` or `{{ name.key.key }}`, as (text,
    (name, key, …), text, …, text), with a `str.format` string of it when it names no key
    (`{name!s}`: str() of the value, as jinja2 writes it); None for any other (calls, filters,
    blocks, comments, whitespace control, `\\r` that jinja2 would rewrite, `{{{`, a key that is
    also an attribute of a dict such as `items`, which jinja2 would take for the attribute)."""
    parts: list[Any] = _NAME.split(source)
    if (
        "\r" in source
        or "{{{" in source
        or any(mark in text for text in parts[0::2] for mark in ("{{", "{%", "{#"))
    ):
        return None
    paths = [tuple(path.split(".")) for path in parts[1::2]]
    if any(_JINJA_OWN_NAMES.intersection(path) or _DICT_ATTRIBUTES.intersection(path[1:]) for path in paths):
        return None
    parts[1::2] = paths
    names_only = None
    if all(len(path) == 1 for path in paths):
        names_only = "".join(
            "{" + part[0] + "!s}" if i % 2 else part.replace("{", "{{").replace("}", "}}")
            for i, part in enumerate(parts)
        )
    return names_only, tuple(parts)


# Names jinja2 reads as its own (literals, the template's `self`, loop and macro variables).
_JINJA_OWN_NAMES = frozenset(
    {"true", "false", "none", "True", "False", "None", "self", "loop", "caller", "varargs", "kwargs"}
)
_DICT_ATTRIBUTES = frozenset(dir(dict))


@cache
def _condition(expression: str) -> Callable[..., Any]:
    return environment().compile_expression(expression, undefined_to_none=False)


def holds(expression: str, **context: Any) -> bool:
    """A jinja2 expression (a flow's `when`) evaluated to true or false. A condition on an
    answer not given yet does not hold: "sửa" early in a form lists the steps that can be
    edited, and a step asked only for some kinds of ID is not one of them before the ID is
    known (StrictUndefined raised there). The names a condition may read are checked when
    its flow loads (dialogs/flow.py), so a misspelt one fails the load, not a chat."""
    try:
        return bool(_condition(expression)(**context))
    except Exception as error:  # jinja2 is imported by then (the condition is compiled)
        from jinja2 import UndefinedError

        if isinstance(error, UndefinedError):
            return False
        raise


class Catalog:
    """Messages by dotted key; an unknown key raises (KeyError), in tests and in chat alike."""

    def __init__(self, data: Mapping[str, Any], name: str = "") -> None:
        self._data = data
        self.name = name
        self._placeholders: dict[str, dict[str, Any]] = {}  # section -> its example*/min_*/max_* entries
        self._plain: dict[str, str] = {}  # key -> a phrase naming nothing, as said

    @property
    def data(self) -> Mapping[str, Any]:
        """The whole file as read (word lists and limits the code uses as data)."""
        return self._data

    def raw(self, key: str) -> Any:
        """The entry as written (a template, or a list/number the code reads as data)."""
        if key in self._data:  # some catalogs name their entries with dots ("poster.title")
            return self._data[key]
        node: Any = self._data
        for part in key.split("."):
            node = node[part]
        return node

    def __contains__(self, key: str) -> bool:
        try:
            self.raw(key)
        except (KeyError, TypeError):
            return False
        return True

    def __call__(self, key: str, **context: Any) -> str:
        if not context:  # a plain phrase («Bỏ qua», the menu's prompt): the same every time
            said = self._plain.get(key)
            if said is not None:
                return said
        source = str(self.raw(key))
        if context or "{" in source:
            return render(source, **context)
        said = self._plain[key] = source.strip()
        return said

    def say(self, section: str, key: str, **fill: Any) -> str:
        """One message of a field's section: its `example*` entries and `min_*`/`max_*` limits
        are placeholders every message of the section may name (gathered once per section)."""
        entries = self._data[section]
        placeholders = self._placeholders.get(section)
        if placeholders is None:
            placeholders = self._placeholders[section] = {
                k: v for k, v in entries.items() if k.startswith(("example", "min_", "max_"))
            }
        return render(entries[key], **(placeholders | fill))


@cache
def catalog(path: Path) -> Catalog:
    """The catalog in `path`, read once per process (edit the YAML, restart the bot)."""
    data = yamlfile.safe_load(Path(path).read_text(encoding="utf-8"), kept_as=str(path)) or {}
    return Catalog(data, name=Path(path).name)
