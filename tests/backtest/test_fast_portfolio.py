"""A FastStrategy over a portfolio: per-symbol indicators as DataFrames, read by symbol in on_bar."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest
from copilot_quant.backtest.engine import BacktestEngine
from copilot_quant.backtest.indicators import SymbolValues, bar_values, indicator_columns
from copilot_quant.backtest.orders import Order, OrderSide
from copilot_quant.backtest.strategy import FastStrategy, Strategy
from copilot_quant.data.providers import SyntheticDataProvider
from copilot_quant.errors import StrategyError
from copilot_quant.examples.sma_cross import SmaCrossFast, trailing_mean

SYMBOLS = ["A", "B", "C"]
DATA = SyntheticDataProvider(seed=21, start="2020-01-02", periods=300).get_multiple_symbols(SYMBOLS)


def run(strategies: list[Strategy], data: pd.DataFrame = DATA) -> BacktestEngine:
    engine = BacktestEngine(initial_capital=1_000_000.0, commission=0.001, slippage=0.0)
    for strategy in strategies:
        engine.add_strategy(strategy)
    engine.run(symbols=SYMBOLS, data=data, benchmark=None)
    return engine


class Recorder(FastStrategy):
    """Keeps what on_bar was given: a per-symbol indicator, a single one, and a second per-symbol one."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[datetime, dict[str, float], float, dict[str, float]]] = []

    def indicators(self, data: pd.DataFrame) -> Mapping[str, Any]:
        closes = data["Close"]
        return {"close": closes, "mean_a": closes["A"].rolling(3).mean(), "high": data["High"]}

    def on_bar(self, timestamp: datetime, close: SymbolValues, mean_a: float, high: SymbolValues) -> None:
        assert isinstance(close, SymbolValues)
        assert isinstance(mean_a, float)
        self.seen.append((timestamp, dict(close), mean_a, dict(high)))


def test_on_bar_gets_each_symbols_value_at_that_bar_by_name_and_single_values_as_floats():
    recorder = Recorder()
    run([recorder])
    assert [t for t, *_ in recorder.seen] == list(DATA.index)
    for i, (_, close, mean_a, high) in enumerate(recorder.seen):
        assert close == {s: DATA[("Close", s)].iloc[i] for s in SYMBOLS}
        assert high == {s: DATA[("High", s)].iloc[i] for s in SYMBOLS}
        expected = DATA[("Close", "A")].rolling(3).mean().iloc[i]
        assert mean_a == expected or (np.isnan(mean_a) and np.isnan(expected))


def test_several_fast_strategies_on_one_account_get_per_symbol_values_too():
    first, second = Recorder(), Recorder()
    run([first, second])
    assert first.seen[-1][1] == {s: DATA[("Close", s)].iloc[-1] for s in SYMBOLS}
    assert len(first.seen) == len(second.seen) == len(DATA)


class Portfolio(FastStrategy):
    """SmaCrossFast's rules for every symbol, in one strategy reading its indicators by symbol."""

    def __init__(self) -> None:
        super().__init__()
        self.held: dict[str, float] = {}

    def initialize(self) -> None:
        self.held = dict.fromkeys(self.symbols, 0.0)

    def indicators(self, data: pd.DataFrame) -> Mapping[str, pd.DataFrame]:
        closes = data["Close"]
        return {
            "fast": closes.apply(trailing_mean, window=10),
            "slow": closes.apply(trailing_mean, window=30),
        }

    def on_bar(self, timestamp: datetime, fast: SymbolValues, slow: SymbolValues) -> list[Order]:
        orders = []
        for symbol in self.symbols:
            if fast[symbol] > slow[symbol] and not self.held[symbol]:
                orders.append(Order(symbol, 100, side=OrderSide.BUY))
                self.held[symbol] = 100.0
            elif fast[symbol] < slow[symbol] and self.held[symbol]:
                orders.append(Order(symbol, 100, side=OrderSide.SELL))
                self.held[symbol] = 0.0
        return orders


def test_one_portfolio_strategy_trades_like_one_single_symbol_strategy_per_symbol():
    def trades(engine: BacktestEngine) -> list[tuple[Any, ...]]:
        return sorted((f.timestamp, f.symbol, f.fill_price, f.signed_quantity) for f in engine.fills)

    together = run([Portfolio()])
    apart = run([SmaCrossFast(s, 100) for s in SYMBOLS])
    assert trades(together), "the data should produce trades"
    assert trades(together) == trades(apart)
    assert together.result.final_value == pytest.approx(apart.result.final_value, rel=1e-12)


class PeekingPortfolio(FastStrategy):
    def indicators(self, data: pd.DataFrame) -> Mapping[str, pd.DataFrame]:
        closes = data["Close"]
        peek = closes.copy()
        peek["B"] = closes["B"].shift(-1)  # one symbol's values come from the next bar
        return {"honest": closes.rolling(5).mean(), "peek": peek}

    def on_bar(self, timestamp: datetime, honest: SymbolValues, peek: SymbolValues) -> None:
        return None


def test_a_per_symbol_indicator_that_looks_ahead_is_refused_naming_the_indicator_and_symbol():
    with pytest.raises(StrategyError, match=r"\('peek', 'B'\)") as caught:
        run([PeekingPortfolio()])
    assert "look" in str(caught.value)


class BadFrame(FastStrategy):
    def indicators(self, data: pd.DataFrame) -> Mapping[str, pd.DataFrame]:
        return {"everything": data}  # (Metric, Symbol) columns: not one column per symbol

    def on_bar(self, timestamp: datetime, *values: Any) -> None:
        return None


def test_a_frame_indicator_without_one_flat_column_per_symbol_is_refused_with_a_named_error():
    with pytest.raises(StrategyError, match=r"'everything'.*one column per symbol"):
        run([BadFrame()])


def test_live_on_data_hands_on_bar_the_latest_bars_per_symbol_values():
    recorder = Recorder()
    recorder.on_data(DATA.index[49], DATA.iloc[:50])
    _, close, mean_a, high = recorder.seen[-1]
    assert close == {s: DATA[("Close", s)].iloc[49] for s in SYMBOLS}
    assert high == {s: DATA[("High", s)].iloc[49] for s in SYMBOLS}
    assert mean_a == pytest.approx(DATA[("Close", "A")].iloc[47:50].mean())


def test_symbol_values_read_like_a_read_only_mapping_of_symbol_to_value():
    frame = indicator_columns({"fast": DATA["Close"].iloc[:2]}, DATA.index[:2], "S")
    first, second = (values for (values,) in bar_values(frame))
    assert list(first) == SYMBOLS
    assert len(first) == 3
    assert "B" in first
    assert "Z" not in first
    assert first["B"] == DATA[("Close", "B")].iloc[0]
    assert second["B"] == DATA[("Close", "B")].iloc[1]
    with pytest.raises(KeyError):
        first["Z"]
    with pytest.raises(TypeError):
        first["B"] = 1.0  # type: ignore[index]


def test_single_value_indicators_keep_their_flat_frame_and_float_values():
    closes = DATA[("Close", "A")]
    frame = indicator_columns({"close": closes, "one": 1.0}, DATA.index, "S")
    assert list(frame.columns) == ["close", "one"]
    assert next(bar_values(frame)) == (closes.iloc[0], 1.0)


class PositionProbe(Portfolio):
    """Portfolio, checking every bar that position(symbol) agrees with the positions snapshot."""

    def __init__(self) -> None:
        super().__init__()
        self.checked = 0

    def on_bar(self, timestamp: datetime, fast: SymbolValues, slow: SymbolValues) -> list[Order]:
        snapshot = self.positions
        for symbol in self.symbols:
            held = snapshot[symbol].quantity if symbol in snapshot else 0.0
            assert self.position(symbol) == held
            assert self.position(symbol.lower()) == held
            self.checked += held != 0
        return super().on_bar(timestamp, fast, slow)


@pytest.mark.parametrize("strategies", [1, 2], ids=["account", "own books"])
def test_position_of_a_symbol_reads_the_same_quantity_as_the_positions_snapshot(strategies):
    probes = [PositionProbe() for _ in range(strategies)]
    engine = run(list(probes))
    assert not engine.errors
    assert all(p.checked > 0 for p in probes)
