"""Backtest–live parity of trailing stops: the backtest walks each bar's path through the shared rule, the
gateway (TRAIL / TRAIL LIMIT from the live engine through ib_async) applies it price by price."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import pytest
from copilot_quant.backtest.costs import PercentSlippage, PerShareCommission
from copilot_quant.backtest.orders import Fill, Order
from copilot_quant.backtest.strategy import Strategy
from copilot_quant.parity import run_parity

pytestmark = pytest.mark.timeout(180)


class TrailingExit(Strategy):
    """Buys at market when flat, then protects the position with a trailing stop (or stop-limit)."""

    def __init__(self, kind: str = "trailing_stop", percent: bool = False) -> None:
        super().__init__()
        self.kind = kind
        self.percent = percent

    def initialize(self) -> None:
        self.held = 0.0

    def on_fill(self, fill: Fill) -> None:
        self.held += fill.signed_quantity

    def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order]:
        if self.open_orders():
            return []
        if self.held == 0:
            return [Order("AAPL", 40, "market", "buy")]
        close = float(data["Close"].iloc[-1])
        trail = {"trail_percent": 1.5} if self.percent else {"trail_amount": round(close * 0.015, 2)}
        extra = {"limit_offset": 0.1} if self.kind == "trailing_stop_limit" else {}
        return [Order("AAPL", self.held, self.kind, "sell", time_in_force="gtc", **trail, **extra)]


@pytest.mark.parametrize(
    ("kind", "percent"),
    [("trailing_stop", False), ("trailing_stop", True), ("trailing_stop_limit", False)],
)
def test_trailing_stops_fill_alike_in_backtest_and_live(kind: str, percent: bool) -> None:
    report = run_parity(
        TrailingExit,
        "AAPL",
        "2011-01-01",
        "2011-06-30",
        strategy_kwargs={"kind": kind, "percent": percent},
        commission=PerShareCommission(),
        slippage=PercentSlippage(0.001),
    )
    assert report.ok, f"parity failed:\n{report.diffs.to_string()}"
    assert report.backtest.final_equity == pytest.approx(report.live.final_equity, abs=0.005)
    exits = [row for row in report.backtest.orders if row[3] == kind and row[6] == "filled"]
    assert len(exits) >= 3, "the trailing stops must have filled for this to mean anything"
