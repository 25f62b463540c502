"""Office hours (`VSSID_OFFICE_HOURS`), in Vietnam's time (Asia/Ho_Chi_Minh).

"Mon-Fri 07:30-11:30,13:00-16:30"                  the default: weekdays, two shifts
"Mon-Fri 07:30-11:30,13:00-16:30; Sat 07:30-11:30" several groups, separated by ";"
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")
DEFAULT = "Mon-Fri 07:30-11:30,13:00-16:30"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_GROUP = re.compile(r"^\s*(?P<days>[A-Za-z,\- ]+?)\s+(?P<ranges>\d[\d:,\- ]*)\s*$")
_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def _days(spec: str) -> set[int]:
    found: set[int] = set()
    for part in spec.replace(" ", "").lower().split(","):
        first, _, last = part.partition("-")
        if first not in DAYS or (last and last not in DAYS):
            raise ValueError(f"unknown day {part!r} (use Mon, Tue, Wed, Thu, Fri, Sat, Sun)")
        start, end = DAYS.index(first), DAYS.index(last or first)
        found.update(range(start, end + 1) if start <= end else [*range(start, 7), *range(0, end + 1)])
    return found


@dataclass(frozen=True)
class OfficeHours:
    spec: str
    shifts: tuple[tuple[frozenset[int], time, time], ...]

    @classmethod
    def parse(cls, spec: str) -> OfficeHours:
        """Raises ValueError with what is wrong and an example of what is right."""
        shifts = []
        for group in filter(None, (g.strip() for g in (spec or DEFAULT).split(";"))):
            match = _GROUP.match(group)
            if not match:
                raise ValueError(f"cannot read {group!r}; example: {DEFAULT!r}")
            days = frozenset(_days(match["days"]))
            for piece in match["ranges"].split(","):
                times = _RANGE.match(piece)
                if not times:
                    raise ValueError(f"cannot read the hours {piece.strip()!r}; example: 07:30-11:30")
                h1, m1, h2, m2 = map(int, times.groups())
                start, end = time(h1, m1), time(h2, m2)
                if start >= end:
                    raise ValueError(f"{piece.strip()!r} ends before it starts")
                shifts.append((days, start, end))
        return cls(spec or DEFAULT, tuple(shifts))

    def shifts_by_days(self) -> list[tuple[frozenset[int], list[tuple[time, time]]]]:
        """The shifts grouped by their days, in the order written (for a readable label)."""
        groups: dict[frozenset[int], list[tuple[time, time]]] = {}
        for days, start, end in self.shifts:
            groups.setdefault(days, []).append((start, end))
        return list(groups.items())

    def is_open(self, moment: datetime) -> bool:
        local = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(VIETNAM)
        now = local.time()
        return any(local.weekday() in days and start <= now < end for days, start, end in self.shifts)
