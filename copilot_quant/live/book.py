"""A book built from fills: cash and positions, marked at a bar's closes on request.

The engine keeps one for the account (opened from IB's cash and positions at start; every fill of the run
applied) and one per strategy (opened from the strategy's own journaled fills; its fills applied). What a
strategy sees is read from these books at the bar it decides on, never from IB's cached account values,
which lag (IB marks NetLiquidation on its own schedule), so the view is the backtest's, bar for bar.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from copilot_quant.backtest.orders import Fill, Position

__all__ = ["FillBook"]


class FillBook:
    """Cash and positions from fills (worker thread). Realized P&L and commissions are summed as well."""

    __slots__ = ("cash", "commissions", "fill_count", "positions", "realized_pnl", "traded")

    def __init__(self, cash: float = 0.0, positions: Iterable[Position] = ()) -> None:
        self.cash = float(cash)
        self.positions: dict[str, Position] = {p.symbol: p.snapshot() for p in positions if not p.is_flat}
        self.commissions = 0.0
        self.realized_pnl = 0.0
        self.fill_count = 0
        #: Bought minus sold notional of this book's fills (P&L with the marked positions).
        self.traded = 0.0

    def apply(self, fill: Fill) -> None:
        self.apply_trade(fill.symbol, fill.signed_quantity, fill.fill_price, fill.commission)

    def apply_trade(self, symbol: str, signed_qty: float, price: float, commission: float) -> None:
        """Book one execution: ``signed_qty`` (bought > 0) of ``symbol`` at ``price``, paying ``commission``."""
        position = self.positions.get(symbol)
        if position is None:
            position = self.positions[symbol] = Position(symbol)
        self.realized_pnl += position.apply(signed_qty, price, commission)
        flow = signed_qty * price
        self.cash -= flow + commission
        self.traded += flow
        self.commissions += commission
        self.fill_count += 1
        if position.is_flat:
            del self.positions[symbol]

    def marked(self, marks: Mapping[str, float]) -> dict[str, Position]:
        """Snapshots of the open positions, each marked at ``marks[symbol]`` when there is one."""
        out: dict[str, Position] = {}
        for symbol, position in self.positions.items():
            snap = position.snapshot()
            price = marks.get(symbol)
            if price is not None and not math.isnan(price):  # NaN: no price yet, keep the last mark
                snap.update_unrealized_pnl(price)
            out[symbol] = snap
        return out

    def market_value(self, marks: Mapping[str, float]) -> float:
        """Signed value of the open positions at ``marks`` (a symbol without one: its last mark)."""
        total = 0.0
        for symbol, position in self.positions.items():
            price = marks.get(symbol)
            if price is None or math.isnan(price):
                price = position.last_price or position.avg_entry_price
            total += position.quantity * price
        return total

    def equity(self, marks: Mapping[str, float]) -> float:
        return self.cash + self.market_value(marks)

    def pnl(self, marks: Mapping[str, float]) -> float:
        """What this book's trading made at ``marks``, after commissions (for a book opened from zero)."""
        return self.market_value(marks) - self.traded - self.commissions
