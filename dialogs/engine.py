"""The one engine: given the conversation state and what the user did, decide what happens next.

Channels never decide anything; flows (dialogs/flows/*.yaml) say what to ask; this module
walks them: it enters steps, takes their answers and runs their actions. Its rooms:
interpret.py says what a typed message is, asking.py asks a step, navigation.py makes the
global moves (back, cancel, restart, help, «sửa» from the summary), questions.py answers
questions at any step, buttons.py handles each payload, photo_answers.py each photo; side
effects go through the ports.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any

from dialogs import (
    actions,
    asking,
    buttons,
    cardfill,
    guardian,
    my_data,
    navigation,
    payloads,
    photo_answers,
    questions,
)
from dialogs.catalog import Catalog
from dialogs.conversation import Registry, Services, Turn
from dialogs.fields import RejectedWithEscape
from dialogs.flow import Flow, Step, load_flows
from dialogs.interpret import (
    STEP_VERDICTS,
    Answer,
    Interpreter,
    Move,
    NotAPhoto,
    NotYesNo,
    Pick,
    Press,
    Question,
    QuestionOrValue,
    Reply,
    Verdict,
)
from dialogs.messages import Button, Inbound, Outbound
from dialogs.parsing import Accepted, Ambiguous, NeedsConfirmation, ParseResult, Rejected
from dialogs.ports import PhotoRejected
from dialogs.state import ConversationState, Flags, Pending, PendingType
from dialogs.texts import Texts, holds, render

if TYPE_CHECKING:
    from knowledge.faq.index import FaqIndex

log = logging.getLogger(__name__)


class Engine:
    def __init__(
        self,
        services: Services,
        flows: dict[str, Flow] | None = None,
        texts: Catalog | None = None,
        registry: Registry | None = None,
    ) -> None:
        self.services = services
        self.registry = registry if registry is not None else default_registry()
        self.flows = flows if flows is not None else load_flows()
        self.texts = texts or Texts.default()
        self.interpreter = Interpreter(
            faq=lambda: self.faq,
            parse_values=ConversationState.parse_values,
            offered=partial(asking.suggested, self),
            match_offered=partial(asking.match_offered, self),
            extra_buttons=partial(asking.typed_buttons, self),
        )

    @property
    def faq(self) -> FaqIndex:
        if self.services.faq is None:
            from knowledge.faq.index import FaqIndex  # numpy & co. on first question only

            self.services.faq = FaqIndex.default()
        return self.services.faq

    # ---------------------------------------------------------------- entry point

    async def handle(
        self, state: ConversationState, inbound: Inbound
    ) -> tuple[ConversationState, list[Outbound]]:
        turn = Turn(inbound.conversation_id)
        command = inbound.command
        text = inbound.text
        if command is not None:
            await navigation.command(self, state, turn, *command)
        elif inbound.button is not None:
            await self._button(state, turn, inbound.button)
        elif inbound.photo is not None:
            await photo_answers.on_photo(self, state, turn, inbound.photo)
        elif text is not None and (text := text.strip()):
            await self.on_text(state, turn, text)
        else:
            await self.reask(state, turn)
        return state, self._with_progress(state, turn.replies)

    # ---------------------------------------------------------------- helpers on flows

    def flow(self, state: ConversationState) -> Flow | None:
        return self.flows.get(state.flow) if state.flow else None

    def step(self, state: ConversationState) -> Step | None:
        # Asked several times per message: one dict lookup each for the flow and the step.
        flow = self.flow(state)
        if flow is None:
            return None
        position = flow.index.get(state.step) if state.step is not None else None
        return flow.steps[position] if position is not None else None

    def context(self, state: ConversationState, **extra: Any) -> dict[str, Any]:
        return {"v": state.values, "flags": state.flags, "meta": state.meta, **extra}

    def applicable(self, state: ConversationState, step: Step) -> bool:
        if not step.when:
            return True
        return holds(step.when, **self.context(state))

    def progress(self, state: ConversationState, step: Step) -> tuple[int, int] | None:
        flow = self.flow(state)
        if flow is None or not flow.sections or not step.section:
            return None
        return (step.section, len(flow.sections))

    def _with_progress(self, state: ConversationState, replies: list[Outbound]) -> list[Outbound]:
        """A turn that leaves the user at a step says where they are, also when it only said an
        error or asked yes/no (the web page's progress bar stays put)."""
        if not replies:
            return replies
        for reply in replies:  # most turns end by asking a step (a loop: one or two replies)
            if reply.progress:
                return replies
        step = self.step(state)
        progress = self.progress(state, step) if step is not None else None
        if progress is None:
            return replies
        return [*replies[:-1], replace(replies[-1], progress=progress)]

    def menu_buttons(self) -> list[Button]:
        return list(self._menu)

    @cached_property
    def _menu(self) -> tuple[Button, ...]:
        """The menu's buttons, made once (the catalog is read once per process)."""
        return tuple(Button(item["label"], item["payload"]) for item in self.texts.raw("menu"))

    # ---------------------------------------------------------------- commands and global moves

    # ---------------------------------------------------------------- flows

    async def start_flow(self, state: ConversationState, turn: Turn, flow_id: str) -> None:
        flow = self.flows[flow_id]
        state.flow = flow.id
        _clear_form(state)
        state.run_id = new_run_id()
        if flow.intro:
            intro = render(flow.intro, **self.context(state)) if "{" in flow.intro else flow.intro.strip()
            turn.say(intro + "\n" + self.texts("nav_hint"))
        if flow.on_start:
            await self.registry.actions[flow.on_start](self, state, turn)
        if state.flow == flow.id and state.step is None:
            await self.enter(state, turn, flow.first)

    def end_flow(self, state: ConversationState) -> None:
        state.flow = None
        state.step = None
        _clear_form(state)
        state.run_id = None

    async def enter(self, state: ConversationState, turn: Turn, step: Step | None) -> None:
        """Make `step` current (or the next applicable one) and run or ask it."""
        flow = self.flow(state)
        assert flow is not None
        # (most steps have no condition, and most forms no card: neither is asked about then)
        from_cards = state.flags.card_filled
        while step is not None and (
            (step.when and not self.applicable(state, step)) or (from_cards and cardfill.filled(state, step))
        ):
            step = self.following(flow, step)
        if step is None:
            self.end_flow(state)
            turn.say(self.texts("menu_prompt"), self.menu_buttons())
            return
        current = state.step
        if current and current != step.id:
            position = flow.index.get(current)
            if position is not None and flow.steps[position].kind != "action":
                history = state.history
                if not history or history[-1] != current:
                    history.append(current)
        if step.kind == "summary" and step.id in state.history:
            # Back at the summary after an edit (or a declined commitment): that detour is no
            # way back; «quay lại» from the summary goes through the form's order again.
            del state.history[state.history.index(step.id) :]
        state.step = step.id
        _forget_answered(state)
        if step.action and step.kind in {"action", "end"}:
            await self.registry.actions[step.action](self, state, turn)
            return
        if step.kind == "end":
            text = render(step.prompt, **self.context(state)) if step.prompt else ""
            self.end_flow(state)
            turn.say(f"{text}\n{self.texts('menu_prompt')}".strip(), self.menu_buttons())
            return
        asking.ask(self, state, turn)

    def following(self, flow: Flow, step: Step) -> Step | None:
        if step.next:
            return flow.step(step.next)
        position = flow.index[step.id] + 1
        return flow.steps[position] if position < len(flow.steps) else None

    async def advance(self, state: ConversationState, turn: Turn, target: str | None = None) -> None:
        flow = self.flow(state)
        step = self.step(state)
        if flow is None or step is None:
            return
        following = flow.step(target) if target else self.following(flow, step)
        # Editing one field goes back to the summary, unless the field's side road (the
        # mã số BHXH look-up) is under way: that runs to its end first.
        if state.editing and not (following is not None and flow.on_side_road(following)):
            missing = self._first_missing_before_summary(state, flow)
            if missing is not None:
                await self.enter(state, turn, missing)
                return
            state.editing = False
            summary = next((s for s in flow.steps if s.kind == "summary"), None)
            if summary is not None:
                await self.enter(state, turn, summary)
                return
        if following is None:
            self.end_flow(state)
            turn.say(self.texts("menu_prompt"), self.menu_buttons())
            return
        await self.enter(state, turn, following)

    def _first_missing_before_summary(self, state: ConversationState, flow: Flow) -> Step | None:
        for step in flow.steps:
            if step.kind == "summary":
                return None
            # A step with an action (an OTP check) consumes its value: once passed it is
            # never "missing", or an edit would loop on an OTP nobody sent.
            if step.field and not step.optional and not step.action and self.applicable(state, step):
                if state.get_value(step.field) is None:
                    return step
        return None

    # ---------------------------------------------------------------- asking

    async def ask(self, state: ConversationState, turn: Turn, prefix: str | None = None) -> None:
        """Ask the current step (again), `prefix` first (dialogs/asking.py)."""
        asking.ask(self, state, turn, prefix)

    def summary_text(self, state: ConversationState) -> str:
        return asking.summary_text(self, state)

    async def reask(self, state: ConversationState, turn: Turn) -> None:
        if self.step(state) is None:
            if not turn.replies:
                turn.say(self.texts("menu_prompt"), self.menu_buttons())
            return
        await self.ask(state, turn)

    # ---------------------------------------------------------------- buttons

    @staticmethod
    def declaration_sent(state: ConversationState) -> bool:
        """Sent to the office, or sent without an answer (an outage): nothing on the form can be
        changed any more («làm lại» starts a new one). Not "past the summary": the commitment
        comes before sending, the mã số BHXH look-up after the end."""
        return bool(state.flags.receipt or state.flags.submit_attempted)

    async def _button(self, state: ConversationState, turn: Turn, payload: str) -> None:
        pressed = payloads.parse(payload)
        handled = False
        if pressed is not None:
            handler = buttons.HANDLERS.get(type(pressed))
            if handler is not None:
                handled = await handler(self, state, turn, pressed)
            elif type(pressed) in self.registry.buttons:
                await self.registry.buttons[type(pressed)](self, state, turn, pressed)
                handled = True
        if not handled:
            await self.stale(state, turn)

    async def stale(self, state: ConversationState, turn: Turn) -> None:
        if self.step(state) is None:
            turn.say(self.texts("menu_prompt"), self.menu_buttons())
            return
        await self.ask(state, turn, prefix=self.texts("stale_button"))

    # ---------------------------------------------------------------- text

    async def on_text(self, state: ConversationState, turn: Turn, text: str) -> None:
        step = self.step(state)
        if step is not None and step.kind == "card" and await cardfill.on_text(self, state, turn, step, text):
            return  # a proposal's answer or correction, or a value typed instead of the card
        verdict = self.interpreter.interpret(state, step, text)
        if isinstance(verdict, STEP_VERDICTS) and state.pending is not None:
            state.pending = None  # what the bot waited on was answered by something else
        await self._act_on(state, turn, step, verdict, text)

    async def _act_on(
        self, state: ConversationState, turn: Turn, step: Step | None, verdict: Verdict, text: str
    ) -> None:
        """Do what the interpreted message asks; nothing here looks at the text again."""
        if isinstance(verdict, Answer):  # most messages: the step's own answer
            assert step is not None
            await self._take(state, turn, step, verdict.result, text)
        elif isinstance(verdict, Move):
            await navigation.global_move(self, state, turn, verdict.name)
        elif isinstance(verdict, Reply):
            await navigation.answer_pending_confirm(self, state, turn, verdict.yes)
        elif isinstance(verdict, Pick):
            if step is not None:
                await self.accept(state, turn, step, verdict.value)
        elif isinstance(verdict, NotYesNo):
            turn.say(self.texts("choose_one"))
        elif isinstance(verdict, Press):
            await self._button(state, turn, verdict.payload)
        elif isinstance(verdict, Question):
            await questions.question(self, state, turn, step, verdict)
        elif isinstance(verdict, QuestionOrValue):
            assert step is not None
            state.pending = Pending(type=PendingType.QUESTION_OR_VALUE, step=step.id, value=verdict.value)
            turn.say(
                self.texts("question_or_value", typed=text.strip()[:80], label=step.label),
                asking.yes_no_buttons(self),
            )
        elif isinstance(verdict, NotAPhoto):
            turn.say(self.texts("expect_photo"))
            await self.ask(state, turn)
        else:
            await self.ask(state, turn, prefix=self.texts("choose_one") if verdict.choose else None)

    async def _take(
        self, state: ConversationState, turn: Turn, step: Step, result: ParseResult, text: str
    ) -> None:
        """The step's answer as its parser read it: stored, offered as a list, to confirm, or refused."""
        if isinstance(result, Accepted):
            if result.notice:
                turn.say(result.notice)
            await self.accept(state, turn, step, result.value)
        elif isinstance(result, Ambiguous):
            choices = [{"label": c.label, "value": c.value} for c in result.choices]
            asking.offer_choices(self, state, step, choices)
            turn.say(
                result.message,
                [Button(c["label"], f"pick:{i}") for i, c in enumerate(choices[: asking.MAX_CHOICE_BUTTONS])],
            )
        elif isinstance(result, NeedsConfirmation):
            state.pending = Pending(type=PendingType.CONFIRM, step=step.id, value=result.value)
            turn.say(result.message, asking.yes_no_buttons(self))
        else:
            self._refuse(state, turn, step, result, text)

    def _refuse(self, state: ConversationState, turn: Turn, step: Step, result: Rejected, text: str) -> None:
        """The field's rule: what is wrong and an example, with the step's buttons at hand."""
        state.last_rejected = text
        self.count_attempt(state, step, turn)
        buttons = []
        if isinstance(result, RejectedWithEscape):
            state.flags.offered_escape = result.flag
            buttons.append(Button(result.button_label, f"flag:{result.flag}"))
        offered = asking.suggested(self, state, step)
        if offered:  # the list stays at hand after a search that found nothing
            asking.offer_choices(self, state, step, [{"label": c.label, "value": c.value} for c in offered])
            buttons = [
                Button(c.label, f"pick:{i}") for i, c in enumerate(offered[: asking.MAX_CHOICE_BUTTONS])
            ] + buttons
        if step.resend:
            buttons.append(Button(self.texts("resend_otp"), "resend"))
        if step.optional:
            buttons.append(Button(self.texts("skip"), "skip"))
        # The step's own ways out (the mã số BHXH look-up) stay at hand after a mistake.
        buttons += asking.own_buttons(step)
        turn.say(result.message, buttons)

    async def choose_option(self, state: ConversationState, turn: Turn, step: Step, option: Any) -> None:
        if option.flow:
            self.end_flow(state)
            if option.then:
                state.meta["after_finish"] = option.then
            await self.start_flow(state, turn, option.flow)
            return
        await self.accept(state, turn, step, option.value, target=option.next)

    def photo_error(self, rejected: PhotoRejected, kind: str | None = None) -> str:
        """The rejection in words, the photo kind's own wording first (a blurry portrait is
        not told to lay a document flat)."""
        keys = (f"photo_errors.{rejected.code}_{kind}",) if kind else ()
        for key in (*keys, f"photo_errors.{rejected.code}"):
            try:
                return self.texts(key, **rejected.params)
            except KeyError:
                continue
        return self.texts("photo_errors.default")

    def count_attempt(self, state: ConversationState, step: Step, turn: Turn) -> None:
        count = state.attempts.get(step.id, 0) + 1
        state.attempts[step.id] = count
        if count == 3:
            turn.say(self.texts("too_many_attempts"), [Button(self.texts("help_button"), "nav:help")])

    async def accept(
        self, state: ConversationState, turn: Turn, step: Step, value: Any, target: str | None = None
    ) -> None:
        _forget_answered(state)
        state.attempts.pop(step.id, None)
        # An escape flag answers one question only: a child's name typed later is checked again.
        flags = state.flags
        if flags.escapes:
            flags.escapes = []
        if flags.offered_escape is not None:
            flags.offered_escape = None
        if step.field:
            previous = state.get_value(step.field)
            state.set_value(step.field, value)
            if previous is not None and previous != value:
                for dependent in step.invalidates:
                    actions.drop_field(state, dependent)
        if step.after:
            # An after-hook may keep the user at this step (returns False), e.g. an unknown account.
            if await self.registry.actions[step.after](self, state, turn) is False:
                return
        if step.action and step.kind == "text":
            # Steps like the OTP: the action decides whether to go on.
            await self.registry.actions[step.action](self, state, turn)
            return
        await self.advance(state, turn, target=target)

    # ---------------------------------------------------------------- questions (FAQ)


def new_run_id() -> str:
    """`uuid.uuid4().hex` (a random UUID, version 4, in 32 hex digits) without building a
    UUID object, whose checks and int conversions cost twice what the random bytes do."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # variant: RFC 4122
    return raw.hex()


def _forget_answered(state: ConversationState) -> None:
    """No question pending and no refused text: assigned only when set (each assignment to a
    pydantic model goes through its __setattr__, and most messages find them unset)."""
    if state.pending is not None:
        state.pending = None
    if state.last_rejected is not None:
        state.last_rejected = None


def _clear_form(state: ConversationState) -> None:
    """Forget what the user entered in the current flow (starting or ending one)."""
    state.values = {}
    state.flags = Flags()
    state.history = []
    state.pending = None
    state.editing = False
    state.attempts = {}
    state.last_rejected = None


def default_registry() -> Registry:
    """The actions, commands and buttons of dialogs/actions.py, guardian.py, my_data.py and cardfill.py."""
    registry = Registry()
    actions.register(registry)
    guardian.register(registry)
    my_data.register(registry)
    cardfill.register(registry)
    return registry


def _is_index(text: str) -> bool:
    """ASCII digits only: str.isdigit() is also true for "¹" or "٣", which int() refuses."""
    return text.isascii() and text.isdigit()
