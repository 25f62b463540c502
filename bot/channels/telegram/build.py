"""The channel `TELEGRAM_FRAMEWORK` names, and its webhook route on the runner's app.

The framework is imported only here, and only the one in use (each costs ~0.3 s to import).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.channels.base import Assistant

from .channel import WEBHOOK_PATH, TelegramChannel


def add_webhook_route(app: web.Application, channel: TelegramChannel, path: str = WEBHOOK_PATH) -> None:
    """Mount the Telegram webhook on the runner's aiohttp app (POST only, secret-checked)."""
    app.router.add_post(path, channel.handle_webhook)


def build_telegram_channel(settings: Any, assistant: Assistant, **options: Any) -> TelegramChannel:
    """The channel `settings.telegram_framework` names. Options go to the adapter
    (`retry`, `poll_timeout`, and for the bench a framework session/request)."""
    if settings.telegram_framework == "ptb":
        from .ptb_adapter import PtbTelegramChannel

        return PtbTelegramChannel(settings, assistant, **options)
    from .aiogram_adapter import AiogramTelegramChannel

    return AiogramTelegramChannel(settings, assistant, **options)
