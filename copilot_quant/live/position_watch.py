"""Between reconciliations: notice IB's position moving in a way the strategies' own fills do not explain.

A trade made in TWS while the engine stays connected reaches no strategy (IB reports executions to the
client that placed the order), so nothing but the next reconciliation would see it. The worker reads IB's
account after every step anyway; :class:`PositionWatch` compares how IB's positions moved since the last
reconciliation with how the running strategies' books moved (their own fills). A difference that stays the
same for :data:`SETTLE_S` seconds (IB's position updates run ahead of or behind the executions it reports
to the engine, by a moment or, when IB is slow, by seconds) makes a reconciliation due at once;
that reconciliation, not this watch, decides whether a symbol is blocked
(:mod:`copilot_quant.live.position_guard`). Cheap: a few dictionary sums per step, no trip to IB.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence

from copilot_quant.brokers.reconciliation import BrokerState
from copilot_quant.live.account_view import AccountState
from copilot_quant.live.reconciler import Reconciler
from copilot_quant.live.strategy_slot import StrategySlot

__all__ = ["PositionWatch"]

log = logging.getLogger(__name__)

_EPS = 1e-9
#: The least time (seconds) between two reconciliations this watch asks for.
MIN_INTERVAL_S = 10.0
#: How long (seconds) a difference must stay the same before it counts.
SETTLE_S = 5.0


def _moved(now: Mapping[str, float], then: Mapping[str, float]) -> dict[str, float]:
    return {s: now.get(s, 0.0) - then.get(s, 0.0) for s in now.keys() | then.keys()}


class PositionWatch:
    """Asks for a reconciliation when IB's positions move unlike the books (see the module docstring)."""

    def __init__(
        self,
        *,
        reconciler: Reconciler,
        slots: Callable[[], Sequence[StrategySlot]],
        account: AccountState,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._reconciler = reconciler
        self._slots = slots
        self._account = account
        self._base: BrokerState | None = None
        self._base_ib: dict[str, float] = {}
        self._base_books: dict[str, float] = {}
        self._drift: dict[str, float] = {}
        self._since = 0.0
        self._asked_at = float("-inf")
        self._clock = clock

    def _books(self) -> dict[str, float]:
        net: dict[str, float] = {}
        for slot in self._slots():
            for symbol, position in slot.book.positions().items():
                net[symbol] = net.get(symbol, 0.0) + position.quantity
        return net

    def check(self) -> None:
        """Compare once (the worker, after it read IB's account)."""
        reconciler = self._reconciler
        state = reconciler.last_state
        if state is None or not reconciler.reconciled:
            return
        ib = {s: p.quantity for s, p in dict(self._account.positions).items()}
        books = self._books()
        if state is not self._base:  # a reconciliation ran: the books and IB agreed then, as far as it saw
            self._base, self._base_ib, self._base_books, self._drift = state, ib, books, {}
            return
        ib_moved, books_moved = _moved(ib, self._base_ib), _moved(books, self._base_books)
        drift = {
            s: round(q - books_moved.get(s, 0.0), 9)
            for s, q in ib_moved.items() | books_moved.items()
            if abs(ib_moved.get(s, 0.0) - books_moved.get(s, 0.0)) > _EPS
        }
        now = self._clock()
        if drift != self._drift:
            self._drift, self._since = drift, now
            return
        if drift and now - self._since >= SETTLE_S and now - self._asked_at >= MIN_INTERVAL_S:
            self._asked_at = now
            moved = ", ".join(f"{s} {q:+g}" for s, q in sorted(drift.items()))
            log.info("IB's positions moved unlike the strategies' fills (%s): reconciling now", moved)
            reconciler.recheck_soon()
