"""The market-hours helper live trading uses: NYSE sessions in New York time, holidays, early closes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from copilot_quant.brokers.market_hours import OutsideHours, is_market_open


@pytest.mark.parametrize(
    ("instant", "is_open"),
    [
        (datetime(2024, 7, 3, 16, 0, tzinfo=UTC), True),  # 12:00 New York, before the 13:00 early close
        (datetime(2024, 7, 3, 17, 30, tzinfo=UTC), False),  # 13:30 New York: closed early
        (datetime(2024, 7, 4, 15, 0, tzinfo=UTC), False),  # Independence Day
        (datetime(2024, 3, 29, 15, 0, tzinfo=UTC), False),  # Good Friday
        (datetime(2024, 1, 5, 21, 0, tzinfo=UTC), False),  # 16:00 exactly: closed (the guide's <= was wrong)
        (datetime(2024, 1, 5, 14, 30, tzinfo=UTC), True),  # 09:30 New York
        (datetime(2024, 1, 6, 15, 0, tzinfo=UTC), False),  # Saturday
    ],
)
def test_is_market_open_knows_the_nyse_calendar(instant, is_open):
    assert is_market_open(instant) is is_open


def test_naive_times_are_read_in_new_york_not_the_machines_zone():
    assert is_market_open(datetime(2024, 1, 5, 10, 0)) is True
    assert is_market_open(datetime(2024, 1, 5, 17, 0)) is False


def test_outside_hours_policies():
    assert {p.value for p in OutsideHours} == {"allow", "hold", "reject"}
