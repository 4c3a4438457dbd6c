"""The engine's worker thread: it sleeps on an event and, when woken, checks the rails and delivers bars.

Woken by new bars, fills, a kill file, the liveness guard, or every ``update_interval`` seconds, it: hands
queued fills to their strategies; checks the safety rails; runs a due reconciliation (and does nothing
else until the books are reconciled); then finds the bars completed since the last one (the
:class:`~copilot_quant.live.bar_clock.BarClock`) and calls each strategy's ``on_data`` once per bar, in the
order the strategies were added, routing the orders it returns. Whatever goes wrong in a step is recorded
and the loop goes on; only a stop (or a connection that will not come back) ends it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

import pandas as pd

from copilot_quant.brokers.connection import IBConnection
from copilot_quant.brokers.live_broker_adapter import LiveBrokerAdapter
from copilot_quant.brokers.reconnect import ConnectionState
from copilot_quant.errors import CopilotQuantError, JournalError
from copilot_quant.live.account_view import AccountState
from copilot_quant.live.bar_clock import BarClock
from copilot_quant.live.checkpoints import Checkpointer
from copilot_quant.live.events import ErrorLog
from copilot_quant.live.fills import FillDispatcher
from copilot_quant.live.order_router import OrderRouter
from copilot_quant.live.reconciler import Reconciler
from copilot_quant.live.safety import Safety
from copilot_quant.live.strategy_slot import StrategySlot
from copilot_quant.model.orders import Order

__all__ = ["Worker"]

log = logging.getLogger(__name__)

#: How often (seconds) a sleeping worker checks the kill-switch file and the liveness guard.
_RAIL_POLL_S = 1.0
#: The longest the worker waits for IB's position update after fills before the next ``on_data``.
_POSITION_SYNC_S = 0.5


class Worker:
    """The loop the engine's thread runs (see the module docstring)."""

    def __init__(
        self,
        *,
        stop: threading.Event,
        wake: threading.Event,
        update_interval: float,
        connection: IBConnection,
        broker: LiveBrokerAdapter,
        clock: BarClock,
        account: AccountState,
        safety: Safety,
        reconciler: Reconciler,
        router: OrderRouter,
        fills: FillDispatcher,
        errors: ErrorLog,
        slots: Callable[[], Sequence[StrategySlot]],
        refresh_account: Callable[[float], None],
        on_journal_failure: Callable[[JournalError], None],
        finish: Callable[[str], None],
        checkpointer: Checkpointer,
    ) -> None:
        self._stop = stop
        self._wake = wake
        self.update_interval = update_interval
        self._conn = connection
        self._broker = broker
        self._clock = clock
        self._account = account
        self._safety = safety
        self._reconciler = reconciler
        self._router = router
        self._fills = fills
        self._errors = errors
        self._slots = slots
        self._refresh_account = refresh_account
        self._on_journal_failure = on_journal_failure
        self._finish = finish
        self._checkpointer = checkpointer
        #: Bars delivered to the strategies so far.
        self.bars_processed = 0
        self.timer_fired = False
        self.polled_only = False

    def run(self) -> None:
        """The worker thread's body: until stopped, check the rails, reconcile when due, deliver new bars."""
        try:
            while not self._stop.is_set():
                self._fills.drain()
                if self.polled_only:
                    # A safety poll, not a wake-up: only the rails are checked, no bars, no account refresh.
                    self._safety.check_kill_files()
                    self._safety.check_liveness()
                    self.timer_fired = self._sleep()
                    continue
                self._safety.poll()
                if self._conn.state is ConnectionState.STOPPED:
                    self._errors.record(
                        "connection to IB lost and not reconnecting; engine stopped", "connection"
                    )
                    break
                if self._safety.may_step():  # connected, or degraded by a farm it does not need
                    self._guarded_step()
                self.timer_fired = self._sleep()
        finally:
            self._finish("worker exited")

    def _guarded_step(self) -> None:
        """One step of the worker; whatever goes wrong is recorded, never ends the loop."""
        try:
            if not self._reconciler.run_due():
                return  # no bar, no order until the books are reconciled (retried with backoff)
            self._step()
        except JournalError as exc:
            self._on_journal_failure(exc)
        except CopilotQuantError as exc:
            self._errors.record(str(exc), "engine")
        except (TimeoutError, ConnectionError) as exc:
            self._errors.record(f"{type(exc).__name__}: {exc}", "connection")
        except Exception as exc:  # the worker's last line of defence: log, count, keep running
            log.exception("unexpected error in the engine loop")
            self._errors.record(f"{type(exc).__name__}: {exc}", "engine")

    def _sleep(self) -> bool:
        """Sleep until woken or ``update_interval`` passes (then True); poll the rails every second.

        A pending settle re-check (see :meth:`BarClock.completed`) shortens the sleep and counts as the timer.
        """
        deadline = time.monotonic() + self.update_interval
        if self._clock.recheck_at is not None:
            deadline = min(deadline, self._clock.recheck_at)
        retry_at = self._reconciler.retry_at
        if retry_at is not None:
            deadline = min(deadline, retry_at)
        self.polled_only = False
        while not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                self._clock.recheck_at = None
                return True
            if self._wake.wait(min(left, _RAIL_POLL_S)):
                self._wake.clear()
                return False
            if self._safety.need_attention():
                self.polled_only = True
                return False
        return False

    def _step(self) -> None:
        now = self._clock.now_ns(fresh=self.timer_fired)
        self.timer_fired = False
        for slot in self._slots():
            if slot.unsent_cancels:
                slot.retry_cancels(self._broker)
            if slot.held:
                self._router.release_held(slot, pd.Timestamp(now, tz="UTC"))
        new = self._clock.completed(now)
        if len(new) == 0:
            self._refresh_account(0.0)
            self._checkpointer.after_step()
            return
        # Fills came since the account was read: read it again now, on the loop, while the fills' journal
        # commits are waited for and the bar's data is built (no extra round trip before on_data).
        self._account.prefetch(self._broker, _POSITION_SYNC_S)
        # The fills that came with the bar first: their commit on the journal writer thread needs the GIL
        # back after SQLite's I/O, which the pandas work below would keep for up to the 5 ms switch interval.
        self._broker.flush_fills()
        # One DataFrame per step, built once: pandas calls cost ~0.2 ms each on a cold CPU between bars,
        # so the path from a bar to its orders decides on int64 stamps and touches pandas only here.
        data = self._clock.window(int(new[-1]))
        positions = pd.DatetimeIndex(data.index).asi8 if len(new) > 1 else None
        for k, stamp_ns in enumerate(new):
            if self._stop.is_set():
                return
            stamp = pd.Timestamp(int(stamp_ns), tz="UTC")
            # As in a backtest, the fills that happened before this bar closed reach on_fill before
            # on_data, and the account view already includes them.
            self._broker.flush_fills()
            if self._fills.drain():
                # IB's position update follows the execution: wait for it and read the account in one trip
                self._refresh_account(_POSITION_SYNC_S)
            if positions is None or k == len(new) - 1:
                window = data
            else:
                window = data.iloc[: int(positions.searchsorted(stamp_ns, side="right"))]
            self._account.marks.set(window, self._clock.symbols)
            self._deliver(stamp, window)
            self._clock.last_bar = stamp
            self._fills.drain()
        self._refresh_account(0.0)  # after the orders: the account view is off the tick-to-order path
        self._checkpointer.after_step()  # so is the journal's checkpoint

    def _deliver(self, stamp: pd.Timestamp, window: pd.DataFrame) -> None:
        """Every strategy decides on the bar, in the order they were added; then their orders are routed
        together (one journal sync for all of them), as a backtest fills them all at the same next price."""
        self.bars_processed += 1
        orders: list[tuple[StrategySlot, Order]] = []
        for slot in self._slots():
            for order in self._decide(slot, stamp, window):
                slot.add(order)
                orders.append((slot, order))
        if orders:
            self._router.submit_all(orders)

    def _decide(self, slot: StrategySlot, stamp: pd.Timestamp, window: pd.DataFrame) -> list[Order]:
        """``slot``'s strategy's orders for the bar (none if it failed or returned something else)."""
        try:
            orders = slot.strategy.on_data(stamp, window)
        except Exception as exc:
            self._errors.strategy_failed(
                slot.name, exc, f"{type(exc).__name__}: {exc}", f"in on_data at {stamp}"
            )
            return []
        if orders is None:
            return []
        if not isinstance(orders, list | tuple) or not all(isinstance(o, Order) for o in orders):
            self._errors.record(
                f"on_data must return a list of Order objects or None, got {type(orders).__name__}",
                "strategy",
            )
            return []
        for order in orders:
            if order.timestamp is None:  # as in a backtest: the bar the order was decided on
                order.timestamp = stamp.to_pydatetime()
        return list(orders)
