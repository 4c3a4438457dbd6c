"""Backtest–live parity of auction orders: market/limit-on-close at the session's close, market/limit with
time in force OPG at its open — the backtest on daily bars, the gateway at its session close/open price."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import pytest
from copilot_quant.backtest.costs import PercentSlippage, PerShareCommission
from copilot_quant.backtest.orders import Fill, Order
from copilot_quant.backtest.strategy import Strategy
from copilot_quant.parity import run_parity

pytestmark = pytest.mark.timeout(180)


class AuctionTrader(Strategy):
    """Enters in the opening auction (market or a limit near the close) and exits in the closing auction
    (market or a limit just above the close); a limit that misses is cancelled or expires."""

    def __init__(self, limits: bool = False) -> None:
        super().__init__()
        self.limits = limits

    def initialize(self) -> None:
        self.held = 0.0

    def on_fill(self, fill: Fill) -> None:
        self.held += fill.signed_quantity

    def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order]:
        if self.open_orders():
            return []
        close = float(data["Close"].iloc[-1])
        if self.held == 0:
            if self.limits:
                return [Order("AAPL", 25, "limit", "buy", limit_price=round(close, 2), time_in_force="opg")]
            return [Order("AAPL", 25, "market", "buy", time_in_force="opg")]
        if self.limits:
            return [Order("AAPL", self.held, "limit_on_close", "sell", limit_price=round(close * 1.002, 2))]
        return [Order("AAPL", self.held, "market_on_close", "sell")]


@pytest.mark.parametrize("limits", [False, True])
def test_auction_orders_fill_alike_in_backtest_and_live(limits: bool) -> None:
    report = run_parity(
        AuctionTrader,
        "AAPL",
        "2011-01-01",
        "2011-04-30",
        strategy_kwargs={"limits": limits},
        commission=PerShareCommission(),
        slippage=PercentSlippage(0.001),
    )
    assert report.ok, f"parity failed:\n{report.diffs.to_string()}"
    assert report.backtest.final_equity == pytest.approx(report.live.final_equity, abs=0.005)
    statuses = [row[6] for row in report.backtest.orders]
    assert statuses.count("filled") >= 10
    if limits:
        assert "cancelled" in statuses or "expired" in statuses  # some limits missed their auction


class ImmediateTrader(Strategy):
    """Immediate-or-cancel orders: a market buy, then limit sells at the close or just above it (those miss)."""

    def initialize(self) -> None:
        self.held = 0.0
        self.bar = 0

    def on_fill(self, fill: Fill) -> None:
        self.held += fill.signed_quantity

    def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order]:
        self.bar += 1
        close = float(data["Close"].iloc[-1])
        if self.held == 0:
            return [Order("AAPL", 30, "market", "buy", time_in_force="ioc")]
        above = 1.001 if self.bar % 3 else 1.0  # one in three is marketable at the current price
        return [
            Order(
                "AAPL", self.held, "limit", "sell", limit_price=round(close * above, 2), time_in_force="ioc"
            )
        ]


def test_immediate_or_cancel_orders_fill_alike_in_backtest_and_live() -> None:
    report = run_parity(
        ImmediateTrader,
        "AAPL",
        "2011-01-01",
        "2011-04-30",
        commission=PerShareCommission(),
        slippage=PercentSlippage(0.001),
        volume_limit=None,
    )
    assert report.ok, f"parity failed:\n{report.diffs.to_string()}"
    assert report.backtest.final_equity == pytest.approx(report.live.final_equity, abs=0.005)
    statuses = [row[6] for row in report.backtest.orders]
    assert statuses.count("filled") >= 10
    assert statuses.count("cancelled") >= 10


class GoodTillTrader(Strategy):
    """Limit buys below the close, good for two days; sells at market the bar after a fill."""

    def initialize(self) -> None:
        self.held = 0.0

    def on_fill(self, fill: Fill) -> None:
        self.held += fill.signed_quantity

    def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order]:
        if self.held:
            return [Order("AAPL", self.held, "market", "sell")]
        if self.open_orders():
            return []
        close = float(data["Close"].iloc[-1])
        until = pd.Timestamp(timestamp) + pd.Timedelta(days=2)
        return [
            Order(
                "AAPL",
                20,
                "limit",
                "buy",
                limit_price=round(close * 0.99, 2),
                time_in_force="gtd",
                good_till=until,
            )
        ]


def test_good_till_date_orders_expire_alike_in_backtest_and_live() -> None:
    report = run_parity(
        GoodTillTrader,
        "AAPL",
        "2011-01-01",
        "2011-04-30",
        commission=PerShareCommission(),
        slippage=PercentSlippage(0.001),
    )
    assert report.ok, f"parity failed:\n{report.diffs.to_string()}"
    assert report.backtest.final_equity == pytest.approx(report.live.final_equity, abs=0.005)
    statuses = [row[6] for row in report.backtest.orders]
    assert statuses.count("filled") >= 5
    assert statuses.count("cancelled") >= 5  # expired at their date (both sides report it cancelled)
