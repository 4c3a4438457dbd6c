"""Backtest–live parity of brackets: the backtest's order book and the simulated gateway (driven by the live
engine through ib_async: parentId/transmit on the wire) hold the exits until the entry fills, cancel the
other exit, and arm the exits for a partly filled entry alike."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import pytest
from copilot_quant.backtest.costs import PercentSlippage, PerShareCommission
from copilot_quant.backtest.orders import Fill, Order
from copilot_quant.backtest.strategy import Strategy
from copilot_quant.parity import run_parity

pytestmark = pytest.mark.timeout(180)


class BracketSwing(Strategy):
    """When flat and idle, enters with a bracket: a limit (or market) entry below the close, a take-profit
    above and a stop-loss below; the exits close the position themselves, then it enters again."""

    def __init__(self, symbol: str = "AAPL", quantity: float = 30, market: bool = False) -> None:
        super().__init__()
        self.symbol = symbol
        self.quantity = quantity
        self.market = market

    def initialize(self) -> None:
        self.held = 0.0

    def on_fill(self, fill: Fill) -> None:
        self.held += fill.signed_quantity

    def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order]:
        if self.open_orders() or self.held:
            return []
        close = float(data["Close"].iloc[-1])
        return Order.bracket(
            self.symbol,
            self.quantity,
            "buy",
            limit_price=None if self.market else round(close * 0.995, 2),
            take_profit=round(close * 1.02, 2),
            stop_loss=round(close * 0.98, 2),
            time_in_force="gtc",
        )


@pytest.mark.parametrize("market", [False, True], ids=["limit-entry", "market-entry"])
def test_brackets_fill_and_cancel_alike_in_backtest_and_live(market: bool) -> None:
    report = run_parity(
        BracketSwing,
        "AAPL",
        "2011-01-01",
        "2011-06-30",
        strategy_kwargs={"market": market},
        commission=PerShareCommission(),
        slippage=PercentSlippage(0.001),
    )
    assert report.ok, f"parity failed:\n{report.diffs.to_string()}"
    assert report.backtest.final_equity == pytest.approx(report.live.final_equity, abs=0.005)
    statuses = [row[6] for row in report.backtest.orders]
    assert statuses.count("cancelled") >= 4, "exits must have been cancelled by their sibling"
    assert statuses.count("filled") >= 8


def test_a_partly_filled_entry_arms_its_exits_alike_in_backtest_and_live() -> None:
    """A volume limit of about 100 shares a bar fills the 300-share entry over several bars; the exits work
    for what has filled, in the backtest and at the gateway."""
    report = run_parity(
        BracketSwing,
        "AAPL",
        "2011-01-01",
        "2011-04-30",
        strategy_kwargs={"quantity": 300},
        commission=PerShareCommission(),
        slippage=PercentSlippage(0.001),
        volume_limit=1e-6,
    )
    assert report.ok, f"parity failed:\n{report.diffs.to_string()}"
    assert report.backtest.final_equity == pytest.approx(report.live.final_equity, abs=0.005)


class CancelTheTakeProfit(Strategy):
    """Enters with a bracket; once in, cancels the take-profit. At IB the exits are one OCA group, so the
    stop-loss goes with it: with no order left it sells at market and enters again. (Were the stop still
    working it would hold the position, protected, and never trade again.)"""

    def initialize(self) -> None:
        self.held = 0.0
        self.entries = 0

    def on_fill(self, fill: Fill) -> None:
        self.held += fill.signed_quantity

    def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order]:
        orders = self.open_orders()
        close = float(data["Close"].iloc[-1])
        if not orders and self.held:
            return [Order("AAPL", self.held, "market", "sell")]
        if not orders:
            self.entries += 1
            return Order.bracket(
                "AAPL",
                20,
                "buy",
                take_profit=round(close * 1.5, 2),
                stop_loss=round(close * 0.5, 2),
                time_in_force="gtc",
            )
        take_profit = [o for o in orders if o.parent_id and o.limit_price is not None]
        if self.held and take_profit:
            self.cancel(take_profit[0])
        return []


def test_cancelling_a_take_profit_cancels_its_stop_alike_in_backtest_and_live() -> None:
    report = run_parity(
        CancelTheTakeProfit,
        "AAPL",
        "2011-01-01",
        "2011-02-28",
        commission=PerShareCommission(),
        slippage=PercentSlippage(0.001),
    )
    assert report.ok, f"parity failed:\n{report.diffs.to_string()}"
    statuses = [row[6] for row in report.backtest.orders]
    assert statuses.count("filled") >= 6, "it must have entered and sold again and again"
    assert statuses.count("cancelled") >= 6  # each take-profit and its stop
