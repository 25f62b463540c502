"""The paper Tờ khai's deadline is counted from the day in Vietnam, in every place that says it."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from dialogs.ports import paper_deadline, vietnam_date


@pytest.mark.parametrize(
    ("moment", "day"),
    [
        (datetime(2026, 12, 7, 16, 59, tzinfo=UTC), date(2026, 12, 7)),
        (datetime(2026, 12, 7, 17, 0, tzinfo=UTC), date(2026, 12, 8)),  # midnight in Hà Nội
        (datetime(2026, 12, 31, 23, 30), date(2027, 1, 1)),  # a naive moment is UTC
    ],
)
def test_a_moment_is_read_as_its_day_in_vietnam(moment, day):
    assert vietnam_date(moment) == day


def test_the_deadline_of_an_evening_submission_in_utc_counts_from_the_next_day_in_vietnam():
    # 18:30 UTC on 7 December is 01:30 on 8 December in Vietnam: ten days from the 8th.
    submitted = datetime(2026, 12, 7, 18, 30, tzinfo=UTC)
    assert paper_deadline(submitted) == "18/12/2026"
    # The ISO text a declaration record keeps gives the same date (/status reads that).
    assert paper_deadline(datetime.fromisoformat(submitted.isoformat(timespec="seconds"))) == "18/12/2026"
    # A calendar day (the PDF's "today in Vietnam") is taken as it is.
    assert paper_deadline(date(2026, 12, 8)) == "18/12/2026"
