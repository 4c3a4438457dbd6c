"""Aggregation to coarser bars: IB clock-grid buckets, stamps at the last constituent, no look-ahead."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from copilot_quant.data.calendars import session_closes
from copilot_quant.data.resample import aggregate_bars, aggregation_source, resample_daily
from copilot_quant.data.store import ParquetStore
from copilot_quant.data.synthetic import SyntheticDataProvider
from copilot_quant.errors import DataError
from hypothesis import given, settings
from hypothesis import strategies as st


def minutes(start: str = "2024-11-27", end: str = "2024-12-02", seed: int = 1) -> pd.DataFrame:
    return SyntheticDataProvider(seed=seed, start="2024-11-25").get_historical_data(
        "X", start, end, interval="1m"
    )


def test_hourly_buckets_are_ibs_clock_hours_the_first_one_starting_at_the_open():
    # IB's hourly bars: 09:30-10:00, 10:00-11:00, ... (see data/bar_grid.py), not 09:30-10:30.
    bars = minutes("2024-11-29", "2024-11-29")  # half day: 09:30-13:00
    hourly = aggregate_bars(bars, "1m", "1h")
    assert list(hourly.index.tz_convert("America/New_York").strftime("%H:%M")) == [
        "10:00",
        "11:00",
        "12:00",
        "13:00",
    ]
    first_hour = bars.iloc[:30]  # the half hour 09:30-10:00
    row = hourly.iloc[0]
    assert row["Open"] == first_hour["Open"].iloc[0]
    assert row["High"] == first_hour["High"].max()
    assert row["Low"] == first_hour["Low"].min()
    assert row["Close"] == first_hour["Close"].iloc[-1]
    assert row["Volume"] == first_hour["Volume"].sum()


def test_minutes_to_days_gives_one_bar_per_session_at_its_close():
    daily = aggregate_bars(minutes(), "1m", "1d")
    pd.testing.assert_index_equal(daily.index, session_closes("2024-11-27", "2024-12-02"), check_names=False)


def test_a_partial_trailing_group_is_stamped_where_the_data_stops():
    bars = minutes("2024-12-02", "2024-12-02").iloc[:100]  # 09:30-11:10
    daily = aggregate_bars(bars, "1m", "1d")
    assert list(daily.index) == [bars.index[-1]]
    hourly = aggregate_bars(bars, "1m", "1h")
    assert hourly.index[-1] == bars.index[-1]


def test_weekly_bars_from_minutes_go_through_days():
    bars = minutes("2024-11-25", "2024-12-06")
    weekly = aggregate_bars(bars, "1m", "1wk")
    assert list(weekly.index) == [
        pd.Timestamp("2024-11-29 18:00", tz="UTC"),
        pd.Timestamp("2024-12-06 21:00", tz="UTC"),
    ]
    assert weekly["Volume"].sum() == bars["Volume"].sum()


def test_the_source_is_the_coarsest_interval_that_divides_the_target():
    assert aggregation_source("1h", {"1m", "5m", "15m"}) == "15m"
    assert aggregation_source("5m", {"2m"}) is None
    assert aggregation_source("1d", {"1m", "30m"}) == "30m"
    assert aggregation_source("1mo", {"1d", "1m"}) == "1d"
    assert aggregation_source("1mo", {"1wk"}) is None
    assert aggregation_source("1m", {"1d"}) is None
    with pytest.raises(DataError, match="Cannot build '5m' bars from '2m'"):
        aggregate_bars(minutes(), "2m", "5m")
    with pytest.raises(DataError, match="Only daily bars"):
        resample_daily(minutes(), "1h")


def test_a_store_holding_minutes_serves_coarser_intervals(tmp_path):
    store = ParquetStore(tmp_path)
    store.write("X", minutes(), interval="1m")
    assert store.servable_intervals("X") == ["1m", "2m", "5m", "15m", "30m", "1h", "1d", "1wk", "1mo"]
    assert len(store.get_historical_data("X", "2024-11-27", "2024-11-27", interval="5m")) == 78
    assert len(store.get_historical_data("X", interval="1d")) == 3  # 27th, 29th, 2nd (Thanksgiving closed)
    store.write("Y", aggregate_bars(minutes(), "1m", "2m"), interval="2m")
    with pytest.raises(DataError, match=r"no '5m' bars for Y; available: 2m, 30m, 1h, 1d, 1wk, 1mo"):
        store.get_historical_data("Y", interval="5m")


@settings(max_examples=20)
@given(seed=st.integers(min_value=0, max_value=10_000), target=st.sampled_from(["15m", "1h", "1d"]))
def test_aggregating_in_steps_equals_aggregating_at_once(seed, target):
    bars = minutes("2024-11-27", "2024-11-29", seed=seed)
    direct = aggregate_bars(bars, "1m", target)
    stepwise = aggregate_bars(aggregate_bars(bars, "1m", "5m"), "5m", target)
    pd.testing.assert_frame_equal(direct, stepwise)
    np.testing.assert_allclose(direct["Volume"].sum(), bars["Volume"].sum())
