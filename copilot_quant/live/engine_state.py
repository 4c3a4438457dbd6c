"""The live engine's read-only state: connected and running, its strategies, fills, bar count, errors, events
and halts.

Part of :class:`~copilot_quant.live.engine.LiveStrategyEngine` (a mixin, so that the guide's attributes stay
on the engine): each property reads the part that owns the state (worker, fill dispatcher, error and event
logs, router, bar clock, reconciler, safety). Safe to read from any thread.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from copilot_quant.backtest.strategy import Strategy
from copilot_quant.brokers.connection import IBConnection
from copilot_quant.brokers.market_hours import OutsideHours
from copilot_quant.journal import ReconcileReport
from copilot_quant.live.bar_clock import BarClock
from copilot_quant.live.checkpoints import Checkpointer
from copilot_quant.live.events import ErrorLog, EventLog, RecentList
from copilot_quant.live.fills import FillDispatcher
from copilot_quant.live.order_router import OrderRouter
from copilot_quant.live.reconciler import Reconciler
from copilot_quant.live.safety import Safety
from copilot_quant.live.strategy_slot import StrategySlot
from copilot_quant.live.worker import Worker
from copilot_quant.model.orders import Fill

__all__ = ["EngineState"]


class EngineState:
    """Read-only views of the engine's state (the engine sets the parts below)."""

    _slots: list[StrategySlot]
    _errors: ErrorLog
    _events: EventLog
    dispatcher: FillDispatcher
    worker: Worker
    checkpointer: Checkpointer
    router: OrderRouter
    clock: BarClock
    reconciler: Reconciler
    safety: Safety
    connection: IBConnection
    _running: bool

    def is_connected(self) -> bool:
        return self.connection.is_connected()

    def is_running(self) -> bool:
        return self._running

    @property
    def strategy(self) -> Strategy | None:
        """The strategy this engine runs (the first one added, with several), or None."""
        return self._slots[0].strategy if self._slots else None

    @property
    def strategy_slots(self) -> tuple[StrategySlot, ...]:
        """One slot per strategy added, in the order they were added."""
        return tuple(self._slots)

    @property
    def fills(self) -> list[Fill]:
        """The real fills received while running, in order: the last 10,000
        (:data:`~copilot_quant.live.fills.FILLS_KEPT`; the journal keeps them all, and
        ``get_performance_summary()['total_fills']`` counts them all)."""
        return self.dispatcher.fills

    @property
    def _sleeves(self) -> bool:
        """Whether each strategy reads its own sleeve (several strategies, or a capital given)."""
        return len(self._slots) > 1 or any(s.capital is not None for s in self._slots)

    @property
    def update_interval(self) -> float:
        """The longest the worker sleeps between checks for completed bars (seconds)."""
        return self.worker.update_interval

    @property
    def bars_processed(self) -> int:
        """Bars delivered to the strategies so far."""
        return self.worker.bars_processed

    @property
    def errors(self) -> RecentList[dict[str, Any]]:
        """The last ``max_errors`` errors, oldest first: ``{'timestamp', 'error', 'type'}`` dicts."""
        return self._errors.entries

    @property
    def total_errors(self) -> int:
        return self._errors.total

    @property
    def max_logged_errors(self) -> int | None:
        return self._errors.max_logged_errors

    @property
    def events(self) -> RecentList[dict[str, Any]]:
        """The last engine events, oldest first: ``{'timestamp', 'kind', 'detail'}`` dicts."""
        return self._events.entries

    @property
    def outside_hours(self) -> OutsideHours:
        return self.router.outside_hours

    @property
    def last_bar(self) -> pd.Timestamp | None:
        """The last bar delivered to the strategy (UTC), or None before the first."""
        return self.clock.last_bar

    # parity.py (and older code) read the private name
    _last_bar = last_bar

    @property
    def last_reconcile(self) -> ReconcileReport | None:
        return self.reconciler.last_report

    @property
    def halted(self) -> str | None:
        """Why trading is halted (kill switch, liveness, competing session), or None while orders may go out."""
        return self.safety.halted

    @property
    def blocked_symbols(self) -> dict[str, str]:
        """``{symbol: why}`` for the symbols whose IB position disagrees with the journal's books: no order
        for them goes out until IB agrees or :meth:`adopt_broker_positions` is called (see
        :mod:`~copilot_quant.live.position_guard`)."""
        return self.reconciler.guard.blocked

    @property
    def kill_switch_file(self) -> Path | None:
        """The kill-switch file the engine watches (besides those given to :meth:`watch_kill_file`)."""
        return self.safety.kill_switch_file

    @kill_switch_file.setter
    def kill_switch_file(self, path: str | Path | None) -> None:
        self.safety.kill_switch_file = Path(path) if path is not None else None
