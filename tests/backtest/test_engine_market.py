"""MarketData (the engine's prepared bars) and Ledger (fills -> equity and cash curves)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from copilot_quant.backtest.ledger import Ledger
from copilot_quant.backtest.market import MarketData
from copilot_quant.backtest.orders import Fill, Order
from copilot_quant.data.providers import SyntheticDataProvider
from copilot_quant.errors import DataError

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
