"""Free questions at any point: answered from the FAQ (or suggested, or the hotline), the
user's own status where the question is about it, then the step asked again."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dialogs import fields
from dialogs.conversation import Turn
from dialogs.flow import Step
from dialogs.interpret import Question
from dialogs.messages import Button
from dialogs.state import ConversationState
from knowledge.faq import FaqEntry, FaqMatch, FaqResult
from knowledge.faq import message as faq_message

if TYPE_CHECKING:
    from dialogs.engine import Engine


async def question(
    engine: Engine, state: ConversationState, turn: Turn, step: Step | None, verdict: Question
) -> None:
    """Answer a question (or suggest, or give the hotline); at a step, ask it again."""
    result = verdict.faq
    own = own_data_command(engine, state, result)
    if own is not None:  # "hồ sơ của tôi đến đâu rồi": this user's own status, not the FAQ's
        await engine.registry.commands[own](engine, state, turn, "")
        return
    if not verdict.in_flow or step is None:
        if result.outcome == "refuse":
            turn.say(faq_message("refuse"), engine.menu_buttons())
            if result.related:
                # Refused, yet close to entries of ours: after the hotline, a way to those
                # answers in case the question was ours after all.
                turn.say(engine.texts("faq_related"), _faq_buttons(result.related))
            return
        say_faq(engine, state, turn, result, in_flow=False)
        return
    if result.outcome == "refuse":
        example = fields.example(step.parser) if step.parser else None
        turn.say(engine.texts("question_unanswered", example=example))
    else:
        say_faq(engine, state, turn, result, in_flow=True)
    await engine.ask(state, turn, prefix=engine.texts("faq_then_continue"))


def own_data_command(engine: Engine, state: ConversationState, result: FaqResult) -> str | None:
    """The command that answers this FAQ entry from the user's own declarations, if they have any."""
    if result.match is None or not state.meta.get("declarations"):
        return None
    return engine.texts.raw("faq_own_data").get(result.match.entry.id)


def say_faq(engine: Engine, state: ConversationState, turn: Turn, result: FaqResult, in_flow: bool) -> None:
    if result.match is not None:
        # the close entries it might also have meant (or a second question's answer)
        say_answer(engine, turn, result.match.entry, in_flow, also=result.see_also)
        return
    turn.say(engine.texts("faq_suggest"), _faq_buttons(result.suggestions))


async def faq_entry(engine: Engine, state: ConversationState, turn: Turn, entry_id: str) -> None:
    try:
        entry = engine.faq.get(entry_id)
    except KeyError:
        await engine.stale(state, turn)
        return
    in_flow = engine.step(state) is not None
    say_answer(engine, turn, entry, in_flow)
    if in_flow:
        await engine.ask(state, turn, prefix=engine.texts("faq_then_continue"))


def say_answer(
    engine: Engine, turn: Turn, entry: FaqEntry, in_flow: bool, also: tuple[FaqMatch, ...] = ()
) -> None:
    """An FAQ answer; outside a flow with the entry's natural next action as a button;
    then a button per close entry it may also have meant."""
    buttons = []
    if not in_flow and entry.next_action:
        action = engine.texts.raw("faq_next_actions").get(entry.next_action)
        if action:
            buttons.append(Button(action["label"], action["payload"]))
    turn.say(entry.answer, buttons + _faq_buttons(also)[:2])


def _faq_buttons(matches: tuple[FaqMatch, ...]) -> list[Button]:
    """One button per entry (at most three), labelled with its first phrasing."""
    return [Button(m.entry.questions[0][:60], f"faq:{m.entry.id}") for m in matches[:3]]
