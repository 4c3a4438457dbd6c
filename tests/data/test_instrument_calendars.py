"""Futures and forex sessions: CME Globex with its daily maintenance break, forex 24/5 on New York time."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from copilot_quant.data.calendars import (
    calendar_for,
    closing_session_of,
    exchange_tz_name,
    get_calendar,
    is_market_open,
    is_trading_day,
    next_session_open,
    session_close,
    session_open,
)
from copilot_quant.errors import ConfigError
from copilot_quant.model.instruments import InstrumentRegistry
from hypothesis import given
from hypothesis import strategies as st

REGISTRY = InstrumentRegistry(reference=date(2026, 12, 1))


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def chicago(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="America/Chicago")


def new_york(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="America/New_York")


def test_every_kind_of_instrument_gets_its_own_hours():
    assert calendar_for(REGISTRY.resolve("AAPL")).calendar == "XNYS"
    assert calendar_for(REGISTRY.resolve("MESZ6")).calendar == "CME_GLOBEX"
    assert calendar_for(REGISTRY.resolve("ES")).calendar == "CME_GLOBEX"
    assert calendar_for(REGISTRY.resolve("CL=F")).calendar == "CME_GLOBEX"
    assert calendar_for(REGISTRY.resolve("EUR.USD")).calendar == "FX"
    assert exchange_tz_name("CME_GLOBEX") == "America/Chicago"
    assert exchange_tz_name("FX") == "America/New_York"


def test_globex_pauses_for_the_daily_maintenance_break_from_16_to_17_chicago():
    hours = calendar_for(REGISTRY.resolve("MESZ6"))
    assert hours.is_open(chicago("2026-12-08 15:59"))
    assert not hours.is_open(chicago("2026-12-08 16:00"))
    assert not hours.is_open(chicago("2026-12-08 16:30"))
    assert hours.is_open(chicago("2026-12-08 17:00"))  # next session (labelled the 9th) begins
    assert hours.session_close("2026-12-08") == chicago("2026-12-08 16:00")
    assert hours.session_open("2026-12-09") == chicago("2026-12-08 17:00")
    assert hours.next_open(chicago("2026-12-08 16:10")) == chicago("2026-12-08 17:00")


def test_globex_week_opens_sunday_evening_and_closes_friday_afternoon():
    assert not is_market_open(chicago("2026-12-05 12:00"), "CME_GLOBEX")  # Saturday
    assert not is_market_open(chicago("2026-12-06 16:59"), "CME_GLOBEX")  # Sunday before the open
    assert is_market_open(chicago("2026-12-06 17:00"), "CME_GLOBEX")
    assert session_open("2026-12-07", "CME_GLOBEX") == chicago("2026-12-06 17:00")
    assert not is_market_open(chicago("2026-12-11 16:00"), "CME_GLOBEX")  # Friday close
    assert next_session_open(chicago("2026-12-11 16:00"), "CME_GLOBEX") == chicago("2026-12-13 17:00")


def test_globex_keeps_the_library_holidays_and_noon_halts():
    assert not is_trading_day("2026-12-25", "CME_GLOBEX")
    assert session_open("2026-12-28", "CME_GLOBEX") == chicago("2026-12-27 17:00")
    assert session_close("2026-11-26", "CME_GLOBEX") == chicago("2026-11-26 12:00")  # Thanksgiving


def test_globex_hours_follow_chicago_across_the_dst_change():
    # Sunday 2026-03-08 clocks go forward: the Monday session opens 17:00 CDT = 22:00 UTC, not 23:00
    assert session_open("2026-03-06", "CME_GLOBEX") == utc("2026-03-05 23:00")
    assert session_open("2026-03-09", "CME_GLOBEX") == utc("2026-03-08 22:00")
    assert session_close("2026-03-06", "CME_GLOBEX") == utc("2026-03-06 22:00")
    assert session_close("2026-03-09", "CME_GLOBEX") == utc("2026-03-09 21:00")
    # and back on 2026-11-01
    assert session_open("2026-11-02", "CME_GLOBEX") == utc("2026-11-01 23:00")


def test_forex_opens_sunday_17_15_and_closes_friday_17_new_york_as_idealpro():
    hours = calendar_for(REGISTRY.resolve("EUR.USD"))
    assert not hours.is_open(new_york("2026-12-06 17:14"))
    assert hours.is_open(new_york("2026-12-06 17:15"))
    assert hours.is_open(new_york("2026-12-11 16:59"))
    assert not hours.is_open(new_york("2026-12-11 17:00"))
    assert not hours.is_open(new_york("2026-12-12 12:00"))  # Saturday
    assert hours.next_open(new_york("2026-12-11 17:00")) == new_york("2026-12-13 17:15")


def test_forex_pauses_a_quarter_hour_at_the_17_00_roll_between_weekdays():
    hours = calendar_for(REGISTRY.resolve("EUR.USD"))
    assert hours.session_close("2026-12-08") == new_york("2026-12-08 17:00")
    assert hours.session_open("2026-12-09") == new_york("2026-12-08 17:15")
    assert not hours.is_open(new_york("2026-12-08 17:00"))
    assert not hours.is_open(new_york("2026-12-08 17:14"))
    assert hours.is_open(new_york("2026-12-08 17:15"))
    assert hours.is_trading_day("2026-12-25")  # interbank forex quotes on US holidays


def test_forex_week_follows_new_york_across_both_dst_changes():
    # US DST starts 2026-03-08 (Sunday 02:00): that Sunday's 17:15 open is already EDT, 21:15 UTC
    assert session_open("2026-03-09", "FX") == utc("2026-03-08 21:15")
    assert session_close("2026-03-06", "FX") == utc("2026-03-06 22:00")
    # and ends 2026-11-01: that Sunday's open is EST again, 22:15 UTC
    assert session_open("2026-11-02", "FX") == utc("2026-11-01 22:15")
    assert session_close("2026-10-30", "FX") == utc("2026-10-30 21:00")


@given(st.datetimes(min_value=pd.Timestamp("2020-01-01"), max_value=pd.Timestamp("2030-12-31")))
def test_forex_is_open_exactly_outside_the_weekend_and_the_daily_roll(moment):
    instant = pd.Timestamp(moment).tz_localize(
        "America/New_York", ambiguous=True, nonexistent="shift_forward"
    )
    weekday, minutes = instant.weekday(), instant.hour * 60 + instant.minute
    weekend = (
        (weekday == 4 and minutes >= 17 * 60) or weekday == 5 or (weekday == 6 and minutes < 17 * 60 + 15)
    )
    roll = 17 * 60 <= minutes < 17 * 60 + 15
    assert is_market_open(instant, "FX") is (not weekend and not roll)


def test_a_bar_in_the_evening_belongs_to_the_next_days_session():
    instants = pd.DatetimeIndex([chicago("2026-12-08 18:00"), chicago("2026-12-08 15:00")]).tz_convert("UTC")
    closes = closing_session_of(instants, "CME_GLOBEX")
    assert list(closes) == [chicago("2026-12-09 16:00"), chicago("2026-12-08 16:00")]


def test_unknown_calendar_names_the_project_calendars():
    with pytest.raises(ConfigError, match="CME_GLOBEX"):
        get_calendar("NOPE")
