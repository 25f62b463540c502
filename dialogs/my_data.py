"""What the assistant holds about the user (/mydata) and forgetting all of it (/delete)."""

from __future__ import annotations

from dialogs.actions import files_in, forget_file
from dialogs.conversation import Conversation, Registry, Turn
from dialogs.messages import Button
from dialogs.state import ConversationState, Pending, PendingType


async def show_my_data(engine: Conversation, state: ConversationState, turn: Turn, arg: str) -> None:
    t = engine.texts
    lines = []
    flow = engine.flow(state)
    if flow is not None:
        labels = [s.label for s in flow.steps if s.label and s.field and state.get_value(s.field) is not None]
        if labels:
            lines.append(t("mydata.form", flow=flow.title, fields=", ".join(labels)))
    photos = len(files_in(state.values.get("photos", {}))) + sum(
        len(d.get("photos", [])) for d in state.meta.get("declarations", [])
    )
    if photos:
        lines.append(t("mydata.photos", count=photos))
    receipts = [d["receipt"] for d in state.meta.get("declarations", [])]
    if receipts:
        lines.append(t("mydata.declarations", receipts=", ".join(receipts)))
    if state.meta.get("referral"):
        lines.append(t("mydata.referral", referral=state.meta["referral"]))
    if not lines:
        turn.say(t("mydata.nothing"), engine.menu_buttons())
        return
    turn.say(
        "\n".join([t("mydata.header"), *lines, t("mydata.footer")]),
        [Button(t("mydata.delete_button"), "cmd:delete")],
    )


async def ask_delete(engine: Conversation, state: ConversationState, turn: Turn, arg: str) -> None:
    state.pending = Pending(type=PendingType.DELETE, step=state.step)
    t = engine.texts
    turn.say(
        t("delete.confirm"),
        [Button(t("delete.yes_button"), "confirm:yes"), Button(t("delete.no_button"), "confirm:no")],
    )


async def _answer_delete(
    engine: Conversation, state: ConversationState, turn: Turn, pending: Pending, yes: bool
) -> None:
    t = engine.texts
    if not yes:
        turn.say(t("delete.kept"))
        await engine.reask(state, turn)
        return
    documents = [d["document"] for d in state.meta.get("declarations", []) if d.get("document")]
    for path in documents:
        forget_file(path)
    photos = await engine.services.photos.delete_owner(turn.conversation_id)
    if engine.services.forget_user is not None:
        await engine.services.forget_user(turn.conversation_id)
    fresh = ConversationState()
    for key in type(state).model_fields:
        setattr(state, key, getattr(fresh, key))
    turn.say(t("delete.done", photos=photos, documents=len(documents)), engine.menu_buttons())


def register(registry: Registry) -> None:
    """Hand /mydata, /delete and the yes/no of /delete to the engine."""
    registry.commands.update({"mydata": show_my_data, "delete": ask_delete})
    registry.confirms[PendingType.DELETE] = _answer_delete
