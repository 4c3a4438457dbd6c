"""What :func:`copilot_quant.parity.run_parity` returns: each run's comparable record and the verdict.

:class:`RunSummary` is one side (backtest or live): its orders and fills as comparable rows, how each order
ended, its final cash and equity, and the strategy's errors by bar. :class:`ParityReport` holds both sides
and their differences; :meth:`ParityReport.weakness` says why identical runs may still prove little.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from copilot_quant.backtest.order_outcomes import OrderOutcome, RunOrders

if TYPE_CHECKING:
    from copilot_quant.backtest.strategy import Strategy

__all__ = [
    "BAR_HOOKS",
    "FILL_COLUMNS",
    "ORDER_COLUMNS",
    "AccountParityReport",
    "ParityReport",
    "ParityStrategy",
    "RunSummary",
    "StrategyFailure",
]

#: Columns of :attr:`RunSummary.fills`.
FILL_COLUMNS = ("timestamp", "symbol", "side", "quantity", "price", "commission")
#: Columns of :attr:`RunSummary.orders`.
ORDER_COLUMNS = ("symbol", "side", "quantity", "type", "limit", "stop", "status")

#: The strategy hooks called for a bar; an error in ``on_stop``/``finalize`` belongs to no bar.
BAR_HOOKS = frozenset({"on_data", "on_bar", "on_fill"})


@dataclass(frozen=True, slots=True)
class StrategyFailure:
    """One exception a strategy hook raised during a run."""

    #: The stamp (close) of the bar it happened in; ``None`` for a hook outside any bar (``on_stop``).
    bar: pd.Timestamp | None
    #: ``'on_data'``, ``'on_bar'``, ``'on_fill'``, ``'on_stop'`` or ``'finalize'``.
    hook: str
    #: ``'ValueError: the message'``.
    error: str


@dataclass(slots=True)
class RunSummary:
    """What one side (backtest or live) did, in the comparable form.

    ``errors`` is every error the engine recorded, as text (live, that includes order and connection
    errors); ``strategy_errors`` are the exceptions the strategy raised, by bar, counted the same way on
    both sides; ``bars_given`` is how many bars the strategy was handed (the range's bars but the first,
    which is history in both runs).
    """

    name: str
    orders: list[tuple[Any, ...]] = field(default_factory=list)
    fills: list[tuple[Any, ...]] = field(default_factory=list)
    final_equity: float = math.nan
    final_cash: float = math.nan
    errors: list[str] = field(default_factory=list)
    bars_given: int = 0
    strategy_errors: list[StrategyFailure] = field(default_factory=list)
    #: How each order ended (filled quantity, time in force, reject reason): what the verdict and the CLI
    #: summary read; not compared (``orders`` and ``fills`` are).
    outcomes: list[OrderOutcome] = field(default_factory=list)

    @property
    def commissions(self) -> float:
        return float(sum(f[5] for f in self.fills))

    @property
    def errored_bars(self) -> int:
        """How many bars had at least one strategy error (in ``on_data``, ``on_bar`` or ``on_fill``)."""
        return len({f.bar for f in self.strategy_errors if f.bar is not None and f.hook in BAR_HOOKS})

    @property
    def every_bar_errored(self) -> bool:
        """True when the strategy raised on every bar it was given (and it was given at least one)."""
        return self.bars_given > 0 and self.errored_bars >= self.bars_given

    @property
    def most_bars_errored(self) -> bool:
        """True when the strategy raised on more than half of the bars it was given."""
        return self.bars_given > 0 and self.errored_bars > self.bars_given / 2

    @property
    def first_error_bar(self) -> pd.Timestamp | None:
        """The first bar with a strategy error, or ``None``."""
        bars = [f.bar for f in self.strategy_errors if f.bar is not None and f.hook in BAR_HOOKS]
        return min(bars) if bars else None


@dataclass(slots=True)
class ParityReport:
    """The outcome of :func:`~copilot_quant.parity.run_parity`: both runs and their differences (none when parity holds).

    ``diffs`` is a table with columns ``kind`` (``'order'``, ``'fill'``, ``'equity'``), ``index`` (the
    position in the sequence), ``field``, ``backtest`` and ``live``.
    """

    strategy: str
    symbols: list[str]
    start: pd.Timestamp
    end: pd.Timestamp
    bars: int
    backtest: RunSummary
    live: RunSummary
    diffs: pd.DataFrame

    @property
    def ok(self) -> bool:
        """Whether orders, fills, final equity and the strategy's error counts are identical.

        Identical is not healthy: a strategy that raised on every bar places no orders in either run.
        Check :attr:`strategy_raised` and :attr:`every_bar_errored` too.
        """
        return self.diffs.empty

    @property
    def strategy_raised(self) -> bool:
        """Whether the strategy raised at all, in either run."""
        return bool(self.backtest.strategy_errors or self.live.strategy_errors)

    @property
    def every_bar_errored(self) -> bool:
        """Whether the strategy raised on every bar it was given in either run: the runs say nothing."""
        return self.backtest.every_bar_errored or self.live.every_bar_errored

    def weakness(self) -> str | None:
        """Why identical runs still prove little, or ``None``: nothing filled in either run; the strategy
        raised on most bars; or a run's orders fail :meth:`~copilot_quant.backtest.order_outcomes.RunOrders.failure`
        (any order for a symbol the run has no data for, or most orders rejected)."""
        failed = [run.name for run in (self.backtest, self.live) if run.most_bars_errored]
        if failed:
            run = self.backtest if self.backtest.most_bars_errored else self.live
            return (
                f"{self.strategy} raised an exception on {run.errored_bars} of {run.bars_given} bars of the "
                f"{' and the '.join(failed)} run, so this parity check says little about it; fix the error "
                "above and run again"
            )
        for run in (self.backtest, self.live):
            failure = RunOrders.of(run.outcomes, self.symbols).failure()
            if failure is not None:
                return f"{run.name} run: {failure}"
        if not self.backtest.fills and not self.live.fills:
            return (
                f"nothing filled in either run ({len(self.backtest.orders)} orders), so there was nothing to "
                "compare; widen the date range or check the strategy's signals"
            )
        return None


@dataclass(frozen=True, slots=True)
class ParityStrategy:
    """One strategy of a parity run on one account: its class, constructor arguments, name and capital.

    ``name`` (default: the class name) is its tag on orders and its key in the report; names must differ.
    ``capital`` is its share of the account (default: an equal share of what the others were not given),
    as for ``add_strategy(capital=)`` in both engines.
    """

    strategy_class: type[Strategy]
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    name: str | None = None
    capital: float | None = None

    @property
    def label(self) -> str:
        return self.name or self.strategy_class.__name__


@dataclass(slots=True)
class AccountParityReport:
    """Parity of several strategies on one account: the account's report (all orders and fills, the
    account's cash and equity) and one per strategy (its own orders, fills, errors, and its sleeve's cash
    and equity), each comparing the backtest with the live run."""

    account: ParityReport
    strategies: dict[str, ParityReport]

    @property
    def ok(self) -> bool:
        """Whether the account and every strategy are identical in both runs."""
        return self.account.ok and all(r.ok for r in self.strategies.values())

    @property
    def strategy_raised(self) -> bool:
        return any(r.strategy_raised for r in self.strategies.values())

    def weakness(self) -> str | None:
        """Why identical runs still prove little, per strategy (``name: why``), or ``None``."""
        for name, report in self.strategies.items():
            why = report.weakness()
            if why is not None:
                return f"{name}: {why}"
        return None
