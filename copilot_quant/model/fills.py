"""Fills and positions: one execution of (part of) an order, and the holdings in a symbol that fills move.

Only a broker creates :class:`Fill` objects and mutates :class:`Position` objects. Both are re-exported by
:mod:`copilot_quant.model.orders` (and the guide's ``copilot_quant.backtest.orders``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from copilot_quant.errors import OrderValidationError
from copilot_quant.model.order_terms import OrderSide

if TYPE_CHECKING:
    from copilot_quant.model.orders import Order

__all__ = ["Fill", "Position"]

_INF = math.inf


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution of (part of) an order, as reported by a broker.

    ``commission`` is in account currency and is never negative: everything the fill cost, as IB's
    commissionReport reports it; ``fees`` is the part of it that third parties charge (clearing, exchange,
    regulatory fees IB passes through under Tiered pricing; 0 when not known). ``fill_quantity`` is
    positive; the direction comes from ``order.side``. ``net_proceeds`` is the signed change in cash this fill
    causes (negative for a buy), ``total_cost`` the gross notional plus commission.
    """

    order: Order
    fill_price: float
    fill_quantity: float
    commission: float
    timestamp: datetime
    fill_id: str | None = None
    fees: float = 0.0

    def __post_init__(self) -> None:
        if not (
            type(self.fill_price) is float
            and type(self.fill_quantity) is float
            and type(self.commission) is float
        ):  # brokers pass floats; anything else (ints, numpy scalars, junk) is normalised or refused
            self._coerce_numbers()
        # chained comparisons: false for NaN and infinity too, without a call per number
        if not 0.0 < self.fill_price < _INF:
            raise OrderValidationError(f"fill_price must be positive, got {self.fill_price!r}")
        if not 0.0 < self.fill_quantity < _INF:
            raise OrderValidationError(f"fill_quantity must be positive, got {self.fill_quantity!r}")
        if not 0.0 <= self.commission < _INF:
            raise OrderValidationError(f"commission must be zero or positive, got {self.commission!r}")
        if self.fees and not 0 <= self.fees <= self.commission + 1e-9:
            raise OrderValidationError(
                f"fees are the third-party part of the commission: 0 <= fees <= {self.commission!r}, "
                f"got {self.fees!r}"
            )

    @classmethod
    def _booked(  # noqa: PLR0917 - a fill's fields, positional on the hot path
        cls,
        order: Order,
        fill_price: float,
        fill_quantity: float,
        commission: float,
        timestamp: datetime,
        fees: float = 0.0,
    ) -> Fill:
        """Internal (brokers only): the fill ``Fill(order, fill_price, fill_quantity, commission, timestamp,
        None, fees)`` at about half the cost, for the fill a broker books on every trade.

        The slots are set directly when the numbers are floats that pass the constructor's checks (a few
        comparisons); anything else goes through the constructor, so the same errors are raised. A fill a
        user builds always goes through the constructor.
        """
        if (
            type(fill_price) is float
            and type(fill_quantity) is float
            and type(commission) is float
            and 0.0 < fill_price < _INF
            and 0.0 < fill_quantity < _INF
            and 0.0 <= commission < _INF
            and (not fees or 0 <= fees <= commission + 1e-9)
        ):
            fill = _new(cls)
            _SET_ORDER(fill, order)
            _SET_PRICE(fill, fill_price)
            _SET_QUANTITY(fill, fill_quantity)
            _SET_COMMISSION(fill, commission)
            _SET_TIMESTAMP(fill, timestamp)
            _SET_FILL_ID(fill, None)
            _SET_FEES(fill, fees)
            return fill
        return cls(order, fill_price, fill_quantity, commission, timestamp, None, fees)

    def _coerce_numbers(self) -> None:
        for name in ("fill_price", "fill_quantity", "commission"):
            value = getattr(self, name)
            try:
                object.__setattr__(self, name, float(value))  # frozen dataclass
            except (TypeError, ValueError):
                raise OrderValidationError(f"{name} must be a number, got {value!r}") from None

    @property
    def symbol(self) -> str:
        return self.order.symbol

    @property
    def side(self) -> OrderSide:
        side = self.order.side  # an Order parses it to the enum: the call is only for other objects
        return side if type(side) is OrderSide else OrderSide(side)

    @property
    def signed_quantity(self) -> float:
        return self.fill_quantity * self.side.sign

    @property
    def notional(self) -> float:
        return self.fill_price * self.fill_quantity

    @property
    def total_cost(self) -> float:
        """Gross value traded plus commission (always positive)."""
        return self.notional + self.commission

    @property
    def net_proceeds(self) -> float:
        """Signed cash change: ``-(notional + commission)`` for a buy, ``notional - commission`` for a sell."""
        return -self.signed_quantity * self.fill_price - self.commission


# The slots' own setters, for Fill._booked: a frozen dataclass's __init__ goes through object.__setattr__
# by name for each field, which costs about twice as much.
_new = object.__new__
_SET_ORDER, _SET_PRICE, _SET_QUANTITY, _SET_COMMISSION, _SET_TIMESTAMP, _SET_FILL_ID, _SET_FEES = (
    Fill.__dict__[name].__set__
    for name in ("order", "fill_price", "fill_quantity", "commission", "timestamp", "fill_id", "fees")
)


@dataclass(slots=True)
class Position:
    """Holdings in one symbol. Negative ``quantity`` is a short, and its ``market_value`` is negative.

    Average cost follows the usual convention: it changes only when a position is opened or
    increased; reducing a position realizes P&L against it; crossing through zero realizes the whole
    old position and opens the remainder at the fill price. Commissions are not folded into the
    average cost; they are accounted in cash (and in :attr:`commission_paid`).

    ``multiplier`` is the contract's (50 for an ES future, 1 for a stock or a forex pair): realized and
    unrealized P&L and :attr:`market_value` (the notional, as IB reports it) are multiplied by it.
    """

    symbol: str
    quantity: float = 0.0
    avg_entry_price: float = 0.0
    unrealized_pnl: float = 0.0
    realized_pnl: float = 0.0
    last_price: float = 0.0
    commission_paid: float = 0.0
    multiplier: float = 1.0

    @property
    def avg_cost(self) -> float:
        return self.avg_entry_price

    @property
    def market_value(self) -> float:
        """Signed value at the last marked price (negative for shorts), times the multiplier."""
        price = self.last_price or self.avg_entry_price
        return self.quantity * price * self.multiplier

    @property
    def total_pnl(self) -> float:
        return self.realized_pnl + self.unrealized_pnl

    @property
    def is_flat(self) -> bool:
        return abs(self.quantity) < 1e-12

    def update_from_fill(self, fill: Fill) -> float:
        """Apply a fill; returns the P&L it realized (before commission)."""
        return self.apply(fill.signed_quantity, fill.fill_price, fill.commission)

    def apply(self, signed_qty: float, price: float, commission: float = 0.0) -> float:
        """Apply a signed trade of ``signed_qty`` at ``price``; returns realized P&L (before commission)."""
        realized = 0.0
        old = self.quantity
        new = old + signed_qty
        if old == 0 or (old > 0) == (signed_qty > 0):
            # opening or adding: weighted average cost
            self.avg_entry_price = (old * self.avg_entry_price + signed_qty * price) / new if new else 0.0
        else:
            closed = min(abs(signed_qty), abs(old))
            direction = 1.0 if old > 0 else -1.0
            realized = closed * (price - self.avg_entry_price) * direction * self.multiplier
            if abs(new) < 1e-12:
                new = 0.0
                self.avg_entry_price = 0.0
            elif (new > 0) != (old > 0):
                self.avg_entry_price = float(price)  # crossed through zero: remainder opened at this price
        self.quantity = new
        self.realized_pnl += realized
        self.commission_paid += commission
        # update_unrealized_pnl(price), inlined: a broker applies every trade here
        last = self.last_price = price if type(price) is float else float(price)
        self.unrealized_pnl = new * (last - self.avg_entry_price) * self.multiplier if new else 0.0
        return realized

    def update_unrealized_pnl(self, current_price: float) -> None:
        """Mark the position to ``current_price``."""
        self.last_price = float(current_price)
        self.unrealized_pnl = (
            self.quantity * (self.last_price - self.avg_entry_price) * self.multiplier
            if self.quantity
            else 0.0
        )

    def snapshot(self) -> Position:
        """An independent copy, safe to hand to a strategy."""
        return replace(self)
