"""What a typed message means, decided once, in one place, before the engine acts.

The text is folded once; then, in this order: a global move ("quay lại", "hủy"), the answer
to what the bot just asked (a yes/no, a pick from a list), a button's label typed instead of
pressed, the current step's own answer (its parser is heard first: "Đặng Văn Hà" is a name,
not a question), and only what the step cannot take goes to the FAQ. The engine receives the
verdict and never re-derives it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dialogs import parsers
from dialogs.fields import RejectedWithEscape, yes_no_word
from dialogs.flow import Step, StepKind
from dialogs.parsing import Accepted, Ambiguous, Choice, ParseResult, Rejected
from dialogs.state import ConversationState, PendingType
from knowledge.faq import FaqResult
from knowledge.text import fold

if TYPE_CHECKING:
    from knowledge.faq.index import FaqIndex

# Whole-message words that act as global moves wherever the user is (compared folded).
GLOBAL_WORDS = {
    "back": frozenset({"quay lai", "tro lai", "back", "lui lai", "buoc truoc"}),
    "cancel": frozenset({"huy", "huy bo", "thoat", "cancel", "dung lai", "stop"}),
    "restart": frozenset({"lam lai", "bat dau lai", "restart", "lam lai tu dau"}),
    "help": frozenset({"tro giup", "help", "giup", "huong dan"}),
    "menu": frozenset({"menu", "danh muc"}),
    "edit": frozenset({"sua", "sua thong tin", "chinh sua"}),
    "skip": frozenset({"bo qua", "skip"}),
}
# Each global word's move, a word of two sets taking the first's (as the sets are read in order).
_MOVE_OF = {word: move for move, words in reversed(GLOBAL_WORDS.items()) for word in words}
# Pending questions that stop or replace the flow: "hủy" while asked "stop?" means yes.
LEAVING = frozenset({PendingType.CANCEL, PendingType.RESTART, PendingType.SWITCH})


# ---------------------------------------------------------------- verdicts


@dataclass(frozen=True)
class Move:
    """A global move typed as a word: back, cancel, restart, help, menu, edit, skip."""

    name: str


@dataclass(frozen=True)
class Reply:
    """Yes or no to the question the bot is waiting on (state.pending)."""

    yes: bool


@dataclass(frozen=True)
class Pick:
    """One of the choices the bot listed (state.pending), by its number or label."""

    value: Any


@dataclass(frozen=True)
class NotYesNo:
    """Neither yes nor no while the bot waits for one: the user is asked to choose."""


@dataclass(frozen=True)
class Press:
    """A button's label (or its number) typed instead of pressing it."""

    payload: str


@dataclass(frozen=True)
class Answer:
    """The current step's answer as its parser read it (accepted, rejected, ambiguous, to confirm)."""

    result: ParseResult


@dataclass(frozen=True)
class Question:
    """A question: answered or suggested from the FAQ, or refused (the hotline). `in_flow`:
    asked at a step, which is asked again afterwards."""

    faq: FaqResult
    in_flow: bool = True


@dataclass(frozen=True)
class QuestionOrValue:
    """Plainly a question the FAQ cannot answer, yet a value the step would take (a street):
    the user says which it is."""

    value: Any


@dataclass(frozen=True)
class NotAPhoto:
    """Text at a photo step that is no question."""


@dataclass(frozen=True)
class Unclear:
    """Text a step with buttons cannot take and that is no question: the step is asked again
    (with "choose one" first when `choose` is set)."""

    choose: bool = True


Verdict = Move | Reply | Pick | NotYesNo | Press | Answer | Question | QuestionOrValue | NotAPhoto | Unclear
# Verdicts about the step itself: what the bot was waiting on (a list, "is this the value?")
# is answered by something else, so that wait ends.
STEP_VERDICTS = (Press, Answer, Question, QuestionOrValue, NotAPhoto, Unclear)


# ---------------------------------------------------------------- the interpreter


@dataclass(frozen=True)
class Message:
    """A typed text and its folded form, computed once."""

    text: str
    folded: str

    @classmethod
    def of(cls, text: str) -> Message:
        return cls(text, fold(text))


@dataclass
class Interpreter:
    """Turns a typed text into a Verdict. `faq` is asked at most once per message."""

    faq: Callable[[], FaqIndex]
    # The values a parser sees (the answers plus the engine's flags it reads).
    parse_values: Callable[[ConversationState], Mapping[str, Any]]
    # The choices a text step offers (its suggestions), and a search among them.
    offered: Callable[[ConversationState, Step], list[Choice]]
    match_offered: Callable[[Message, list[Choice]], Ambiguous | None]
    # Labels of buttons a step shows besides its options (resend, skip, keep, its own).
    # (payloads by folded label, the first of a label winning)
    extra_buttons: Callable[[ConversationState, Step], Mapping[str, str]]

    def interpret(self, state: ConversationState, step: Step | None, text: str) -> Verdict:
        message = Message.of(text)
        move = self._move(state, step, message)
        if move is not None:
            return move
        if state.pending is not None:
            waited = self._pending(state, message)
            if waited is not None:
                return waited
        if step is None:
            return Question(self.faq().ask(text), in_flow=False)
        pressed = self._pressed(state, step, message)
        if pressed is not None:
            return pressed
        if step.kind == StepKind.TEXT:
            return self._field(state, step, message)
        # Steps of buttons and photo steps take no typed value: any FAQ match is offered.
        question = self._question(message, suggest_always=step.kind not in (StepKind.ACTION, StepKind.END))
        if question is not None:
            return question
        if step.kind == StepKind.PHOTO:
            return NotAPhoto()
        return Unclear(choose=step.kind not in (StepKind.ACTION, StepKind.END))

    # -- before the step

    def _move(self, state: ConversationState, step: Step | None, message: Message) -> Verdict | None:
        folded = message.folded
        move = _MOVE_OF.get(folded)
        if move is None:
            return None
        if step and step.kind == StepKind.CONFIRM and folded in {fold(step.yes_label), fold(step.no_label)}:
            return None  # «Hủy» is the commitment's own "no"
        pending = state.pending
        if pending is not None and pending.type in LEAVING and move == "cancel":
            return Reply(yes=pending.type == PendingType.CANCEL)
        return Move(move)

    def _pending(self, state: ConversationState, message: Message) -> Verdict | None:
        pending = state.pending
        assert pending is not None
        if pending.type == PendingType.CHOICES:
            choices = pending.choices
            folded = message.folded
            if _is_index(folded) and 1 <= int(folded) <= len(choices):
                return Pick(choices[int(folded) - 1]["value"])
            pick = next((c for c in choices if fold(c["label"]) == folded), None)
            return Pick(pick["value"]) if pick is not None else None
        answer = yes_no_word(message.folded)
        if answer is not None:
            return Reply(yes=answer)
        if pending.type == PendingType.QUESTION_OR_VALUE:
            return None  # the value (or another question) typed instead: a fresh answer
        return NotYesNo()

    def _pressed(self, state: ConversationState, step: Step, message: Message) -> Press | None:
        """A button of the step typed by its label or, at a step of buttons, by its number."""
        folded = message.folded
        by_kind = _TYPED_BUTTON.get(step.kind)
        press = by_kind(step, folded) if by_kind is not None else None
        if press is not None:
            return press
        payload = self.extra_buttons(state, step).get(folded)
        if payload is not None:
            return Press(payload)
        if step.kind == StepKind.CHOICE and step.parser:
            return self._option_by_rule(state, step, message)
        return None

    def _option_by_rule(self, state: ConversationState, step: Step, message: Message) -> Press | None:
        """The option whose value the step's rule reads in the text ("con ruột" -> con_de)."""
        assert step.parser is not None
        result = parsers.parser(step.parser)(message.text, self.parse_values(state))
        if isinstance(result, Accepted):
            for i, option in enumerate(step.options):
                if option.value == result.value:
                    return Press(f"opt:{i}")
        return None

    # -- the step's own rule first

    def _field(self, state: ConversationState, step: Step, message: Message) -> Verdict:
        text = message.text
        result: ParseResult = (
            parsers.parser(step.parser)(text, self.parse_values(state)) if step.parser else Accepted(text)
        )
        # Only a step with `suggestions:` offers choices (most steps: none to make).
        offered = self.offered(state, step) if step.suggestions else []
        if offered and isinstance(result, Rejected):
            # A step that offers a list (the receiving office): the field's own search comes
            # first; a fragment of a name ("Quận") is a search, not a question.
            result = self.match_offered(message, offered) or result
        faq_index = self.faq()
        if isinstance(result, Accepted):
            if offered or not faq_index.plainly_a_question(text):
                return Answer(result)  # "Đặng Văn Hà", "Nguyễn Thị Sao": names, not questions
            faq = faq_index.ask(text)
            return Question(faq) if faq.outcome != "refuse" else QuestionOrValue(result.value)
        question_like = faq_index.looks_like_question(text)
        if not question_like and (offered or not isinstance(result, Rejected)):
            return Answer(result)
        faq = faq_index.ask(text)
        # Not worded as a question, a text the step's rule refused is taken for one only when
        # the FAQ is sure ("otp ko về"), not merely confident ("tôi ko có thẻ bhyt").
        if (faq.outcome == "answer" and (question_like or faq.sure)) or (
            question_like and faq.outcome == "suggest"
        ):
            return Question(faq)
        # Refused: the hotline, then the step again with its buttons. A value the rule refuses
        # with a way out ("Nguyen Van Ha": a name without accents) keeps that way out unless
        # it is plainly a question.
        refused_plainly = isinstance(result, Rejected) and not isinstance(result, RejectedWithEscape)
        if (question_like and refused_plainly) or faq_index.plainly_a_question(text):
            return Question(faq)
        return Answer(result)

    def _question(self, message: Message, suggest_always: bool) -> Question | None:
        """The FAQ's verdict on a text a step cannot take: answered or suggested, or refused
        when it reads as a question (the hotline); None when it is no question at all."""
        faq_index = self.faq()
        question_like = faq_index.looks_like_question(message.text)
        faq = faq_index.ask(message.text)
        if faq.outcome == "answer" or (faq.outcome == "suggest" and (suggest_always or question_like)):
            return Question(faq)
        return Question(faq) if question_like else None


def _typed_option(step: Step, folded: str) -> Press | None:
    for i, option in enumerate(step.options):
        if folded in {fold(option.label), str(i + 1), fold(str(option.value))}:
            return Press(f"opt:{i}")
    return None


def _typed_confirm(step: Step, folded: str) -> Press | None:
    if folded in {fold(step.yes_label), "1"}:
        return Press("confirm:yes")
    if folded in {fold(step.no_label), "2"}:
        return Press("confirm:no")
    return None


def _typed_summary(step: Step, folded: str) -> Press | None:
    if yes_no_word(folded) is True or folded in {fold(step.confirm_label), "1"}:
        return Press("summary:ok")
    if folded in {fold(step.edit_label), "2"}:
        return Press("edit")
    return None


# The buttons a step of each kind shows, pressed by typing their label or number.
_TYPED_BUTTON: dict[StepKind, Callable[[Step, str], Press | None]] = {
    StepKind.CHOICE: _typed_option,
    StepKind.CONFIRM: _typed_confirm,
    StepKind.SUMMARY: _typed_summary,
}


def _is_index(text: str) -> bool:
    """ASCII digits only: str.isdigit() is also true for "¹" or "٣", which int() refuses."""
    return text.isascii() and text.isdigit()


__all__ = [
    "GLOBAL_WORDS",
    "STEP_VERDICTS",
    "Answer",
    "Interpreter",
    "Message",
    "Move",
    "NotAPhoto",
    "NotYesNo",
    "Pick",
    "Press",
    "Question",
    "QuestionOrValue",
    "Reply",
    "Unclear",
    "Verdict",
]
