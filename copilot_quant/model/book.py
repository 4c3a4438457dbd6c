"""One strategy's book on a shared account, built from its own fills only.

Several strategies may trade one account. The broker (or IB) holds the account's netted positions and its
cash; each strategy has a :class:`StrategyBook` that applies only the fills of *its* orders, so it knows
what that strategy holds and has earned even when another strategy trades the same symbol the other way.

What the book's numbers mean (the same in backtest and live):

* ``positions`` — per symbol, the signed quantity the strategy's own fills add up to, their average cost
  (:class:`~copilot_quant.model.orders.Position` rules: it changes when a position is opened or grown;
  reducing it realizes P&L; crossing zero realizes all and opens the rest at the fill price), realized
  P&L, commissions, and the unrealized P&L at the last mark.
* ``capital`` — the strategy's share of the account (its sleeve), fixed when the book is made.
* ``cash_flow`` — what its fills moved: ``Σ fill.net_proceeds`` (sales in, purchases and commissions out).
* ``cash`` = ``capital + cash_flow``; ``equity`` = ``cash + market value`` of its positions at their marks.
* ``pnl`` = ``equity - capital`` = realized + unrealized - commissions.

A futures contract (``MESZ6``) is booked as the account books it: its fills move no notional, only the P&L
they realize times the contract's multiplier (and the commission), and an open position is worth its
unrealized P&L times the multiplier; realized and unrealized P&L are in money, not points.

With one strategy and ``capital`` = the account's starting cash, ``cash`` and ``equity`` are the
account's. With several, the books' quantities add up to the account's position per symbol and their
``cash``/``equity`` add up to the account's (when the capitals add up to its starting cash). The sleeve
is for sizing and reporting: buying power is the account's, shared by every strategy on it.

A book is plain single-threaded state: an engine applies fills and marks from one thread.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from copilot_quant.errors import ConfigError
from copilot_quant.model.instruments import AssetClass, InstrumentRegistry
from copilot_quant.model.orders import Fill, Position

__all__ = ["StrategyBook", "net_quantities"]


class StrategyBook:
    """The positions, P&L and cash flow of one strategy's fills; see the module docstring."""

    __slots__ = ("_multipliers", "_positions", "capital", "cash_flow", "commissions", "fill_count", "name")

    def __init__(self, capital: float = 0.0, name: str = "") -> None:
        capital = float(capital)
        if not math.isfinite(capital):
            raise ConfigError(f"a strategy book's capital must be a finite amount, got {capital!r}")
        self.name = name
        self.capital = capital
        self.cash_flow = 0.0
        self.commissions = 0.0
        self.fill_count = 0
        self._positions: dict[str, Position] = {}
        #: symbol -> a futures contract's multiplier (None for anything else), resolved once per symbol
        self._multipliers: dict[str, float | None] = {}

    def _multiplier(self, symbol: str) -> float | None:
        """The multiplier of a futures contract, None for a stock or a pair (booked by their notional)."""
        if symbol not in self._multipliers:
            try:
                inst = InstrumentRegistry().resolve(symbol)
            except ConfigError:
                inst = None
            future = inst is not None and inst.kind is AssetClass.FUTURE and not inst.continuous
            self._multipliers[symbol] = inst.multiplier if future and inst is not None else None
        return self._multipliers[symbol]

    def __repr__(self) -> str:
        held = ", ".join(f"{s} {p.quantity:g}" for s, p in self._positions.items() if not p.is_flat)
        return f"StrategyBook({self.name!r}, capital={self.capital:g}, pnl={self.pnl:g}, [{held}])"

    # ------------------------------------------------------------------ booking
    def apply_fill(self, fill: Fill) -> float:
        """Book one of the strategy's fills; returns the P&L it realized (before commission)."""
        return self.apply(fill.symbol, fill.signed_quantity, fill.fill_price, fill.commission)

    def apply(self, symbol: str, signed_quantity: float, price: float, commission: float = 0.0) -> float:
        """Book a trade of ``signed_quantity`` (negative: a sale) of ``symbol`` at ``price``."""
        if not (math.isfinite(signed_quantity) and signed_quantity != 0):
            raise ConfigError(f"a booked trade needs a non-zero finite quantity, got {signed_quantity!r}")
        if not (math.isfinite(price) and price > 0):
            raise ConfigError(f"a booked trade needs a positive finite price, got {price!r}")
        if not (math.isfinite(commission) and commission >= 0):
            raise ConfigError(f"a booked trade's commission must be >= 0, got {commission!r}")
        position = self._positions.get(symbol)
        if position is None:
            position = self._positions[symbol] = Position(symbol, multiplier=self._multiplier(symbol) or 1.0)
        realized = position.apply(signed_quantity, price, commission)  # a future's in money (x multiplier)
        moved = -signed_quantity * price if self._multiplier(symbol) is None else realized
        self.cash_flow += moved - commission
        self.commissions += commission
        self.fill_count += 1
        return realized

    def mark(self, symbol: str, price: float) -> None:
        """Value the position in ``symbol`` (if any) at ``price``; a NaN or missing price changes nothing."""
        position = self._positions.get(symbol)
        if position is not None and math.isfinite(price) and price > 0:
            position.update_unrealized_pnl(price)

    def mark_all(self, prices: Mapping[str, float]) -> None:
        for symbol, price in prices.items():
            self.mark(symbol, price)

    # ------------------------------------------------------------------ reading
    def quantity(self, symbol: str) -> float:
        """Signed quantity held in ``symbol`` (0 when flat or never traded)."""
        position = self._positions.get(symbol)
        return position.quantity if position is not None else 0.0

    def positions(self) -> dict[str, Position]:
        """Open positions by symbol, as snapshots (mutating them does not change the book)."""
        return {s: p.snapshot() for s, p in self._positions.items() if not p.is_flat}

    def symbols(self) -> list[str]:
        """Every symbol the strategy has traded, open or flat."""
        return list(self._positions)

    @property
    def cash(self) -> float:
        return self.capital + self.cash_flow

    @property
    def market_value(self) -> float:
        """Signed value of the open positions at their last marks (the fill price before any mark); a
        future's is its unrealized P&L times the multiplier."""
        total = 0.0
        for symbol, p in self._positions.items():
            if not p.is_flat:
                multiplier = self._multiplier(symbol)
                total += p.market_value if multiplier is None else p.unrealized_pnl
        return total

    @property
    def equity(self) -> float:
        return self.cash + self.market_value

    @property
    def realized_pnl(self) -> float:
        """Realized P&L of every symbol traded, before commissions (money: a future's includes its multiplier)."""
        return sum((p.realized_pnl for p in self._positions.values()), 0.0)

    @property
    def unrealized_pnl(self) -> float:
        return sum((p.unrealized_pnl for p in self._positions.values() if not p.is_flat), 0.0)

    @property
    def pnl(self) -> float:
        """Net P&L: realized + unrealized - commissions (= ``equity - capital``)."""
        return self.equity - self.capital


def net_quantities(books: Iterable[StrategyBook]) -> dict[str, float]:
    """Per symbol, the quantity the books add up to: what the account (and IB) holds for them."""
    total: dict[str, float] = {}
    for book in books:
        for symbol in book.symbols():
            total[symbol] = total.get(symbol, 0.0) + book.quantity(symbol)
    return total
