"""How a run's orders ended, in the terms a trader checks first: rejected, for a symbol the run has no data
for, or partly filled before the rest was cancelled or expired.

Both engines record every order (``result.orders`` in a backtest, the broker's tracker live), so one summary
serves ``backtest``, ``parity`` and ``demo``. :meth:`RunOrders.failure` is the rule that makes a run fail
loudly instead of printing a metrics table over a strategy that could not trade:

* any order for a symbol the run has no data for (the strategy trades something it was not run on: in a
  backtest such orders are rejected, live they are refused), or
* more than half of the orders rejected (the strategy mostly asked for what the account or the broker
  refuses: too little cash, a risk limit, a bad price).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from copilot_quant.backtest.orders import Order
from copilot_quant.errors import ConfigError
from copilot_quant.model.instruments import AssetClass, Instrument, InstrumentRegistry

__all__ = ["OrderOutcome", "RunOrders"]

#: More than this share of the orders rejected fails the run.
REJECTED_SHARE_LIMIT = 0.5


def _instrument(symbol: str) -> Instrument | None:
    try:
        return InstrumentRegistry().resolve(symbol)
    except ConfigError:
        return None


def _continuous_roots(symbols: Sequence[str]) -> set[str]:
    """The futures roots of the continuous symbols among ``symbols`` (``MES`` for ``MES`` or ``MES=F``)."""
    roots = set()
    for symbol in symbols:
        inst = _instrument(symbol)
        if inst is not None and inst.kind is AssetClass.FUTURE and inst.continuous:
            roots.add(inst.root)
    return roots


def _root_of(symbol: str) -> str | None:
    """The root of a futures contract (``MES`` of ``MESZ6``), None for anything else."""
    inst = _instrument(symbol)
    if inst is None or inst.kind is not AssetClass.FUTURE or inst.continuous:
        return None
    return inst.root


def _text(value: object) -> str:
    return str(getattr(value, "value", value))


@dataclass(frozen=True, slots=True)
class OrderOutcome:
    """One order as it ended: what was asked, what filled, and why it stopped."""

    symbol: str
    side: str
    quantity: float
    filled: float
    status: str
    time_in_force: str
    reason: str

    @classmethod
    def of(cls, order: Order) -> OrderOutcome:
        return cls(
            order.symbol,
            _text(order.side),
            float(order.quantity),
            float(order.filled_quantity),
            _text(order.status),
            _text(order.time_in_force),
            order.reject_reason,
        )

    @property
    def partly_filled(self) -> bool:
        """Some but not all of it filled, and it can fill no more (cancelled or expired)."""
        return 0 < self.filled < self.quantity and self.status in ("cancelled", "expired")


@dataclass(frozen=True, slots=True)
class RunOrders:
    """The orders of one run, against the symbols the run has data for."""

    outcomes: tuple[OrderOutcome, ...]
    symbols: tuple[str, ...]

    @classmethod
    def of(cls, orders: Iterable[Order | OrderOutcome], symbols: Sequence[str]) -> RunOrders:
        return cls(
            tuple(o if isinstance(o, OrderOutcome) else OrderOutcome.of(o) for o in orders),
            tuple(s.upper() for s in symbols),
        )

    @property
    def rejected(self) -> list[OrderOutcome]:
        return [o for o in self.outcomes if o.status == "rejected"]

    @property
    def foreign(self) -> list[OrderOutcome]:
        """Orders for symbols the run has no data for (a contract of a continuous future the run trades,
        ``MESZ6`` in a run on ``MES``, is the run's: its orders were routed or rolled there)."""
        roots = _continuous_roots(self.symbols)
        return [o for o in self.outcomes if o.symbol not in self.symbols and _root_of(o.symbol) not in roots]

    @property
    def partly_filled(self) -> list[OrderOutcome]:
        return [o for o in self.outcomes if o.partly_filled]

    def rejection_reasons(self) -> list[tuple[str, int]]:
        """The rejections grouped by kind (a reason's text before its first ``:``, e.g. "insufficient cash"):
        the first full reason of each kind with the kind's count, most frequent first."""
        counts: Counter[str] = Counter()
        first: dict[str, str] = {}
        for order in self.rejected:
            reason = order.reason or "no reason given"
            kind = reason.split(":", 1)[0]
            counts[kind] += 1
            first.setdefault(kind, reason)
        return [(first[kind], count) for kind, count in counts.most_common()]

    def failure(self) -> str | None:
        """Why this run's orders make the run a failure (see the module docstring), or ``None``."""
        foreign = self.foreign
        if foreign:
            names = ", ".join(dict.fromkeys(o.symbol for o in foreign))
            return (
                f"{len(foreign)} of {len(self.outcomes)} orders were for {names}, which this run has no data "
                f"for (symbols: {', '.join(self.symbols)}): the strategy trades a symbol it was not run on; "
                f"add it to --symbols or set the strategy's symbol (e.g. --param symbol={self.symbols[0]})"
                if self.symbols
                else f"{len(foreign)} orders were for {names}, which this run has no data for"
            )
        rejected = self.rejected
        if self.outcomes and len(rejected) > REJECTED_SHARE_LIMIT * len(self.outcomes):
            reason, _ = self.rejection_reasons()[0]
            return (
                f"{len(rejected)} of {len(self.outcomes)} orders were rejected (most often: {reason}), so "
                "these results say little about the strategy"
            )
        return None
