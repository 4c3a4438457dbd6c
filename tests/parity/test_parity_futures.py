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


def test_a_forex_strategy_has_parity() -> None:
    """EUR.USD: bars with no trades (complete once IB's clock is past their close), the half-pip grid,
    IB's 2 USD minimum, and cash in two currencies valued in USD alike on both sides."""
    report = run_parity(
        Flip,
        ["EUR.USD"],
        "2026-09-01",
        "2026-10-30",
        strategy_kwargs={"symbol": "EUR.USD", "quantity": 20_000},
        data="synthetic",
        slippage=0.0,
    )
    assert report.diffs.empty, report.diffs
    fills = report.live.fills
    assert len(fills) >= 10
    prices = [price for *_, price, _ in fills]
    assert any(round(p, 2) != p for p in prices)  # half-pip prices, not cents
    assert all(abs(p / 0.00005 - round(p / 0.00005)) < 1e-6 for p in prices)
    assert all(commission == pytest.approx(2.0) for *_, commission in fills)
    # the run ends long 20,000 EUR: cash counts both currencies in USD on both sides
    assert report.live.final_cash == pytest.approx(report.backtest.final_cash)
