"""A date range holds its dates' whole sessions, at every interval, also for markets that open the evening
before (CME Globex futures: 17:00 Chicago; IDEALPRO forex: 17:15 New York).

Regression of the hypothesis failure ``seed=0, symbol='ZN', first=2015-01-01, span=3``: a range ending on a
Sunday cut Monday's session (open since Sunday 17:00 Chicago) at New York midnight, so the minutes held a
partial 23:00–23:59 bucket that the 5-minute and hourly bars (ending at midnight, one nanosecond too late)
did not, and a range starting on a Tuesday lost the Monday-evening part of Tuesday's session.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from copilot_quant.data.calendars import session_bounds, whole_session_range
from copilot_quant.data.continuous import continuous_series
from copilot_quant.data.dates import resolve_range
from copilot_quant.data.resample import aggregate_bars
from copilot_quant.data.synthetic import SyntheticDataProvider
from copilot_quant.errors import DataError

from tests.data.test_synthetic import INTRADAY, assert_one_market


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def chicago(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="America/Chicago").tz_convert("UTC")


def test_the_hypothesis_example_zn_to_a_sunday_agrees_at_every_interval():
    feed = SyntheticDataProvider(seed=0)
    assert_one_market(feed, "ZN", date(2015, 1, 1), date(2015, 1, 4))
    # The series starts with Monday 5 January's session, which belongs to the 5th: nothing in this range.
    assert feed.get_historical_data("ZN", date(2015, 1, 1), date(2015, 1, 4), "1m").empty


@pytest.mark.parametrize("symbol", ["ZN", "ES", "NQ", "GC", "MES", "ZNH5"])
def test_a_future_range_ending_on_a_sunday_stops_at_fridays_close(symbol):
    feed = SyntheticDataProvider(seed=0, start="2014-06-02")
    first, sunday = date(2015, 1, 5), date(2015, 1, 11)
    friday_close = chicago("2015-01-09 16:00")
    for interval in [*INTRADAY, "1d"]:
        bars = feed.get_historical_data(symbol, first, sunday, interval)
        assert bars.index[-1] == friday_close, interval
        # Monday's session opened on Sunday 17:00 Chicago before the range ended; it is the 12th's.
        assert bars.index[0] > chicago("2015-01-04 17:00"), interval
    minutes = feed.get_historical_data(symbol, first, sunday, "1m")
    assert minutes.index[0] == chicago("2015-01-04 17:01")  # Monday the 5th's session, whole
    assert_one_market(feed, symbol, first, sunday)


@pytest.mark.parametrize(
    ("last", "last_close"),
    [
        (date(2024, 3, 29), "2024-03-28 16:00"),  # Good Friday: no CME session; Monday's opens Sunday
        (
            date(2024, 12, 25),
            "2024-12-24 12:00",
        ),  # Christmas: the 24th closes early, the 26th opens on the 25th
        (date(2025, 1, 1), "2024-12-31 16:00"),  # New Year's Day
    ],
)
def test_a_future_range_ending_on_a_holiday_stops_at_the_last_close_before_it(last, last_close):
    feed = SyntheticDataProvider(seed=3, start="2024-01-02")
    first = date(last.year, last.month, 1) if last.day > 7 else date(2024, 12, 20)
    for interval in [*INTRADAY, "1d"]:
        bars = feed.get_historical_data("ES", first, last, interval)
        assert bars.index[-1] == chicago(last_close), interval
    assert_one_market(feed, "ES", first, last)


def test_a_future_range_starting_on_a_tuesday_begins_at_mondays_evening_open():
    feed = SyntheticDataProvider(seed=0, start="2014-06-02")
    tuesday = date(2015, 1, 6)
    for interval, first_end in [("1m", "17:01"), ("5m", "17:05"), ("30m", "17:30"), ("1h", "18:00")]:
        bars = feed.get_historical_data("ZN", tuesday, date(2015, 1, 8), interval)
        assert bars.index[0] == chicago(f"2015-01-05 {first_end}"), interval
    assert_one_market(feed, "ZN", tuesday, date(2015, 1, 8))


def test_hourly_bars_of_a_globex_session_are_whole_chicago_hours_as_ib_sends_them():
    bars = SyntheticDataProvider(seed=0, start="2014-06-02").get_historical_data(
        "ZN", "2015-01-06", "2015-01-06", "1h"
    )
    local = bars.index.tz_convert("America/Chicago")
    assert len(bars) == 23  # 17:00 Monday to 16:00 Tuesday
    assert local[0] == pd.Timestamp("2015-01-05 18:00", tz="America/Chicago")
    assert local[-1] == pd.Timestamp("2015-01-06 16:00", tz="America/Chicago")
    assert (local.minute == 0).all()


def test_a_forex_range_holds_its_dates_sessions_from_1715_the_evening_before():
    feed = SyntheticDataProvider(seed=2, start="2014-06-02")
    minutes = feed.get_historical_data("EUR.USD", "2015-01-06", "2015-01-06", "1m")
    new_york = minutes.index.tz_convert("America/New_York")
    assert new_york[0] == pd.Timestamp("2015-01-05 17:16", tz="America/New_York")
    assert new_york[-1] == pd.Timestamp("2015-01-06 17:00", tz="America/New_York")
    assert_one_market(feed, "EUR.USD", date(2015, 1, 6), date(2015, 1, 9))


def test_utc_bounds_at_new_york_midnight_as_the_backtest_passes_them_are_read_as_dates():
    feed = SyntheticDataProvider(seed=0, start="2014-06-02")
    lo, hi = resolve_range("2015-01-06", "2015-01-11")
    by_instant = feed.get_historical_data("ES", lo, hi, "5m")
    pd.testing.assert_frame_equal(
        by_instant, feed.get_historical_data("ES", "2015-01-06", "2015-01-11", "5m")
    )


def test_an_explicit_time_of_day_still_ends_inside_a_session_like_ibs_end_date_time():
    feed = SyntheticDataProvider(seed=0, start="2014-06-02")
    bars = feed.get_historical_data("ZN", "2015-01-09", "2015-01-11 20:00", "1m")  # Sunday 20:00 New York
    assert bars.index[-1] == utc("2015-01-12 01:00")
    assert bars.index[-121] == chicago("2015-01-09 16:00")  # Friday's close, then two hours of Monday's


def test_whole_session_range_moves_only_date_edges_that_fall_inside_a_session():
    lo, hi = resolve_range("2015-01-06", "2015-01-11")  # a Tuesday to a Sunday
    new_lo, new_hi = whole_session_range(lo, hi, "CME_GLOBEX")
    assert new_lo == chicago("2015-01-05 17:00") + pd.Timedelta(1, "ns")
    assert new_hi == chicago("2015-01-11 17:00")
    assert whole_session_range(lo, hi, "XNYS") == (lo, hi)  # midnight is never inside an NYSE session
    assert whole_session_range(None, None, "CME_GLOBEX") == (None, None)
    instant = utc("2015-01-06 08:00")  # a time of day, not a date: kept
    assert whole_session_range(instant, instant, "CME_GLOBEX") == (instant, instant)
    # A Saturday start is between sessions: kept; a Friday end is after Friday's close: kept.
    lo, hi = resolve_range("2015-01-03", "2015-01-09")
    assert whole_session_range(lo, hi, "CME_GLOBEX") == (lo, hi)


def test_minute_bars_of_a_range_fill_exactly_its_dates_sessions():
    feed = SyntheticDataProvider(seed=5, start="2014-06-02")
    minutes = feed.get_historical_data("GC", "2015-02-03", "2015-02-08", "1m")
    opens, closes = session_bounds("2015-02-03", "2015-02-08", "CME_GLOBEX")
    assert len(minutes) == int(((closes - opens) // pd.Timedelta(minutes=1)).to_numpy().sum())
    assert minutes.index[0] == opens[0] + pd.Timedelta(minutes=1)
    assert minutes.index[-1] == closes[-1]


def test_a_continuous_series_of_minutes_holds_the_same_sessions_as_its_days():
    feed = SyntheticDataProvider(seed=0, start="2024-01-02")
    minutes = continuous_series(feed, "ZN", "2024-03-05", "2024-03-10", "1m").bars
    days = continuous_series(feed, "ZN", "2024-03-05", "2024-03-10", "1d").bars
    assert minutes.index[0] == chicago("2024-03-04 17:01")
    assert minutes.index[-1] == chicago("2024-03-08 16:00")
    pd.testing.assert_frame_equal(aggregate_bars(minutes, "1m", "1d", "CME_GLOBEX"), days)


def test_aggregating_a_futures_minutes_on_the_nyse_calendar_is_refused_not_misgrouped():
    # The hypothesis test's other half: on XNYS the Sunday-evening minutes were bucketed from Monday's 09:30
    # New York open (hourly bars at 23:30, 00:30 … UTC instead of Globex's whole hours).
    minutes = SyntheticDataProvider(seed=0, start="2014-06-02").get_historical_data(
        "ZN", "2015-01-06", "2015-01-06", "1m"
    )
    for target in ("1h", "1d"):
        with pytest.raises(DataError, match=r"outside every XNYS session.*CME_GLOBEX"):
            aggregate_bars(minutes, "1m", target)
    assert len(aggregate_bars(minutes, "1m", "1h", "CME_GLOBEX")) == 23
