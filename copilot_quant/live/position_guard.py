"""The position guard: no order for a symbol whose books disagree with IB's position, until they agree.

Each reconciliation (at start, after every reconnect, on :meth:`LiveStrategyEngine.reconcile`, and when the
:class:`~copilot_quant.live.position_watch.PositionWatch` sees IB's positions move unlike the books) hands
it the :class:`~copilot_quant.journal.positions.PositionGap` s it found, each confirmed by a second read of
IB. A gap that trades outside the engine do not explain (see :mod:`copilot_quant.journal.positions`)
**blocks**:

* every order and modification for that symbol, whichever strategy sends it, and
* every order of a strategy whose own book holds that symbol: it decides from that book (``self.positions``,
  and with several strategies its ``cash`` and ``equity``), so its other orders may be wrong too (other
  strategies, and other symbols, trade on).

Per symbol, not a halt of everything: a position IB nets per symbol cannot be wrong in another symbol, and
a strategy that holds none of the blocked symbols sizes from a book that agrees with IB. Cancels still go
out (they only reduce risk), and ``flatten_on_stop`` leaves a blocked symbol alone (closing a position the
account may not hold would open one). The kill switch's flattening follows IB's positions and is not
blocked.

A new block is said once, loudly: an error (type ``'position'``, the error callbacks fire) with the whole
story (:func:`~copilot_quant.live.reconcile_notes.gap_notice`: what differs, what may have happened, how to
resolve it, what adopting would record), the same words in the ``reconcile`` event, and a one-line ``halt``
event (ERROR); ``engine.blocked_symbols`` and the performance summary hold it while it lasts. Each refused
order is one WARNING line and is journaled as rejected. While a symbol is blocked the reconciliation runs
again every 30 s; when one finds IB and the books agree (fixed in TWS, or IB's position adopted), a
``resume`` event says so and the symbol trades again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from copilot_quant.journal import EventKind
from copilot_quant.journal.positions import PositionGap
from copilot_quant.live.events import ErrorLog, EventLog
from copilot_quant.live.reconcile_notes import gap_notice

__all__ = ["PositionGuard"]

log = logging.getLogger(__name__)


def _owners(gap: PositionGap) -> str:
    parts = [f"{name} {q:g}" for name, q in gap.claims]
    if gap.unowned:
        parts.append(f"no strategy's {gap.unowned:g}")
    return f" ({', '.join(parts)})" if parts else ""


class PositionGuard:
    """Which symbols are blocked and why; :meth:`refusal` is what the order router asks (any thread)."""

    def __init__(self, *, events: EventLog, errors: ErrorLog) -> None:
        self._events = events
        self._errors = errors
        self._lock = threading.Lock()
        self._blocked: dict[str, PositionGap] = {}

    @property
    def blocked(self) -> dict[str, str]:
        """``{symbol: why it is blocked and how to resolve it}``; empty while IB and the books agree."""
        with self._lock:
            gaps = list(self._blocked.values())
        return {gap.symbol: gap_notice(gap) for gap in gaps}

    def gaps(self) -> list[PositionGap]:
        """The blocking gaps, by symbol."""
        with self._lock:
            return list(self._blocked.values())

    def summary(self) -> list[dict[str, Any]]:
        """The blocking gaps as plain values (``get_performance_summary()['position_mismatches']``)."""
        return [
            {
                "symbol": gap.symbol,
                "ib": gap.broker,
                "journal": gap.journal,
                "books": dict(gap.claims),
                "no_strategy": gap.unowned,
                "outside_today": gap.outside,
                "message": gap_notice(gap),
            }
            for gap in self.gaps()
        ]

    def update(self, gaps: Sequence[PositionGap]) -> set[str]:
        """Take a reconciliation's gaps: block the unexplained ones, release the symbols that agree again;
        returns the symbols blocked (or changed) just now."""
        blocking = {gap.symbol: gap for gap in gaps if not gap.explained}
        with self._lock:
            before, self._blocked = self._blocked, blocking
        fresh: set[str] = set()
        for symbol, gap in blocking.items():
            if before.get(symbol) == gap:
                continue  # said when it began; the reconcile event repeats it
            fresh.add(symbol)
            # the whole story once: the error entry (its callbacks fire; the reconcile finding logs the same
            # words as a warning, so the entry does not print them again) and a short halt event
            self._errors.record(f"position mismatch {gap_notice(gap)}", "position", quiet=True)
            self._events.emit(
                EventKind.HALT,
                f"trading in {symbol} halted: IB holds {gap.broker:g} but the journal's books say {gap.journal:g}"
                f"{_owners(gap)}; make IB's position agree, or adopt it (--adopt-broker-positions, "
                "engine.adopt_broker_positions()) — the reconcile finding says more",
                level=logging.ERROR,
            )
        for symbol, gap in before.items():
            if symbol not in blocking:
                self._events.emit(
                    EventKind.RESUME,
                    f"{symbol}: IB's position and the journal's books agree again (IB held {gap.broker:g}, the "
                    f"books {gap.journal:g}); trading in {symbol} resumes",
                )
        return fresh

    def refusal(self, strategy: str | None, symbol: str) -> str | None:
        """Why an order of ``strategy`` for ``symbol`` may not go out now, or None. On every order's path:
        no lock (:meth:`update` replaces the mapping, never changes it), nothing to do while none is blocked."""
        blocked = self._blocked
        if not blocked:
            return None
        gap = blocked.get(symbol)
        held = None if strategy is None else next((g for g in blocked.values() if g.claimant(strategy)), None)
        if gap is not None:
            return (
                f"trading in {symbol} halted: IB holds {gap.broker:g} but the journal's books say {gap.journal:g} "
                "(position mismatch: see the alert; fix it at IB or adopt IB's position)"
            )
        if held is not None:
            return (
                f"{strategy}'s book holds {held.symbol}, where IB holds {held.broker:g} but the journal's books say "
                f"{held.journal:g}: it decides from a wrong book until that is resolved (see the alert)"
            )
        return None
