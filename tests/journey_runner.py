"""Plays the scripted parent journeys of tests/journeys/*.yaml.

A journey is data a social-insurance officer can read: what the parent types, taps and
sends, what the assistant must say at the key points, and the exact declaration the stub
backend holds at the end. The same journey is played through the engine directly
(`EngineDriver`: `Engine.handle` on a state kept in memory) and through the web chat's HTTP
API of a real `vssid-bot` server talking to the stub over HTTP (`WebDriver`). The script's
vocabulary is described in tests/journeys/README.md.
"""

from __future__ import annotations

import itertools
import os
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import aiohttp
import yaml

JOURNEYS_DIR = Path(__file__).resolve().parent / "journeys"
ACTIONS = ("type", "tap", "ask", "photo", "otp", "wait", "reload")
CHECKS = ("expect", "not", "buttons", "exact_buttons", "step", "pdf")
REASKED_PREFIX = "Quay lại việc đang làm:"


# ---------------------------------------------------------------- the journeys as data


@dataclass(frozen=True)
class Journey:
    name: str
    title: str
    phone: str | None
    script: list[dict[str, Any]]
    declarations: list[dict[str, Any]]

    def __str__(self) -> str:
        return self.name


def load_journeys(directory: Path = JOURNEYS_DIR) -> list[Journey]:
    journeys = []
    for path in sorted(directory.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        declared = data.get("declaration")
        declarations = data.get("declarations", [declared] if declared else [])
        for number, action in enumerate(data["script"], 1):
            kinds = [k for k in ACTIONS if k in action]
            unknown = set(action) - set(ACTIONS) - set(CHECKS)
            assert len(kinds) == 1 and not unknown, f"{path.name} line {number} of the script: {action}"
        journeys.append(
            Journey(
                name=path.stem,
                title=data["title"],
                phone=data.get("phone") or (declarations[-1]["phone"] if declarations else None),
                script=data["script"],
                declarations=declarations,
            )
        )
    return journeys


# ---------------------------------------------------------------- what the parent sends


@cache
def photo_bytes(spec: str | tuple) -> bytes:
    """A real, decodable photo made at run time (never a real person or card)."""
    from tests import imagegen

    if spec == "portrait":
        return imagegen.encode(imagegen.portrait_image())
    if spec == "blurry_portrait":
        return imagegen.encode(imagegen.blurred(imagegen.portrait_image(), 6))
    if spec == "document":
        return imagegen.sharp_document_jpeg()
    if spec == "text_file":
        return imagegen.not_an_image()
    kind, person, address = spec
    from tests import cardgen

    who = cardgen.person(person)
    if kind == "cccd":
        payload = cardgen.cccd_payload(who, **({"address": address} if address else {}))
    else:
        payload = cardgen.bhyt_payload(who)
    card = cardgen.card(payload, kind=kind)
    return cardgen.phone_photo(card, card_fraction=0.55, angle=8, blur=0.8, size=(2400, 1800))


def photo_for(value: str | dict) -> bytes:
    if isinstance(value, dict):  # {card: cccd|bhyt, of: "<name in people.yaml>", address: ...}
        return photo_bytes((value["card"], value["of"], value.get("address")))
    return photo_bytes(value)


# ---------------------------------------------------------------- what the parent sees


@dataclass(frozen=True)
class Reply:
    text: str
    buttons: tuple[tuple[str, str], ...]  # (label, payload)
    document: str | None = None  # the Tờ khai sent: a file path (engine) or a download link (web)
    progress: tuple[int, int] | None = None

    @property
    def labels(self) -> list[str]:
        return [label for label, _ in self.buttons]


class ShiftedClock:
    """The stub backend's clock: real time, moved on by `wait` (an OTP can be resent after 60 s)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@dataclass
class World:
    """What a driver plays against: the stub (for SMS and declarations) and its clock."""

    stub: Any
    clock: ShiftedClock


class EngineDriver:
    """The engine directly: `Engine.handle(state, inbound)`, the state kept here; a reload
    sends the state through its JSON form, as storage would."""

    def __init__(self, engine: Any, user: str) -> None:
        from dialogs.state import ConversationState

        self.engine, self.user = engine, user
        self.state = ConversationState()
        self._ids = itertools.count(1)

    async def _send(self, **what: Any) -> list[Reply]:
        from dialogs.messages import Inbound

        inbound = Inbound("journey", self.user, message_id=f"{self.user}-{next(self._ids)}", **what)
        self.state, replies = await self.engine.handle(self.state, inbound)
        return [
            Reply(
                r.text,
                tuple((b.label, b.payload) for b in r.buttons),
                str(r.document) if r.document else None,
                r.progress,
            )
            for r in replies
        ]

    async def text(self, text: str) -> list[Reply]:
        return await self._send(text=text)

    async def button(self, payload: str) -> list[Reply]:
        return await self._send(button=payload)

    async def photo(self, data: bytes) -> list[Reply]:
        return await self._send(photo=data)

    def step_kind(self) -> str | None:
        """The kind of step the parent is at: text, choice, photo, summary, confirm, or otp."""
        step = self.engine.step(self.state)
        if step is None:
            return None
        return "otp" if step.parser == "otp_code" else str(getattr(step.kind, "value", step.kind))

    async def document(self, where: str) -> bytes:
        from bot.crypto import open_file

        return open_file(where)  # sealed at rest: opened the way the channels open it

    async def reload(self) -> list[Reply]:
        from dialogs.state import ConversationState

        self.state = ConversationState.model_validate_json(self.state.model_dump_json())
        return []


class WebDriver:
    """The web chat page's calls: POST messages (JSON or a photo form), and on a reload the
    page itself and the notices owed to the conversation, as bot/web/app.js does."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self.session, self.base = session, base_url.rstrip("/")
        self.cid = "journey-" + uuid.uuid4().hex  # 128 random bits, as the page makes
        self._ids = itertools.count(1)

    async def _post(self, **kwargs: Any) -> list[Reply]:
        url = f"{self.base}/api/chat/{self.cid}/messages"
        async with self.session.post(url, **kwargs) as response:
            body = await response.json()
            assert response.status == 200, body
        return [
            Reply(
                r["text"],
                tuple((b["label"], b["payload"]) for b in r["buttons"]),
                r["document"],
                tuple(r["progress"]) if r.get("progress") else None,
            )
            for r in body["replies"]
        ]

    async def text(self, text: str) -> list[Reply]:
        return await self._post(json={"text": text, "message_id": f"m{next(self._ids)}"})

    async def button(self, payload: str) -> list[Reply]:
        return await self._post(json={"button": payload, "message_id": f"m{next(self._ids)}"})

    async def photo(self, data: bytes) -> list[Reply]:
        form = aiohttp.FormData()
        form.add_field("photo", data, filename="anh.jpg", content_type="image/jpeg")
        return await self._post(data=form)

    async def document(self, where: str) -> bytes:
        """The PDF behind the signed link, as the page's download button fetches it."""
        path = "/" + where.split("//", 1)[-1].split("/", 1)[1] if "//" in where else where
        async with self.session.get(self.base + path) as response:
            assert response.status == 200
            return await response.read()

    async def reload(self) -> list[Reply]:
        async with self.session.get(self.base + "/") as page:
            assert page.status == 200
        async with self.session.get(f"{self.base}/api/chat/{self.cid}/updates") as updates:
            assert updates.status == 200
            owed = (await updates.json()).get("replies", [])
        return [Reply(r["text"], tuple((b["label"], b["payload"]) for b in r["buttons"])) for r in owed]


# ---------------------------------------------------------------- playing a journey


def newest_otp(messages: list[dict], phone: str) -> str:
    """The newest OTP texted to `phone`, as the parent reads it on their phone."""
    for message in reversed(messages):
        if re.sub(r"\D", "", message["phone"]) == re.sub(r"\D", "", phone):
            found = re.search(r"là (\d{6})", message["text"])
            if found:
                return found.group(1)
    raise AssertionError(f"no OTP texted to {phone}")


@dataclass
class Player:
    journey: Journey
    driver: Any
    world: World
    shown: list[Reply] = field(default_factory=list)  # what is on the parent's screen now
    transcript: list[str] = field(default_factory=list)
    asked_at: set[str] = field(default_factory=set)  # kinds of step a question was asked at

    def fail(self, number: int, problem: str) -> None:
        lines = "\n".join(self.transcript[-16:])
        raise AssertionError(
            f"{self.journey.name}, script line {number}: {problem}\n--- last turns:\n{lines}"
        )

    async def play(self) -> None:
        # A minute passes between two parents: an OTP a failed journey left pending does not
        # make the next parent of the same guardian account wait.
        self.world.clock.offset += timedelta(seconds=61)
        before = {d["receipt"] for d in await self.world.stub.list_declarations()}
        for number, action in enumerate(self.journey.script, 1):
            previous = self.shown
            replies = await self._act(number, action)
            if replies:
                self.shown = replies
            self._check(number, action, replies, previous)
            if "pdf" in action:
                await self._check_pdf(number, action, replies)
        if os.environ.get("JOURNEY_TRACE"):
            print(f"=== {self.journey.name}", *self.transcript, sep="\n")
        after = [d for d in await self.world.stub.list_declarations() if d["receipt"] not in before]
        got = [_comparable(d) for d in after]
        want = [_comparable(d) for d in self.journey.declarations]
        if got != want:
            self.fail(len(self.journey.script), f"the stub holds {got}\nexpected {want}")

    async def _act(self, number: int, action: dict[str, Any]) -> list[Reply]:
        acts: dict[str, Callable[[Any], Awaitable[list[Reply]]]] = {
            "type": self.driver.text,
            "ask": self.driver.text,
            "tap": lambda label: self._tap(number, label),
            "photo": lambda value: self.driver.photo(photo_for(value)),
            "otp": self._otp,
            "wait": self._wait,
            "reload": lambda _value: self.driver.reload(),
        }
        kind = next(k for k in ACTIONS if k in action)
        if kind == "ask" and hasattr(self.driver, "step_kind"):
            self.asked_at.add(self.driver.step_kind())
        replies = await acts[kind](action[kind])
        self.transcript.append(f">> {kind}: {action[kind]!r}")
        self.transcript.extend(f"<< {r.text}  {r.labels}" for r in replies)
        return replies

    async def _tap(self, number: int, label: str) -> list[Reply]:
        offered = {lab: payload for r in self.shown for lab, payload in r.buttons}
        if label not in offered:
            self.fail(number, f"no button «{label}» among {list(offered)}")
        return await self.driver.button(offered[label])

    async def _otp(self, which: str) -> list[Reply]:
        assert self.journey.phone, "a journey with an OTP names the phone it goes to"
        code = newest_otp(await self.world.stub.sms_outbox(), self.journey.phone)
        if which == "wrong":
            code = f"{(int(code) + 111111) % 1_000_000:06d}"
        return await self.driver.text(code)

    async def _wait(self, seconds: int) -> list[Reply]:
        self.world.clock.offset += timedelta(seconds=seconds)
        return []

    def _check(
        self, number: int, action: dict[str, Any], replies: list[Reply], previous: list[Reply]
    ) -> None:
        said = "\n".join(r.text for r in replies)
        for text in _as_list(action.get("expect")):
            if text not in said:
                self.fail(number, f"the assistant did not say «{text}»")
        for text in _as_list(action.get("not")):
            if text in said:
                self.fail(number, f"the assistant said «{text}»")
        offered = [label for r in replies for label in r.labels]
        for label in _as_list(action.get("buttons")):
            if label not in offered:
                self.fail(number, f"no button «{label}» among {offered}")
        if "exact_buttons" in action and offered != action["exact_buttons"]:
            self.fail(number, f"buttons {offered}, expected exactly {action['exact_buttons']}")
        if "step" in action:
            progress = next((r.progress for r in reversed(replies) if r.progress), None)
            if progress is None or progress[0] != action["step"]:
                self.fail(number, f"at step {progress}, expected step {action['step']}")
        if "ask" in action:
            self._check_asked_again(number, replies, previous)

    async def _check_pdf(self, number: int, action: dict[str, Any], replies: list[Reply]) -> None:
        """The Tờ khai sent with this answer, read as text: it holds each line asked for."""
        where = next((r.document for r in replies if r.document), None)
        if where is None:
            self.fail(number, "no Tờ khai (PDF) was sent")
        text = pdf_text(await self.driver.document(where))
        for line in _as_list(action["pdf"]):
            if line not in text:
                self.fail(number, f"the Tờ khai does not say «{line}»: {text}")

    def _check_asked_again(self, number: int, replies: list[Reply], previous: list[Reply]) -> None:
        """A question is answered (or gets the hotline), then the same step is asked again
        with exactly the buttons it had."""
        if len(replies) < 2:
            self.fail(number, "the question got no answer before the step was asked again")
        last, before = replies[-1], previous[-1]
        if not (last.text.startswith(REASKED_PREFIX) and last.text.endswith(before.text)):
            self.fail(number, f"the step was not asked again: «{last.text}»")
        if last.labels != before.labels:
            self.fail(number, f"the step came back with buttons {last.labels}, it had {before.labels}")


def pdf_text(data: bytes) -> str:
    """All text of a PDF with line breaks folded, as a reader would see it."""
    import io

    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    return " ".join(" ".join(page.extract_text() or "" for page in reader.pages).split())


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _comparable(declaration: dict[str, Any]) -> dict[str, Any]:
    """The declaration as a journey states it: every field but the receipt, photos as a set."""
    out = {k: v for k, v in declaration.items() if k != "receipt"}
    out["photos"] = sorted(out.get("photos") or [])
    return out
