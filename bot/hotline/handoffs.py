"""Handoff links: a staff member on the phone gives the caller a link into the assistant.

    create_handoff(settings, store, note=..., flow=..., phone=..., staff=...) ->
        {"token", "expires_at", "links": {"web", "telegram", "zalo"}, "sms_text"}

The web link is `{VSSID_PUBLIC_URL or the local address}/?start=h-<token>`; Telegram's is a
t.me deep link (`TELEGRAM_BOT_USERNAME`, else the Bot API's getMe); Zalo's opens the OA (`ZALO_OA_ID`), where
sending `h-<token>` does the same (a Zalo link cannot carry a start payload). A link is
null for a channel that is not configured.
"""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import segno

from bot.config import Settings
from bot.console.auth import Staff
from bot.hotline.desk import hotline_texts
from bot.hotline.store import HotlineStore
from bot.schools.links import web_base
from dialogs.fields import parse_phone
from dialogs.parsing import Accepted

FLOWS = ("registration", "child_registration", "install_guide", "account_help")
MAX_NOTE = 500


class HandoffRefused(ValueError):
    """What is wrong with the request, in Vietnamese (shown to staff as is)."""


def links_for(
    settings: Settings, token: str, *, base: str | None = None, telegram_user: str | None = None
) -> dict[str, str | None]:
    """`telegram_user`: the bot's username (`bot.schools.links.telegram_username`: the setting,
    else getMe); `base`: where the web chat is reached when VSSID_PUBLIC_URL is not set."""
    payload = f"h-{token}"
    web = f"{(base if base and not settings.public_url else web_base(settings)).rstrip('/')}/?start={payload}"
    telegram = f"https://t.me/{telegram_user}?start={payload}" if telegram_user else None
    zalo = (
        f"https://zalo.me/{settings.zalo_oa_id}"
        if settings.zalo_oa_secret_key and settings.zalo_oa_id
        else None
    )
    return {"web": web, "telegram": telegram, "zalo": zalo}


def checked_phone(phone: str | None) -> str | None:
    """The phone as the registration form stores it, or HandoffRefused with the form's own message."""
    if not phone or not phone.strip():
        return None
    result = parse_phone(phone, {})
    if not isinstance(result, Accepted):
        raise HandoffRefused(result.message)
    return result.value


def create_handoff(
    settings: Settings,
    store: HotlineStore,
    *,
    note: str,
    flow: str | None,
    phone: str | None,
    staff: Staff | None,
    base: str | None = None,
    telegram_user: str | None = None,
) -> dict[str, Any]:
    """The handoff's contract JSON; `base` and `telegram_user` as in `links_for` (the console
    passes the address it was opened at)."""
    texts = hotline_texts()
    note = " ".join(note.split())
    if not note:
        raise HandoffRefused(texts("handoff_note_missing"))
    if len(note) > MAX_NOTE:
        raise HandoffRefused(texts("handoff_note_too_long", max=MAX_NOTE, count=len(note)))
    if flow is not None and flow not in FLOWS:
        raise HandoffRefused(texts("handoff_bad_flow", flows=", ".join(FLOWS)))
    hours = settings.handoff_ttl_hours
    token, expires = store.create_handoff(
        note=note,
        flow=flow,
        phone=checked_phone(phone),
        created_by=staff.username if staff else "",
        staff_name=staff.display_name if staff else "",
        ttl=timedelta(hours=hours),
    )
    links = links_for(settings, token, base=base, telegram_user=telegram_user)
    name = (staff.display_name if staff else "") or texts("staff_default_name")
    sms = texts("sms_text", name=name, link=links["web"], hours=f"{hours:g}")
    return {"token": token, "expires_at": expires.isoformat(), "links": links, "sms_text": sms}


def qr_svg(link: str) -> str:
    """The link as an inline SVG QR code (segno), for the console to show."""
    out = io.BytesIO()
    segno.make(link, error="m").save(out, kind="svg", xmldecl=False, svgns=True, scale=4, border=2)
    return out.getvalue().decode()
