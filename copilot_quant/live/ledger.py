"""The account from fills: IB's cash and positions when the run started, plus every fill since.

What a strategy sees of the account (``self.cash``, ``self.equity`` with one strategy) is read from this
ledger at the bar it decides on, marked at that bar's closes — never from IB's cached account values,
which IB marks on its own schedule and which lag a bar — so the view is the backtest's, bar for bar.
Each strategy's own positions are in its :class:`~copilot_quant.model.book.StrategyBook`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from copilot_quant.model.orders import Fill, Position

__all__ = ["AccountLedger"]


class AccountLedger:
    """Cash and positions from fills (worker thread)."""

    __slots__ = ("cash", "positions")

    def __init__(self, cash: float = 0.0, positions: Iterable[Position] = ()) -> None:
        self.cash = float(cash)
        self.positions: dict[str, Position] = {p.symbol: p.snapshot() for p in positions if not p.is_flat}

    def apply(self, fill: Fill) -> None:
        symbol = fill.symbol
        position = self.positions.get(symbol)
        if position is None:
            position = self.positions[symbol] = Position(symbol)
        position.update_from_fill(fill)
        self.cash -= fill.signed_quantity * fill.fill_price + fill.commission
        if position.is_flat:
            del self.positions[symbol]

    def correct(self, symbol: str, sign: float, old: tuple[float, float], new: tuple[float, float]) -> None:
        """IB corrected an execution: ``old`` ``(quantity, price)`` is replaced by ``new`` (``sign``: +1 for a
        buy order, -1 for a sell). The commission stays as first booked (IB reports the new one apart)."""
        position = self.positions.get(symbol)
        if position is None:
            position = self.positions[symbol] = Position(symbol)
        for quantity, price, direction in ((old[0], old[1], -sign), (new[0], new[1], sign)):
            if quantity:
                position.apply(direction * quantity, price)
        self.cash -= sign * (new[0] * new[1] - old[0] * old[1])
        if position.is_flat:
            del self.positions[symbol]

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
