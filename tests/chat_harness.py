"""A person at a keyboard, for tests: sends what a user would and reads what they would see."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from bot.config import Settings
from dialogs.messages import Inbound, Outbound


def isolated_settings(tmp_path: Path, **overrides) -> Settings:
    """Settings isolated in tmp_path, deaf to the developer's environment and .env."""
    base = Settings(_env_file=None)
    values = {"data_dir": tmp_path / "data", "database_url": "", "backend_url": "", **overrides}
    return base.model_copy(update=values)


@dataclass
class Chat:
    assistant: object
    user: str = "parent-1"
    channel: str = "test"
    replies: list[Outbound] = field(default_factory=list)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    # Message ids are unique per Chat object, as a messenger's are per delivery.
    _prefix: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    async def send(self, inbound: Inbound) -> list[Outbound]:
        self.replies = await self.assistant.handle(inbound)
        return self.replies

    async def text(self, text: str, message_id: str | None = None) -> list[Outbound]:
        mid = message_id or f"{self._prefix}-{next(self._ids)}"
        return await self.send(Inbound(self.channel, self.user, message_id=mid, text=text))

    async def press(self, payload_or_label: str) -> list[Outbound]:
        """Press a button currently shown, by payload or by label (fails if it is not shown)."""
        shown = [b for r in self.replies for b in r.buttons]
        match = next((b for b in shown if payload_or_label in (b.payload, b.label)), None)
        assert match is not None, f"no button {payload_or_label!r} among {[b.label for b in shown]}"
        return await self.send(
            Inbound(
                self.channel, self.user, message_id=f"{self._prefix}-{next(self._ids)}", button=match.payload
            )
        )

    async def photo(self, data: bytes) -> list[Outbound]:
        return await self.send(
            Inbound(self.channel, self.user, message_id=f"{self._prefix}-{next(self._ids)}", photo=data)
        )

    @property
    def said(self) -> str:
        return "\n".join(r.text for r in self.replies)

    @property
    def labels(self) -> list[str]:
        return [b.label for r in self.replies for b in r.buttons]

    @property
    def document(self) -> Path | None:
        return next((r.document for r in self.replies if r.document), None)


# ---------------------------------------------------------------- scripted registration


@cache
def portrait_jpeg() -> bytes:
    from tests import imagegen

    return imagegen.encode(imagegen.portrait_image())


@cache
def document_jpeg() -> bytes:
    from tests import imagegen

    return imagegen.sharp_document_jpeg()


# A synthetic citizen (not in the stub's seeded people, not from the circulars).
CITIZEN = {
    "social_insurance_code": "7912345670",
    "full_name": "Lê Thị Hồng Nhung",
    "id_number": "079195001234",
    "phone": "0987 654 321",
    "province": "hcm",
    "ward": "Phường Tân Hưng",
    "street": "Số 8, đường số 9, khu phố 2",
    "agency": "07919",
}


def otp_from_sms(messages: list[dict], phone: str) -> str:
    """The newest OTP texted to `phone` (what the citizen reads on their phone)."""
    import re

    for message in reversed(messages):
        if message["phone"] == phone:
            found = re.search(r"là (\d{6})", message["text"])
            if found:
                return found.group(1)
    raise AssertionError(f"no OTP SMS to {phone}")


FORM_ORDER = ("social_insurance_code", "full_name", "id_number", "phone", "province", "ward", "street")


async def start_registration(chat: Chat) -> None:
    await chat.text("/start")
    await chat.press("flow:registration")


async def type_answers(chat: Chat, *answers: str) -> None:
    """Type each answer; an old address converted to its 2025 ward is confirmed."""
    for answer in answers:
        await chat.text(answer)
        if "confirm:yes" in [b.payload for r in chat.replies for b in r.buttons]:
            await chat.press("confirm:yes")


async def type_the_form(chat: Chat, who: dict = CITIZEN) -> None:
    """Type the form's text answers, from the social insurance code to the street."""
    await type_answers(chat, *(who[key] for key in FORM_ORDER))


async def send_requested_photos(chat: Chat) -> None:
    """The portrait, then whatever ID pages the assistant asks for (none when the ID is verified)."""
    await chat.photo(portrait_jpeg())
    if "MẶT TRƯỚC" in chat.said:
        await chat.photo(document_jpeg())
        await chat.photo(document_jpeg())
    elif "hộ chiếu" in chat.said:
        await chat.photo(document_jpeg())


async def fill_registration_until_summary(chat: Chat, who: dict = CITIZEN, started: bool = False) -> None:
    if not started:
        await start_registration(chat)
    await type_the_form(chat, who)
    await send_requested_photos(chat)
    await chat.text(who.get("agency", "07919"))
    await chat.press("skip")
