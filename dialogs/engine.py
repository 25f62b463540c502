"""The one engine: given the conversation state and what the user did, decide what happens next.

Channels never decide anything; flows (dialogs/flows/*.yaml) say what to ask; this module
walks them, applies the global moves (back, cancel, restart, help, edit from the summary,
questions at any step) and calls the side effects through the ports it is given.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace
from typing import Any

from dialogs import actions, buttons, cardfill, fields, parsers, payloads
from dialogs.conversation import Registry, Services, Turn
from dialogs.fields import RejectedWithEscape
from dialogs.flow import Flow, Step, load_flows
from dialogs.interpret import (
    STEP_VERDICTS,
    Interpreter,
    Message,
    Move,
    NotAPhoto,
    NotYesNo,
    Pick,
    Press,
    Question,
    QuestionOrValue,
    Reply,
    Unclear,
    Verdict,
)
from dialogs.messages import Button, Inbound, Outbound
from dialogs.parsing import Accepted, Ambiguous, Choice, NeedsConfirmation, ParseResult, Rejected
from dialogs.ports import PhotoRejected
from dialogs.state import ConversationState, Flags, Pending, PendingType
from dialogs.texts import Texts, holds, render
from knowledge.faq import FaqEntry, FaqIndex, FaqMatch, FaqResult
from knowledge.faq import message as faq_message
from knowledge.text import fold

log = logging.getLogger(__name__)

COMMAND_ALIASES = {"huy": "cancel", "quaylai": "back", "trogiup": "help", "batdau": "start"}
MAX_CHOICE_BUTTONS = 8


class Engine:
    def __init__(
        self,
        services: Services,
        flows: dict[str, Flow] | None = None,
        texts: Texts | None = None,
        registry: Registry | None = None,
    ) -> None:
        self.services = services
        self.registry = registry if registry is not None else default_registry()
        self.flows = flows if flows is not None else load_flows()
        self.texts = texts or Texts.default()
        self.interpreter = Interpreter(
            faq=lambda: self.faq,
            parse_values=ConversationState.parse_values,
            offered=self._suggested,
            match_offered=self._match_offered,
            extra_buttons=self._typed_buttons,
        )

    @property
    def faq(self) -> FaqIndex:
        if self.services.faq is None:
            self.services.faq = FaqIndex.default()
        return self.services.faq

    # ---------------------------------------------------------------- entry point

    async def handle(
        self, state: ConversationState, inbound: Inbound
    ) -> tuple[ConversationState, list[Outbound]]:
        turn = Turn(conversation_id=inbound.conversation_id)
        command = inbound.command
        if command is not None:
            await self._command(state, turn, *command)
        elif inbound.button is not None:
            await self._button(state, turn, inbound.button)
        elif inbound.photo is not None:
            await self._photo(state, turn, inbound.photo)
        elif inbound.text is not None and inbound.text.strip():
            await self._text(state, turn, inbound.text.strip())
        else:
            await self.reask(state, turn)
        return state, self._with_progress(state, turn.replies)

    # ---------------------------------------------------------------- helpers on flows

    def flow(self, state: ConversationState) -> Flow | None:
        return self.flows.get(state.flow) if state.flow else None

    def step(self, state: ConversationState) -> Step | None:
        flow = self.flow(state)
        if flow is None or state.step is None or state.step not in flow.index:
            return None
        return flow.step(state.step)

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
        step = self.step(state)
        progress = self.progress(state, step) if step is not None else None
        if progress is None or not replies or any(r.progress for r in replies):
            return replies
        return [*replies[:-1], replace(replies[-1], progress=progress)]

    def menu_buttons(self) -> list[Button]:
        return [Button(item["label"], item["payload"]) for item in self.texts.raw("menu")]

    # ---------------------------------------------------------------- commands and global moves

    async def _command(self, state: ConversationState, turn: Turn, name: str, arg: str) -> None:
        name = COMMAND_ALIASES.get(name, name)
        if name == "start":
            await self._start(state, turn, arg)
        elif name in {"back", "cancel", "restart", "help", "menu", "edit", "skip"}:
            await self._global(state, turn, name)
        elif name in {"register", "dangky"}:
            await self.start_flow(state, turn, "registration")
        elif name in self.registry.commands:
            await self.registry.commands[name](self, state, turn, arg)
        else:
            turn.say(self.texts("unknown_command"))
            await self.reask(state, turn)

    async def _start(self, state: ConversationState, turn: Turn, payload: str) -> None:
        referral = actions.parse_start_payload(payload)
        if referral:
            state.meta.update(referral)
        if state.flow:
            flow = self.flow(state)
            turn.say(self.texts("resume", flow_title=flow.title if flow else ""))
            await self.reask(state, turn)
            return
        text = self.texts("greeting")
        if state.meta.get("referral"):
            text = self.texts("greeting_referral", referral=state.meta["referral_label"]) + "\n" + text
        turn.say(text, self.menu_buttons())

    async def _global(self, state: ConversationState, turn: Turn, move: str) -> None:
        flow = self.flow(state)
        if move == "help":
            step = self.step(state)
            text = self.texts("help")
            if step and step.help:
                text = (
                    f"{self.texts('step_help_title')}\n{render(step.help, **self.context(state))}\n\n{text}"
                )
            # «Gặp nhân viên»: the bot layer's hotline desk opens a ticket (bot/hotline/desk.py).
            turn.say(text, [Button(self.texts("human_button"), "human")])
            await self.reask(state, turn)
            return
        if move == "menu" or flow is None:
            if move in {"back", "cancel", "restart", "edit", "skip"} and flow is None:
                turn.say(self.texts("nothing_to_go_back"), self.menu_buttons())
            else:
                turn.say(self.texts("menu_prompt"), self.menu_buttons())
            return
        if move == "back":
            await self.go_back(state, turn)
        elif move == "cancel":
            self._ask_first(
                state, turn, "cancel", self.texts("cancel_confirm", flow_title=flow.title), "cancel_yes"
            )
        elif move == "restart":
            self._ask_first(
                state, turn, "restart", self.texts("restart_confirm", flow_title=flow.title), "restart_yes"
            )
        elif move == "edit":
            await self._show_edit_list(state, turn)
        elif move == "skip":
            step = self.step(state)
            if step and step.optional:
                await self._accept(state, turn, step, None)
            else:
                turn.say(self.texts("step_required"))
                await self.reask(state, turn)

    def _ask_first(
        self, state: ConversationState, turn: Turn, kind: str, question: str, yes_key: str, value: Any = None
    ) -> None:
        """A move that would drop what the user typed is confirmed first (yes/no buttons)."""
        state.pending = Pending(type=kind, step=state.step, value=value)
        turn.say(
            question,
            [Button(self.texts(yes_key), "confirm:yes"), Button(self.texts("cancel_no"), "confirm:no")],
        )

    async def go_back(self, state: ConversationState, turn: Turn) -> None:
        state.pending = None
        if self.declaration_sent(state):
            # An answer changed now would not reach the office (see declaration_sent).
            turn.say(self.texts("edit_after_sending"))
            await self.reask(state, turn)
            return
        flow = self.flow(state)
        while state.history:
            previous = state.history.pop()
            step = flow.step(previous) if flow and previous in flow.index else None
            if step and step.kind not in {"action", "end"} and self.applicable(state, step):
                state.step = previous
                state.editing = False
                await self.ask(state, turn)
                return
        turn.say(self.texts("back_at_start"))
        await self.reask(state, turn)

    # ---------------------------------------------------------------- flows

    async def start_flow(self, state: ConversationState, turn: Turn, flow_id: str) -> None:
        flow = self.flows[flow_id]
        state.flow = flow.id
        _clear_form(state)
        state.run_id = uuid.uuid4().hex
        if flow.intro:
            turn.say(render(flow.intro, **self.context(state)) + "\n" + self.texts("nav_hint"))
        if flow.on_start:
            await self.registry.actions[flow.on_start](self, state, turn)
        if state.flow == flow.id and state.step is None:
            await self.enter(state, turn, flow.first)

    def end_flow(self, state: ConversationState) -> None:
        state.flow = None
        state.step = None
        _clear_form(state)
        state.run_id = None

    async def enter(self, state: ConversationState, turn: Turn, step: Step) -> None:
        """Make `step` current (or the next applicable one) and run or ask it."""
        flow = self.flow(state)
        assert flow is not None
        while step is not None and (not self.applicable(state, step) or cardfill.filled(state, step)):
            step = self._following(flow, step)
        if step is None:
            self.end_flow(state)
            turn.say(self.texts("menu_prompt"), self.menu_buttons())
            return
        if state.step and state.step != step.id and flow.index.get(state.step) is not None:
            current = flow.step(state.step)
            if current.kind not in {"action"} and (not state.history or state.history[-1] != state.step):
                state.history.append(state.step)
        if step.kind == "summary" and step.id in state.history:
            # Back at the summary after an edit (or a declined commitment): that detour is no
            # way back; «quay lại» from the summary goes through the form's order again.
            del state.history[state.history.index(step.id) :]
        state.step = step.id
        state.pending = None
        state.last_rejected = None
        if step.kind in {"action", "end"} and step.action:
            await self.registry.actions[step.action](self, state, turn)
            return
        if step.kind == "end":
            text = render(step.prompt, **self.context(state)) if step.prompt else ""
            self.end_flow(state)
            turn.say(f"{text}\n{self.texts('menu_prompt')}".strip(), self.menu_buttons())
            return
        await self.ask(state, turn)

    def _following(self, flow: Flow, step: Step) -> Step | None:
        if step.next:
            return flow.step(step.next)
        position = flow.index[step.id] + 1
        return flow.steps[position] if position < len(flow.steps) else None

    async def advance(self, state: ConversationState, turn: Turn, target: str | None = None) -> None:
        flow = self.flow(state)
        step = self.step(state)
        if flow is None or step is None:
            return
        following = flow.step(target) if target else self._following(flow, step)
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

    async def reask(self, state: ConversationState, turn: Turn) -> None:
        if self.step(state) is None:
            if not turn.replies:
                turn.say(self.texts("menu_prompt"), self.menu_buttons())
            return
        await self.ask(state, turn)

    async def ask(self, state: ConversationState, turn: Turn, prefix: str | None = None) -> None:
        step = self.step(state)
        if step is None:
            return
        state.pending = None
        ctx = self.context(state)
        text = render(step.prompt, **ctx) if step.prompt else ""
        if step.kind == "action":
            # A conversation rests on an action step only when the backend did not answer
            # (the submission, the look-up): what is asked of the user is to try again.
            text = self.texts("backend_unavailable")
        if prefix:
            text = f"{prefix}\n{text}" if text else prefix
        buttons: list[Button] = []
        if step.kind == "text":
            current = state.get_value(step.field) if step.field else None
            if step.suggestions:
                # The value kept is offered once, as «Giữ nguyên», not again among the suggestions.
                choices = [
                    c for c in parsers.suggestions(step.suggestions)(state.values) if c.value != current
                ]
                if choices:
                    self._offer_choices(state, step, [{"label": c.label, "value": c.value} for c in choices])
                    buttons += [
                        Button(c.label, f"pick:{i}") for i, c in enumerate(choices[:MAX_CHOICE_BUTTONS])
                    ]
            if current is not None and step.show:
                shown = render(step.show, **ctx)
                buttons.append(Button(self.texts("keep_value", shown=shown)[:60], "keep"))
            if step.resend:
                buttons.append(Button(self.texts("resend_otp"), "resend"))
            if step.optional:
                buttons.append(Button(self.texts("skip"), "skip"))
        elif step.kind == "choice":
            buttons += [Button(o.label, f"opt:{i}") for i, o in enumerate(step.options)]
        elif step.kind == "photo":
            if state.get_value(step.field) is not None:
                buttons.append(Button(self.texts("keep_photo"), "keep"))
        elif step.kind == "card":
            text, buttons = cardfill.prompt(state, step, text)
        elif step.kind == "summary":
            text = f"{text}\n{self.summary_text(state)}".strip()
            buttons += [Button(step.confirm_label, "summary:ok"), Button(step.edit_label, "edit")]
        elif step.kind == "confirm":
            buttons += [Button(step.yes_label, "confirm:yes"), Button(step.no_label, "confirm:no")]
        elif step.kind == "action":
            buttons.append(Button(self.texts("retry"), "retry"))
        buttons += _own_buttons(step)
        turn.say(text, buttons, progress=self.progress(state, step))

    def summary_text(self, state: ConversationState) -> str:
        flow = self.flow(state)
        lines = []
        for step in flow.steps if flow else ():
            if step.kind == "summary":
                break
            if not (step.field and step.label and step.show) or not self.applicable(state, step):
                continue
            value = state.get_value(step.field)
            if value is None and not step.optional:
                continue
            lines.append(f"• {step.label}: {render(step.show, **self.context(state))}")
        return "\n".join(lines)

    async def _show_edit_list(self, state: ConversationState, turn: Turn) -> None:
        flow = self.flow(state)
        step = self.step(state)
        if flow is None or step is None:
            return
        summary_position = next((i for i, s in enumerate(flow.steps) if s.kind == "summary"), None)
        if summary_position is None or self.declaration_sent(state):
            turn.say(self.texts("edit_after_sending"))
            await self.reask(state, turn)
            return
        buttons = [
            Button(s.label, f"edit:{s.id}")
            for s in flow.steps[:summary_position]
            if s.label and s.field and self.applicable(state, s)
        ]
        turn.say(self.texts("edit_which"), buttons)

    def _offer_choices(self, state: ConversationState, step: Step, choices: list[dict]) -> None:
        state.pending = Pending(type="choices", step=step.id, choices=choices[:MAX_CHOICE_BUTTONS])

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
            await self._stale(state, turn)

    async def _stale(self, state: ConversationState, turn: Turn) -> None:
        if self.step(state) is None:
            turn.say(self.texts("menu_prompt"), self.menu_buttons())
            return
        await self.ask(state, turn, prefix=self.texts("stale_button"))

    async def _switch_flow(self, state: ConversationState, turn: Turn, flow_id: str) -> None:
        current = self.flow(state)
        if current is not None and current.id == flow_id:
            turn.say(self.texts("resume", flow_title=current.title))
            await self.reask(state, turn)
            return
        if current is not None and state.values:
            question = self.texts(
                "switch_confirm", flow_title=current.title, new_title=self.flows[flow_id].title
            )
            self._ask_first(state, turn, "switch", question, "switch_yes", value=flow_id)
            return
        await self.start_flow(state, turn, flow_id)

    async def _answer_pending_confirm(self, state: ConversationState, turn: Turn, yes: bool) -> None:
        pending = state.pending
        assert pending is not None
        state.pending = None
        if pending.type == "cancel":
            if yes:
                await actions.discard_flow_uploads(self, state)
                self.end_flow(state)
                turn.say(self.texts("cancelled"), self.menu_buttons())
            else:
                await self.ask(state, turn, prefix=self.texts("continue_where"))
        elif pending.type == "restart":
            if yes and state.flow:
                flow_id = state.flow
                await actions.discard_flow_uploads(self, state)
                turn.say(self.texts("restarted"))
                state.step = None
                await self.start_flow(state, turn, flow_id)
            else:
                await self.ask(state, turn, prefix=self.texts("continue_where"))
        elif pending.type == "switch":
            if yes:
                await actions.discard_flow_uploads(self, state)
                self.end_flow(state)
                await self.start_flow(state, turn, pending.value)
            else:
                await self.ask(state, turn, prefix=self.texts("continue_where"))
        elif pending.type in {"confirm", "question_or_value"}:
            step = self.step(state)
            if yes and step is not None:
                await self._accept(state, turn, step, pending.value)
            else:
                await self.ask(state, turn, prefix=self.texts("confirm_retype"))
        elif pending.type in self.registry.confirms:
            await self.registry.confirms[pending.type](self, state, turn, pending, yes)
        else:
            await self.reask(state, turn)

    # ---------------------------------------------------------------- photos

    async def _photo(self, state: ConversationState, turn: Turn, data: bytes) -> None:
        step = self.step(state)
        if step is None:
            turn.say(self.texts("photo_not_expected_idle"), self.menu_buttons())
            return
        if cardfill.takes_card_photo(self.flow(state), step) and await cardfill.on_photo(
            self, state, turn, step, data
        ):
            return
        if step.kind != "photo":
            turn.say(self.texts("expect_text"))
            await self.ask(state, turn)
            return
        try:
            stored = await self.services.photos.store(turn.conversation_id, step.photo_kind or "photo", data)
        except PhotoRejected as rejected:
            # What is wrong comes first; "this step seems hard" only after it.
            turn.say(self._photo_error(rejected, step.photo_kind))
            self._count_attempt(state, step, turn)
            await self.ask(state, turn)
            return
        kind_label = self.texts.raw("photo_kinds").get(step.photo_kind, "")
        turn.say(self.texts("photo_saved", kind_label=kind_label, width=stored.width, height=stored.height))
        old = state.get_value(step.field)
        if old and old != stored.path:
            actions.forget_file(old)
        typed = (state.values.get("id") or {}).get("number")
        if stored.id_number_on_card and typed and stored.id_number_on_card != typed:
            state.set_value(step.field, stored.path)
            state.pending = Pending(type="card_number", step=step.id, value=stored.id_number_on_card)
            turn.say(
                self.texts("card_number_differs", typed=typed, card=stored.id_number_on_card),
                [
                    Button(self.texts("card_number_use"), "confirm:yes"),
                    Button(self.texts("card_number_keep"), "confirm:no"),
                ],
            )
            return
        await self._accept(state, turn, step, stored.path)

    # ---------------------------------------------------------------- text

    async def _text(self, state: ConversationState, turn: Turn, text: str) -> None:
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
        if isinstance(verdict, Move):
            await self._global(state, turn, verdict.name)
        elif isinstance(verdict, Reply):
            await self._answer_pending_confirm(state, turn, verdict.yes)
        elif isinstance(verdict, Pick):
            if step is not None:
                await self._accept(state, turn, step, verdict.value)
        elif isinstance(verdict, NotYesNo):
            turn.say(self.texts("choose_one"))
        elif isinstance(verdict, Press):
            await self._button(state, turn, verdict.payload)
        elif isinstance(verdict, Question):
            await self._question(state, turn, step, verdict)
        elif isinstance(verdict, QuestionOrValue):
            assert step is not None
            state.pending = Pending(type=PendingType.QUESTION_OR_VALUE, step=step.id, value=verdict.value)
            turn.say(
                self.texts("question_or_value", typed=text.strip()[:80], label=step.label),
                self._yes_no_buttons(),
            )
        elif isinstance(verdict, NotAPhoto):
            turn.say(self.texts("expect_photo"))
            await self.ask(state, turn)
        elif isinstance(verdict, Unclear):
            await self.ask(state, turn, prefix=self.texts("choose_one") if verdict.choose else None)
        else:
            assert step is not None
            await self._take(state, turn, step, verdict.result, text)

    async def _take(
        self, state: ConversationState, turn: Turn, step: Step, result: ParseResult, text: str
    ) -> None:
        """The step's answer as its parser read it: stored, offered as a list, to confirm, or refused."""
        if isinstance(result, Accepted):
            if result.notice:
                turn.say(result.notice)
            await self._accept(state, turn, step, result.value)
        elif isinstance(result, Ambiguous):
            choices = [{"label": c.label, "value": c.value} for c in result.choices]
            self._offer_choices(state, step, choices)
            turn.say(
                result.message,
                [Button(c["label"], f"pick:{i}") for i, c in enumerate(choices[:MAX_CHOICE_BUTTONS])],
            )
        elif isinstance(result, NeedsConfirmation):
            state.pending = Pending(type=PendingType.CONFIRM, step=step.id, value=result.value)
            turn.say(result.message, self._yes_no_buttons())
        else:
            self._refuse(state, turn, step, result, text)

    def _refuse(self, state: ConversationState, turn: Turn, step: Step, result: Rejected, text: str) -> None:
        """The field's rule: what is wrong and an example, with the step's buttons at hand."""
        state.last_rejected = text
        self._count_attempt(state, step, turn)
        buttons = []
        if isinstance(result, RejectedWithEscape):
            state.flags.offered_escape = result.flag
            buttons.append(Button(result.button_label, f"flag:{result.flag}"))
        offered = self._suggested(state, step)
        if offered:  # the list stays at hand after a search that found nothing
            self._offer_choices(state, step, [{"label": c.label, "value": c.value} for c in offered])
            buttons = [
                Button(c.label, f"pick:{i}") for i, c in enumerate(offered[:MAX_CHOICE_BUTTONS])
            ] + buttons
        if step.resend:
            buttons.append(Button(self.texts("resend_otp"), "resend"))
        if step.optional:
            buttons.append(Button(self.texts("skip"), "skip"))
        # The step's own ways out (the mã số BHXH look-up) stay at hand after a mistake.
        buttons += _own_buttons(step)
        turn.say(result.message, buttons)

    async def _choose_option(self, state: ConversationState, turn: Turn, step: Step, option: Any) -> None:
        if option.flow:
            self.end_flow(state)
            if option.then:
                state.meta["after_finish"] = option.then
            await self.start_flow(state, turn, option.flow)
            return
        await self._accept(state, turn, step, option.value, target=option.next)

    def _yes_no_buttons(self) -> list[Button]:
        """«Đúng» / «Không, nhập lại» for a value the user confirms (a pending "confirm")."""
        return [
            Button(self.texts("confirm_yes"), "confirm:yes"),
            Button(self.texts("confirm_no"), "confirm:no"),
        ]

    def _suggested(self, state: ConversationState, step: Step) -> list[Choice]:
        """The choices a text step offers as buttons (its `suggestions`), or none."""
        if step.kind != "text" or not step.suggestions:
            return []
        return list(parsers.suggestions(step.suggestions)(state.values))

    def _typed_buttons(self, state: ConversationState, step: Step) -> list[tuple[str, str]]:
        """Buttons of a step besides its options, whose label typed presses them."""
        buttons = [(b["label"], b["payload"]) for b in step.buttons]
        if step.resend:
            buttons.append((self.texts("resend_otp"), "resend"))
        if step.kind == "action":
            buttons.append((self.texts("retry"), "retry"))
        return buttons

    def _match_offered(self, message: Message, offered: list[Choice]) -> Ambiguous | None:
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
        message = self.texts("choices_matching", typed=text.strip()[:40], count=len(found), shown=shown)
        return Ambiguous(message, tuple(found))

    def _photo_error(self, rejected: PhotoRejected, kind: str | None) -> str:
        """The rejection in words, the photo kind's own wording first (a blurry portrait is
        not told to lay a document flat)."""
        for key in (f"photo_errors.{rejected.code}_{kind}", f"photo_errors.{rejected.code}"):
            try:
                return self.texts(key, **rejected.params)
            except KeyError:
                continue
        return self.texts("photo_errors.default")

    def _count_attempt(self, state: ConversationState, step: Step, turn: Turn) -> None:
        count = state.attempts.get(step.id, 0) + 1
        state.attempts[step.id] = count
        if count == 3:
            turn.say(self.texts("too_many_attempts"), [Button(self.texts("help_button"), "nav:help")])

    async def _accept(
        self, state: ConversationState, turn: Turn, step: Step, value: Any, target: str | None = None
    ) -> None:
        state.pending = None
        state.last_rejected = None
        state.attempts.pop(step.id, None)
        # An escape flag answers one question only: a child's name typed later is checked again.
        state.flags.escapes = []
        state.flags.offered_escape = None
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

    async def _question(
        self, state: ConversationState, turn: Turn, step: Step | None, verdict: Question
    ) -> None:
        """Answer a question (or suggest, or give the hotline); at a step, ask it again."""
        result = verdict.faq
        own = self._own_data_command(state, result)
        if own is not None:  # "hồ sơ của tôi đến đâu rồi": this user's own status, not the FAQ's
            await self.registry.commands[own](self, state, turn, "")
            return
        if not verdict.in_flow or step is None:
            if result.outcome == "refuse":
                turn.say(faq_message("refuse"), self.menu_buttons())
                if result.related:
                    # Refused, yet close to entries of ours: after the hotline, a way to those
                    # answers in case the question was ours after all.
                    turn.say(self.texts("faq_related"), _faq_buttons(result.related))
                return
            self._say_faq(state, turn, result, in_flow=False)
            return
        if result.outcome == "refuse":
            example = fields.example(step.parser) if step.parser else None
            turn.say(self.texts("question_unanswered", example=example))
        else:
            self._say_faq(state, turn, result, in_flow=True)
        await self.ask(state, turn, prefix=self.texts("faq_then_continue"))

    def _own_data_command(self, state: ConversationState, result: FaqResult) -> str | None:
        """The command that answers this FAQ entry from the user's own declarations, if they have any."""
        if result.match is None or not state.meta.get("declarations"):
            return None
        return self.texts.raw("faq_own_data").get(result.match.entry.id)

    def _say_faq(self, state: ConversationState, turn: Turn, result: FaqResult, in_flow: bool) -> None:
        if result.match is not None:
            # the close entries it might also have meant (or a second question's answer)
            self._say_answer(turn, result.match.entry, in_flow, also=result.see_also)
            return
        turn.say(self.texts("faq_suggest"), _faq_buttons(result.suggestions))

    async def _faq_entry(self, state: ConversationState, turn: Turn, entry_id: str) -> None:
        try:
            entry = self.faq.get(entry_id)
        except KeyError:
            await self._stale(state, turn)
            return
        in_flow = self.step(state) is not None
        self._say_answer(turn, entry, in_flow)
        if in_flow:
            await self.ask(state, turn, prefix=self.texts("faq_then_continue"))

    def _say_answer(
        self, turn: Turn, entry: FaqEntry, in_flow: bool, also: tuple[FaqMatch, ...] = ()
    ) -> None:
        """An FAQ answer; outside a flow with the entry's natural next action as a button;
        then a button per close entry it may also have meant."""
        buttons = []
        if not in_flow and entry.next_action:
            action = self.texts.raw("faq_next_actions").get(entry.next_action)
            if action:
                buttons.append(Button(action["label"], action["payload"]))
        turn.say(entry.answer, buttons + _faq_buttons(also)[:2])


def _faq_buttons(matches: tuple[FaqMatch, ...]) -> list[Button]:
    """One button per entry (at most three), labelled with its first phrasing."""
    return [Button(m.entry.questions[0][:60], f"faq:{m.entry.id}") for m in matches[:3]]


def _clear_form(state: ConversationState) -> None:
    """Forget what the user entered in the current flow (starting or ending one)."""
    state.values = {}
    state.flags = Flags()
    state.history = []
    state.pending = None
    state.editing = False
    state.attempts = {}
    state.last_rejected = None


def _own_buttons(step: Step) -> list[Button]:
    """The buttons a flow gives a step (its `buttons:`, e.g. the mã số BHXH look-up)."""
    return [Button(b["label"], b["payload"]) for b in step.buttons]


def default_registry() -> Registry:
    """The actions, commands and buttons of dialogs/actions.py and dialogs/cardfill.py."""
    registry = Registry()
    actions.register(registry)
    cardfill.register(registry)
    return registry


def _is_index(text: str) -> bool:
    """ASCII digits only: str.isdigit() is also true for "¹" or "٣", which int() refuses."""
    return text.isascii() and text.isdigit()
