"""Filling the form from a photo of a card: the chip CCCD's QR and the BHYT card's QR.

A flow offers it with a step of kind `card` (its `cards:` say which cards it takes), reached
from a `goto:` button on the form's first step; a photo sent on that first step is taken as a
card too. What the QR says (knowledge/cards.py) becomes a proposal: each value is run through
its field's own rule (the parser its flow step names), exactly as if it had been typed, and
the whole is shown for confirmation. Nothing is filled before the user says so; any item can
be corrected one by one; typing stays possible throughout (a typed answer at the card step
goes to the first field still missing).

The chip CCCD's photo is stored as the ID-front photo, so it is not asked for again; a BHYT
card's photo is read and not kept. The proposal lives in `state.flags.card_proposal` until used.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dialogs import actions, parsers
from dialogs.catalog import Catalog, catalog
from dialogs.conversation import Registry
from dialogs.fields import cccd_birth_year
from dialogs.flow import Flow, Step
from dialogs.interpret import GLOBAL_WORDS
from dialogs.messages import Button
from dialogs.parsing import Accepted, NeedsConfirmation, Rejected
from dialogs.payloads import CardAction, Payload
from dialogs.ports import PhotoRejected
from dialogs.state import ConversationState
from dialogs.texts import render
from knowledge.cards import BhytCard, Card, CardRead, CccdCard, interpret
from knowledge.text import fold

if TYPE_CHECKING:
    from dialogs.engine import Engine, Turn

ID_FRONT = "photos.id_front"
_WARD_WORDS = ("phuong ", "xa ", "thi tran ", "dac khu ", "p. ", "x. ", "tt ")
_GLOBAL_WORDS = frozenset().union(*GLOBAL_WORDS.values())
# Which card fills which fields (the other card is offered while its fields are missing).
CARD_FIELDS = {"cccd": ("full_name", "id"), "bhyt": ("social_insurance_code",)}


@cache
def texts() -> Catalog:
    return catalog(Path(__file__).with_name("card_texts.yaml"))


def card_step(flow: Flow | None) -> Step | None:
    return next((s for s in flow.steps if s.kind == "card"), None) if flow else None


def takes_card_photo(flow: Flow | None, step: Step) -> bool:
    """The card step itself, or a step that offers it with a button (a photo there is a card)."""
    target = card_step(flow)
    return target is not None and (
        step.id == target.id or any(b["payload"] == f"goto:{target.id}" for b in step.buttons)
    )


def filled(state: ConversationState, step: Step) -> bool:
    """A step whose value came from a card the user confirmed (not asked again in the usual order)."""
    return (
        bool(step.field) and step.field in state.flags.card_filled and state.get_value(step.field) is not None
    )


def field_step(flow: Flow, field: str) -> Step | None:
    """The form's own step for a field (not a side road's, such as the look-up's name)."""
    return next((s for s in flow.steps if s.field == field and s.parser and not flow.on_side_road(s)), None)


# ---------------------------------------------------------------- what the engine calls


def prompt(state: ConversationState, step: Step, text: str) -> tuple[str, list[Button]]:
    """The card step's question: the proposal when one waits for an answer, else the prompt."""
    proposal = state.flags.card_proposal
    if proposal:
        return _proposal_text(proposal), _proposal_buttons()
    return text, [Button(texts()("type_label"), "card:type")]


async def on_photo(engine: Engine, state: ConversationState, turn: Turn, step: Step, data: bytes) -> bool:
    """Read a card photo. False (nothing said or changed) for a photo without a card's QR sent
    on the step that only offers the card road: the engine explains it as any photo there."""
    flow = engine.flow(state)
    target = card_step(flow)
    assert flow is not None and target is not None
    offered_only = step.id != target.id
    try:
        read = interpret(await engine.services.photos.read_qr(data))
    except PhotoRejected as rejected:
        if offered_only:
            return False
        turn.say(engine.photo_error(rejected))
        await engine.ask(state, turn)
        return True
    if offered_only:
        if read.card is None and read.error is None:
            return False
        state.history.append(step.id)
        state.step = target.id
    _forget_proposal(state)
    problem = _reading_problem(read, target, flow)
    if problem:
        turn.say(problem)
        await engine.ask(state, turn)
        return True
    assert read.card is not None
    proposal = propose(state, flow, read.card)
    if read.card.kind == "cccd" and _needs_id_front(flow):
        try:
            stored = await engine.services.photos.store(turn.conversation_id, "id_front", data)
            proposal["photo"] = stored.path
        except PhotoRejected:
            pass  # readable QR, photo too soft for the office: the photo step asks again
    state.flags.card_proposal = proposal
    await engine.ask(state, turn)
    return True


async def on_text(engine: Engine, state: ConversationState, turn: Turn, step: Step, text: str) -> bool:
    """Text at the card step: a correction being typed, an answer to the proposal, or a value
    typed instead of the card (it answers the first field still missing). False: for the
    engine's interpreter (a global word, a pending question, a question for the FAQ)."""
    if fold(text) in _GLOBAL_WORDS or state.pending is not None:
        return False
    proposal = state.flags.card_proposal
    if proposal and proposal.get("fixing") is not None:
        await _fix_item(engine, state, turn, proposal, text)
        return True
    answer = _proposal_answer(text) if proposal else None
    if answer is None and fold(text) == fold(texts()("type_label")):
        answer = "type"
    if answer is not None:
        await on_button(engine, state, turn, answer)
        return True
    if engine.faq.looks_like_question(text):
        return False
    _forget_proposal(state)
    resume = _resume_step(engine, state)
    if resume is None or resume.kind in {"card", "summary"}:
        await _go_on(engine, state, turn)
        return True
    state.history.append(step.id)
    state.step = resume.id
    await engine.on_text(state, turn, text)
    return True


async def on_button(engine: Engine, state: ConversationState, turn: Turn, arg: str) -> None:
    step = engine.step(state)
    proposal = state.flags.card_proposal or {}
    action, _, index = arg.partition(":")
    if step is None or step.kind != "card" or (action != "type" and not proposal):
        await engine.stale(state, turn)
    elif action == "type":
        _forget_proposal(state)
        await _go_on(engine, state, turn)
    elif action == "drop":
        _forget_proposal(state)
        turn.say(texts()("dropped"))
        await _go_on(engine, state, turn)
    elif action == "use":
        await _use(engine, state, turn, proposal)
    elif action == "fix" and not index:
        items = [(i, item) for i, item in enumerate(proposal["items"]) if item.get("field")]
        turn.say(texts()("pick_field"), [Button(item["label"], f"card:fix:{i}") for i, item in items])
    elif action == "fix" and index.isdigit() and int(index) < len(proposal["items"]):
        item = proposal["items"][int(index)]
        proposal["fixing"] = int(index)
        turn.say(texts()("type_field", label=item["label"], shown=item["shown"]))
    else:
        await engine.stale(state, turn)


async def _on_card_button(engine: Any, state: ConversationState, turn: Turn, payload: Payload) -> None:
    await on_button(engine, state, turn, payload.arg())


def register(registry: Registry) -> None:
    """Hand the card buttons («Dùng thông tin này», «Sửa», …) to the engine."""
    registry.buttons[CardAction] = _on_card_button


# ---------------------------------------------------------------- the proposal


def propose(state: ConversationState, flow: Flow, card: Card) -> dict[str, Any]:
    """Each value the card gives, through its field's rule: {"kind", "items": [...]}; an item is
    {"field", "label", "value", "shown", "note", "problem"} (no field: shown for information)."""
    draft = _Draft(state, flow)
    if isinstance(card, CccdCard):
        draft.add("full_name", card.full_name)
        problem = _cccd_birth_problem(card)
        if problem:
            draft.problem("id", card.id_number, problem)
        else:
            draft.add("id", card.id_number)
        draft.address(card.address)
    elif isinstance(card, BhytCard):
        draft.add("social_insurance_code", card.card_code)
        draft.bhyt_name(card.full_name or "")
        if card.date_of_birth is not None:
            draft.add("date_of_birth", card.date_of_birth.strftime("%d/%m/%Y"))
    return {"kind": card.kind, "items": draft.items, "fixing": None, "photo": None}


class _Draft:
    def __init__(self, state: ConversationState, flow: Flow) -> None:
        self.flow = flow
        self.values: dict[str, Any] = dict(state.values)
        self.items: list[dict[str, Any]] = []

    def add(self, field: str, text: str, note: str | None = None) -> Any:
        step = field_step(self.flow, field)
        if step is None:
            return None
        result = parsers.parser(step.parser or "")(text, self.values)
        if isinstance(result, Accepted | NeedsConfirmation):
            self.values[field] = result.value
            self.items.append(_item(step, result.value, note=note))
            return result.value
        if isinstance(result, Rejected):
            self.items.append(_item(step, None, shown=text, problem=result.message))
        return None

    def problem(self, field: str, text: str, problem: str) -> None:
        step = field_step(self.flow, field)
        if step is not None:
            self.items.append(_item(step, None, shown=text, problem=problem))

    def info(self, label: str, shown: str) -> None:
        self.items.append({"field": None, "label": label, "shown": shown, "value": None})

    def bhyt_name(self, name: str) -> None:
        known = self.values.get("full_name")
        if known and fold(known) != fold(name):
            step = field_step(self.flow, "full_name")
            if step is not None:
                note = texts()("name_differs", other=known)
                self.items.append({**_item(step, None, shown=name), "note": note, "field": None})
        elif not known:
            self.add("full_name", name)

    def address(self, address: str) -> None:
        """Province, 2025 ward (converted from the old ward + district) and street from the card's line."""
        parts = [p.strip() for p in address.split(",") if p.strip()]
        if not parts or field_step(self.flow, "province") is None:
            return
        say = texts()
        self.info(say("address_on_card"), address)
        if len(parts) < 2:  # no commas: which words are the ward and which the province is a guess
            self.items[-1]["note"] = say("address_unsplit")
            return
        if self.add("province", parts[-1]) is None:
            return
        start = next((i for i, p in enumerate(parts[:-1]) if fold(p).startswith(_WARD_WORDS)), None)
        if start is None:
            start = max(0, len(parts) - (3 if len(parts) >= 4 else 2))
        old = len(parts) - start > 2  # ward, district, province: the units before 2025
        ward = self.add("ward", ", ".join(parts[start:-1]), note=say("address_converted") if old else None)
        ward_step = field_step(self.flow, "ward")
        if ward is None and ward_step is not None and not self.items[-1].get("problem"):
            self.info(ward_step.label or "", ", ".join(parts[start:-1]))
            self.items[-1]["note"] = say("address_ward_later")
        if start > 0:
            self.add("street", ", ".join(parts[:start]))


def _item(
    step: Step, value: Any, *, shown: str | None = None, note: str | None = None, problem: str | None = None
) -> dict[str, Any]:
    if shown is None:
        holder = ConversationState()
        holder.set_value(step.field_path, value)
        shown = render(step.show, v=holder.values) if step.show else str(value)
    label = step.label or step.field
    return {
        "field": step.field,
        "label": label,
        "value": value,
        "shown": shown,
        "note": note,
        "problem": problem,
    }


def _cccd_birth_problem(card: CccdCard) -> str | None:
    if card.date_of_birth is None or cccd_birth_year(card.id_number) == card.date_of_birth.year:
        return None
    return texts()(
        "cccd_birth_mismatch",
        number=card.id_number,
        year_in_number=cccd_birth_year(card.id_number),
        born=card.date_of_birth.strftime("%d/%m/%Y"),
    )


def _proposal_text(proposal: dict[str, Any]) -> str:
    say = texts()
    card = say.raw("card_names")[proposal["kind"]]
    lines = [say("read_title", card=card)]
    for item in proposal["items"]:
        line = say("read_line", label=item["label"], shown=item["shown"])
        if item.get("note"):
            line += " " + say("read_note", note=item["note"])
        lines.append(line)
        if item.get("problem"):
            lines.append(say("read_problem", problem=item["problem"]))
    usable = any(i.get("field") and not i.get("problem") for i in proposal["items"])
    lines.append(say("read_check") if usable else say("read_nothing_usable"))
    return "\n".join(lines)


def _proposal_answer(text: str) -> str | None:
    """A typed answer to the proposal: yes/no words, a button's label or its number."""
    folded = fold(text)
    for number, button in enumerate(_proposal_buttons(), start=1):
        if folded in {fold(button.label), str(number)}:
            return button.payload.partition(":")[2]
    answer = parsers.yes_no(text)
    return None if answer is None else ("use" if answer else "drop")


def _proposal_buttons() -> list[Button]:
    say = texts()
    return [
        Button(say("use_label"), "card:use"),
        Button(say("fix_label"), "card:fix"),
        Button(say("drop_label"), "card:drop"),
    ]


async def _fix_item(
    engine: Engine, state: ConversationState, turn: Turn, proposal: dict[str, Any], text: str
) -> None:
    item = proposal["items"][proposal["fixing"]]
    flow = engine.flow(state)
    step = field_step(flow, item["field"]) if flow else None
    if step is None:
        proposal["fixing"] = None
        await engine.ask(state, turn)
        return
    values = {**state.values, **{i["field"]: i["value"] for i in proposal["items"] if i.get("field")}}
    result = parsers.parser(step.parser or "")(text, values)
    if isinstance(result, Accepted | NeedsConfirmation):
        proposal["items"][proposal["fixing"]] = _item(step, result.value)
        proposal["fixing"] = None
        turn.say(texts()("fixed", label=item["label"]))
        await engine.ask(state, turn)
        return
    message = getattr(result, "message", "") or texts()(
        "type_field", label=item["label"], shown=item["shown"]
    )
    turn.say(message)


async def _use(engine: Engine, state: ConversationState, turn: Turn, proposal: dict[str, Any]) -> None:
    flow = engine.flow(state)
    assert flow is not None
    filled = [i for i in proposal["items"] if i.get("field") and not i.get("problem")]
    for item in filled:
        step = field_step(flow, item["field"])
        previous = state.get_value(item["field"])
        state.set_value(item["field"], item["value"])
        if step is not None and previous is not None and previous != item["value"]:
            for dependent in step.invalidates:
                actions.drop_field(state, dependent)
    say = texts()
    card = say.raw("card_names")[proposal["kind"]]
    turn.say(say("used", count=len(filled), card=card))
    if proposal.get("photo"):
        actions.drop_field(state, ID_FRONT)
        state.set_value(ID_FRONT, proposal["photo"])
        filled.append({"field": ID_FRONT})
        turn.say(say("id_front_kept"))
    state.flags.card_proposal = None
    state.flags.cards_used.append(proposal["kind"])
    state.flags.card_filled.extend(i["field"] for i in filled)
    for item in filled:  # the hooks a typed answer would run (the ID's verification check)
        step = field_step(flow, item["field"])
        if step is not None and step.after:
            await engine.registry.actions[step.after](engine, state, turn)
    await _next_card_or_go_on(engine, state, turn, flow)


async def _next_card_or_go_on(engine: Engine, state: ConversationState, turn: Turn, flow: Flow) -> None:
    target = card_step(flow)
    used = state.flags.cards_used
    for kind in target.cards if target else ():
        fields = [f for f in CARD_FIELDS[kind] if field_step(flow, f) is not None]
        if kind not in used and any(state.get_value(f) is None for f in fields):
            say = texts()
            card = say.raw("card_names")[kind]
            fill = say.raw("next_card_fields")[kind]
            turn.say(say("next_card", card=card, fields=fill), [Button(say("type_label"), "card:type")])
            return
    await _go_on(engine, state, turn)


async def _go_on(engine: Engine, state: ConversationState, turn: Turn) -> None:
    """Back to the form's usual order from the step that offered the card; what the cards
    filled is passed over (see `filled`)."""
    origin = _origin(engine.flow(state))
    if origin is not None:
        await engine.enter(state, turn, origin)


def _origin(flow: Flow | None) -> Step | None:
    target = card_step(flow)
    if flow is None or target is None:
        return None
    return next((s for s in flow.steps if s.id != target.id and takes_card_photo(flow, s)), None)


def _resume_step(engine: Engine, state: ConversationState) -> Step | None:
    """The step `_go_on` would ask: the origin, or the first after it neither skipped nor filled."""
    flow = engine.flow(state)
    step = _origin(flow)
    while (
        flow is not None and step is not None and (not engine.applicable(state, step) or filled(state, step))
    ):
        step = engine.following(flow, step)
    return step


def _needs_id_front(flow: Flow) -> bool:
    return any(s.field == ID_FRONT for s in flow.steps)


def _forget_proposal(state: ConversationState) -> None:
    proposal, state.flags.card_proposal = state.flags.card_proposal, None
    if proposal and proposal.get("photo"):
        actions.forget_file(proposal["photo"])


def _reading_problem(read: CardRead, step: Step, flow: Flow) -> str | None:
    say = texts()
    names = say.raw("card_names")
    wanted = say.raw("card_names_joiner").join(names[k] for k in step.cards)
    if read.error is not None:
        card = names[read.error.kind]
        key = read.error.code if read.error.code in say.raw("payload_errors") else "default"
        return say(f"payload_errors.{key}", card=card, **read.error.params)
    if read.card is None:
        return say("reading_failed.other_qr" if read.other_qr else "reading_failed.no_qr", wanted=wanted)
    if read.card.kind not in step.cards:
        key = "wrong_card_child" if flow.kind == "child" else "wrong_card"
        return say(f"reading_failed.{key}", card=names[read.card.kind], wanted=wanted)
    return None
