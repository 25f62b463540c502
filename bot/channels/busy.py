"""Who is told "busy, come back in a moment", and who goes in: a waiting line, not a lottery.

A message answered 503 + Retry-After joins the back of a line (by its message id) and comes
back by itself (the page resends the same message after Retry-After). While anyone is in
the line, a newcomer joins it behind them instead of slipping into the room freed a moment
ago; one that comes back goes in when it is near the front of the line and the work queue
is not full. Without this, each freed slot went to whoever happened to ask at that instant,
and a few parents were sent away again and again (reply p99 30x the median).

A message that does not come back within `gone_after_s` has left (the page was closed): it
is dropped when it reaches the front.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

LINE_FRONT = 64  # the ones let in when the queue has room (a few seconds of photos)
LINE_KEPT = 10_000  # beyond this, the oldest places are forgotten


class WaitingLine:
    """`refuse(key, full)`: should this message be answered "busy" now?"""

    def __init__(self, gone_after_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.gone_after_s = gone_after_s
        self._clock = clock
        self._line: OrderedDict[tuple[str, str], float] = OrderedDict()  # key -> last seen

    def __len__(self) -> int:
        return len(self._line)

    def refuse(self, key: tuple[str, str] | None, full: bool) -> bool:
        """`full`: the work queue cannot take anyone now. `key` (conversation, message id) is
        None for a message without an id: it cannot hold a place, so it is only let in when
        nobody waits and the queue is not full."""
        now = self._clock()
        self._drop_gone(now)
        if key is not None and key in self._line:
            if not full and self._near_front(key):
                del self._line[key]
                return False
            self._line[key] = now
            return True
        if not full and not self._line:
            return False
        if key is not None:
            self._line[key] = now
            while len(self._line) > LINE_KEPT:
                self._line.popitem(last=False)
        return True

    def _near_front(self, key: tuple[str, str]) -> bool:
        for place, waiting in enumerate(self._line):
            if waiting == key:
                return True
            if place + 1 >= LINE_FRONT:
                return False
        return False

    def _drop_gone(self, now: float) -> None:
        while self._line:
            key, seen = next(iter(self._line.items()))
            if now - seen <= self.gone_after_s:
                return
            del self._line[key]
