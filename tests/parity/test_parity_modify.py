"""Backtest–live parity of order modification: a strategy that moves its working limit every bar. The
backtest applies each new limit from the next bar; live sends it to the gateway (placeOrder with the same
orderId) before the next bar's prices. Orders, fills and equity must be identical."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import pytest
from copilot_quant.backtest.costs import PerShareCommission
from copilot_quant.backtest.orders import Fill, Order
from copilot_quant.backtest.strategy import Strategy
from copilot_quant.model.modify import ModifyOutcome
from copilot_quant.parity import run_parity

pytestmark = pytest.mark.timeout(180)


class ChasingLimit(Strategy):
    """Buys with a limit 1 % under the close, sells with one 1 % over it, and moves the working limit to the
    new close's level every bar (a modification, never a cancel and a new order)."""

    def initialize(self) -> None:
        self.held = 0.0
        self.outcomes: list[ModifyOutcome] = []

    def on_fill(self, fill: Fill) -> None:
        self.held += fill.signed_quantity

    def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order]:
        close = float(data["Close"].iloc[-1])
        working = self.open_orders()
        if working:
            order = working[0]
            factor = 0.99 if order.is_buy else 1.01
            self.outcomes.append(self.modify(order, limit_price=round(close * factor, 2)))
            return []
        if self.held == 0:
            return [
                Order("AAPL", 30, "limit", "buy", limit_price=round(close * 0.99, 2), time_in_force="gtc")
            ]
        return [
            Order("AAPL", self.held, "limit", "sell", limit_price=round(close * 1.01, 2), time_in_force="gtc")
        ]


def test_a_limit_moved_every_bar_fills_alike_in_backtest_and_live() -> None:
    report = run_parity(ChasingLimit, "AAPL", "2011-01-01", "2011-04-30", commission=PerShareCommission())
    assert report.ok, f"parity failed:\n{report.diffs.to_string()}"
    assert report.backtest.final_equity == pytest.approx(report.live.final_equity, abs=0.005)
    filled = [row for row in report.backtest.orders if row[6] == "filled"]
    assert len(filled) >= 4, "the moved limits must have filled for this to mean anything"
    assert len(report.backtest.orders) == len(report.live.orders)


class RaisedStop(Strategy):
    """Buys at market when flat, then protects the position with a stop 3 % under the close that it raises
    (never lowers) every bar: a trailing stop by hand, through modifications of one stop order."""

    def initialize(self) -> None:
        self.held = 0.0

    def on_fill(self, fill: Fill) -> None:
        self.held += fill.signed_quantity

    def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order]:
        close = float(data["Close"].iloc[-1])
        level = round(close * 0.97, 2)
        working = self.open_orders()
        if working:
            stop = working[0]
            if stop.stop_price is not None and level > stop.stop_price:
                self.modify(stop, stop_price=level)
            return []
        if self.held == 0:
            return [Order("AAPL", 30, "market", "buy")]
        return [Order("AAPL", self.held, "stop", "sell", stop_price=level, time_in_force="gtc")]


def test_a_stop_raised_every_bar_fills_alike_in_backtest_and_live() -> None:
    report = run_parity(RaisedStop, "AAPL", "2011-01-01", "2011-06-30", commission=PerShareCommission())
    assert report.ok, f"parity failed:\n{report.diffs.to_string()}"
    assert report.backtest.final_equity == pytest.approx(report.live.final_equity, abs=0.005)
    stops = [row for row in report.backtest.orders if row[3] == "stop" and row[6] == "filled"]
    assert len(stops) >= 2, "the raised stops must have filled for this to mean anything"
