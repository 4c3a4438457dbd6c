"""The fast path: vectorized causal indicators, a per-bar hook on plain floats, same trades as pandas."""

from __future__ import annotations

import gc
import math

import pandas as pd
import pytest
from copilot_quant.backtest.engine import BacktestEngine
from copilot_quant.backtest.orders import Order
from copilot_quant.backtest.strategy import FastStrategy, Strategy
from copilot_quant.data.providers import SyntheticDataProvider
from copilot_quant.errors import StrategyError

BARS = SyntheticDataProvider(["X"], seed=3).get_historical_data("X", "2020-01-01", "2021-12-31")


class MomentumPandas(Strategy):
    """Long while the close is above the close three bars ago; pandas per bar."""

    def initialize(self):
        self.long = False

    def on_data(self, timestamp, data):
        close = data["Close"]
        if len(close) < 4:
            return None
        up = close.iloc[-1] > close.iloc[-4]
        if up and not self.long:
            self.long = True
            return [Order("X", 10)]
        if not up and self.long:
            self.long = False
            return [Order("X", 10, side="sell")]
        return None


class MomentumFast(FastStrategy):
    """The same rule on the fast path."""

    def initialize(self):
        self.long = False
        self.seen_positions = []

    def indicators(self, data):
        return {"close": data["Close"], "past": data["Close"].shift(3)}

    def on_bar(self, timestamp, close, past):
        self.seen_positions.append(self.position("X"))
        if math.isnan(past):  # warm-up
            return None
        up = close > past
        if up and not self.long:
            self.long = True
            return [Order("X", 10)]
        if not up and self.long:
            self.long = False
            return [Order("X", 10, side="sell")]
        return None


def backtest(*strategies, bars=BARS, **kwargs):
    engine = BacktestEngine(100_000, commission=0.001, slippage=0.0005, **kwargs)
    for strategy in strategies:
        engine.add_strategy(strategy)
    return engine.run(data=bars, symbols=["X"])


def trade_list(result):
    return [(f.timestamp, f.order.side, f.fill_quantity, f.fill_price, f.commission) for f in result.fills]


def test_the_fast_path_makes_the_same_trades_as_the_pandas_path():
    slow = backtest(MomentumPandas())
    fast = backtest(MomentumFast())
    assert len(slow.fills) > 20
    assert trade_list(fast) == trade_list(slow)
    pd.testing.assert_series_equal(fast.equity_curve, slow.equity_curve)


def test_fill_at_close_agrees_between_the_paths_too():
    assert trade_list(backtest(MomentumFast(), fill_at="close")) == trade_list(
        backtest(MomentumPandas(), fill_at="close")
    )


def test_the_account_view_is_current_inside_on_bar():
    strategy = MomentumFast()
    result = backtest(strategy)
    first_fill_bar = BARS.index.get_loc(result.fills[0].timestamp)
    assert strategy.seen_positions[first_fill_bar - 1] == 0
    assert strategy.seen_positions[first_fill_bar] == 10


def test_fast_strategies_mixed_with_pandas_ones_share_the_account():
    result = backtest(MomentumFast(), MomentumPandas())
    assert len(result.fills) == 2 * len(backtest(MomentumFast()).fills)


def test_two_fast_strategies_run_through_the_general_loop_with_the_same_result():
    both = backtest(MomentumFast(), MomentumFast())
    one = backtest(MomentumFast())
    assert [f.fill_price for f in both.fills[::2]] == [f.fill_price for f in one.fills]


class Peeking(FastStrategy):
    def __init__(self, make):
        super().__init__()
        self.make = make

    def indicators(self, data):
        return {"ok": data["Close"].rolling(5).mean(), "bad": self.make(data["Close"])}

    def on_bar(self, timestamp, ok, bad):
        return None


@pytest.mark.parametrize(
    "make",
    [
        lambda close: close.shift(-1),
        lambda close: close.rolling(5, center=True).mean(),
        lambda close: close - close.mean(),
        lambda close: close / close.iloc[: len(close) * 3 // 8 + 1].max(),
    ],
    ids=["shift(-1)", "centred window", "whole-series mean", "max of an early stretch"],
)
def test_an_indicator_that_looks_ahead_is_refused_by_name(make):
    with pytest.raises(StrategyError, match=r"indicator 'bad'.*looks ahead|looks ahead.*indicator 'bad'"):
        backtest(Peeking(make))


def test_the_causality_check_can_be_turned_off_for_trusted_code():
    result = backtest(Peeking(lambda close: close.shift(-1)), check_causality=False)
    assert result.errors == []


def test_indicators_that_are_not_a_mapping_are_a_strategy_error():
    class NoMapping(FastStrategy):
        def indicators(self, data):
            return [data["Close"]]

        def on_bar(self, timestamp, *values):
            return None

    with pytest.raises(StrategyError, match="mapping"):
        backtest(NoMapping())


def test_an_exception_in_on_bar_is_recorded_and_the_run_goes_on():
    class Flaky(MomentumFast):
        def on_bar(self, timestamp, close, past):
            if timestamp == BARS.index[10]:
                raise ZeroDivisionError("oops")
            return super().on_bar(timestamp, close, past)

    result = backtest(Flaky())
    (error,) = result.errors
    assert (error["timestamp"], error["type"], error["hook"]) == (
        BARS.index[10],
        "ZeroDivisionError",
        "on_bar",
    )
    assert len(result.fills) > 20


def test_on_bar_gets_tz_aware_utc_datetimes_matching_the_bars():
    stamps = []

    class Clock(FastStrategy):
        def indicators(self, data):
            return {"close": data["Close"]}

        def on_bar(self, timestamp, close):
            stamps.append(timestamp)

    backtest(Clock())
    assert stamps == list(BARS.index)
    assert all(ts.tzinfo is not None and ts.utcoffset().total_seconds() == 0 for ts in stamps[:5])


def test_the_run_leaves_the_garbage_collector_as_it_found_it():
    before = gc.get_threshold()
    backtest(MomentumFast())
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == before


def test_the_garbage_collector_runs_less_often_but_still_runs_during_the_fast_loop():
    seen = []

    class Watch(MomentumFast):
        def on_bar(self, timestamp, close, past):
            seen.append(gc.get_threshold()[0])
            return super().on_bar(timestamp, close, past)

    before = gc.get_threshold()
    backtest(Watch())
    assert gc.isenabled()
    assert set(seen) == {max(before[0], 10_000)}


def test_progress_keeps_coming_even_when_on_bar_fails_on_a_report_bar():
    class FailsOften(MomentumFast):
        def on_bar(self, timestamp, close, past):
            raise ValueError("always")

    calls = []
    engine = BacktestEngine()
    engine.add_strategy(FailsOften())
    engine.run(data=BARS, symbols=["X"], progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (len(BARS), len(BARS))
    assert len(calls) >= 100
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


class BuysThenFails(FastStrategy):
    """Buys at bar 3, raises at bar 4 (while that order fills), then records what it sees."""

    def initialize(self):
        self.bars = []
        self.held = []

    def indicators(self, data):
        return {"close": data["Close"]}

    def on_bar(self, timestamp, close):
        k = len(self.bars)
        self.bars.append(timestamp)
        self.held.append(self.position("X"))
        if k == 3:
            return [Order("X", 10)]
        if k == 4:
            raise RuntimeError("bar four fails")
        return None


def test_a_failing_on_bar_neither_skips_a_bar_nor_the_fill_due_on_it():
    strategy = BuysThenFails()
    # no spread: the test reads the fill at the bar's open price
    engine = BacktestEngine(commission=0.0, slippage=0.0, spread=None)
    engine.add_strategy(strategy)
    result = engine.run(data=BARS, symbols=["X"], benchmark=None)
    assert len(strategy.bars) == len(BARS)  # every bar was offered, the failing one included
    assert [e["hook"] for e in result.errors] == ["on_bar"]
    assert result.errors[0]["timestamp"] == BARS.index[4]
    (fill,) = result.fills
    assert fill.timestamp == BARS.index[4]
    assert fill.fill_price == BARS["Open"].iloc[4]
    assert strategy.held[4:6] == [10.0, 10.0]  # filled at bar 4's open, before on_bar(bar 4) ran


def test_a_failing_progress_callback_stops_the_run_instead_of_counting_as_a_strategy_error():
    def progress(done, total):
        raise OSError("the terminal went away")

    engine = BacktestEngine()
    engine.add_strategy(MomentumFast())
    with pytest.raises(OSError, match="terminal went away"):
        engine.run(data=BARS, symbols=["X"], progress=progress)
    assert engine.errors == []


def test_an_on_fill_set_on_the_instance_is_called_like_an_overridden_one():
    class Watched(MomentumFast):
        def initialize(self):
            super().initialize()
            self.filled = []
            self.on_fill = self.filled.append  # not a method override: set on the instance

    strategy = Watched()
    engine = BacktestEngine()
    engine.add_strategy(strategy)
    result = engine.run(data=BARS, symbols=["X"], benchmark=None)
    assert result.fills
    assert strategy.filled == result.fills


class WatchesEquity(MomentumFast):
    """MomentumFast that records the equity its account view shows in every on_bar call (and fails once)."""

    def initialize(self):
        super().initialize()
        self.seen_equity = []

    def on_bar(self, timestamp, close, past):
        self.seen_equity.append(self.equity)
        if timestamp == BARS.index[40]:
            raise RuntimeError("one bad bar")
        return super().on_bar(timestamp, close, past)


def test_the_account_view_reads_the_bar_it_is_called_for_even_between_trades():
    # between trades the fast loop runs no Python per bar: the view must still value the account at the
    # close of the very bar on_bar is called for, which is what the equity curve records for that bar
    strategy = WatchesEquity()
    result = backtest(strategy)
    assert len(result.fills) > 20
    assert [e["hook"] for e in result.errors] == ["on_bar"]
    assert strategy.seen_equity == pytest.approx(result.equity_curve.tolist(), rel=1e-12)


def test_a_result_with_no_truth_value_stops_the_run_instead_of_shifting_the_bars():
    # filter() tests each result's truth, as the loop's `if orders` did: a numpy array cannot answer,
    # and the run must stop there (as before) rather than count it as on_bar's error and lose a bar
    import numpy as np

    class ReturnsAnArray(MomentumFast):
        def on_bar(self, timestamp, close, past):
            super().on_bar(timestamp, close, past)
            return np.array([1.0, 2.0]) if timestamp == BARS.index[20] else None

    with pytest.raises(ValueError, match="truth value"):
        backtest(ReturnsAnArray())
