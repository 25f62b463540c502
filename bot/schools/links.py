"""The links a school hands out: one per configured channel, all carrying `school_<code>`.

Web: `{VSSID_PUBLIC_URL or http://host:port}/?start=school_<code>` (the page passes it on as
`/start`). Telegram: `https://t.me/<bot>?start=school_<code>`, the bot's username from
`TELEGRAM_BOT_USERNAME` or asked of the Bot API (`getMe`). Zalo: the Official Account's
page `https://zalo.me/<ZALO_OA_ID>`; Zalo's OA links carry no start payload, so a parent who
comes that way is not counted for the school (the poster's QR is the web link).
"""

from __future__ import annotations

import logging
from urllib.parse import quote

import aiohttp

from bot.config import Settings

log = logging.getLogger(__name__)

TELEGRAM_API = "https://api.telegram.org"


def start_payload(code: str) -> str:
    return f"school_{code}"


def web_base(settings: Settings) -> str:
    if settings.public_url:
        return settings.public_url.rstrip("/")
    return f"http://{settings.web_host}:{settings.web_port}"


def web_link(settings: Settings, code: str) -> str:
    return f"{web_base(settings)}/?start={quote(start_payload(code))}"


async def telegram_username(settings: Settings) -> str | None:
    """The bot's @username: from the settings, else from getMe; None when Telegram is not set up."""
    if settings.telegram_bot_username:
        return settings.telegram_bot_username.lstrip("@")
    if not settings.telegram_bot_token:
        return None
    base = (settings.telegram_api_base or TELEGRAM_API).rstrip("/")
    url = f"{base}/bot{settings.telegram_bot_token}/getMe"
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
            session.get(url) as response,
        ):
            body = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError):
        log.warning("Telegram getMe failed: no Telegram link")
        return None
    result = body.get("result") if isinstance(body, dict) and body.get("ok") else None
    return (result or {}).get("username")


async def school_links(settings: Settings, code: str) -> dict[str, str | None]:
    username = await telegram_username(settings)
    zalo = settings.zalo_oa_id if settings.zalo_oa_secret_key and settings.zalo_oa_id else None
    return {
        "web": web_link(settings, code),
        "telegram": f"https://t.me/{username}?start={start_payload(code)}" if username else None,
        "zalo": f"https://zalo.me/{zalo}" if zalo else None,
    }
