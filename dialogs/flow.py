"""Flows as data: loading the YAML files in dialogs/flows/ into steps the engine runs.

A flow file is meant to be read by a social-insurance officer; this module checks it
against a pydantic model per step kind (an unknown key, kind or template syntax error fails
at load time with the file and line, not mid-chat) and turns it into the steps the engine runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache, cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Discriminator, Tag, ValidationError, field_validator
from pydantic_core import ErrorDetails

from dialogs.catalog import environment
from dialogs.messages import Button
from dialogs.texts import Texts
from knowledge.cards import CardKind
from knowledge.text import fold

if TYPE_CHECKING:
    import yaml

FLOWS_DIR = Path(__file__).parent / "flows"


class StepKind(StrEnum):
    """What a step asks for: a typed value, a photo, a button, the summary, a yes/no
    commitment, a card's photo; or what it does: a side effect (action), the flow's last word (end)."""

    TEXT = "text"
    PHOTO = "photo"
    CHOICE = "choice"
    SUMMARY = "summary"
    CONFIRM = "confirm"
    ACTION = "action"
    END = "end"
    CARD = "card"  # a photo of a card whose QR fills the form (dialogs/cardfill.py)


STEP_KINDS = {kind.value for kind in StepKind}
# Whose registration a flow files: the citizen's own, or a child's through the guardian.
FlowKind = Literal["individual", "child"]


@dataclass(frozen=True)
class Option:
    label: str
    value: Any = None
    next: str | None = None
    flow: str | None = None  # start this flow instead of going on (e.g. "registration")
    then: str | None = None  # ... and when that flow is finished, start this one


@dataclass(frozen=True)
class Step:
    id: str
    kind: StepKind = StepKind.TEXT
    section: int | None = None
    field: str | None = None
    label: str | None = None
    parser: str | None = None
    prompt: str = ""
    help: str = ""
    show: str | None = None
    when: str | None = None
    after: str | None = None
    invalidates: tuple[str, ...] = ()
    optional: bool = False
    suggestions: str | None = None
    photo_kind: str | None = None
    options: tuple[Option, ...] = ()
    action: str | None = None
    resend: str | None = None
    yes_label: str = ""  # empty: the catalog's step_defaults (dialogs/texts.yaml)
    no_label: str = ""
    no_message: str = ""
    on_no: str | None = None
    next: str | None = None
    confirm_label: str = ""
    edit_label: str = ""
    buttons: tuple[dict, ...] = ()
    cards: tuple[str, ...] = ()  # kind `card`: which cards' QR codes fill the form (cccd, bhyt)

    @cached_property
    def own_buttons(self) -> tuple[Button, ...]:
        """The buttons the flow gives this step (its `buttons:`), made once: shown at every ask."""
        return tuple(Button(b["label"], b["payload"]) for b in self.buttons)

    @cached_property
    def typed_buttons(self) -> dict[str, str]:
        """Those buttons' payloads by folded label (the first of a label wins), for a label
        typed instead of pressed: folded once, not at every message."""
        typed: dict[str, str] = {}
        for b in self.buttons:
            typed.setdefault(fold(b["label"]), b["payload"])
        return typed

    @property
    def field_path(self) -> str:
        """Where the answer goes among the values; asked only of steps that have a `field:`."""
        if self.field is None:
            raise FlowError(f"step {self.id!r} has no field")
        return self.field


@dataclass(frozen=True)
class Flow:
    id: str
    title: str
    steps: tuple[Step, ...]
    sections: tuple[str, ...] = ()
    intro: str = ""
    kind: FlowKind | None = None
    # Fields copied from the conversation's shared memory when the flow starts (e.g. the guardian).
    on_start: str | None = None
    index: dict[str, int] = field(default_factory=dict, compare=False)

    def step(self, step_id: str) -> Step:
        return self.steps[self.index[step_id]]

    @property
    def first(self) -> Step:
        return self.steps[0]

    def on_side_road(self, step: Step) -> bool:
        """After the flow's end: a step reached only from a `goto:` button (the look-up)."""
        end = next((i for i, s in enumerate(self.steps) if s.kind == "end"), len(self.steps))
        return self.index[step.id] > end


class FlowError(ValueError):
    """A flow file is malformed; the message starts with the file and line ("x.yaml:12: ...")."""


# --- the file's shape: a pydantic model per step kind, unknown keys refused --------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class ButtonSpec(_Strict):
    label: str
    payload: str


class OptionSpec(_Strict):
    label: str
    value: Any = None
    next: str | None = None
    flow: str | None = None
    then: str | None = None


class _StepSpec(_Strict):
    """What every step may say: its id, section, words, the condition it is asked on, where it goes."""

    id: str
    section: int | None = None
    prompt: str = ""
    help: str = ""
    when: str | None = None
    next: str | None = None

    @field_validator("prompt", "help")
    @classmethod
    def _template(cls, source: str) -> str:
        from jinja2 import TemplateSyntaxError  # reading flow files only (bot/disk_cache.py keeps them)

        try:  # a jinja2 syntax error fails the load, not a chat
            environment().parse(source)
        except TemplateSyntaxError as error:
            raise ValueError(f"not a valid template ({error.message})") from None
        return source

    @field_validator("when")
    @classmethod
    def _condition(cls, expression: str | None) -> str | None:
        from jinja2 import TemplateSyntaxError

        try:
            if expression:
                environment().compile_expression(expression)
        except TemplateSyntaxError as error:
            raise ValueError(f"not a valid condition ({error.message})") from None
        return expression


class _AnswerSpec(_StepSpec):
    """A step whose answer goes on the form: the field, its label and how the summary shows it."""

    field: str | None = None
    label: str | None = None
    show: str | None = None
    parser: str | None = None
    optional: bool = False
    invalidates: tuple[str, ...] = ()
    after: str | None = None
    action: str | None = None


class TextStepSpec(_AnswerSpec):
    kind: Literal["text"] = "text"
    suggestions: str | None = None
    resend: str | None = None
    buttons: tuple[ButtonSpec, ...] = ()


class ChoiceStepSpec(_AnswerSpec):
    kind: Literal["choice"]
    options: tuple[OptionSpec, ...]


class PhotoStepSpec(_AnswerSpec):
    kind: Literal["photo"]
    photo_kind: str | None = None


class CardStepSpec(_StepSpec):
    kind: Literal["card"]
    cards: tuple[CardKind, ...]


class SummaryStepSpec(_StepSpec):
    kind: Literal["summary"]
    confirm_label: str = ""
    edit_label: str = ""


class ConfirmStepSpec(_StepSpec):
    kind: Literal["confirm"]
    yes_label: str = ""
    no_label: str = ""
    no_message: str = ""
    on_no: str | None = None


class ActionStepSpec(_StepSpec):
    kind: Literal["action"]
    action: str
    on_no: str | None = None


class EndStepSpec(_StepSpec):
    kind: Literal["end"]
    action: str | None = None


def _kind_of(raw: Any) -> str:
    return str(raw.get("kind", "text")) if isinstance(raw, dict) else str(getattr(raw, "kind", "text"))


StepSpec = Annotated[
    Annotated[TextStepSpec, Tag("text")]
    | Annotated[ChoiceStepSpec, Tag("choice")]
    | Annotated[PhotoStepSpec, Tag("photo")]
    | Annotated[CardStepSpec, Tag("card")]
    | Annotated[SummaryStepSpec, Tag("summary")]
    | Annotated[ConfirmStepSpec, Tag("confirm")]
    | Annotated[ActionStepSpec, Tag("action")]
    | Annotated[EndStepSpec, Tag("end")],
    Discriminator(_kind_of),
]


class FlowSpec(_Strict):
    id: str
    title: str
    steps: tuple[StepSpec, ...]
    sections: tuple[str, ...] = ()
    intro: str = ""
    kind: FlowKind | None = None
    on_start: str | None = None


# --- reading the file with the line of every key -------------------------------------------------


class _Marked(dict[str, Any]):
    """A YAML mapping that remembers where it and each of its keys were written."""

    line = 0
    key_lines: dict[str, int]


@cache
def _marked_loader() -> Any:
    """The safe loader (libyaml's when PyYAML has it: ~10x faster at start-up), marking lines.
    Made when a flow file is first read: a start that reads the flows back from the cache
    (bot/disk_cache.py) imports no PyYAML."""
    import yaml

    class MarkedLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
        pass

    MarkedLoader.add_constructor("tag:yaml.org,2002:map", _marked_mapping)
    return MarkedLoader


def _marked_mapping(loader: Any, node: yaml.MappingNode) -> _Marked:
    mapping = _Marked(cast(dict[str, Any], loader.construct_mapping(node, deep=True)))
    mapping.line = node.start_mark.line + 1
    mapping.key_lines = {str(k.value): k.start_mark.line + 1 for k, _ in node.value}
    return mapping


def _line(raw: Any, loc: tuple[int | str, ...]) -> tuple[int, Any]:
    """The line of the deepest key `loc` reaches in the file, and the step it is in."""
    line, node, step = getattr(raw, "line", 1), raw, None
    for part in loc:
        if isinstance(node, dict) and part in node:
            line = getattr(node, "key_lines", {}).get(part, line)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
            line = getattr(node, "line", line)
        else:
            continue  # a union's tag ("text"), not a key of the file
        if step is None and isinstance(node, dict) and "id" in node and loc and loc[0] == "steps":
            step = node.get("id")
    return line, step


def _problem(error: ErrorDetails) -> str:
    if error["type"] == "extra_forbidden":
        return f"unknown key {error['loc'][-1]!r}"
    if error["type"] == "union_tag_invalid":
        return f"unknown kind {error['ctx']['tag']!r} (one of: {', '.join(k.value for k in StepKind)})"
    where = ".".join(str(p) for p in error["loc"] if not isinstance(p, int) and p not in STEP_KINDS)
    return f"{where}: {error['msg']}"


def _refusal(path: Path, raw: Any, error: ErrorDetails) -> str:
    loc = (*error["loc"], "kind") if error["type"] == "union_tag_invalid" else error["loc"]
    line, step = _line(raw, loc)
    flow = raw.get("id") if isinstance(raw, dict) else None
    where = f"flow {flow!r}" + (f", step {step!r}" if step else "")
    return f"{path}:{line}: {where}: {_problem(error)}"


def _build_step(spec: _StepSpec) -> Step:
    data = {**Texts.default().raw("step_defaults"), **spec.model_dump(exclude_unset=True)}
    data["kind"] = StepKind(spec.kind)  # type: ignore[attr-defined]  # every spec has its Literal kind
    if "options" in data:
        data["options"] = tuple(Option(**o) for o in data["options"])
    for key in ("invalidates", "buttons", "cards"):
        if key in data:
            data[key] = tuple(data[key])
    data["prompt"] = spec.prompt.strip()
    return Step(**data)


def _check_targets(path: Path, raw: Any, flow: FlowSpec, steps: tuple[Step, ...]) -> dict[str, int]:
    index: dict[str, int] = {}
    for i, s in enumerate(steps):
        if s.id in index:
            raise FlowError(
                f"{path}:{_line(raw, ('steps', i, 'id'))[0]}: flow {flow.id!r}: duplicate step id {s.id!r}"
            )
        index[s.id] = i
    for i, s in enumerate(steps):
        gotos = [b["payload"].partition(":")[2] for b in s.buttons if b["payload"].startswith("goto:")]
        for target in (s.next, s.on_no, *(o.next for o in s.options), *gotos):
            if target and target not in index:
                line = _line(raw, ("steps", i))[0]
                raise FlowError(
                    f"{path}:{line}: flow {flow.id!r}, step {s.id!r}: goes to unknown step {target!r}"
                )
    return index


def _check_conditions(path: Path, raw: Any, flow: FlowSpec, steps: tuple[Step, ...]) -> None:
    """Every `when` reads only answers this flow asks for (`v.<field>`) and the engine's own
    flags (`flags.<name>`): a condition on an answer not given yet does not hold
    (`catalog.holds`), so a misspelt name would otherwise hide its step for good."""
    from jinja2 import nodes

    from dialogs.state import Flags

    known = {"v": {s.field.split(".")[0] for s in steps if s.field}, "flags": set(Flags.model_fields)}
    for i, s in enumerate(steps):
        if not s.when:
            continue
        tree = environment().parse(f"{{{{ {s.when} }}}}")
        for read in tree.find_all(nodes.Getattr):
            if isinstance(read.node, nodes.Name) and read.attr not in known.get(read.node.name, {read.attr}):
                line = _line(raw, ("steps", i, "when"))[0]
                raise FlowError(
                    f"{path}:{line}: flow {flow.id!r}, step {s.id!r}: the condition reads "
                    f"{read.node.name}.{read.attr}, which this flow never sets"
                )


def load_flow(path: Path) -> Flow:
    import yaml

    raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_marked_loader())  # noqa: S506 - a SafeLoader
    try:
        spec = FlowSpec.model_validate(raw)
    except ValidationError as error:
        raise FlowError("\n".join(_refusal(path, raw, e) for e in error.errors())) from None
    steps = tuple(_build_step(s) for s in spec.steps)
    _check_conditions(path, raw, spec, steps)
    return Flow(
        id=spec.id,
        title=spec.title,
        steps=steps,
        sections=spec.sections,
        intro=spec.intro.strip(),
        kind=spec.kind,
        on_start=spec.on_start,
        index=_check_targets(path, raw, spec, steps),
    )


@cache
def load_flows(directory: Path = FLOWS_DIR) -> dict[str, Flow]:
    flows = {}
    for path in sorted(directory.glob("*.yaml")):
        flow = load_flow(path)
        flows[flow.id] = flow
    return flows
