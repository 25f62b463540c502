"""A photo sent in a conversation: a card's QR where the form offers it, else the photo step's
answer (checked, stored, its ID number compared with the one typed), else a word on what the
step expects. The engine hands every photo here (dialogs/engine.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dialogs import actions, cardfill
from dialogs.messages import Button
from dialogs.ports import PhotoRejected
from dialogs.state import ConversationState, Pending, PendingType

if TYPE_CHECKING:
    from dialogs.conversation import Turn
    from dialogs.engine import Engine
    from dialogs.flow import Step


async def on_photo(engine: Engine, state: ConversationState, turn: Turn, data: bytes) -> None:
    step = engine.step(state)
    if step is None:
        turn.say(engine.texts("photo_not_expected_idle"), engine.menu_buttons())
        return
    if cardfill.takes_card_photo(engine.flow(state), step) and await cardfill.on_photo(
        engine, state, turn, step, data
    ):
        return
    if step.kind != "photo":
        turn.say(engine.texts("expect_text"))
        await engine.ask(state, turn)
        return
    try:
        stored = await engine.services.photos.store(turn.conversation_id, step.photo_kind or "photo", data)
    except PhotoRejected as rejected:
        # What is wrong comes first; "this step seems hard" only after it.
        turn.say(engine.photo_error(rejected, step.photo_kind))
        engine.count_attempt(state, step, turn)
        await engine.ask(state, turn)
        return
    kind_label = engine.texts.raw("photo_kinds").get(step.photo_kind, "")
    turn.say(engine.texts("photo_saved", kind_label=kind_label, width=stored.width, height=stored.height))
    old = state.get_value(step.field_path)
    if old and old != stored.path:
        actions.forget_file(old)
    if _card_number_differs(engine, state, turn, step, stored.path, stored.id_number_on_card):
        return
    await engine.accept(state, turn, step, stored.path)


def _card_number_differs(
    engine: Engine, state: ConversationState, turn: Turn, step: Step, path: str, on_card: str | None
) -> bool:
    """The ID photo shows another number than the one typed: kept, and which one is right asked."""
    typed = (state.values.get("id") or {}).get("number")
    if not (on_card and typed and on_card != typed):
        return False
    state.set_value(step.field_path, path)
    state.pending = Pending(type=PendingType.CARD_NUMBER, step=step.id, value=on_card)
    turn.say(
        engine.texts("card_number_differs", typed=typed, card=on_card),
        [
            Button(engine.texts("card_number_use"), "confirm:yes"),
            Button(engine.texts("card_number_keep"), "confirm:no"),
        ],
    )
    return True
