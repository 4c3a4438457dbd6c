"""The guide-style strategy's ``data`` window: exactly the bars so far, read exactly as pandas reads them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from copilot_quant.backtest.market import MarketData
from copilot_quant.backtest.window import BarColumn, BarWindow, consolidated, prefix_viewer
from copilot_quant.data.providers import SyntheticDataProvider

SYMBOLS = ["A", "B", "C"]
FEED = SyntheticDataProvider(seed=11)
#: joined from per-symbol frames: one pandas block per symbol, as providers return portfolios
MANY = FEED.get_multiple_symbols(SYMBOLS, "2021-01-01", "2021-06-30")
ONE = FEED.get_historical_data("A", "2021-01-01", "2021-06-30")


def _blocks(frame: pd.DataFrame) -> int:
    return frame._mgr.nblocks  # internals: how many 2-D arrays back the frame


@pytest.mark.parametrize(("frame", "symbols"), [(MANY, SYMBOLS), (ONE, ["A"])], ids=["many", "one"])
def test_every_column_read_from_a_window_is_the_prefix_of_that_column_and_nothing_later(frame, symbols):
    market = MarketData(frame, symbols)
    for bar in (0, 1, 29, len(frame) - 1):
        window = market.history(bar)
        assert isinstance(window, BarWindow)
        expected = frame.iloc[: bar + 1]
        pd.testing.assert_frame_equal(window, expected)
        for label in frame.columns:
            column = window[label]
            assert isinstance(column, pd.Series)
            pd.testing.assert_series_equal(column, expected[label], check_series_type=False)
            assert column.index[-1] == frame.index[bar]


def test_a_portfolio_window_is_one_block_however_the_frame_was_joined():
    assert _blocks(MANY) > 1
    market = MarketData(MANY, SYMBOLS)
    assert _blocks(market.frame) == 1
    assert _blocks(market.history(10)) == 1
    pd.testing.assert_frame_equal(market.frame, MANY)


def test_consolidating_a_frame_that_is_one_block_already_returns_it_unchanged():
    frame = MANY.copy()
    assert _blocks(frame) == 1
    assert consolidated(frame) is frame


def test_other_keys_read_the_window_as_pandas_reads_the_frame():
    window = MarketData(MANY, SYMBOLS).history(40)
    expected = MANY.iloc[:41]
    pd.testing.assert_frame_equal(window["Close"], expected["Close"])  # a metric: one column per symbol
    pd.testing.assert_frame_equal(
        window[[("Close", "A"), ("Open", "B")]], expected[[("Close", "A"), ("Open", "B")]]
    )
    mask = expected[("Close", "A")] > expected[("Close", "A")].median()
    pd.testing.assert_frame_equal(window[mask], expected[mask])
    with pytest.raises(KeyError):
        window[("Close", "NOPE")]


def test_what_operations_on_a_window_return_are_plain_pandas_objects():
    window = MarketData(MANY, SYMBOLS).history(40)
    assert type(window.iloc[-5:]) is pd.DataFrame
    assert type(window["Close"]) is pd.DataFrame
    assert type(window + 1) is pd.DataFrame
    assert type(window.iloc[-1]) is pd.Series
    assert type(window.copy()) is pd.DataFrame
    column = window[("Close", "A")]
    assert type(column) is BarColumn
    for result in (column + 1, column.tail(3), column.iloc[-3:], column.copy(), column.rolling(3).mean()):
        assert type(result) is pd.Series
    assert type(column.to_frame()) is pd.DataFrame


def test_writing_into_a_column_read_from_the_window_leaves_the_engines_bars_alone():
    frame = MANY.copy()
    market = MarketData(frame, SYMBOLS)
    closes = market.history(20)[("Close", "B")]
    closes.iloc[:] = -1.0
    pd.testing.assert_frame_equal(market.frame, MANY)
    pd.testing.assert_series_equal(
        market.history(20)[("Close", "B")], MANY[("Close", "B")].iloc[:21], check_series_type=False
    )
    pd.testing.assert_frame_equal(frame, MANY)


def test_duplicate_column_labels_are_left_to_pandas():
    index = pd.date_range("2024-01-02 21:00", periods=4, freq="D", tz="UTC")
    frame = pd.DataFrame(np.arange(12.0).reshape(4, 3), index=index, columns=["Close", "Close", "Open"])
    window = prefix_viewer(frame)(3)
    pd.testing.assert_frame_equal(window["Close"], frame.iloc[:3]["Close"])
    pd.testing.assert_series_equal(window["Open"], frame.iloc[:3]["Open"])


def test_a_strategy_that_deletes_inserts_or_renames_window_columns_still_reads_what_pandas_reads():
    market = MarketData(MANY, SYMBOLS)
    window, expected = market.history(30), MANY.iloc[:31].copy()
    for frame in (window, expected):
        del frame[("Open", "A")]  # every later column moves one place left
    pd.testing.assert_series_equal(window[("Close", "B")], expected[("Close", "B")])
    for frame in (window, expected):
        frame.insert(0, ("Extra", "A"), 1.0)
    pd.testing.assert_series_equal(window[("Close", "C")], expected[("Close", "C")])
    for frame in (window, expected):
        frame.columns = pd.MultiIndex.from_tuples([(m, s.lower()) for m, s in frame.columns])
    pd.testing.assert_series_equal(window[("Close", "c")], expected[("Close", "c")])
    with pytest.raises(KeyError):
        window[("Close", "C")]


def test_a_strategy_that_writes_into_its_window_reads_back_what_it_wrote():
    market = MarketData(MANY, SYMBOLS)
    window, expected = market.history(30), MANY.iloc[:31].copy()
    column = MANY.columns.get_loc(("Close", "B"))
    for frame in (window, expected):
        frame.iloc[-1, column] = -1.0  # copy-on-write: the window gets new blocks
        frame.loc[frame.index[0], ("Volume", "C")] = 0.5  # a float into an int column: the blocks split
    for label in MANY.columns:
        pd.testing.assert_series_equal(window[label], expected[label])
    pd.testing.assert_frame_equal(market.frame, MANY)  # the engine's bars are untouched


def test_attributes_and_flags_set_on_a_window_reach_its_columns_as_in_pandas():
    market = MarketData(MANY, SYMBOLS)
    window, expected = market.history(10), MANY.iloc[:11].copy()
    for frame in (window, expected):
        frame.attrs["source"] = "test"
    assert window[("Close", "A")].attrs == expected[("Close", "A")].attrs == {"source": "test"}
    window, expected = market.history(10), MANY.iloc[:11].copy()
    window.flags.allows_duplicate_labels = expected.flags.allows_duplicate_labels = False
    assert window[("Close", "A")].flags.allows_duplicate_labels is False
    assert expected[("Close", "A")].flags.allows_duplicate_labels is False
    assert market.history(10)[("Close", "A")].attrs == {}


@pytest.mark.parametrize(("frame", "symbols"), [(MANY, SYMBOLS), (ONE, ["A"])], ids=["many", "one"])
def test_the_tail_of_a_window_column_is_what_pandas_returns(frame, symbols):
    market = MarketData(frame, symbols)
    for bar in (0, 4, 40):
        window, expected = market.history(bar), frame.iloc[: bar + 1]
        for label in (frame.columns[0], frame.columns[3], frame.columns[-1]):  # Open, Close, Volume (int)
            column = window[label]
            for n in (1, 2, 10, bar + 1, bar + 5, 0, -2, np.int64(3)):
                got, want = column.tail(n), expected[label].tail(n)
                pd.testing.assert_series_equal(got, want)  # a plain Series, same values, index and name
                assert got.index.freq == want.index.freq
            assert column.tail().equals(expected[label].tail())


def test_the_tail_of_a_column_on_a_regular_index_keeps_its_frequency():
    index = pd.date_range("2024-01-02 21:00", periods=30, freq="B", tz="UTC")
    frame = pd.DataFrame({m: np.arange(30.0) + 1 for m in ("Open", "High", "Low", "Close")}, index=index)
    column = MarketData(frame, ["X"]).history(20)["Close"]
    assert isinstance(column, BarColumn)
    tail = column.tail(5)
    assert tail.index.freq == "B"
    pd.testing.assert_series_equal(tail, frame["Close"].iloc[:21].tail(5))


def test_a_tail_is_a_copy_and_what_is_kept_from_earlier_bars_never_changes():
    frame = MANY.copy()
    market = MarketData(frame, SYMBOLS)
    kept = []
    for bar in range(60):  # what a strategy could keep from each bar
        window = market.history(bar)
        column = window[("Close", "B")]
        kept.append((bar, window, column, column.tail(10)))
    for bar, window, column, tail in kept:
        expected = MANY.iloc[: bar + 1]
        pd.testing.assert_frame_equal(window, expected)
        pd.testing.assert_series_equal(column, expected[("Close", "B")], check_series_type=False)
        pd.testing.assert_series_equal(tail, expected[("Close", "B")].tail(10))
    tail = market.history(30)[("Close", "B")].tail(5)
    tail.iloc[:] = -1.0  # writing into a tail touches nothing else
    pd.testing.assert_frame_equal(market.frame, MANY)
    pd.testing.assert_series_equal(
        market.history(30)[("Close", "B")].tail(5), MANY[("Close", "B")].iloc[26:31]
    )


def test_a_column_the_strategy_changed_takes_its_tail_from_pandas():
    market = MarketData(MANY, SYMBOLS)
    expected = MANY[("Close", "A")].iloc[:21].copy()
    column = market.history(20)[("Close", "A")]
    for series in (column, expected):
        series.iloc[-1] = -1.0  # copy-on-write: the column gets its own values
    pd.testing.assert_series_equal(column.tail(3), expected.tail(3))
    for series in (column, expected):
        series.index = pd.RangeIndex(len(series))
    pd.testing.assert_series_equal(column.tail(3), expected.tail(3))
    for series in (column, expected):
        series.attrs["source"] = "test"
    assert column.tail(3).attrs == expected.tail(3).attrs == {"source": "test"}


def test_windows_asked_bar_after_bar_or_out_of_order_hold_exactly_their_bars():
    """The windows of the next bars are built ahead in one go: each still holds its own bars only."""
    frame = MANY.copy()
    market = MarketData(frame, SYMBOLS)
    n = len(frame)
    kept = [market.history(bar) for bar in range(n)]  # in order, as the bar loop asks
    kept += [market.history(bar) for bar in (5, 3, n - 1, n - 2, 0, 1, 2)]  # then out of order
    for window, bar in zip(kept, [*range(n), 5, 3, n - 1, n - 2, 0, 1, 2], strict=True):
        pd.testing.assert_frame_equal(window, MANY.iloc[: bar + 1])
        assert window.index[-1] == frame.index[bar]
    assert len({id(w) for w in kept}) == len(kept)  # each ask gets its own window
    kept[10].iloc[-1, 0] = -1.0  # a strategy writing into one window touches no other, nor the bars
    pd.testing.assert_frame_equal(kept[11], MANY.iloc[:12])
    pd.testing.assert_frame_equal(market.frame, MANY)
    assert market.history(n + 3).shape == frame.shape  # past the end: every bar, as iloc
