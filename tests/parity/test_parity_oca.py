"""Backtest–live parity of one-cancels-all groups: the backtest's order book and the simulated gateway
(driven by the live engine through ib_async, ocaGroup/ocaType on the wire) cancel and reduce alike."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import pytest
from copilot_quant.backtest.costs import PercentSlippage, PerShareCommission
from copilot_quant.backtest.orders import Fill, Order
from copilot_quant.backtest.strategy import Strategy
from copilot_quant.parity import run_parity

pytestmark = pytest.mark.timeout(180)


class OcoSwing(Strategy):
    """Enters with two limit orders in one OCA group (``entry_type``), then exits with a take-profit
    limit and a stop-loss in a one-cancels-other group; re-enters once flat."""

    def __init__(self, symbol: str = "AAPL", entry_type: int = 1, quantity: float = 30) -> None:
        super().__init__()
        self.symbol = symbol
        self.entry_type = entry_type
        self.quantity = quantity

    def initialize(self) -> None:
        self.bar = 0
        self.held = 0.0
        self.cycle = 0

    def on_fill(self, fill: Fill) -> None:
        self.held += fill.signed_quantity

    def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order]:
        self.bar += 1
        close = float(data["Close"].iloc[-1])
        if self.open_orders():
            return []
        self.cycle += 1
        if self.held == 0:
            entries = [
                Order(
                    self.symbol,
                    self.quantity,
                    "limit",
                    "buy",
                    limit_price=round(close * 0.997, 2),
                    time_in_force="gtc",
                ),
                Order(
                    self.symbol,
                    self.quantity,
                    "limit",
                    "buy",
                    limit_price=round(close * 0.993, 2),
                    time_in_force="gtc",
                ),
            ]
            return Order.one_cancels_all(entries, f"entry-{self.cycle}", self.entry_type)
        exits = [
            Order(
                self.symbol,
                self.held,
                "limit",
                "sell",
                limit_price=round(close * 1.015, 2),
                time_in_force="gtc",
            ),
            Order(
                self.symbol,
                self.held,
                "stop",
                "sell",
                stop_price=round(close * 0.985, 2),
                time_in_force="gtc",
            ),
        ]
        return Order.one_cancels_all(exits, f"exit-{self.cycle}", 1)


@pytest.mark.parametrize("entry_type", [1, 2, 3])
def test_oca_groups_cancel_and_reduce_alike_in_backtest_and_live(entry_type: int) -> None:
    report = run_parity(
        OcoSwing,
        "AAPL",
        "2011-01-01",
        "2011-06-30",
        strategy_kwargs={"entry_type": entry_type},
        commission=PerShareCommission(),
        slippage=PercentSlippage(0.001),
    )
    assert report.ok, f"parity failed:\n{report.diffs.to_string()}"
    assert report.backtest.final_equity == pytest.approx(report.live.final_equity, abs=0.005)
    statuses = [row[6] for row in report.backtest.orders]
    assert statuses.count("cancelled") >= 4, "the groups must have cancelled orders for this to mean anything"
    assert statuses.count("filled") >= 4


def test_reduction_by_the_filled_quantity_under_partial_fills_matches_live() -> None:
    """A volume limit of about 100 shares a bar fills the 300-share entries over several bars: each
    execution of one entry takes its quantity off the other (ocaType 2), and the live order's quantity
    follows IB's reduced totalQuantity."""
    report = run_parity(
        OcoSwing,
        "AAPL",
        "2011-01-01",
        "2011-04-30",
        strategy_kwargs={"entry_type": 2, "quantity": 300},
        commission=PerShareCommission(),
        slippage=PercentSlippage(0.001),
        volume_limit=1e-6,
    )
    assert report.ok, f"parity failed:\n{report.diffs.to_string()}"
    assert report.backtest.final_equity == pytest.approx(report.live.final_equity, abs=0.005)
    reduced = [row for row in report.backtest.orders if row[1] == "buy" and 0 < row[2] < 300]
    assert reduced, "an entry must have been reduced by its group for this to mean anything"


class CancelOneMember(Strategy):
    """Places two far buy limits in one OCA group, cancels one a bar later; IB cancels the other with it,
    so the next bar finds nothing working and places the pair again."""

    def __init__(self, oca_type: int = 1) -> None:
        super().__init__()
        self.oca_type = oca_type

    def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order]:
        orders = self.open_orders()
        if orders:
            self.cancel(orders[0])
            return []
        close = float(data["Close"].iloc[-1])
        pair = [
            Order("AAPL", 10, "limit", "buy", limit_price=round(close * f, 2), time_in_force="gtc")
            for f in (0.8, 0.7)
        ]
        return Order.one_cancels_all(pair, f"pick-{timestamp:%Y%m%d}", self.oca_type)


@pytest.mark.parametrize("oca_type", [1, 2, 3])
def test_cancelling_a_member_cancels_its_group_alike_in_backtest_and_live(oca_type: int) -> None:
    report = run_parity(
        CancelOneMember,
        "AAPL",
        "2011-01-01",
        "2011-02-28",
        strategy_kwargs={"oca_type": oca_type},
        commission=PerShareCommission(),
        slippage=PercentSlippage(0.001),
    )
    assert report.ok, f"parity failed:\n{report.diffs.to_string()}"
    statuses = [row[6] for row in report.backtest.orders]
    assert len(statuses) >= 30, "a pair placed every other bar"
    assert set(statuses) == {"cancelled"}


class ResizeOneMember(Strategy):
    """Two 300-share buy limits in an ocaType 2 group; a bar after placing them it raises the lower one to
    600 (modify, same order id). Under a volume limit the higher one fills over several bars; each execution
    takes its quantity off the raised one's 600, and the higher one's completion cancels it, at the gateway
    as in the backtest (unequal sizes: the rule by the filled quantity and the proportional one differ).
    Once nothing works it sells what it holds and starts again."""

    def initialize(self) -> None:
        self.held = 0.0
        self.resized: set[str] = set()

    def on_fill(self, fill: Fill) -> None:
        self.held += fill.signed_quantity

    def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order]:
        orders = self.open_orders()
        if not orders and self.held:
            return [Order("AAPL", self.held, "market", "sell")]
        if not orders:
            close = float(data["Close"].iloc[-1])
            pair = [
                Order("AAPL", 300, "limit", "buy", limit_price=round(close * f, 2), time_in_force="gtc")
                for f in (0.997, 0.97)
            ]
            return Order.one_cancels_all(pair, f"resize-{timestamp:%Y%m%d}", 2)
        members = [o for o in orders if o.oca_group and o.side == "buy"]
        if len(members) == 2:
            lower = min(members, key=lambda o: o.limit_price or 0.0)
            if lower.oca_group not in self.resized:
                self.resized.add(lower.oca_group)
                self.modify(lower, quantity=600)
        return []


def test_a_resized_member_is_reduced_from_its_new_quantity_alike_in_backtest_and_live() -> None:
    report = run_parity(
        ResizeOneMember,
        "AAPL",
        "2011-01-01",
        "2011-04-30",
        commission=PerShareCommission(),
        slippage=PercentSlippage(0.001),
        volume_limit=1e-6,
    )
    assert report.ok, f"parity failed:\n{report.diffs.to_string()}"
    assert report.backtest.final_equity == pytest.approx(report.live.final_equity, abs=0.005)
    raised = [row for row in report.backtest.orders if row[1] == "buy" and row[2] == 600]
    assert len(raised) >= 2, "members must have been raised (and their groups worked on) to mean anything"
