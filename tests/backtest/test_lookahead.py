"""No look-ahead: a strategy sees closed bars only, and orders fill at prices that existed afterwards."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import numpy as np
import pandas as pd
import pytest
from copilot_quant.backtest.engine import BacktestEngine
from copilot_quant.backtest.orders import Order
from copilot_quant.backtest.strategy import FastStrategy, Strategy
from copilot_quant.data.providers import SyntheticDataProvider
from copilot_quant.errors import StrategyError
from copilot_quant.examples.sma_cross import SimpleMovingAverage, SmaCrossFast


def bars(symbols: list[str] | str = "X", n: int = 120, seed: int = 3) -> pd.DataFrame:
    feed = SyntheticDataProvider(seed=seed, start="2020-01-02", periods=n)
    if isinstance(symbols, str):
        return feed.get_historical_data(symbols)
    return feed.get_multiple_symbols(symbols)


def run(strategy: Strategy, data: pd.DataFrame, symbols: list[str], **engine_args) -> BacktestEngine:
    # the bars' own prices (spread off): these tests do the fill arithmetic by hand; the spread's own tests
    # are tests/model/test_spread*.py and tests/backtest/test_spread_fills.py
    engine = BacktestEngine(initial_capital=1_000_000.0, **{"spread": None, **engine_args})
    engine.add_strategy(strategy)
    engine.run(symbols=symbols, data=data)
    return engine


class Recorder(Strategy):
    """Records what it was shown each bar, and a digest of every value it could read."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[datetime, pd.Timestamp, int, int]] = []

    def on_data(self, timestamp: datetime, data: pd.DataFrame) -> None:
        digest = int(pd.util.hash_pandas_object(data, index=True).sum())
        self.seen.append((timestamp, data.index.max(), len(data), digest))


@pytest.mark.parametrize("symbols", [["X"], ["X", "Y", "Z"]])
def test_on_data_sees_every_bar_up_to_and_including_the_current_one_and_nothing_later(symbols):
    data = bars(symbols if len(symbols) > 1 else symbols[0])
    recorder = Recorder()
    run(recorder, data, symbols)
    assert len(recorder.seen) == len(data)
    for i, (timestamp, last_seen, length, _) in enumerate(recorder.seen):
        assert timestamp == data.index[i]
        assert last_seen == timestamp
        assert length == i + 1


def test_changing_future_bars_cannot_change_what_the_strategy_saw_or_did_before_them():
    data = bars()
    cut = 70
    future = data.copy()
    rng = np.random.default_rng(0)
    scale = rng.uniform(0.5, 2.0, size=len(data) - cut)
    for column in ("Open", "High", "Low", "Close"):
        future.iloc[cut:, future.columns.get_loc(column)] *= scale
    future.iloc[cut:, future.columns.get_loc("Volume")] = 1.0

    first, second = Recorder(), Recorder()
    run(first, data, ["X"])
    run(second, future, ["X"])
    assert first.seen[:cut] == second.seen[:cut]
    assert first.seen[cut] != second.seen[cut]  # the recorder does notice the change once it happens

    # a trading strategy: every fill before the cut is identical, whatever the future holds
    fills = []
    for frame in (data, future):
        engine = run(
            SimpleMovingAverage(symbol="X", quantity=100, fast_period=3, slow_period=8), frame, ["X"]
        )
        fills.append([(f.timestamp, f.fill_price, f.fill_quantity) for f in engine.fills])
    boundary = data.index[cut]
    before = [[f for f in run_fills if f[0] < boundary] for run_fills in fills]
    assert before[0], "the test needs trades before the cut"
    assert before[0] == before[1]


class Vandal(Strategy):
    """Overwrites the data it is given; must not affect the engine, fills, or later bars."""

    def __init__(self) -> None:
        super().__init__()
        self.closes_seen: list[float] = []

    def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order]:
        self.closes_seen.append(float(data["Close"].iloc[-1]))
        data.loc[:, "Open"] = 0.01  # a write into its own view: copy-on-write keeps the engine's bars
        data.loc[:, "Close"] = 0.01
        return [Order("X", 1, "market", "buy")] if len(data) == 5 else []


def test_a_strategy_writing_into_its_data_cannot_alter_the_engines_bars_or_fill_prices():
    data = bars()
    pristine = data.copy()
    vandal = Vandal()
    engine = run(vandal, data, ["X"], slippage=0.0)
    assert vandal.closes_seen == pristine["Close"].tolist()
    pd.testing.assert_frame_equal(data, pristine)
    (fill,) = engine.fills
    assert fill.timestamp == data.index[5]
    assert fill.fill_price == pytest.approx(pristine["Open"].iloc[5])


class BuyOnceAt(Strategy):
    def __init__(self, bar: int, symbol: str = "X") -> None:
        super().__init__()
        self.bar, self.symbol = bar, symbol
        self.calls = 0

    def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order]:
        self.calls += 1
        return [Order(self.symbol, 10, "market", "buy")] if self.calls == self.bar + 1 else []


def test_an_order_from_bar_t_fills_at_bar_t_plus_1s_open_after_t_closed():
    data = bars()
    engine = run(BuyOnceAt(10), data, ["X"], slippage=0.0)
    (fill,) = engine.fills
    assert fill.order.timestamp == data.index[10]
    assert fill.timestamp == data.index[11]
    assert fill.timestamp > fill.order.timestamp
    assert fill.fill_price == pytest.approx(data["Open"].iloc[11])


def test_fill_at_close_uses_the_close_the_strategy_has_just_seen_never_a_later_price():
    data = bars()
    engine = run(BuyOnceAt(10), data, ["X"], slippage=0.0, fill_at="close")
    (fill,) = engine.fills
    assert fill.timestamp == data.index[10]
    assert fill.fill_price == pytest.approx(data["Close"].iloc[10])


def test_an_order_on_the_last_bar_never_fills_because_no_later_price_exists():
    data = bars(n=40)
    engine = run(BuyOnceAt(39), data, ["X"])
    assert engine.fills == []
    (order,) = engine.result.orders
    assert not order.filled_quantity
    assert order.status.is_done  # reported (cancelled at the end), not silently left behind


# ---------------------------------------------------------------------------------------------- fast path
class Echo(FastStrategy):
    """Passes each bar's close through as its indicator and records what on_bar received."""

    def __init__(self) -> None:
        super().__init__()
        self.received: list[tuple[datetime, float]] = []

    def indicators(self, data: pd.DataFrame) -> Mapping[str, pd.Series]:
        return {"close": data["Close"]}

    def on_bar(self, timestamp: datetime, close: float) -> None:
        self.received.append((timestamp, close))


def test_the_fast_path_hands_on_bar_the_value_at_that_bar():
    data = bars()
    echo = Echo()
    run(echo, data, ["X"])
    assert [t for t, _ in echo.received] == list(data.index)
    assert [c for _, c in echo.received] == data["Close"].tolist()


class Peeker(FastStrategy):
    def __init__(self, how: str) -> None:
        super().__init__()
        self.how = how

    def indicators(self, data: pd.DataFrame) -> Mapping[str, pd.Series]:
        close = data["Close"]
        honest = close.rolling(5).mean()
        cheats = {
            "shift": close.shift(-1),
            "centred": close.rolling(5, center=True).mean(),
            "whole_series": close / close.iloc[-1],  # normalised by the last close
        }
        return {"honest": honest, "peek": cheats[self.how]}

    def on_bar(self, timestamp: datetime, honest: float, peek: float) -> None:
        return None


@pytest.mark.parametrize("how", ["shift", "centred", "whole_series"])
def test_fast_path_indicators_that_look_ahead_are_refused_by_name(how):
    with pytest.raises(StrategyError, match="'peek'") as caught:
        run(Peeker(how), bars(), ["X"])
    assert "honest" not in str(caught.value)
    assert "look" in str(caught.value)


def test_causal_fast_path_indicators_pass_the_check_and_trade_like_the_guide_style_strategy():
    data = bars(n=400)
    results = []
    for strategy in (SimpleMovingAverage("X", 100), SmaCrossFast("X", 100)):
        engine = run(strategy, data, ["X"])
        results.append(
            ([(f.timestamp, f.fill_price, f.order.side) for f in engine.fills], engine.result.final_value)
        )
    assert results[0][0], "the data should produce trades"
    assert results[0] == results[1]
