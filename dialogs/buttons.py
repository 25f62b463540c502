"""What a pressed button does: one handler per payload kind (dialogs/payloads.py).

A handler answers False when its button does not fit where the conversation is (a button
left on screen from an earlier step): the engine then says the button is stale and asks
the current step again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from dialogs import navigation, questions
from dialogs import payloads as p
from dialogs.flow import StepKind
from dialogs.state import ConversationState, PendingType
from dialogs.texts import render

if TYPE_CHECKING:
    from dialogs.engine import Engine, Turn

Handler = Callable[["Engine", ConversationState, "Turn", Any], Awaitable[bool]]


async def start_flow(engine: Engine, state: ConversationState, turn: Turn, payload: p.StartFlow) -> bool:
    if payload.name not in engine.flows:
        return False
    await navigation.switch_flow(engine, state, turn, payload.name)
    return True


async def nav(engine: Engine, state: ConversationState, turn: Turn, payload: p.Nav) -> bool:
    await navigation.global_move(engine, state, turn, payload.name)
    return True


async def command(engine: Engine, state: ConversationState, turn: Turn, payload: p.RunCommand) -> bool:
    run = engine.registry.commands.get(payload.name)
    if run is None:
        return False
    await run(engine, state, turn, "")
    return True


async def faq_entry(engine: Engine, state: ConversationState, turn: Turn, payload: p.FaqEntry) -> bool:
    await questions.faq_entry(engine, state, turn, payload.name)
    return True


async def pick(engine: Engine, state: ConversationState, turn: Turn, payload: p.PickChoice) -> bool:
    pending, step = state.pending, engine.step(state)
    if pending is None or pending.type != PendingType.CHOICES:
        return False
    if payload.index >= len(pending.choices) or step is None or pending.step != step.id:
        return False
    await engine.accept(state, turn, step, pending.choices[payload.index]["value"])
    return True


async def confirm(engine: Engine, state: ConversationState, turn: Turn, payload: p.Confirm) -> bool:
    if state.pending is not None:
        await navigation.answer_pending_confirm(engine, state, turn, payload.yes)
        return True
    step = engine.step(state)
    flow = engine.flow(state)
    if step is None or flow is None or step.kind != StepKind.CONFIRM:
        return False
    if payload.yes:
        await engine.advance(state, turn)
        return True
    if step.no_message:
        turn.say(render(step.no_message, **engine.context(state)))
    if step.on_no:
        await engine.enter(state, turn, flow.step(step.on_no))
    else:
        await navigation.global_move(engine, state, turn, "cancel")
    return True


async def option(engine: Engine, state: ConversationState, turn: Turn, payload: p.ChooseOption) -> bool:
    step = engine.step(state)
    if step is None or step.kind != StepKind.CHOICE or payload.index >= len(step.options):
        return False
    await engine.choose_option(state, turn, step, step.options[payload.index])
    return True


async def summary_ok(engine: Engine, state: ConversationState, turn: Turn, payload: p.SummaryOk) -> bool:
    step = engine.step(state)
    if step is None or step.kind != StepKind.SUMMARY:
        return False
    await engine.advance(state, turn)
    return True


async def edit(engine: Engine, state: ConversationState, turn: Turn, payload: p.Edit) -> bool:
    if not payload.step:
        await navigation.show_edit_list(engine, state, turn)
        return True
    step, flow = engine.step(state), engine.flow(state)
    if step is None or flow is None or payload.step not in flow.index:
        return False
    summary = next((s for s in flow.steps if s.kind == StepKind.SUMMARY), None)
    if summary is None or engine.declaration_sent(state):
        return False
    state.editing = True
    state.history.append(step.id)
    state.step = payload.step
    await engine.ask(state, turn)
    return True


async def goto(engine: Engine, state: ConversationState, turn: Turn, payload: p.Goto) -> bool:
    # A side road the current step offers (the mã số BHXH look-up); a button left on screen
    # from another step is stale.
    step, flow = engine.step(state), engine.flow(state)
    if step is None or flow is None or not any(b["payload"] == payload.format() for b in step.buttons):
        return False
    await engine.enter(state, turn, flow.step(payload.name))
    return True


async def keep(engine: Engine, state: ConversationState, turn: Turn, payload: p.Keep) -> bool:
    step = engine.step(state)
    if step is None or not step.field or state.get_value(step.field) is None:
        return False
    await engine.advance(state, turn)
    return True


async def skip(engine: Engine, state: ConversationState, turn: Turn, payload: p.Skip) -> bool:
    step = engine.step(state)
    if step is None or not step.optional:
        return False
    await engine.accept(state, turn, step, None)
    return True


async def escape(engine: Engine, state: ConversationState, turn: Turn, payload: p.Escape) -> bool:
    """The parser offered a way out ("my name really has no accents"): take it, parse again."""
    if engine.step(state) is None or payload.name != state.flags.offered_escape:
        return False
    state.flags.offered_escape = None
    state.flags.escapes.append(payload.name)
    if state.last_rejected:
        await engine.on_text(state, turn, state.last_rejected)
    else:
        await engine.ask(state, turn)
    return True


async def resend(engine: Engine, state: ConversationState, turn: Turn, payload: p.Resend) -> bool:
    step = engine.step(state)
    return await _run(engine, state, turn, step.resend if step else None)


async def retry(engine: Engine, state: ConversationState, turn: Turn, payload: p.Retry) -> bool:
    step = engine.step(state)
    resting = step is not None and step.kind in (StepKind.ACTION, StepKind.END)
    return await _run(engine, state, turn, step.action if step and resting else None)


async def _run(engine: Engine, state: ConversationState, turn: Turn, action: str | None) -> bool:
    """Run the step's action again (resend the OTP, retry after an outage), if it has one."""
    if not action:
        return False
    await engine.registry.actions[action](engine, state, turn)
    return True


HANDLERS: dict[type[p.Payload], Handler] = {
    p.StartFlow: start_flow,
    p.Nav: nav,
    p.RunCommand: command,
    p.FaqEntry: faq_entry,
    p.PickChoice: pick,
    p.Confirm: confirm,
    p.ChooseOption: option,
    p.SummaryOk: summary_ok,
    p.Edit: edit,
    p.Goto: goto,
    p.Keep: keep,
    p.Skip: skip,
    p.Escape: escape,
    p.Resend: resend,
    p.Retry: retry,
}
