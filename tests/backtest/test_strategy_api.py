"""The Strategy base class: its name and the attribute names user strategies commonly assign."""

from __future__ import annotations

import pytest
from copilot_quant.backtest.engine import BacktestEngine
from copilot_quant.backtest.orders import Order
from copilot_quant.backtest.strategy import Strategy

from tests.backtest.engine_helpers import flat_bars


class Plain(Strategy):
    def on_data(self, timestamp, data):
        return None


def test_the_name_is_the_class_name_by_default():
    assert Plain().name == "Plain"


def test_a_strategy_may_set_its_own_name_as_the_earlier_implementation_did():
    class Named(Plain):
        def __init__(self):
            super().__init__()
            self.name = "SMA 10/30"

    strategy = Named()
    assert strategy.name == "SMA 10/30"
    engine = BacktestEngine(commission=0, slippage=0)
    engine.add_strategy(strategy)
    assert engine.run(data=flat_bars([10.0] * 3), symbols=["X"]).strategy_name == "SMA 10/30"


def test_strategies_that_keep_their_own_positions_and_cash_still_run():
    """Code written for a base class without account views assigns these names freely."""

    class OwnBook(Strategy):
        def initialize(self):
            self.positions = {}
            self.cash = 0.0
            self.equity = []

        def on_data(self, timestamp, data):
            self.equity.append(float(data["Close"].iloc[-1]))
            if not self.positions:
                self.positions["X"] = 1
                return [Order("X", 1)]
            return None

    strategy = OwnBook()
    engine = BacktestEngine(commission=0, slippage=0)
    engine.add_strategy(strategy)
    result = engine.run(data=flat_bars([10.0] * 3), symbols=["X"])
    assert len(result.fills) == 1
    assert strategy.positions == {"X": 1}
    assert strategy.equity == [10.0] * 3
    assert result.errors == []


def test_without_assignment_the_account_views_are_the_engines():
    seen = []

    class Views(Strategy):
        def on_data(self, timestamp, data):
            seen.append((dict(self.positions), self.cash, self.equity))
            return [Order("X", 1)] if len(data) == 1 else None

    engine = BacktestEngine(1_000, commission=0, slippage=0, spread=None)  # prices by hand: no spread
    engine.add_strategy(Views())
    engine.run(data=flat_bars([10.0] * 3), symbols=["X"])
    assert seen[0] == ({}, 1_000, 1_000)
    assert seen[2][1:] == (pytest.approx(990), pytest.approx(1_000))
    assert seen[2][0]["X"].quantity == 1
