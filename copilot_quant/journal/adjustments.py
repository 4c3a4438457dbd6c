"""Adopting IB's position: adjusting records that make the journal's books equal what IB holds.

History is never rewritten: an adjustment is a new, visible record. Each one is an order tagged
``adjustment`` (its strategy, or none) with one fill, exec id ``adjust-<order ref>``, marked filled with the
reason — in ``copilot-quant journal orders``/``fills`` like any other, and an ``adjustment`` event. They are
written in one transaction: all of a symbol's adjustments, or none.

Price: a reduction of a book is booked at that book's average cost, so that no profit or loss is invented
(what a trade made outside the engine really earned is in IB's statement); a position added beside the
strategies' (or opened by the adjustment) at ``price`` — IB's average cost of the position when known.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from copilot_quant.errors import ConfigError
from copilot_quant.journal.journal import TradeJournal
from copilot_quant.model.book import StrategyBook
from copilot_quant.model.orders import Order, OrderSide, OrderStatus, OrderType

__all__ = ["ADJUSTMENT_TAG", "Adjustment", "is_adjustment", "record_adjustments"]

#: The tag of an adjusting order, and the prefix of its fill's exec id.
ADJUSTMENT_TAG = "adjustment"


@dataclass(frozen=True, slots=True)
class Adjustment:
    """One adjusting record written: ``owner`` None for no strategy; ``quantity`` signed."""

    order_ref: str
    symbol: str
    owner: str | None
    quantity: float
    price: float


def is_adjustment(exec_id: str) -> bool:
    """Whether a journaled fill is an adjustment (adopting IB's position), not an execution at IB."""
    return exec_id.startswith(f"{ADJUSTMENT_TAG}-")


def _book(journal: TradeJournal, owner: str | None, symbol: str) -> StrategyBook:
    """``owner``'s book in ``symbol`` (None: the fills of no strategy) from the journal's fills."""
    strategy = {o.order_ref: o.strategy or None for o in journal.orders(symbol=symbol)}
    book = StrategyBook(0.0, owner or "")
    for fill in journal.fills(symbol=symbol):
        if (strategy.get(fill.order_ref) if fill.order_ref else None) == owner:
            book.apply(fill.symbol, fill.signed_quantity, fill.price)
    return book


def _price(
    journal: TradeJournal, owner: str | None, symbol: str, quantity: float, hint: float | None
) -> float:
    position = _book(journal, owner, symbol).positions().get(symbol)
    if position is not None and position.quantity * quantity < 0 and position.avg_cost > 0:
        return position.avg_cost  # a reduction: at the book's cost, no invented P&L
    if hint is not None and math.isfinite(hint) and hint > 0:
        return hint
    if position is not None and position.avg_cost > 0:
        return position.avg_cost
    prices = [f.price for f in journal.fills(symbol=symbol)]
    if prices:
        return prices[-1]
    raise ConfigError(
        f"cannot price the adjustment of {symbol}: IB gave no average cost and the journal has no fill of it"
    )


def record_adjustments(
    journal: TradeJournal,
    symbol: str,
    plan: Sequence[tuple[str | None, float]],
    reason: str,
    *,
    price: float | None = None,
    when: datetime | None = None,
) -> list[Adjustment]:
    """Journal ``plan`` (``(owner, signed quantity)`` pairs from
    :func:`~copilot_quant.journal.positions.adoption_plan`) for ``symbol`` in one transaction."""
    now = when or datetime.now(UTC)
    priced = [(owner, q, _price(journal, owner, symbol, q, price)) for owner, q in plan if q]
    done: list[Adjustment] = []
    with journal.batch():
        for owner, quantity, px in priced:
            order = Order(
                symbol=symbol,
                quantity=abs(quantity),
                order_type=OrderType.MARKET,
                side=OrderSide.BUY if quantity > 0 else OrderSide.SELL,
                allow_fractional=not float(quantity).is_integer(),
                tag=ADJUSTMENT_TAG,
            )
            ref = journal.record_intent(order, owner)
            journal.record_fill(
                ref, f"{ADJUSTMENT_TAG}-{ref}", symbol, order.side, abs(quantity), px, now, 0.0
            )
            journal.record_status(ref, OrderStatus.FILLED, abs(quantity), reason=reason)
            whose = f"{owner}'s book" if owner else "no strategy's (beside the strategies')"
            journal.record_event(
                ADJUSTMENT_TAG, f"{symbol} {quantity:+g} @ {px:g} to {whose}, order {ref}: {reason}"
            )
            done.append(Adjustment(ref, symbol, owner, quantity, px))
    return done
