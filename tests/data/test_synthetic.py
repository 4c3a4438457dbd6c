"""SyntheticDataProvider: deterministic, valid OHLC, real session stamps, any interval, fast enough for 1M bars."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import pytest
from copilot_quant.backtest.interfaces import BAR_COLUMNS, SUPPORTED_INTERVALS
from copilot_quant.data.calendars import session_bounds, session_closes
from copilot_quant.data.synthetic import SyntheticDataProvider
from copilot_quant.errors import DataError, UnknownSymbolError
from hypothesis import given
from hypothesis import strategies as st


def assert_valid_bars(frame: pd.DataFrame) -> None:
    assert list(frame.columns) == list(BAR_COLUMNS)
    assert str(frame.index.tz) == "UTC"
    assert frame.index.is_monotonic_increasing
    assert frame.index.is_unique
    assert (frame.dtypes == "float64").all()
    body_top = np.maximum(frame["Open"], frame["Close"])
    body_bottom = np.minimum(frame["Open"], frame["Close"])
    assert (frame["High"] >= body_top).all()
    assert (frame["Low"] <= body_bottom).all()
    assert (frame["Low"] > 0).all()
    assert (frame["Volume"] >= 0).all()


def test_same_seed_and_symbol_give_identical_bars_and_other_seeds_differ():
    a = SyntheticDataProvider(seed=3).get_historical_data("AAA", "2020-01-01", "2020-12-31")
    b = SyntheticDataProvider(seed=3).get_historical_data("AAA", "2020-01-01", "2020-12-31")
    c = SyntheticDataProvider(seed=4).get_historical_data("AAA", "2020-01-01", "2020-12-31")
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["Close"].to_numpy(), c["Close"].to_numpy())


def test_the_requested_range_never_changes_the_prices():
    feed = SyntheticDataProvider(seed=1)
    long = feed.get_historical_data("X", "2016-01-01", "2020-12-31")
    short = SyntheticDataProvider(seed=1).get_historical_data("X", "2018-03-01", "2018-06-30")
    pd.testing.assert_frame_equal(short, long.loc["2018-03-01":"2018-06-30 23:59"])
    # And extending a cached path keeps its prefix.
    longer = feed.get_historical_data("X", "2016-01-01", "2022-12-31")
    pd.testing.assert_frame_equal(longer.loc[: long.index[-1]], long)


def test_an_open_ended_request_after_a_bounded_one_runs_to_now():
    feed = SyntheticDataProvider(seed=1, start="2024-01-02")
    bounded = feed.get_historical_data("X", "2024-01-02", "2024-03-31")
    everything = feed.get_historical_data("X", "2024-01-02")
    assert everything.index[-1] > bounded.index[-1]
    assert everything.index[-1] <= pd.Timestamp.now(tz="UTC")  # no bar from the future
    pd.testing.assert_frame_equal(everything.loc[: bounded.index[-1]], bounded)
    assert feed.bars("X").index[-1] == everything.index[-1]


def test_symbols_are_independent_of_each_other():
    alone = SyntheticDataProvider(seed=9).get_historical_data("B", "2021-01-01", "2021-03-01")
    together = SyntheticDataProvider(seed=9).get_multiple_symbols(["A", "B"], "2021-01-01", "2021-03-01")
    np.testing.assert_array_equal(together[("Close", "B")].to_numpy(), alone["Close"].to_numpy())
    assert list(together.columns.names) == ["Metric", "Symbol"]


def test_daily_bars_are_stamped_at_each_session_close_including_early_closes():
    bars = SyntheticDataProvider().get_historical_data("X", "2024-11-25", "2024-12-31")
    pd.testing.assert_index_equal(bars.index, session_closes("2024-11-25", "2024-12-31"), check_names=False)
    assert pd.Timestamp("2024-11-29 18:00", tz="UTC") in bars.index
    assert_valid_bars(bars)


@pytest.mark.parametrize(
    ("interval", "per_day", "half_day"), [("1m", 390, 210), ("5m", 78, 42), ("1h", 7, 4)]
)
def test_intraday_bars_lie_inside_regular_hours_and_end_at_bar_end(interval, per_day, half_day):
    bars = SyntheticDataProvider().get_historical_data("X", "2024-11-27", "2024-11-29", interval=interval)
    opens, closes = session_bounds("2024-11-27", "2024-11-29")
    counts = []
    for open_, close in zip(opens, closes, strict=True):
        inside = bars[(bars.index > open_) & (bars.index <= close)]
        counts.append(len(inside))
        assert inside.index[-1] == close  # the last bar ends at the close, even a short one
    assert counts == [per_day, half_day]
    assert len(bars) == sum(counts)
    assert_valid_bars(bars)


def test_hourly_bars_end_on_the_half_hour_and_the_last_one_at_the_close():
    bars = SyntheticDataProvider().get_historical_data("X", "2024-01-05", "2024-01-05", interval="1h")
    local = bars.index.tz_convert("America/New_York").strftime("%H:%M")
    assert list(local) == ["10:30", "11:30", "12:30", "13:30", "14:30", "15:30", "16:00"]


def test_weekly_and_monthly_bars_aggregate_the_daily_path():
    feed = SyntheticDataProvider(seed=5)
    daily = feed.get_historical_data("X", "2024-11-25", "2024-12-06")
    weekly = feed.get_historical_data("X", "2024-11-25", "2024-12-06", interval="1wk")
    assert list(weekly.index) == [
        pd.Timestamp("2024-11-29 18:00", tz="UTC"),
        pd.Timestamp("2024-12-06 21:00", tz="UTC"),
    ]
    first_week = daily.loc[:"2024-11-29 23:00"]
    assert weekly["Open"].iloc[0] == first_week["Open"].iloc[0]
    assert weekly["High"].iloc[0] == first_week["High"].max()
    assert weekly["Low"].iloc[0] == first_week["Low"].min()
    assert weekly["Close"].iloc[0] == first_week["Close"].iloc[-1]
    assert weekly["Volume"].iloc[0] == first_week["Volume"].sum()
    monthly = feed.get_historical_data("X", "2024-01-01", "2024-12-31", interval="1mo")
    assert len(monthly) == 12
    assert monthly.index[-1] == pd.Timestamp("2024-12-31 21:00", tz="UTC")


def test_periods_gives_exactly_that_many_bars_and_a_million_minutes_work():
    feed = SyntheticDataProvider(["X"], periods=1_000_000, interval="1m")
    bars = feed.get_historical_data("X", interval="1m")
    assert len(bars) == 1_000_000
    assert bars.index[0] == pd.Timestamp("2015-01-02 14:31", tz="UTC")
    assert_valid_bars(bars.iloc[:5000])
    # Other intervals cover the same span.
    daily = feed.get_historical_data("X")
    assert daily.index[-1] <= bars.index[-1] + pd.Timedelta(hours=8)
    assert daily.index[-1] >= bars.index[-1] - pd.Timedelta(days=4)


def test_fixed_symbol_lists_reject_others_and_open_universe_serves_any():
    fixed = SyntheticDataProvider(["aapl", "MSFT"])
    assert fixed.symbols() == ["AAPL", "MSFT"]
    with pytest.raises(UnknownSymbolError, match="ZZZ"):
        fixed.get_historical_data("ZZZ")
    open_feed = SyntheticDataProvider()
    assert open_feed.serves_any_symbol
    open_feed.get_historical_data("whatever", "2020-01-01", "2020-01-31")
    assert open_feed.symbols() == ["WHATEVER"]


def test_bad_arguments_raise_data_errors_that_explain():
    with pytest.raises(DataError, match=r"Unsupported interval '3d'.*1m"):
        SyntheticDataProvider().get_historical_data("X", interval="3d")
    with pytest.raises(DataError, match="periods"):
        SyntheticDataProvider(periods=0)
    with pytest.raises(DataError, match="start_price"):
        SyntheticDataProvider(start_price=-1.0)
    with pytest.raises(DataError, match="after end"):
        SyntheticDataProvider().get_historical_data("X", "2021-01-01", "2020-01-01")


def test_a_range_before_the_series_starts_is_empty_not_an_error():
    bars = SyntheticDataProvider(start="2020-01-02").get_historical_data("X", "2019-01-01", "2019-12-31")
    assert bars.empty
    assert list(bars.columns) == list(BAR_COLUMNS)


def test_supported_intervals_all_work():
    feed = SyntheticDataProvider()
    for interval in SUPPORTED_INTERVALS:
        bars = feed.get_historical_data("X", "2024-01-01", "2024-03-31", interval=interval)
        assert len(bars) > 0, interval
        assert_valid_bars(bars)


@given(
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    symbol=st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=5),
    volatility=st.floats(min_value=0.0, max_value=3.0),
    interval=st.sampled_from(["1d", "5m", "1h"]),
)
def test_ohlc_is_valid_for_any_seed_symbol_and_volatility(seed, symbol, volatility, interval):
    feed = SyntheticDataProvider(seed=seed, start="2023-01-03", annual_volatility=volatility)
    bars = feed.get_historical_data(symbol, "2023-01-03", datetime(2023, 2, 28), interval=interval)
    assert len(bars) > 0
    assert_valid_bars(bars)
