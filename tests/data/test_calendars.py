"""NYSE sessions from exchange_calendars: closes, early closes, holidays, DST, and the MarketHours helper."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from copilot_quant.data.calendars import (
    MarketHours,
    closing_session_of,
    daily_close_stamps,
    exchange_timezone,
    get_calendar,
    is_market_open,
    is_trading_day,
    market_open_span,
    next_session_close,
    next_session_open,
    previous_session_close,
    session_bounds,
    session_close,
    session_close_ns,
    session_closes,
    session_open,
    sessions_by_day,
)
from copilot_quant.errors import ConfigError, DataError
from hypothesis import given
from hypothesis import strategies as st

NY = ZoneInfo("America/New_York")


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def test_regular_close_is_16_00_new_york_in_winter_and_summer():
    assert session_close("2024-01-05") == utc("2024-01-05 21:00")
    assert session_close("2024-07-05") == utc("2024-07-05 20:00")
    assert session_open("2024-07-05") == utc("2024-07-05 13:30")


def test_early_closes_come_from_the_calendar():
    assert session_close("2024-11-29") == utc("2024-11-29 18:00")  # day after Thanksgiving, 13:00 ET
    assert session_close("2024-07-03") == utc("2024-07-03 17:00")  # 13:00 EDT


def test_calendar_reaches_back_before_2006():
    assert session_close("1995-01-03") == utc("1995-01-03 21:00")
    assert get_calendar("XNYS") is get_calendar("XNYS")  # cached


def test_holidays_are_not_sessions_and_asking_for_one_says_which_is_next():
    assert not is_trading_day("2024-12-25")
    assert not is_trading_day(date(2024, 7, 4))
    assert is_trading_day("2024-12-24")
    with pytest.raises(DataError, match=r"not a XNYS trading session.*2024-12-26"):
        session_close("2024-12-25")


def test_session_closes_lists_each_session_with_its_real_close():
    closes = session_closes("2024-11-25", "2024-12-02")
    assert list(closes) == [
        utc("2024-11-25 21:00"),
        utc("2024-11-26 21:00"),
        utc("2024-11-27 21:00"),
        utc("2024-11-29 18:00"),
        utc("2024-12-02 21:00"),
    ]
    assert str(closes.tz) == "UTC"


def test_session_closes_end_date_includes_that_day_and_aware_bounds_are_exact():
    assert len(session_closes(datetime(2024, 1, 2), datetime(2024, 1, 5))) == 4
    # An aware end one minute before the close excludes that session.
    end = datetime(2024, 1, 5, 15, 59, tzinfo=NY)
    assert session_closes("2024-01-02", end)[-1] == utc("2024-01-04 21:00")


def test_session_bounds_pairs_opens_with_closes():
    opens, closes = session_bounds("2024-11-29", "2024-11-29")
    assert list(opens) == [utc("2024-11-29 14:30")]
    assert list(closes) == [utc("2024-11-29 18:00")]


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ("2024-01-05 09:29:59", False),
        ("2024-01-05 09:30", True),
        ("2024-01-05 15:59:59", True),
        ("2024-01-05 16:00", False),  # the close itself is outside the session
        ("2024-01-06 12:00", False),  # Saturday
        ("2024-07-04 12:00", False),  # Independence Day
        ("2024-11-29 12:59", True),
        ("2024-11-29 13:00", False),  # early close
        ("2024-03-11 09:30", True),  # first session after the DST switch
    ],
)
def test_is_market_open_reads_naive_times_in_new_york(when, expected):
    assert is_market_open(when) is expected


def test_is_market_open_with_aware_times_is_timezone_correct():
    assert is_market_open(datetime(2024, 1, 5, 14, 30, tzinfo=UTC))  # 09:30 ET
    assert not is_market_open(datetime(2024, 1, 5, 14, 29, tzinfo=UTC))
    assert is_market_open(datetime(2024, 7, 5, 13, 30, tzinfo=UTC))  # 09:30 EDT
    tokyo = ZoneInfo("Asia/Tokyo")
    assert is_market_open(datetime(2024, 1, 6, 5, 59, tzinfo=tokyo))  # 15:59 ET on the 5th


def test_next_open_and_close_skip_weekends_and_holidays():
    assert next_session_open("2024-01-05 16:30") == utc("2024-01-08 14:30")
    assert next_session_open("2024-07-03 14:00") == utc("2024-07-05 13:30")
    assert next_session_close("2024-01-05 10:00") == utc("2024-01-05 21:00")
    assert previous_session_close("2024-01-08 10:00") == utc("2024-01-05 21:00")
    assert previous_session_close("2024-01-05 21:00") == utc("2024-01-05 21:00")


def test_now_is_the_default_time():
    assert isinstance(is_market_open(), bool)
    assert next_session_open() > pd.Timestamp.now(tz="UTC")


def test_times_outside_the_calendar_and_unknown_calendars_raise_named_errors():
    with pytest.raises(DataError, match="outside the XNYS calendar"):
        is_market_open("1980-01-02 10:00")
    with pytest.raises(ConfigError, match="XNYS"):
        get_calendar("NOPE")


def test_exchange_timezone_is_new_york():
    assert exchange_timezone() == NY


def test_closing_session_of_maps_each_instant_to_the_close_that_ends_its_session():
    instants = pd.DatetimeIndex(
        [
            utc("2024-11-29 18:00"),  # a daily bar at the early close maps to itself
            utc("2024-11-29 15:00"),  # intraday during the half day
            utc("2024-11-29 19:00"),  # after the close, Friday evening → Monday's close
            utc("2024-12-02 14:31"),
        ]
    )
    assert list(closing_session_of(instants)) == [
        utc("2024-11-29 18:00"),
        utc("2024-11-29 18:00"),
        utc("2024-12-02 21:00"),
        utc("2024-12-02 21:00"),
    ]
    with pytest.raises(DataError, match="tz-aware"):
        closing_session_of(pd.DatetimeIndex(["2024-01-05"]))


def test_daily_close_stamps_maps_dates_and_logs_non_sessions(caplog):
    days = pd.DatetimeIndex(["2024-11-29", "2024-11-30", "2024-12-02"])
    stamps = daily_close_stamps(days)
    assert list(stamps) == [utc("2024-11-29 18:00"), utc("2024-11-30 21:00"), utc("2024-12-02 21:00")]
    assert "not XNYS sessions" in caplog.text


def test_market_hours_helper_answers_the_common_questions():
    hours = MarketHours()
    assert hours.timezone == NY
    assert hours.is_open("2024-12-24 12:00")
    assert not hours.is_open("2024-12-24 13:30")  # early close on Christmas Eve
    assert hours.next_open("2024-12-24 13:30") == utc("2024-12-26 14:30")
    assert hours.next_close("2024-12-24 10:00") == utc("2024-12-24 18:00")
    assert hours.is_trading_day("2024-12-24")
    assert not hours.is_trading_day("2024-12-25")
    assert hours.session_close("2024-12-24") == utc("2024-12-24 18:00")
    assert hours.session_open("2024-12-24") == utc("2024-12-24 14:30")


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2030, 12, 31)))
def test_open_iff_between_the_previous_open_and_its_close(naive):
    when = pd.Timestamp(naive, tz="UTC")
    open_now = is_market_open(when)
    upcoming_close = next_session_close(when)
    upcoming_open = next_session_open(when)
    # Open exactly when the next close comes before the next open (we are inside a session).
    assert open_now == (upcoming_close < upcoming_open)
    assert not is_market_open(upcoming_open - timedelta(microseconds=1))
    assert is_market_open(upcoming_open)
    assert not is_market_open(upcoming_close)


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2030, 12, 31)))
def test_open_from_nanoseconds_is_the_same_answer(naive):
    """The live engine asks with the broker's clock as int64 ns (no pandas on the path to a bar's orders)."""
    when = pd.Timestamp(naive, tz="UTC")
    assert market_open_span(when.value)[2] == is_market_open(when)
    close = next_session_close(when).value
    assert not market_open_span(close)[2]
    assert market_open_span(close - 1)[2] == is_market_open(pd.Timestamp(close - 1, tz="UTC"))


def test_open_from_nanoseconds_outside_the_calendar_is_the_same_named_error():
    with pytest.raises(DataError, match="outside the XNYS calendar"):
        market_open_span(utc("1980-01-02 15:00").value)


def test_a_sessions_bounds_come_from_one_table_per_calendar_whatever_form_the_day_takes():
    """The live path stamps each daily bar with session_close_ns(date): a lookup in a table of the calendar's
    sessions built once per calendar; every form of the same day gives the same answer."""
    first = session_close(date(2024, 3, 1))
    assert first == utc("2024-03-01 21:00")
    assert session_close_ns(date(2024, 3, 1)) == first.value
    assert session_close("2024-03-01") == first
    assert session_close(datetime(2024, 3, 1, 9, 30)) == first  # naive: New York time
    assert session_close(pd.Timestamp("2024-03-02 01:00", tz="UTC")) == first  # 20:00 New York, the 1st
    assert session_open(date(2024, 3, 1)) == session_open("2024-03-01") == utc("2024-03-01 14:30")
    assert sessions_by_day() is sessions_by_day("XNYS")  # built once
    assert sessions_by_day()[date(2024, 3, 1)] == (utc("2024-03-01 14:30").value, first.value)
    assert session_close("2024-03-01", "CME_GLOBEX") != first  # per calendar
    for _ in range(2):  # a day without a session raises every time, naming the next session
        with pytest.raises(DataError, match=r"not a XNYS trading session.*next session: 2024-03-04"):
            session_close(date(2024, 3, 2))
