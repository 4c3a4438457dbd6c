"""IB's intraday bar grid: clock slots cut by the session (see copilot_quant/data/bar_grid.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from copilot_quant.data.bar_grid import (
    bar_end_at,
    bar_ends_in_sessions,
    bar_ends_of_starts,
    bar_starts_of_ends,
)
from copilot_quant.data.calendars import exchange_tz_name, session_bounds
from hypothesis import given, settings
from hypothesis import strategies as st

HOUR = pd.Timedelta("1h")


def local(ns: np.ndarray, tz: str = "America/New_York") -> list[str]:
    return list(
        pd.DatetimeIndex(ns.view("datetime64[ns]")).tz_localize("UTC").tz_convert(tz).strftime("%H:%M")
    )


def ends(day: str, calendar: str, step: pd.Timedelta = HOUR) -> np.ndarray:
    opens, closes = session_bounds(day, day, calendar)
    return bar_ends_in_sessions(opens.asi8, closes.asi8, step.value, exchange_tz_name(calendar))


def test_an_nyse_session_has_seven_hourly_bars_the_first_one_half_an_hour():
    stamps = ends("2024-03-05", "XNYS")
    assert local(stamps) == ["10:00", "11:00", "12:00", "13:00", "14:00", "15:00", "16:00"]
    assert local(bar_starts_of_ends(stamps, HOUR.value, "XNYS")) == [
        "09:30", "10:00", "11:00", "12:00", "13:00", "14:00", "15:00",
    ]  # fmt: skip


def test_an_early_close_ends_the_last_hour_at_13_00():
    assert local(ends("2024-11-29", "XNYS")) == ["10:00", "11:00", "12:00", "13:00"]


def test_stock_half_hours_are_the_same_on_either_grid():
    stamps = ends("2024-03-05", "XNYS", pd.Timedelta("30min"))
    assert len(stamps) == 13
    assert local(stamps)[:2] == ["10:00", "10:30"]


def test_a_forex_day_starts_with_the_quarter_to_six():
    stamps = ends("2024-03-05", "FX")  # IDEALPRO: 17:15 (Monday) to 17:00 New York
    assert len(stamps) == 24
    assert local(bar_starts_of_ends(stamps, HOUR.value, "FX"))[:3] == ["17:15", "18:00", "19:00"]
    assert local(stamps)[-1] == "17:00"


def test_cme_globex_hours_are_whole_hours_from_its_17_00_chicago_open():
    stamps = ends("2024-03-05", "CME_GLOBEX")
    assert len(stamps) == 23
    assert local(stamps, "America/Chicago")[:2] == ["18:00", "19:00"]


def test_the_bar_forming_at_an_instant_ends_on_the_clock_hour_or_at_the_close():
    at = pd.Timestamp("2024-03-05 09:45", tz="America/New_York")
    assert bar_end_at(at, HOUR, "XNYS") == pd.Timestamp("2024-03-05 10:00", tz="America/New_York")
    late = pd.Timestamp("2024-03-05 15:59", tz="America/New_York")
    assert bar_end_at(late, HOUR, "XNYS") == pd.Timestamp("2024-03-05 16:00", tz="America/New_York")
    night = pd.Timestamp("2024-03-05 20:00", tz="America/New_York")  # closed: the next session's first bar
    assert bar_end_at(night, HOUR, "XNYS") == pd.Timestamp("2024-03-06 10:00", tz="America/New_York")
    sunday = pd.Timestamp("2024-03-03 12:10", tz="America/New_York")
    assert bar_end_at(sunday, HOUR, "XNYS", around_clock=True) == sunday.floor("1h") + HOUR


@settings(max_examples=40, deadline=None)
@given(
    day=st.dates(min_value=pd.Timestamp("2015-01-01").date(), max_value=pd.Timestamp("2026-06-30").date()),
    calendar=st.sampled_from(["XNYS", "CME_GLOBEX", "FX"]),
    minutes=st.sampled_from([1, 2, 5, 15, 30, 60]),
)
def test_starts_and_ends_round_trip_and_tile_each_session(day, calendar, minutes):
    opens, closes = session_bounds(day, day, calendar)
    if not len(opens):
        return
    step = pd.Timedelta(minutes=minutes).value
    stamps = bar_ends_in_sessions(opens.asi8, closes.asi8, step, exchange_tz_name(calendar))
    starts = bar_starts_of_ends(stamps, step, calendar)
    assert (bar_ends_of_starts(starts, step, calendar) == stamps).all()
    assert starts[0] == opens.asi8[0]
    assert stamps[-1] == closes.asi8[-1]
    assert (starts[1:] == stamps[:-1]).all()  # no gap, no overlap
    assert ((stamps - starts) <= step).all()
    assert ((stamps - starts) > 0).all()


@pytest.mark.parametrize("calendar", ["XNYS", "FX"])
def test_every_inner_boundary_is_a_clock_slot_boundary(calendar):
    stamps = ends("2024-07-02", calendar)
    tz = exchange_tz_name(calendar)
    minutes = pd.DatetimeIndex(stamps[:-1].view("datetime64[ns]")).tz_localize("UTC").tz_convert(tz).minute
    assert (minutes == 0).all()
