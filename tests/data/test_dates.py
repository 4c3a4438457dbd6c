"""User dates → UTC bounds: naive means New York, an end date includes its whole day, ranges are inclusive."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from copilot_quant.data.dates import resolve_range, slice_range, to_utc
from copilot_quant.errors import DataError
from hypothesis import example, given
from hypothesis import strategies as st

NY = ZoneInfo("America/New_York")


def test_naive_values_are_new_york_time():
    assert to_utc("2024-01-05 09:30") == pd.Timestamp("2024-01-05 14:30", tz="UTC")
    assert to_utc(datetime(2024, 7, 5, 9, 30)) == pd.Timestamp("2024-07-05 13:30", tz="UTC")
    assert to_utc(date(2024, 1, 5)) == pd.Timestamp("2024-01-05 05:00", tz="UTC")


def test_aware_values_keep_their_instant():
    value = datetime(2024, 1, 5, 12, 0, tzinfo=UTC)
    assert to_utc(value) == pd.Timestamp(value)
    assert str(to_utc(value).tz) == "UTC"


@pytest.mark.parametrize("bad", ["not a date", "2024-13-45", pd.NaT])
def test_unreadable_dates_raise_data_error(bad):
    with pytest.raises(DataError):
        to_utc(bad)


@pytest.mark.parametrize(
    "end", ["2024-01-05", date(2024, 1, 5), datetime(2024, 1, 5), pd.Timestamp("2024-01-05")]
)
def test_an_end_date_includes_that_whole_day(end):
    _, hi = resolve_range(None, end)
    assert hi == pd.Timestamp("2024-01-06 05:00", tz="UTC") - pd.Timedelta(1, "ns")


def test_aware_midnight_end_includes_that_day_in_its_own_zone():
    _, hi = resolve_range(None, datetime(2024, 1, 5, tzinfo=UTC))
    assert hi == pd.Timestamp("2024-01-05 23:59:59.999999999", tz="UTC")


@pytest.mark.parametrize("day", ["2024-03-10", "2024-11-03"])  # 23- and 25-hour days
def test_an_end_date_on_a_dst_switch_day_ends_at_the_next_local_midnight(day):
    _, hi = resolve_range(None, day)
    assert hi + pd.Timedelta(1, "ns") == pd.Timestamp(day).tz_localize(NY) + pd.DateOffset(days=1)
    _, aware = resolve_range(None, pd.Timestamp(day).tz_localize(NY))
    assert aware == hi


def test_an_end_with_a_time_is_exact():
    _, hi = resolve_range(None, "2024-01-05 15:00")
    assert hi == pd.Timestamp("2024-01-05 20:00", tz="UTC")


def test_start_after_end_is_an_error_that_says_so():
    with pytest.raises(DataError, match=r"start .* is after end"):
        resolve_range("2024-02-01", "2024-01-01")


def test_slice_range_is_inclusive_at_both_ends():
    index = pd.date_range("2024-01-01 21:00", periods=5, freq="D", tz="UTC")
    frame = pd.DataFrame({"Close": np.arange(5.0)}, index=index)
    lo, hi = resolve_range(index[1], index[3])
    assert list(slice_range(frame, lo, hi)["Close"]) == [1.0, 2.0, 3.0]
    assert slice_range(frame, None, None) is frame


@given(
    st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2030, 1, 1)),
    st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2030, 1, 1)),
)
# a wall time in the spring-forward gap, on both sides of it (fold): found by hypothesis
@example(datetime(2024, 3, 10, 2, 0, fold=1), datetime(2024, 3, 10, 2, 0))
@example(datetime(2024, 3, 10, 1, 0, 0, 1), datetime(2024, 3, 10, 2, 0, fold=1))
@example(datetime(2024, 11, 3, 1, 30, fold=1), datetime(2024, 11, 3, 1, 30))
def test_naive_and_new_york_aware_bounds_select_the_same_rows(a, b):
    start, end = min(a, b), max(a, b)
    naive = _bounds_or_error(start, end)
    aware = _bounds_or_error(start.replace(tzinfo=NY), end.replace(tzinfo=NY))
    # equal bounds, or the same refusal (an hour that DST skips can put a later wall time first in UTC)
    assert naive == aware


def _bounds_or_error(start, end):
    try:
        return resolve_range(start, end)
    except DataError as exc:
        return str(exc).split(":")[0]
