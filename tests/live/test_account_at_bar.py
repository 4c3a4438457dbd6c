"""A strategy sees cash, positions and equity marked at the bar it decides on — the same live as in a backtest.

Before: live, ``self.equity`` was IB's cached NetLiquidation, refreshed after the orders were sent, so on a
bar without a fill it was one bar stale and a strategy sizing from it placed different orders than in
its backtest (and two live runs over one replay did not agree either).
"""

from __future__ import annotations

import math
from datetime import datetime

import pandas as pd
import pytest
from copilot_quant.backtest.orders import Order
from copilot_quant.backtest.strategy import Strategy
from copilot_quant.parity import run_parity

pytestmark = [pytest.mark.network, pytest.mark.timeout(180)]


class EquitySizer(Strategy):
    """Every third bar, rebalances AAPL to half its equity, sized to a hundredth of a share: the bars in
    between have no fill, so an equity marked one bar late sizes a different order at once."""

    def initialize(self) -> None:
        self.bar = 0

    def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order]:
        self.bar += 1
        if self.bar % 3:
            return []
        close = float(data["Close"].iloc[-1])
        target = math.floor(self.equity * 0.5 / close * 100) / 100
        change = round(target - self.position("AAPL"), 2)
        if abs(change) < 0.01:
            return []
        side = "buy" if change > 0 else "sell"
        return [Order("AAPL", abs(change), "market", side, allow_fractional=True)]


def test_a_strategy_sizing_from_equity_places_the_same_orders_live_as_in_its_backtest() -> None:
    report = run_parity(EquitySizer, "AAPL", "2010-01-01", "2010-03-31")
    assert report.live.fills, "the strategy traded"
    assert report.ok, f"parity failed:\n{report.diffs.to_string()}"
    assert len(report.live.orders) >= 15
