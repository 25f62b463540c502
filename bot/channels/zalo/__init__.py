"""The Zalo Official Account channel: signed webhooks in, OA messaging API out.

In:  `POST /zalo/webhook` with Zalo OA events. Each request must carry
     `X-ZEvent-Signature: mac=<sha256 hex of app_id + raw body + timestamp + OA secret key>`
     with the body's `timestamp` (ms) recent; anything else is refused before it is read
     further (`webhook`). `user_send_text`, `user_send_image` and `follow` are answered; the
     rest is acknowledged and ignored. Zalo expects an answer within seconds and redelivers
     otherwise, so the webhook acknowledges at once and the conversation runs in a task
     (per-user ordered); events are de-duplicated by `message.msg_id`.

Out: `POST {api_base}/v3.0/oa/message/cs` (header `access_token`, `api`). Buttons become an
     `oa.query.show` template whose payload is the button's label: Zalo posts that text back
     as the user's own message (visible in their chat), and the channel maps it back to the
     assistant's payload (the buttons last offered are kept in the main database, read by
     every worker). PDFs go through `/v2.0/oa/upload/file`, images through
     `/v2.0/oa/upload/image`. An expired token (-216) is refreshed once through
     `{oauth_base}/v4/oa/access_token` and the call retried; the new tokens are kept in the
     data dir. Any other failure keeps the undelivered messages in the outbox (the main
     database, `bot.channels.outbox`), retried in order, at start and periodically, by
     whichever worker takes them first (`channel`).
"""

from __future__ import annotations

from bot.channels.text_split import split_text

from .api import MAX_BUTTONS, MAX_TEXT_CHARS, ZALO_MEDIA_HOSTS, TokenStore, ZaloApiError
from .channel import OUTBOX_FILE, ZaloChannel
from .webhook import WEBHOOK_PATH, webhook_signature

__all__ = [
    "MAX_BUTTONS",
    "MAX_TEXT_CHARS",
    "OUTBOX_FILE",
    "WEBHOOK_PATH",
    "ZALO_MEDIA_HOSTS",
    "TokenStore",
    "ZaloApiError",
    "ZaloChannel",
    "split_text",
    "webhook_signature",
]
