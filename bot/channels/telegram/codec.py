"""Button payloads <-> callback_data (at most 64 bytes), and the outbox that keeps the
payloads behind long buttons' short ids across restarts and workers."""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections import OrderedDict

from bot.channels.outbox import STORE_ERRORS, Outbox
from bot.outbox import OutboxQueue

log = logging.getLogger("bot.channels.telegram")

MAX_CALLBACK_DATA = 64  # bytes
_TOKEN_PREFIX = "~"  # noqa: S105 - not a secret: callback_data starting with this is a short id, never a payload
_TOKEN = re.compile(r"~[A-Za-z0-9_-]{12}")  # what `CallbackCodec` hands out


class TelegramOutbox(Outbox):
    """The channel's outbox (parked replies per chat) plus the payloads behind long buttons'
    ids, in the main database so that every worker reads them.

    The ids table is bounded: past `callback_capacity` rows the oldest written go first (a
    button that old reads as expired, which the user is told about).
    """

    def __init__(
        self, queue: OutboxQueue, channel: str = "telegram", callback_capacity: int = 50_000
    ) -> None:
        self.callback_capacity = callback_capacity
        super().__init__(queue, channel)

    async def put_callbacks(self, pairs: list[tuple[str, str]]) -> None:
        await self._run(self.queue.put_tokens, pairs, self.callback_capacity)

    async def get_callback(self, token: str) -> str | None:
        return await self._run(self.queue.get_token, token)


class CallbackCodec:
    """Maps button payloads to callback_data (at most 64 bytes).

    Short payloads travel as they are and never touch the store. Longer ones (or ones that
    look like our ids) are replaced by a short random id, kept in memory and, with a
    `store`, written to disk before the keyboard carrying it is sent (`save`), so a button
    pressed after a restart is read back from there (`recall`). An id found nowhere reads
    as an expired button, which the user is told about.
    """

    def __init__(self, capacity: int = 50_000, store: TelegramOutbox | None = None) -> None:
        self._capacity = capacity
        self._by_token: OrderedDict[str, str] = OrderedDict()
        self._by_payload: dict[str, str] = {}
        self.store = store
        self._unsaved: dict[str, str] = {}  # ids handed out but not yet on disk
        self._saving = asyncio.Lock()

    def encode(self, payload: str) -> str:
        if len(payload.encode("utf-8")) <= MAX_CALLBACK_DATA and not payload.startswith(_TOKEN_PREFIX):
            return payload
        token = self._by_payload.get(payload)
        if token is None:
            token = _TOKEN_PREFIX + secrets.token_urlsafe(9)
            self._remember(token, payload)
            if self.store is not None:
                self._unsaved[token] = payload
        else:
            self._by_token.move_to_end(token)
        return token

    def _remember(self, token: str, payload: str) -> None:
        self._by_payload[payload] = token
        self._by_token[token] = payload
        if len(self._by_token) > self._capacity:
            old_token, old_payload = self._by_token.popitem(last=False)
            if self._by_payload.get(old_payload) == old_token:
                del self._by_payload[old_payload]

    def decode(self, data: str) -> str | None:
        """The payload, from memory only (None: unknown id, see `recall`)."""
        if not data.startswith(_TOKEN_PREFIX):
            return data
        return self._by_token.get(data)

    @property
    def dirty(self) -> bool:
        """Ids were handed out that are not on disk yet (or are being written)."""
        return bool(self._unsaved) or self._saving.locked()

    async def save(self) -> None:
        """Write the new ids; returns once every id handed out so far is on disk (or failed)."""
        async with self._saving:
            if not self._unsaved or self.store is None:
                return
            pairs = list(self._unsaved.items())
            self._unsaved.clear()
            try:
                await self.store.put_callbacks(pairs)
            except STORE_ERRORS as exc:
                # The buttons still work until a restart; the next save tries these again.
                log.error("telegram: %d button ids could not be saved: %s", len(pairs), type(exc).__name__)
                for token, payload in pairs:
                    self._unsaved.setdefault(token, payload)

    async def recall(self, data: str) -> str | None:
        """`decode`, then the store for an id handed out before a restart."""
        payload = self.decode(data)
        if payload is not None or self.store is None or not _TOKEN.fullmatch(data):
            return payload
        try:
            payload = await self.store.get_callback(data)
        except STORE_ERRORS as exc:
            log.error("telegram: button ids could not be read: %s", type(exc).__name__)
            return None
        if payload is not None:
            self._remember(data, payload)
        return payload
