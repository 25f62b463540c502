"""The FAQ's data: faq.yaml (entries, out-of-scope topics, anchors, texts) read once, the
labelled question files, and the result types every other part of the matcher shares."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from knowledge import yamlfile

KNOWLEDGE = Path(__file__).resolve().parent.parent
FAQ_PATH = KNOWLEDGE / "faq.yaml"
TRAINING_PATH = KNOWLEDGE / "faq_training.tsv"

OUT_OF_SCOPE = "out_of_scope"

NEXT_ACTIONS = frozenset(
    {"start_registration", "start_child_registration", "install_guide", "account_help", "status"}
)


@dataclass(frozen=True)
class FaqEntry:
    id: str
    questions: tuple[str, ...]
    answer: str
    source: str
    next_action: str | None
    general_advice: bool
    keywords: tuple[str, ...] = ()
    formerly: tuple[str, ...] = ()  # ids this entry had before entries were merged or renamed


@dataclass(frozen=True)
class FaqMatch:
    entry: FaqEntry
    score: float  # 0-100


@dataclass(frozen=True)
class FaqResult:
    question: str
    match: FaqMatch | None  # set only when confident
    suggestions: tuple[FaqMatch, ...] = ()  # up to 3 when not confident but plausible
    # Refused by the scope model although these entries scored as suggestions would: a
    # refusal still (outcome, evaluation and JSON unchanged), after which a person may be
    # offered them, in case the question was ours after all.
    related: tuple[FaqMatch, ...] = ()
    # Answered outright, and these close entries (the runners-up the bot would have
    # suggested) may be what was meant too: the chat offers them as buttons after the
    # answer. Not in the JSON (its shape is fixed).
    see_also: tuple[FaqMatch, ...] = ()
    # Answered, and the scores alone would answer with the same entry by a clear lead: what
    # a mid-form statement that is not worded as a question needs to be taken for one.
    sure: bool = False

    @property
    def outcome(self) -> Literal["answer", "suggest", "refuse"]:
        if self.match is not None:
            return "answer"
        return "suggest" if self.suggestions else "refuse"

    @property
    def best(self) -> FaqMatch | None:
        """The top-ranked entry whatever the outcome (evaluation uses it for top-1)."""
        if self.match is not None:
            return self.match
        return self.suggestions[0] if self.suggestions else None

    def to_json(self) -> dict[str, Any]:
        """The object `vssid-bot faq --json` prints (shape fixed by issue 3)."""
        return {
            "question": self.question,
            "match": None
            if self.match is None
            else {
                "id": self.match.entry.id,
                "score": round(self.match.score, 1),
                "answer": self.match.entry.answer,
            },
            "suggestions": [
                {"id": s.entry.id, "question": s.entry.questions[0], "score": round(s.score, 1)}
                for s in self.suggestions
            ],
        }


@dataclass(frozen=True)
class EvalCase:
    expected: str  # an entry id, OUT_OF_SCOPE, or "a|b" for a message asking two things
    question: str

    @property
    def accepted(self) -> tuple[str, ...]:
        """The entry ids an answer may name to be right (either of a message's two questions)."""
        return tuple(label.strip() for label in self.expected.split("|"))


class FaqDataError(ValueError):
    """faq.yaml is malformed; the message names the entry and the field."""


@dataclass(frozen=True)
class FaqFile:
    """Everything faq.yaml holds, parsed and checked once."""

    entries: tuple[FaqEntry, ...]
    out_of_scope: tuple[str, ...]
    anchors: tuple[str, ...]
    hotline: str
    messages: dict[str, str]


def read_faq(path: Path = FAQ_PATH) -> FaqFile:
    """faq.yaml parsed (once per version of the file: the parse is cached on its mtime)."""
    stat = path.stat()
    return _parse(path, stat.st_mtime_ns, stat.st_size)


@functools.cache
def _parse(path: Path, _mtime_ns: int, _size: int) -> FaqFile:
    raw = yamlfile.safe_load(path.read_text(encoding="utf-8"), kept_as=str(path)) or {}
    return FaqFile(
        entries=tuple(_entries(path.name, raw.get("entries") or [])),
        out_of_scope=_strings(raw.get("out_of_scope")),
        anchors=_strings(raw.get("anchors")),
        hotline=str(raw.get("hotline", "1900 9068")),
        messages={str(k): str(v) for k, v in (raw.get("messages") or {}).items()},
    )


def _strings(items: Any) -> tuple[str, ...]:
    return tuple(str(q).strip() for q in items or () if str(q).strip())


def _entries(name: str, items: list[dict[str, Any]]) -> list[FaqEntry]:
    entries: list[FaqEntry] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        where = f"{name}: entry #{i + 1} ({item.get('id', '?')})"
        for field in ("id", "questions", "answer", "source"):
            if not item.get(field):
                raise FaqDataError(f"{where}: field '{field}' is missing or empty")
        if item["id"] in seen:
            raise FaqDataError(f"{where}: duplicate id")
        seen.add(item["id"])
        action = item.get("next_action")
        if action is not None and action not in NEXT_ACTIONS:
            raise FaqDataError(f"{where}: next_action '{action}' is not one of {sorted(NEXT_ACTIONS)}")
        entries.append(
            FaqEntry(
                id=str(item["id"]),
                questions=tuple(str(q).strip() for q in item["questions"]),
                answer=str(item["answer"]).strip(),
                source=str(item["source"]).strip(),
                next_action=action,
                general_advice=bool(item.get("general_advice", False)),
                keywords=tuple(str(k) for k in item.get("keywords") or ()),
                formerly=tuple(str(k) for k in item.get("formerly") or ()),
            )
        )
    return entries


def load_entries(path: Path = FAQ_PATH) -> list[FaqEntry]:
    return list(read_faq(path).entries)


def load_out_of_scope(path: Path = FAQ_PATH) -> list[str]:
    return list(read_faq(path).out_of_scope)


def load_anchors(path: Path = FAQ_PATH) -> list[str]:
    return list(read_faq(path).anchors)


def hotline() -> str:
    return read_faq().hotline


def message(name: str) -> str:
    """A reviewable text from the `messages` block of faq.yaml, {hotline} filled in."""
    faq = read_faq()
    return faq.messages[name].strip().replace("{hotline}", faq.hotline)


def load_eval(path: Path) -> list[EvalCase]:
    """Read an evaluation (or training) TSV: `expected<TAB>question`, "#" comment lines."""
    cases: list[EvalCase] = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        expected, sep, question = line.partition("\t")
        if not sep or not question.strip():
            raise FaqDataError(f"{path.name}:{lineno}: expected 'id<TAB>question'")
        cases.append(EvalCase(expected.strip(), question.strip()))
    return cases
