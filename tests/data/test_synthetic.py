"""SyntheticDataProvider: one market at every interval, deterministic whatever the window, valid OHLC, real
session stamps, fast enough for 1M bars."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from copilot_quant.backtest.interfaces import BAR_COLUMNS, SUPPORTED_INTERVALS
from copilot_quant.data import synthetic
from copilot_quant.data.calendars import closing_session_of, session_bounds, session_closes
from copilot_quant.data.resample import aggregate_bars, resample_daily
from copilot_quant.data.synthetic import SyntheticDataProvider
from copilot_quant.errors import DataError, UnknownSymbolError
from hypothesis import given, settings
from hypothesis import strategies as st

SEEDS = st.integers(min_value=0, max_value=2**32 - 1)
SYMBOLS = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=5)
#: First days of requested windows; the provider's series starts on 2015-01-02.
DAYS = st.dates(min_value=date(2015, 1, 1), max_value=date(2025, 12, 20))
INTRADAY = ["1m", "2m", "5m", "15m", "30m", "1h"]
#: Symbols on other calendars: continuous futures and contracts (CME Globex, open the evening before their
#: session's date) and forex pairs (IDEALPRO, 17:15 New York the evening before).
MARKETS = st.sampled_from(["ZN", "ES", "GC", "NQ", "MES", "MNQ", "ZNH5", "ESZ6", "EUR.USD", "USD.JPY"])


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


def test_hourly_bars_are_ibs_clock_hours_the_first_one_from_the_open():
    # IB's grid (data/bar_grid.py): 09:30-10:00, 10:00-11:00, ... 15:00-16:00, not 09:30-10:30 ... 15:30-16:00.
    bars = SyntheticDataProvider().get_historical_data("X", "2024-01-05", "2024-01-05", interval="1h")
    local = bars.index.tz_convert("America/New_York").strftime("%H:%M")
    assert list(local) == ["10:00", "11:00", "12:00", "13:00", "14:00", "15:00", "16:00"]


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


# -- one market at every interval ---------------------------------------------------------------------------
@settings(max_examples=40)
@given(seed=SEEDS, symbol=st.one_of(SYMBOLS, MARKETS), first=DAYS, span=st.integers(min_value=0, max_value=9))
def test_minutes_aggregate_exactly_to_every_coarser_intraday_and_daily_bar(seed, symbol, first, span):
    assert_one_market(SyntheticDataProvider(seed=seed), symbol, first, first + timedelta(days=span))


def assert_one_market(feed: SyntheticDataProvider, symbol: str, first: date, last: date) -> None:
    """Minutes of ``[first, last]`` aggregate (on the symbol's own calendar) to its coarser bars."""
    calendar = feed.calendar_of(symbol)
    minutes = feed.get_historical_data(symbol, first, last, "1m")
    daily = feed.get_historical_data(symbol, first, last, "1d")
    for interval in INTRADAY[1:]:
        bars = feed.get_historical_data(symbol, first, last, interval)
        pd.testing.assert_frame_equal(aggregate_bars(minutes, "1m", interval, calendar), bars)
    hourly = feed.get_historical_data(symbol, first, last, "1h")
    pd.testing.assert_frame_equal(aggregate_bars(minutes, "1m", "1d", calendar), daily)
    pd.testing.assert_frame_equal(aggregate_bars(hourly, "1h", "1d", calendar), daily)


@settings(max_examples=20)
@given(seed=SEEDS, symbol=SYMBOLS, first=DAYS, months=st.integers(min_value=1, max_value=14))
def test_weeks_and_months_aggregate_exactly_the_daily_bars(seed, symbol, first, months):
    feed = SyntheticDataProvider(seed=seed)
    month_start = pd.Timestamp(first).to_period("M").start_time
    month_end = (month_start + pd.DateOffset(months=months)) - pd.Timedelta(days=1)
    daily = feed.get_historical_data(symbol, month_start, month_end)
    monthly = feed.get_historical_data(symbol, month_start, month_end, "1mo")
    pd.testing.assert_frame_equal(resample_daily(daily, "1mo"), monthly)
    monday = pd.Timestamp(first) - pd.Timedelta(days=pd.Timestamp(first).day_of_week)
    sunday = monday + pd.Timedelta(weeks=months, days=-1)
    daily = feed.get_historical_data(symbol, monday, sunday)
    weekly = feed.get_historical_data(symbol, monday, sunday, "1wk")
    pd.testing.assert_frame_equal(resample_daily(daily, "1wk"), weekly)


def test_a_half_day_summarises_its_210_minutes():
    feed = SyntheticDataProvider(seed=8)
    minutes = feed.get_historical_data("X", "2024-11-29", "2024-11-29", "1m")
    day = feed.get_historical_data("X", "2024-11-29", "2024-11-29")
    assert len(minutes) == 210
    assert day.index[0] == minutes.index[-1] == pd.Timestamp("2024-11-29 18:00", tz="UTC")
    assert day["Open"].iloc[0] == minutes["Open"].iloc[0]
    assert day["High"].iloc[0] == minutes["High"].max()
    assert day["Low"].iloc[0] == minutes["Low"].min()
    assert day["Close"].iloc[0] == minutes["Close"].iloc[-1]
    assert day["Volume"].iloc[0] == minutes["Volume"].sum()


# -- deterministic whatever the window ---------------------------------------------------------------------
@settings(max_examples=30)
@given(
    seed=SEEDS,
    symbol=SYMBOLS,
    first=DAYS,
    lengths=st.tuples(st.integers(0, 8), st.integers(0, 8), st.integers(0, 8)),
    interval=st.sampled_from(["1m", "5m", "1h", "1d"]),
)
def test_overlapping_windows_give_the_same_bars(seed, symbol, first, lengths, interval):
    # Window A is [first, first + a]; window B starts inside it and may run past it.
    a, into, b = lengths
    second = first + timedelta(days=min(into, a))
    window_a = (first, first + timedelta(days=a))
    window_b = (second, second + timedelta(days=b))
    shared = SyntheticDataProvider(seed=seed)
    later_first = shared.get_historical_data(symbol, *window_b, interval)
    earlier = shared.get_historical_data(symbol, *window_a, interval)
    fresh = SyntheticDataProvider(seed=seed).get_historical_data(symbol, *window_b, interval)
    pd.testing.assert_frame_equal(later_first, fresh)
    overlap = earlier.index.intersection(fresh.index)
    if len(fresh):  # every bar of A inside B's span is also one of B's
        assert len(overlap) == len(earlier.loc[fresh.index[0] : fresh.index[-1]])
    pd.testing.assert_frame_equal(earlier.loc[overlap], fresh.loc[overlap])


def test_minutes_asked_first_do_not_change_the_daily_bars():
    fresh = SyntheticDataProvider(seed=4).get_historical_data("Q", "2016-01-01", "2024-12-31")
    feed = SyntheticDataProvider(seed=4)
    feed.get_historical_data("Q", "2024-06-03", "2024-06-07", "1m")
    pd.testing.assert_frame_equal(feed.get_historical_data("Q", "2016-01-01", "2024-12-31"), fresh)


@given(seed=SEEDS, symbol=SYMBOLS, first=DAYS, interval=st.sampled_from([*INTRADAY, "1d", "1wk"]))
def test_the_same_request_always_gives_the_same_bars(seed, symbol, first, interval):
    last = first + timedelta(days=12)
    feed = SyntheticDataProvider(seed=seed)
    once = feed.get_historical_data(symbol, first, last, interval)
    pd.testing.assert_frame_equal(feed.get_historical_data(symbol, first, last, interval), once)
    feed.clear_cache()
    pd.testing.assert_frame_equal(feed.get_historical_data(symbol, first, last, interval), once)
    pd.testing.assert_frame_equal(
        SyntheticDataProvider(seed=seed).get_historical_data(symbol, first, last, interval), once
    )


# -- intraday bars only inside sessions ----------------------------------------------------------------------
@given(first=DAYS, span=st.integers(min_value=0, max_value=20), interval=st.sampled_from(INTRADAY))
def test_intraday_bars_exist_only_inside_sessions_and_fill_each_one(first, span, interval):
    last = first + timedelta(days=span)
    bars = SyntheticDataProvider(seed=1).get_historical_data("X", first, last, interval)
    opens, closes = session_bounds(first, last)
    assert len(bars) > 0 or len(closes) == 0
    stamps = pd.DatetimeIndex(bars.index)
    # Each bar ends inside (open, close] of the session it belongs to: none on weekends or holidays.
    session = closing_session_of(stamps) if len(stamps) else stamps
    which = closes.searchsorted(session)
    assert (closes[which] == session).all()
    assert (stamps > opens[which]).all()
    step = pd.Timedelta(SUPPORTED_INTERVALS[interval])
    expected = np.ceil((closes - opens) / step).astype(int)
    np.testing.assert_array_equal(np.bincount(which, minlength=len(closes)), expected)


@pytest.mark.parametrize(
    ("day", "minutes"),
    [("2024-07-03", 210), ("2024-07-04", 0), ("2024-12-24", 210), ("2024-12-25", 0), ("2024-03-29", 0)],
)
def test_holidays_have_no_bars_and_half_days_end_at_one(day, minutes):
    feed = SyntheticDataProvider(seed=2)
    bars = feed.get_historical_data("X", day, day, "1m")
    assert len(bars) == minutes
    assert len(feed.get_historical_data("X", day, day)) == (1 if minutes else 0)
    if minutes:
        assert bars.index[-1].tz_convert("America/New_York").strftime("%H:%M") == "13:00"


# -- OHLC invariants -----------------------------------------------------------------------------------------
@settings(max_examples=40)
@given(
    seed=SEEDS,
    symbol=SYMBOLS,
    first=DAYS,
    model=st.tuples(
        st.one_of(st.just(0.0), st.floats(min_value=0.0, max_value=3.0)),  # volatility
        st.floats(min_value=-0.5, max_value=0.5),  # drift
    ),
    interval=st.sampled_from(list(SUPPORTED_INTERVALS)),
)
def test_every_interval_has_valid_ohlc_and_whole_share_volumes(seed, symbol, first, model, interval):
    volatility, drift = model
    feed = SyntheticDataProvider(seed=seed, annual_volatility=volatility, annual_drift=drift)
    bars = feed.get_historical_data(symbol, first, first + timedelta(days=40), interval)
    assert len(bars) > 0
    assert_valid_bars(bars)
    np.testing.assert_array_equal(bars["Volume"], np.round(bars["Volume"]))


def test_the_first_session_opens_at_the_start_price():
    bars = SyntheticDataProvider(seed=6, start="2020-01-02", start_price=50.0).get_historical_data("X")
    assert bars["Open"].iloc[0] == 50.0


# -- speed by construction -----------------------------------------------------------------------------------
def test_daily_bars_never_generate_minutes(monkeypatch):
    def no_minutes(*args, **kwargs):
        raise AssertionError("daily bars must not need minute bars")

    monkeypatch.setattr(synthetic, "minute_bars", no_minutes)
    feed = SyntheticDataProvider(seed=1, start="2005-01-03")
    assert len(feed.get_historical_data("X", "2005-01-01", "2024-12-31")) > 5000
    assert len(feed.get_historical_data("X", "2005-01-01", "2024-12-31", "1mo")) == 240


def test_a_month_of_minutes_generates_only_that_months_sessions(monkeypatch):
    generated: list[int] = []
    real = synthetic.minute_bars

    def counting(model, key, days, minutes, closes_ns):
        generated.append(len(minutes))
        return real(model, key, days, minutes, closes_ns)

    monkeypatch.setattr(synthetic, "minute_bars", counting)
    bars = SyntheticDataProvider(seed=1).get_historical_data("X", "2024-11-01", "2024-11-30", "1m")
    assert generated == [len(session_closes("2024-11-01", "2024-11-30"))]
    assert len(bars) == 19 * 390 + 210  # Thanksgiving off, the Friday after a half day
