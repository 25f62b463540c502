"""What comes in: a webhook request checked (signature, freshness, app) and read as one
event the channel answers, or nothing."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

WEBHOOK_PATH = "/zalo/webhook"
SIGNATURE_MAX_AGE_S = 300
MAX_WEBHOOK_BYTES = 256 * 1024


def webhook_signature(app_id: str, raw_body: bytes, timestamp: str, oa_secret_key: str) -> str:
    """The X-ZEvent-Signature header value Zalo sends for this body."""
    digest = hashlib.sha256(app_id.encode() + raw_body + timestamp.encode() + oa_secret_key.encode())
    return "mac=" + digest.hexdigest()


def verify(
    raw: bytes, header: str | None, *, app_id: str, oa_secret_key: str, max_age_s: float
) -> tuple[int, dict | None]:
    """(HTTP status, event): 200 with the event when authentic, else the refusal status."""
    if not header or not header.startswith("mac="):
        return 401, None
    try:
        event = json.loads(raw)
    except ValueError:
        return 400, None
    if not isinstance(event, dict) or "timestamp" not in event:
        return 403, None
    timestamp = str(event["timestamp"])
    expected = webhook_signature(app_id, raw, timestamp, oa_secret_key)
    if not hmac.compare_digest(expected.encode(), header.strip().encode()):
        return 403, None
    try:
        age_s = abs(time.time() - int(timestamp) / 1000)
    except ValueError:
        return 403, None
    if age_s > max_age_s:
        return 403, None
    if event.get("app_id") not in (None, "", app_id):
        return 403, None
    return 200, event


def parse_event(event: dict) -> tuple[str, str, dict] | None:
    """(user id, event id, what to do) for the events we answer; None for the rest."""
    name = event.get("event_name")
    message = event.get("message") if isinstance(event.get("message"), dict) else {}
    assert isinstance(message, dict)
    if name in ("user_send_text", "user_send_image"):
        user_id = str((event.get("sender") or {}).get("id") or "")
        msg_id = str(message.get("msg_id") or "")
        if not user_id or not msg_id:
            return None
        if name == "user_send_text":
            text = message.get("text")
            return (user_id, msg_id, {"text": text}) if isinstance(text, str) and text.strip() else None
        urls = [
            (a.get("payload") or {}).get("url")
            for a in message.get("attachments") or []
            if isinstance(a, dict) and a.get("type", "image") == "image"
        ]
        urls = [u for u in urls if isinstance(u, str)]
        return (user_id, msg_id, {"image_url": urls[0]}) if urls else None
    if name == "follow":
        user_id = str((event.get("follower") or {}).get("id") or "")
        return (
            (user_id, f"follow:{user_id}:{event.get('timestamp')}", {"text": "/start"}) if user_id else None
        )
    return None
