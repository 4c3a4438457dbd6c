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

import numpy as np
import pandas as pd

from copilot_quant.backtest.rolls import Roll
from copilot_quant.brokers.connection import IBConnection
from copilot_quant.brokers.live_broker_adapter import LiveBrokerAdapter
from copilot_quant.brokers.reconnect import ConnectionState
from copilot_quant.errors import CopilotQuantError, JournalError
from copilot_quant.live.account_view import AccountState
from copilot_quant.live.bar_clock import BarClock
from copilot_quant.live.checkpoints import Checkpointer
from copilot_quant.live.continuous import LiveRolls
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
        #: The run's continuous futures (routing, rolls), set by the engine's start; None without any.
        self.continuous: LiveRolls | None = None
        #: Bars delivered to the strategies so far.
        self.bars_processed = 0
        self.timer_fired = False
        self.polled_only = False
        #: The step lock. Its holder alone touches the strategies (on_data, on_fill), their slots and
        #: books, the router, the bar clock, the account view and the fill queue's deliveries: the worker
        #: takes it for each round; the IB loop thread (inline dispatch) only ever tries it, never waits.
        self.lock = threading.RLock()  # re-entered by a stop() from a strategy on the worker thread
        #: The slowest ``on_data`` call since this was last reset: (strategy name, seconds).
        self.slowest: tuple[str, float] = ("", 0.0)
        #: Whether the account reads include IB's daily P&L (the daily-loss rail needs it), set by wiring.
        self.wants_pnl: Callable[[], bool] = lambda: False

    def run(self) -> None:
        """The worker thread's body: until stopped, check the rails, reconcile when due, deliver new bars."""
        try:
            while not self._stop.is_set():
                with self.lock:  # the strategies, books, router and clock are the holder's (module docstring)
                    if not self._round():
                        break
                self.timer_fired = self._sleep()
        finally:
            self._finish("worker exited")

    def _round(self) -> bool:
        """One round of the loop (under :attr:`lock`); False when the engine must stop."""
        self._fills.drain()
        if self.polled_only:
            # A safety poll, not a wake-up: only the rails are checked, no bars, no account refresh.
            self._safety.check_kill_files()
            self._safety.check_liveness()
            return True
        self._safety.poll()
        if self._conn.state is ConnectionState.STOPPED:
            self._errors.record("connection to IB lost and not reconnecting; engine stopped", "connection")
            return False
        if self._safety.may_step():  # connected, or degraded by a farm it does not need
            self.guarded(self._reconciled_step)
        return True

    def _reconciled_step(self) -> None:
        if (
            self._reconciler.run_due()
        ):  # no bar, no order until the books are reconciled (retried with backoff)
            self._step()

    def guarded(self, step: Callable[[], None]) -> None:
        """Run ``step``; whatever goes wrong is recorded, never ends the loop (the worker's or IB's)."""
        try:
            step()
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
        self.deliver_bars(new)
        self.after_bars()  # after the orders: the account view and the checkpoint are off the path to them

    def deliver_bars(self, new: np.ndarray, *, inline: bool = False) -> None:
        """Deliver the completed bars ``new`` (int64 ns stamps) to every strategy and route their orders
        (under :attr:`lock`). ``inline``: on the IB loop thread (:mod:`~copilot_quant.live.inline`), where
        IB's messages before the bar are already handled and nothing may wait for the loop."""
        if not inline:
            # Fills came since the account was read: read it again now, on the loop, while the fills'
            # journal commits are waited for and the bar's data is built (no round trip before on_data).
            self._account.prefetch(self._broker, _POSITION_SYNC_S)
        # The fills that came with the bar first: their commit on the journal writer thread needs the GIL
        # back after SQLite's I/O, which the pandas work below would keep for up to the 5 ms switch interval.
        self._broker.flush_fills()
        # One DataFrame per step: pandas calls cost tens of microseconds each on a cold CPU between bars, so
        # the path from a bar to its orders decides on int stamps, and the window was built ahead, after the
        # bar before's orders (BarClock.prepare), and is only brought up to date here.
        stamps: list[int] = new.tolist()
        data = self._clock.window(stamps[-1])
        positions = pd.DatetimeIndex(data.index).asi8 if len(stamps) > 1 else None
        for k, stamp_ns in enumerate(stamps):
            if self._stop.is_set():
                return
            stamp = self._clock.stamp(stamp_ns)  # built ahead too
            # As in a backtest, the fills that happened before this bar closed reach on_fill before
            # on_data, and the account view already includes them.
            self._broker.flush_fills()
            if self._fills.drain():
                if inline:  # what IB sent before the bar is in ib_async's caches (positions: checked first)
                    self.read_account_eager()
                else:  # IB's position update follows the execution: wait for it, read the account in one trip
                    self._refresh_account(_POSITION_SYNC_S)
            if positions is None or k == len(stamps) - 1:
                window = data
            else:
                window = data.iloc[: int(positions.searchsorted(stamp_ns, side="right"))]
            continuous = self.continuous
            beside = continuous.bars.closes(stamp_ns) if continuous is not None else None
            self._account.marks.set(window, self._clock.symbols, beside)
            self._deliver(stamp, window, inline)
            self._clock.last_bar = stamp
            self._fills.drain()

    def read_account_eager(self) -> None:
        """Read the account from ib_async's caches (IB loop thread: :meth:`AccountState.refresh_eager`)."""
        clock = self._clock
        self._account.refresh_eager(
            self._broker, clock.trading_day, pnl=self.wants_pnl(), now_ns=clock.server_ns
        )

    def after_bars(self, *, inline: bool = False) -> None:
        """What follows a step's orders, off the path from a bar to them: the account read, a checkpoint,
        and the next bar's window built ahead (:meth:`BarClock.prepare`)."""
        if inline:
            self.read_account_eager()
        else:
            self._refresh_account(0.0)
        self._checkpointer.after_step()
        self._clock.prepare()

    def _deliver(self, stamp: pd.Timestamp, window: pd.DataFrame, inline: bool = False) -> None:
        """Every strategy decides on the bar, in the order they were added; then their orders are routed
        together (one journal sync for all of them), as a backtest fills them all at the same next price."""
        self.bars_processed += 1
        continuous = self.continuous
        rolls = continuous.rolls_at(self._clock.last_bar, stamp) if continuous is not None else []
        orders: list[tuple[StrategySlot, Order]] = []
        slots = self._slots()
        # Each strategy gets a window of its own, as in a backtest: a column one adds (data["sma"] = …) is
        # not in the next one's. Shallow copies (the values shared), made before any strategy runs.
        windows = [window] if len(slots) == 1 else [window.copy(deep=False) for _ in slots]
        for slot, own in zip(slots, windows, strict=True):
            decided = self._rolled(slot, rolls) if continuous is not None and rolls else []
            decided += self._decide(slot, stamp, own)
            for order in decided:
                if continuous is not None:  # closing an earlier contract: by the strategy's own book
                    continuous.symbols.route(order, stamp.value, slot.book.quantity)
                slot.add(order)
                orders.append((slot, order))
        if orders:
            self._router.submit_all(orders, inline=inline)

    def _rolled(self, slot: StrategySlot, rolls: list[Roll]) -> list[Order]:
        """The automatic roll's orders for ``slot`` (from its own positions), after its ``on_roll`` calls."""
        assert self.continuous is not None
        held = {symbol: p.quantity for symbol, p in slot.book.positions().items()}
        return self.continuous.on_rolls(slot.name, slot.strategy, held, rolls)

    def _decide(self, slot: StrategySlot, stamp: pd.Timestamp, window: pd.DataFrame) -> list[Order]:
        """``slot``'s strategy's orders for the bar (none if it failed or returned something else)."""
        started = time.perf_counter()
        try:
            orders = slot.strategy.on_data(stamp, window)
        except Exception as exc:
            self._errors.strategy_failed(
                slot.name, exc, f"{type(exc).__name__}: {exc}", f"in on_data at {stamp}"
            )
            return []
        finally:
            took = time.perf_counter() - started
            if took > self.slowest[1]:
                self.slowest = (slot.name, took)
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
                order.timestamp = self._clock.stamp_datetime(stamp.value)
        return list(orders)
