"""The global moves: commands, «quay lại», «hủy», «làm lại», «trợ giúp», the menu, switching
flows, and the way from the summary to one field and back («sửa»).

Every move that would drop what the user typed is confirmed first (`ask_first`); its
yes/no is answered by `answer_pending_confirm`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dialogs import actions
from dialogs.conversation import Turn
from dialogs.messages import Button
from dialogs.state import ConversationState, Pending, PendingType
from dialogs.texts import render

COMMAND_ALIASES = {"huy": "cancel", "quaylai": "back", "trogiup": "help", "batdau": "start"}

if TYPE_CHECKING:
    from dialogs.engine import Engine


async def command(engine: Engine, state: ConversationState, turn: Turn, name: str, arg: str) -> None:
    name = COMMAND_ALIASES.get(name, name)
    if name == "start":
        await start(engine, state, turn, arg)
    elif name in {"back", "cancel", "restart", "help", "menu", "edit", "skip"}:
        await global_move(engine, state, turn, name)
    elif name in {"register", "dangky"}:
        await engine.start_flow(state, turn, "registration")
    elif name in engine.registry.commands:
        await engine.registry.commands[name](engine, state, turn, arg)
    else:
        turn.say(engine.texts("unknown_command"))
        await engine.reask(state, turn)


async def start(engine: Engine, state: ConversationState, turn: Turn, payload: str) -> None:
    referral = actions.parse_start_payload(payload)
    if referral:
        state.meta.update(referral)
    if state.flow:
        flow = engine.flow(state)
        turn.say(engine.texts("resume", flow_title=flow.title if flow else ""))
        await engine.reask(state, turn)
        return
    text = engine.texts("greeting")
    if state.meta.get("referral"):
        text = engine.texts("greeting_referral", referral=state.meta["referral_label"]) + "\n" + text
    turn.say(text, engine.menu_buttons())


async def global_move(engine: Engine, state: ConversationState, turn: Turn, move: str) -> None:
    flow = engine.flow(state)
    if move == "help":
        step = engine.step(state)
        text = engine.texts("help")
        if step and step.help:
            text = (
                f"{engine.texts('step_help_title')}\n{render(step.help, **engine.context(state))}\n\n{text}"
            )
        # «Gặp nhân viên»: the bot layer's hotline desk opens a ticket (bot/hotline/desk.py).
        turn.say(text, [Button(engine.texts("human_button"), "human")])
        await engine.reask(state, turn)
        return
    if move == "menu" or flow is None:
        if move in {"back", "cancel", "restart", "edit", "skip"} and flow is None:
            turn.say(engine.texts("nothing_to_go_back"), engine.menu_buttons())
        else:
            turn.say(engine.texts("menu_prompt"), engine.menu_buttons())
        return
    if move == "back":
        await go_back(engine, state, turn)
    elif move in {"cancel", "restart"}:
        # «hủy» and «làm lại» drop what was typed: asked first (cancel_confirm / restart_confirm)
        kind = PendingType(move)
        question = engine.texts(f"{move}_confirm", flow_title=flow.title)
        ask_first(engine, state, turn, kind, question, f"{move}_yes")
    elif move == "edit":
        await show_edit_list(engine, state, turn)
    elif move == "skip":
        step = engine.step(state)
        if step and step.optional:
            await engine.accept(state, turn, step, None)
        else:
            turn.say(engine.texts("step_required"))
            await engine.reask(state, turn)


def ask_first(
    engine: Engine,
    state: ConversationState,
    turn: Turn,
    kind: PendingType,
    question: str,
    yes_key: str,
    value: Any = None,
) -> None:
    """A move that would drop what the user typed is confirmed first (yes/no buttons)."""
    state.pending = Pending(type=kind, step=state.step, value=value)
    turn.say(
        question,
        [Button(engine.texts(yes_key), "confirm:yes"), Button(engine.texts("cancel_no"), "confirm:no")],
    )


async def go_back(engine: Engine, state: ConversationState, turn: Turn) -> None:
    state.pending = None
    if engine.declaration_sent(state):
        # An answer changed now would not reach the office (see declaration_sent).
        turn.say(engine.texts("edit_after_sending"))
        await engine.reask(state, turn)
        return
    flow = engine.flow(state)
    while state.history:
        previous = state.history.pop()
        step = flow.step(previous) if flow and previous in flow.index else None
        if step and step.kind not in {"action", "end"} and engine.applicable(state, step):
            state.step = previous
            state.editing = False
            await engine.ask(state, turn)
            return
    turn.say(engine.texts("back_at_start"))
    await engine.reask(state, turn)


async def show_edit_list(engine: Engine, state: ConversationState, turn: Turn) -> None:
    flow = engine.flow(state)
    step = engine.step(state)
    if flow is None or step is None:
        return
    summary_position = next((i for i, s in enumerate(flow.steps) if s.kind == "summary"), None)
    if summary_position is None or engine.declaration_sent(state):
        turn.say(engine.texts("edit_after_sending"))
        await engine.reask(state, turn)
        return
    buttons = [
        Button(s.label, f"edit:{s.id}")
        for s in flow.steps[:summary_position]
        if s.label and s.field and engine.applicable(state, s)
    ]
    turn.say(engine.texts("edit_which"), buttons)


async def switch_flow(engine: Engine, state: ConversationState, turn: Turn, flow_id: str) -> None:
    current = engine.flow(state)
    if current is not None and current.id == flow_id:
        turn.say(engine.texts("resume", flow_title=current.title))
        await engine.reask(state, turn)
        return
    if current is not None and state.values:
        question = engine.texts(
            "switch_confirm", flow_title=current.title, new_title=engine.flows[flow_id].title
        )
        ask_first(engine, state, turn, PendingType.SWITCH, question, "switch_yes", value=flow_id)
        return
    await engine.start_flow(state, turn, flow_id)


async def answer_pending_confirm(engine: Engine, state: ConversationState, turn: Turn, yes: bool) -> None:
    pending = state.pending
    assert pending is not None
    state.pending = None
    if pending.type == PendingType.CANCEL:
        if yes:
            await actions.discard_flow_uploads(engine, state)
            engine.end_flow(state)
            turn.say(engine.texts("cancelled"), engine.menu_buttons())
        else:
            await engine.ask(state, turn, prefix=engine.texts("continue_where"))
    elif pending.type == PendingType.RESTART:
        if yes and state.flow:
            flow_id = state.flow
            await actions.discard_flow_uploads(engine, state)
            turn.say(engine.texts("restarted"))
            state.step = None
            await engine.start_flow(state, turn, flow_id)
        else:
            await engine.ask(state, turn, prefix=engine.texts("continue_where"))
    elif pending.type == PendingType.SWITCH:
        if yes:
            await actions.discard_flow_uploads(engine, state)
            engine.end_flow(state)
            await engine.start_flow(state, turn, pending.value)
        else:
            await engine.ask(state, turn, prefix=engine.texts("continue_where"))
    elif pending.type in {PendingType.CONFIRM, PendingType.QUESTION_OR_VALUE}:
        step = engine.step(state)
        if yes and step is not None:
            await engine.accept(state, turn, step, pending.value)
        else:
            await engine.ask(state, turn, prefix=engine.texts("confirm_retype"))
    elif pending.type in engine.registry.confirms:
        await engine.registry.confirms[pending.type](engine, state, turn, pending, yes)
    else:
        await engine.reask(state, turn)
