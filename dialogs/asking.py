"""Asking a step: its prompt and the buttons of its kind, the summary, the choices offered.

The engine asks through here (`Engine.ask`); what a typed label or number presses is
dialogs/interpret.py's, fed by `typed_buttons` and `suggested`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from dialogs import cardfill, parsers
from dialogs.conversation import Turn
from dialogs.flow import Step, StepKind
from dialogs.interpret import Message
from dialogs.messages import Button
from dialogs.parsing import Ambiguous, Choice
from dialogs.state import ConversationState, Pending, PendingType
from dialogs.texts import render
from knowledge.text import fold

MAX_CHOICE_BUTTONS = 8

if TYPE_CHECKING:
    from dialogs.engine import Engine


def ask(engine: Engine, state: ConversationState, turn: Turn, prefix: str | None = None) -> None:
    """Say the current step's prompt with its buttons (nothing here waits: no coroutine)."""
    step = engine.step(state)
    if step is None:
        return
    if state.pending is not None:  # (pydantic's __setattr__ only when there is one)
        state.pending = None
    # Most prompts name no value: no context to build for them (render would only strip them).
    text = render(step.prompt, **engine.context(state)) if "{" in step.prompt else step.prompt.strip()
    text, buttons = _BY_KIND[step.kind](engine, state, step, text)
    if prefix:
        text = f"{prefix}\n{text}" if text else prefix
    turn.say(text, (*buttons, *step.own_buttons), progress=engine.progress(state, step))


Asked = tuple[str, list[Button]]


def _text(engine: Engine, state: ConversationState, step: Step, text: str) -> Asked:
    buttons: list[Button] = []
    current = state.get_value(step.field) if step.field else None
    if step.suggestions:
        # The value kept is offered once, as «Giữ nguyên», not again among the suggestions.
        choices = [c for c in parsers.suggestions(step.suggestions)(state) if c.value != current]
        if choices:
            offer_choices(engine, state, step, [{"label": c.label, "value": c.value} for c in choices])
            buttons += [Button(c.label, f"pick:{i}") for i, c in enumerate(choices[:MAX_CHOICE_BUTTONS])]
    if current is not None and step.show:
        shown = render(step.show, **engine.context(state))
        buttons.append(Button(engine.texts("keep_value", shown=shown)[:60], "keep"))
    if step.resend:
        buttons.append(Button(engine.texts("resend_otp"), "resend"))
    if step.optional:
        buttons.append(Button(engine.texts("skip"), "skip"))
    return text, buttons


def _choice(engine: Engine, state: ConversationState, step: Step, text: str) -> Asked:
    return text, [Button(o.label, f"opt:{i}") for i, o in enumerate(step.options)]


def _photo(engine: Engine, state: ConversationState, step: Step, text: str) -> Asked:
    kept = step.field is not None and state.get_value(step.field) is not None
    return text, [Button(engine.texts("keep_photo"), "keep")] if kept else []


def _card(engine: Engine, state: ConversationState, step: Step, text: str) -> Asked:
    text, buttons = cardfill.prompt(state, step, text)
    return text, list(buttons)


def _summary(engine: Engine, state: ConversationState, step: Step, text: str) -> Asked:
    text = f"{text}\n{summary_text(engine, state)}".strip()
    return text, [Button(step.confirm_label, "summary:ok"), Button(step.edit_label, "edit")]


def _confirm(engine: Engine, state: ConversationState, step: Step, text: str) -> Asked:
    return text, [Button(step.yes_label, "confirm:yes"), Button(step.no_label, "confirm:no")]


def _action(engine: Engine, state: ConversationState, step: Step, text: str) -> Asked:
    # A conversation rests on an action step only when the backend did not answer
    # (the submission, the look-up): what is asked of the user is to try again.
    return engine.texts("backend_unavailable"), [Button(engine.texts("retry"), "retry")]


def _end(engine: Engine, state: ConversationState, step: Step, text: str) -> Asked:
    return text, []


_BY_KIND: dict[StepKind, Callable[[Engine, ConversationState, Step, str], Asked]] = {
    StepKind.TEXT: _text,
    StepKind.CHOICE: _choice,
    StepKind.PHOTO: _photo,
    StepKind.CARD: _card,
    StepKind.SUMMARY: _summary,
    StepKind.CONFIRM: _confirm,
    StepKind.ACTION: _action,
    StepKind.END: _end,
}


def summary_text(engine: Engine, state: ConversationState) -> str:
    flow = engine.flow(state)
    lines = []
    for step in flow.steps if flow else ():
        if step.kind == "summary":
            break
        if not (step.field and step.label and step.show) or not engine.applicable(state, step):
            continue
        value = state.get_value(step.field)
        if value is None and not step.optional:
            continue
        lines.append(f"• {step.label}: {render(step.show, **engine.context(state))}")
    return "\n".join(lines)


def offer_choices(engine: Engine, state: ConversationState, step: Step, choices: list[dict]) -> None:
    state.pending = Pending(type=PendingType.CHOICES, step=step.id, choices=choices[:MAX_CHOICE_BUTTONS])


def yes_no_buttons(engine: Engine) -> list[Button]:
    """«Đúng» / «Không, nhập lại» for a value the user confirms (a pending "confirm")."""
    return [
        Button(engine.texts("confirm_yes"), "confirm:yes"),
        Button(engine.texts("confirm_no"), "confirm:no"),
    ]


def suggested(engine: Engine, state: ConversationState, step: Step) -> list[Choice]:
    """The choices a text step offers as buttons (its `suggestions`), or none."""
    if step.kind != "text" or not step.suggestions:
        return []
    return list(parsers.suggestions(step.suggestions)(state))


def typed_buttons(engine: Engine, state: ConversationState, step: Step) -> Mapping[str, str]:
    """Buttons of a step besides its options, whose label typed presses them: payloads by
    folded label, the first of a label winning (the step's own, then «resend», «retry»)."""
    typed = step.typed_buttons
    if not step.resend and step.kind != "action":  # most steps: their own buttons, folded once
        return typed
    typed = dict(typed)
    if step.resend:
        typed.setdefault(fold(engine.texts("resend_otp")), "resend")
    if step.kind == "action":
        typed.setdefault(fold(engine.texts("retry")), "retry")
    return typed


def match_offered(engine: Engine, message: Message, offered: list[Choice]) -> Ambiguous | None:
    """The offered choices the typed words pick out, the last word possibly unfinished
    ("Quận" -> every "BHXH Quận …", "binh th" -> "Bình Thạnh"); None when none or all match."""
    text = message.text
    typed = message.folded.split()
    if not typed:
        return None
    *whole, last = typed
    found = []
    for choice in offered:
        words = fold(choice.label).split()
        if all(w in words for w in whole) and any(w.startswith(last) for w in words):
            found.append(choice)
    if not found or len(found) == len(offered):
        return None
    shown = min(len(found), MAX_CHOICE_BUTTONS)
    said = engine.texts("choices_matching", typed=text.strip()[:40], count=len(found), shown=shown)
    return Ambiguous(said, tuple(found))


def own_buttons(step: Step) -> list[Button]:
    """The buttons a flow gives a step (its `buttons:`, e.g. the mã số BHXH look-up)."""
    return list(step.own_buttons)
