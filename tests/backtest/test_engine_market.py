"""MarketData (the engine's prepared bars) and Ledger (fills -> equity and cash curves)."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import pairwise

import numpy as np
import pandas as pd
import pytest
from copilot_quant.backtest import market as market_module
from copilot_quant.backtest.ledger import Ledger
from copilot_quant.backtest.market import BarCursor, MarketData, iter_chunks
from copilot_quant.backtest.orders import Fill, Order
from copilot_quant.data.providers import SyntheticDataProvider
from copilot_quant.errors import DataError
from hypothesis import given, settings
from hypothesis import strategies as st

ONE = SyntheticDataProvider(["X"], seed=5).get_historical_data("X", "2021-01-01", "2021-03-31")
MANY = SyntheticDataProvider(seed=5).get_multiple_symbols(["A", "B"], "2021-01-01", "2021-03-31")
REGULAR = pd.DataFrame(
    np.arange(50.0).reshape(10, 5) + 1,
    columns=["Low", "Open", "Close", "High", "Volume"],  # a valid bar per row: low < open < close < high
    index=pd.date_range("2024-01-01 21:00", periods=10, freq="D", tz="UTC"),
)


@pytest.mark.parametrize(
    ("frame", "symbols"), [(ONE, ["X"]), (MANY, ["A", "B"]), (REGULAR, ["X"])], ids=["one", "many", "freq"]
)
def test_history_is_exactly_the_prefix_of_the_frame(frame, symbols):
    market = MarketData(frame, symbols)
    for bar in (0, 1, len(frame) // 2, len(frame) - 1):
        view = market.history(bar)
        pd.testing.assert_frame_equal(view, frame.iloc[: bar + 1])
        assert view.index.freq == frame.index[: bar + 1].freq
        assert view.index.max() == frame.index[bar]


def test_writing_into_a_history_view_leaves_the_frame_alone():
    frame = ONE.copy()
    market = MarketData(frame, ["X"])
    view = market.history(10)
    view.iloc[:, :] = -1.0
    view["Extra"] = 1.0
    pd.testing.assert_frame_equal(frame, ONE)
    pd.testing.assert_frame_equal(market.history(10), ONE.iloc[:11])


def test_price_arrays_are_bars_by_symbols_and_marks_carry_missing_closes_forward():
    b = SyntheticDataProvider(seed=5).get_historical_data("B", "2021-01-01", "2021-03-31")
    many = SyntheticDataProvider(seed=5).get_multiple_symbols(["A", "B"], "2021-01-01", "2021-03-31")
    many.loc[many.index[3], pd.IndexSlice[:, "B"]] = np.nan
    market = MarketData(many, ["A", "B"])
    assert market.closes.shape == (len(many), 2)
    assert np.isnan(market.closes[3, 1])
    assert market.marks[3, 1] == b["Close"].iloc[2]
    assert market.symbol_index == {"A": 0, "B": 1}


def test_stamps_are_the_index_as_utc_datetimes():
    stamps = MarketData(ONE, ["X"]).stamps()
    assert stamps == list(ONE.index.to_pydatetime())
    assert all(s.tzinfo is not None for s in stamps)


def test_session_ends_mark_the_last_bar_of_each_new_york_day():
    index = pd.DatetimeIndex(
        ["2024-03-08 20:59", "2024-03-08 21:00", "2024-03-11 13:31", "2024-03-11 20:00"], tz="UTC"
    )
    frame = pd.DataFrame(1.0, index=index, columns=["Open", "High", "Low", "Close", "Volume"])
    assert MarketData(frame, ["X"]).session_end.tolist() == [False, True, False, True]


def test_a_flat_frame_needs_exactly_one_symbol_name():
    with pytest.raises(DataError, match="one symbol"):
        MarketData(ONE, None)
    with pytest.raises(DataError, match="one symbol"):
        MarketData(ONE, ["X", "Y"])


def test_missing_price_columns_are_named():
    with pytest.raises(DataError, match=r"\['Low'\]"):
        MarketData(ONE.drop(columns=["Low"]), ["X"])


def test_duplicate_timestamps_are_refused():
    with pytest.raises(DataError, match="repeat"):
        MarketData(pd.concat([ONE.iloc[:3], ONE.iloc[2:4]]), ["X"])


def test_a_multi_symbol_frame_without_a_requested_symbol_is_refused():
    with pytest.raises(DataError, match="no columns for"):
        MarketData(MANY, ["A", "C"])


def _fill(side: str, qty: float, price: float, commission: float = 0.0) -> Fill:
    return Fill(Order("X", qty, side=side), price, qty, commission, ONE.index[0])


def test_the_ledger_builds_step_curves_from_the_brokers_values():
    ledger = Ledger(1_000.0)
    ledger.record(1, 0, _fill("buy", 10, 10.0, 1.0), cash_after=899.0, quantity_after=10)
    ledger.record(3, 0, _fill("sell", 4, 12.0, 1.0), cash_after=946.0, quantity_after=6)
    marks = np.array([[10.0], [11.0], [11.5], [12.0], [13.0]])
    equity, cash = ledger.equity_curve(marks)
    assert cash.tolist() == [1_000, 899, 899, 946, 946]
    assert equity.tolist() == [1_000, 899 + 110, 899 + 115, 946 + 72, 946 + 78]


def test_a_position_in_a_symbol_without_a_price_yet_counts_as_zero_not_nan():
    ledger = Ledger(100.0)
    marks = np.array([[np.nan, 5.0], [np.nan, 6.0]])
    ledger.record(0, 1, _fill("buy", 1, 5.0), cash_after=95.0, quantity_after=1)
    equity, _ = ledger.equity_curve(marks)
    assert equity.tolist() == [100.0, 101.0]


def _new_york_days_the_slow_way(index: pd.DatetimeIndex) -> list[bool]:
    days = index.tz_convert("America/New_York").tz_localize(None).to_numpy().astype("datetime64[D]")
    return [*(bool(d != e) for d, e in pairwise(days)), True]


@settings(max_examples=150, deadline=None)
@given(
    start=st.datetimes(datetime(2019, 1, 1), datetime(2026, 12, 1)),
    steps=st.lists(st.integers(1, 6 * 3600), min_size=1, max_size=300),
)
def test_session_ends_agree_with_new_york_wall_clock_dates_across_daylight_saving_changes(start, steps):
    # the offset is looked up once per UTC hour: bars a few seconds to hours apart, around any date
    index = pd.DatetimeIndex(pd.Timestamp(start, tz="UTC") + pd.to_timedelta(np.cumsum(steps), unit="s"))
    frame = pd.DataFrame(1.0, index=index, columns=["Open", "High", "Low", "Close", "Volume"])
    assert MarketData(frame, ["X"]).session_end.tolist() == _new_york_days_the_slow_way(index)


def test_session_ends_on_both_sides_of_the_clock_changes():
    stamps = "2024-03-10 03:59, 2024-03-10 04:00, 2024-03-10 06:59, 2024-03-10 07:00, 2024-03-11 03:59, "
    stamps += "2024-03-11 04:00, 2024-11-03 03:59, 2024-11-03 04:00, 2024-11-03 06:00, 2024-11-04 04:59, "
    stamps += "2024-11-04 05:00"
    index = pd.DatetimeIndex(
        stamps.split(", "),
        tz="UTC",
    )
    frame = pd.DataFrame(1.0, index=index, columns=["Open", "High", "Low", "Close", "Volume"])
    ends = MarketData(frame, ["X"]).session_end.tolist()
    assert ends == _new_york_days_the_slow_way(index)
    # the last minute before New York midnight ends a day, with EST and with EDT
    assert ends == [False, True, False, False, True, True, True, False, False, True, True]


@pytest.mark.parametrize(
    ("bar", "what"),
    [
        ((np.nan, 2.0, 1.0, 1.5), "some prices missing"),
        ((1.0, np.inf, 1.0, 1.5), "not positive and finite"),
        ((0.0, 2.0, 0.0, 1.5), "not positive and finite"),
        ((1.0, 1.0, 2.0, 1.5), "High < Low"),
    ],
)
def test_each_kind_of_bad_bar_is_still_named_after_the_quick_check(bar, what):
    frame = ONE.copy()
    frame.iloc[7, :4] = bar  # Open, High, Low, Close
    with pytest.raises(DataError, match=what):
        MarketData(frame, ["X"])


def test_a_symbol_without_bars_yet_passes_the_checks():
    many = MANY.copy()
    many.loc[many.index[:5], pd.IndexSlice[:, "B"]] = np.nan  # B lists later: all four prices missing
    assert np.isnan(MarketData(many, ["A", "B"]).closes[:5, 1]).all()


@pytest.mark.parametrize("size", [1, 3, 7, 100])
def test_a_cursor_reads_which_item_a_chunked_iterator_handed_out_last(size):
    cursor = BarCursor()
    items = iter_chunks(np.arange(20.0), size, cursor)
    assert cursor.position() == -1
    for k in range(20):
        assert next(items) == float(k)
        assert cursor.position() == k  # across chunk boundaries too
    assert next(items, None) is None
    assert cursor.position() == 19


def test_stamps_and_stamp_agree():
    market = MarketData(ONE, ["X"])
    cursor = BarCursor()
    for k, stamp in enumerate(market.iter_stamps(cursor)):
        assert cursor.position() == k
        assert stamp == market.stamp(k) == ONE.index[k]
        assert stamp.tzinfo is UTC


@settings(max_examples=100, deadline=None)
@given(
    records=st.lists(st.tuples(st.integers(-1, 30), st.floats(-1e6, 1e6), st.floats(-500, 500)), max_size=40),
    nan_until=st.integers(0, 5),
)
def test_the_one_symbol_equity_curve_is_the_general_one(records, nan_until):
    ledger = Ledger(1_000.0)
    for bar, cash, quantity in sorted(records, key=lambda r: r[0]):
        ledger.record(bar, 0, _fill("buy", 1, 10.0), cash_after=cash, quantity_after=quantity)
    marks = np.random.default_rng(3).uniform(5.0, 50.0, (31, 1))
    marks[:nan_until] = np.nan
    equity, cash = ledger.equity_curve(marks)
    # the general computation, as for several symbols
    quantities = ledger.quantities(31, 1)
    expected = ledger.cash_curve(31) + np.where(quantities != 0, quantities * np.nan_to_num(marks), 0.0).sum(
        axis=1
    )
    np.testing.assert_array_equal(cash, ledger.cash_curve(31))
    np.testing.assert_array_equal(equity, expected)


@settings(max_examples=150, deadline=None)
@given(
    start=st.datetimes(datetime(1990, 1, 1), datetime(2030, 1, 1)),
    steps=st.lists(
        st.one_of(st.just(60_000_000), st.integers(1, 10**12)), min_size=0, max_size=200
    ),  # mostly one-minute steps, some of any size down to a microsecond
    chunk=st.sampled_from([1, 2, 3, 16, 65_536]),
)
def test_the_running_sum_of_steps_gives_every_bar_time(start, steps, chunk):
    index = pd.DatetimeIndex(
        pd.Timestamp(start, tz="UTC") + pd.to_timedelta(np.cumsum([0, *steps]), unit="us")
    )
    frame = pd.DataFrame(1.0, index=index, columns=["Open", "High", "Low", "Close", "Volume"])
    data = MarketData(frame, ["X"])
    cursor = BarCursor()
    stamps = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(market_module, "_CHUNK", chunk)
        for k, stamp in enumerate(data.iter_stamps(cursor)):
            assert cursor.position() == k
            stamps.append(stamp)
    assert stamps == list(index.to_pydatetime())
    assert all(s.tzinfo is UTC for s in stamps)
    assert stamps == [data.stamp(k) for k in range(len(index))]
