"""A small scripted assistant for channel tests: it answers like the real one (greeting with
buttons, progress, documents, de-duplication by message id) without the engine or storage."""

from __future__ import annotations

import asyncio
from pathlib import Path

from dialogs.messages import Button, Inbound, Outbound

GREETING = "Xin chào! Mình là trợ lý VssID."
MENU = (Button("Đăng ký tài khoản VssID", "flow:registration"), Button("Hỏi đáp", "faq"))
ASK_CODE = "Nhập mã số BHXH của bạn (10 chữ số)."


class ScriptedAssistant:
    """`/start` greets; the registration button asks step 1/7; text is echoed; `pdf` sends
    `document`; `many` sends 12 buttons; `boom` raises; `slow` takes `slow_s` seconds."""

    def __init__(self, document: Path | None = None, slow_s: float = 0.5) -> None:
        self.document = document
        self.slow_s = slow_s
        self.received: list[Inbound] = []
        self.channels: dict[str, object] = {}
        self.closed = False
        self.started = False
        # Answered message ids and their replies (replayed to `keep_replies` callers).
        self._seen: dict[tuple[str, str, str], list[Outbound]] = {}

    def add_channel(self, channel: object) -> None:
        self.channels[channel.name] = channel  # type: ignore[attr-defined]

    def start_notifications(self) -> None:
        self.started = True

    async def close(self) -> None:
        self.closed = True

    async def handle(self, inbound: Inbound, *, keep_replies: bool = False) -> list[Outbound]:
        key = (inbound.channel, inbound.user_id, inbound.message_id or "")
        if inbound.message_id is not None:
            if key in self._seen:
                return self._seen[key] if keep_replies else []
            self._seen[key] = []
        replies = await self._answer(inbound)
        if inbound.message_id is not None:
            self._seen[key] = replies
        return replies

    async def _answer(self, inbound: Inbound) -> list[Outbound]:
        self.received.append(inbound)
        if inbound.photo is not None:
            return [Outbound(f"Đã nhận ảnh ({len(inbound.photo)} byte).", progress=(3, 7))]
        if inbound.button == "flow:registration":
            return [Outbound(ASK_CODE, progress=(1, 7))]
        if inbound.button is not None:
            return [Outbound(f"Bạn đã chọn {inbound.button}.")]
        text = inbound.text or ""
        if text == "/start":
            return [Outbound(GREETING, buttons=MENU)]
        if text == "pdf":
            return [Outbound("Tờ khai của bạn đã sẵn sàng.", document=self.document, progress=(7, 7))]
        if text == "many":
            buttons = tuple(Button(f"Lựa chọn {i}", f"choice:{i}") for i in range(1, 13))
            return [Outbound("Chọn một tỉnh:\n" + "Rất dài. " * 400, buttons=buttons)]
        if text == "boom":
            raise RuntimeError("scripted failure")
        if text == "slow":
            await asyncio.sleep(self.slow_s)
            return [Outbound("Xong việc chậm.")]
        return [Outbound(f"Bạn đã gõ: {text}", progress=(2, 7))]
