"""The journal seen per strategy: whose each order and fill is, and each strategy's book from its fills.

Every order the engine journals carries its strategy's name (the tag IB sees as ``orderRef``); a fill
belongs to the strategy of its order. A fill of no journaled order (a trade made in TWS or by another
program that a journal recorded) is :data:`EXTERNAL`: it is listed, never assigned to a strategy. An order
without a strategy (the kill switch's flattening, an order journaled by a script) is :data:`NO_STRATEGY`.

:func:`strategy_summaries` rebuilds each strategy's :class:`~copilot_quant.model.book.StrategyBook` from its
journaled fills — net position per symbol, realized P&L (before commissions), commissions — the same book
the live engine keeps, so ``copilot-quant journal strategies`` shows what each strategy holds and has made.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from copilot_quant.errors import ConfigError
from copilot_quant.journal.adjustments import is_adjustment
from copilot_quant.journal.records import FillRecord, JournalOrder
from copilot_quant.model.book import StrategyBook

__all__ = [
    "EXTERNAL",
    "NO_STRATEGY",
    "StrategySummary",
    "check_strategy",
    "owner_of_fill",
    "owners",
    "strategy_summaries",
]

#: The owner shown for a fill of no journaled order: a trade made outside the engine.
EXTERNAL = "(external)"
#: The owner shown for an order journaled without a strategy (the kill switch's flattening, say).
NO_STRATEGY = "(no strategy)"


def owners(orders: Iterable[JournalOrder]) -> dict[str, str]:
    """``order_ref`` → the name of the strategy that placed it (:data:`NO_STRATEGY` when none)."""
    return {o.order_ref: o.strategy or NO_STRATEGY for o in orders}


def owner_of_fill(fill: FillRecord, by_ref: dict[str, str]) -> str:
    """The strategy a fill belongs to: its order's, or :data:`EXTERNAL` for a fill of no journaled order."""
    if fill.order_ref is None:
        return EXTERNAL
    return by_ref.get(fill.order_ref, EXTERNAL)


def check_strategy(name: str | None, known: Iterable[str]) -> None:
    """Refuse a ``--strategy`` the journal has no order or fill of, listing the names it has."""
    names = sorted(set(known))
    if name is not None and name not in names:
        listed = ", ".join(repr(n) for n in names) or "none"
        raise ConfigError(
            f"--strategy {name!r}: the journal has no orders of that strategy; it has: {listed}"
        )


@dataclass(slots=True)
class StrategySummary:
    """One strategy's activity in the journal: its orders, fills, and the book its fills add up to."""

    name: str
    orders: int = 0
    #: executions at IB; an adjustment that adopted IB's position is counted apart (it moves the book too)
    fills: int = 0
    adjustments: int = 0
    book: StrategyBook = field(default_factory=StrategyBook)

    @property
    def positions(self) -> dict[str, float]:
        return {s: p.quantity for s, p in self.book.positions().items()}


def strategy_summaries(orders: Sequence[JournalOrder], fills: Sequence[FillRecord]) -> list[StrategySummary]:
    """Per strategy (in order of first appearance; :data:`EXTERNAL` last): orders, fills, its book."""
    by_ref = owners(orders)
    out: dict[str, StrategySummary] = {}

    def summary(name: str) -> StrategySummary:
        if name not in out:
            out[name] = StrategySummary(name, book=StrategyBook(0.0, name))
        return out[name]

    for order in orders:
        summary(by_ref[order.order_ref]).orders += 1
    for fill in fills:
        mine = summary(owner_of_fill(fill, by_ref))
        if is_adjustment(fill.exec_id):
            mine.adjustments += 1
        else:
            mine.fills += 1
        if fill.quantity > 0 and fill.price > 0:
            mine.book.apply(fill.symbol, fill.signed_quantity, fill.price, fill.commission or 0.0)
    external = out.pop(EXTERNAL, None)
    return [*out.values(), *([external] if external is not None else [])]
