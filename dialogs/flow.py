"""Flows as data: loading the YAML files in dialogs/flows/ into steps the engine runs.

A flow file is meant to be read by a social-insurance officer; this module only turns
it into typed objects and rejects typos (an unknown key fails at load time, not mid-chat).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from dialogs.texts import Texts

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


@dataclass(frozen=True)
class Flow:
    id: str
    title: str
    steps: tuple[Step, ...]
    sections: tuple[str, ...] = ()
    intro: str = ""
    kind: str | None = None
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
    pass


def _build_step(raw: dict, flow_id: str) -> Step:
    known = {f.name for f in fields(Step)}
    unknown = set(raw) - known
    if unknown:
        raise FlowError(f"flow {flow_id!r}, step {raw.get('id')!r}: unknown keys {sorted(unknown)}")
    data = {**Texts.default().raw("step_defaults"), **raw}
    if "options" in data:
        data["options"] = tuple(Option(**o) for o in data["options"])
    for key in ("invalidates", "buttons", "cards"):
        if key in data:
            data[key] = tuple(data[key])
    kind = data.get("kind", "text")
    if kind not in STEP_KINDS:
        raise FlowError(f"flow {flow_id!r}, step {data.get('id')!r}: unknown kind {kind!r}")
    data["kind"] = StepKind(kind)
    step = Step(**data)
    if step.prompt:
        step = Step(**{**data, "prompt": step.prompt.strip()})
    return step


def load_flow(path: Path) -> Flow:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    steps = tuple(_build_step(s, raw["id"]) for s in raw["steps"])
    index = {s.id: i for i, s in enumerate(steps)}
    if len(index) != len(steps):
        raise FlowError(f"flow {raw['id']!r}: duplicate step ids")
    for s in steps:
        gotos = [b["payload"].partition(":")[2] for b in s.buttons if b["payload"].startswith("goto:")]
        for target in (s.next, s.on_no, *(o.next for o in s.options), *gotos):
            if target and target not in index:
                raise FlowError(f"flow {raw['id']!r}, step {s.id!r}: goes to unknown step {target!r}")
    return Flow(
        id=raw["id"],
        title=raw["title"],
        steps=steps,
        sections=tuple(raw.get("sections", ())),
        intro=(raw.get("intro") or "").strip(),
        kind=raw.get("kind"),
        on_start=raw.get("on_start"),
        index=index,
    )


@cache
def load_flows(directory: Path = FLOWS_DIR) -> dict[str, Flow]:
    flows = {}
    for path in sorted(directory.glob("*.yaml")):
        flow = load_flow(path)
        flows[flow.id] = flow
    return flows
