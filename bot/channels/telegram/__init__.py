"""The Telegram channel, on aiogram 3 (default) or python-telegram-bot 22.

The adapters only translate: a framework update becomes a `TelegramEvent` (`events`), and
the framework's Bot performs the few Bot API calls (`api`). Everything that decides
behaviour lives once in the framework-free modules:

- `rendering`: replies -> messages (HTML escaping, joined notes, splitting, keyboards);
- `codec`: button payloads <-> callback_data, long payloads' ids kept on disk;
- `delivery`: Bot API calls under the retry policy (`bot.retry`), keyboards retired,
  replies parked in the outbox until the Bot API is back (also across restarts);
- `core`: per-chat ordering, redeliveries answered once, presses and photos taken in;
- `channel`: the `Channel` (lifecycle, webhook intake); `aiogram_adapter`, `ptb_adapter`;
  `build`: the adapter `TELEGRAM_FRAMEWORK` names.

Nothing here imports a framework until `build_telegram_channel` picks one.
"""

from __future__ import annotations

from .build import add_webhook_route, build_telegram_channel
from .channel import OUTBOX_FILE, TelegramChannel

__all__ = ["OUTBOX_FILE", "TelegramChannel", "add_webhook_route", "build_telegram_channel"]
