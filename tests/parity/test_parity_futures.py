"""Backtest–live parity for a futures contract (#14): the same strategy on MESZ6 in a backtest and live
against the simulated gateway gives the same orders, fills (prices and IB's per-contract costs) and equity
(P&L × multiplier, no notional)."""

from __future__ import annotations

import pandas as pd
import pytest
from copilot_quant.backtest.orders import Order
from copilot_quant.backtest.strategy import Strategy
from copilot_quant.parity import run_parity

pytestmark = [pytest.mark.network, pytest.mark.timeout(180)]


class Flip(Strategy):
    """Buys on every fourth bar and sells two bars later."""

    def __init__(self, symbol: str = "MESZ6", quantity: float = 2) -> None:
        super().__init__()
        self.symbol = symbol
        self.quantity = quantity

    def initialize(self) -> None:
        self.bar = 0

    def on_data(self, timestamp, data: pd.DataFrame) -> list[Order] | None:
        self.bar += 1
        if self.bar % 4 == 1:
            return [Order(self.symbol, self.quantity, "market", "buy")]
        if self.bar % 4 == 3:
            return [Order(self.symbol, self.quantity, "market", "sell")]
        return None


def test_a_futures_strategy_has_parity() -> None:
    report = run_parity(Flip, ["MESZ6"], "2026-09-01", "2026-10-30", data="synthetic", slippage=0.0)
    assert report.diffs.empty, report.diffs
    fills = report.backtest.fills
    assert len(fills) >= 10
    assert all(commission == pytest.approx(2 * 0.62) for *_, commission in fills)  # IB's MES costs
    # the equity moved by P&L x 5, not by the notional of 2 contracts near 2,000
    assert abs(report.backtest.final_equity - 100_000) < 5_000
    assert report.live.final_equity == pytest.approx(report.backtest.final_equity)
