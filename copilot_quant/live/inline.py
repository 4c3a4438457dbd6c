"""Inline dispatch: a completed bar goes from ib_async's handler to the strategies and IB on the loop thread.

ib_async hands every bar update to the data adapter on its loop thread. With inline dispatch (the engine's
default, ``LiveStrategyEngine(inline_dispatch=True)``) the engine runs the whole bar pipeline right there, in
that handler: the bar clock, the fills that came before the bar to ``on_fill``, the data window, every
strategy's ``on_data``, the router (market hours, risk, the journal's intent synced to the disk) and
``placeOrder`` — the order is on the wire when the handler returns, as in a bare ib_async program. The other
way, the worker thread is woken for the bar and hops back to the loop to place the orders: two thread
hand-offs, each waiting for the GIL (see ``benchmarks/bench_live.py``). Fills from the journal writer are
handed to the loop the same way, so ``on_fill`` runs there too; the worker keeps the rest — the rails (kill
files, a pending kill, liveness), reconciliation, the periodic step, held orders, cancel retries — and takes
any bar the loop cannot.

**Ownership** (one lock): the worker's :attr:`~copilot_quant.live.worker.Worker.lock` guards everything
the pipeline touches — the strategies, their slots and books, the router, the bar clock, the account view,
the fill queue's deliveries. The worker holds it for each round; the loop thread only ever *tries* it and,
when the worker has it, leaves the bar to the worker (which is then woken). The loop never waits for the
worker, nor (inline) for itself: no ``runtime.run``/``future.result`` — orders are placed with
:meth:`~copilot_quant.brokers.order_placing.OrderPlacing.place_orders_eager`, the account is read from
ib_async's caches, and the fills' journal commit is waited for on the journal writer, which never waits
for the loop.

**The same rules as the worker**: a bar goes to the worker instead whenever the loop could not do exactly
what the worker does without waiting — the engine not running, the connection not fit to trade, news on the
rails (a kill-switch file, a pending kill, liveness), trading halted (the worker's round first checks
whether the halt is over, and routes nothing while it is not), reconciliation not done or due (nothing is routed
until it is), the bar clock needing to ask IB the time, IB's positions not yet including the fills (the
worker waits for them), held orders or cancels to retry, ``outside_hours`` other than ``'allow'`` (the
router asks IB's clock), continuous futures (a roll starts streams), or a fill callback that must run on
the loop. The router refuses orders while halted or unreconciled on both paths.

**A slow strategy** must not starve ib_async: each ``on_data`` is timed; one that takes longer than
:data:`INLINE_BUDGET_S` turns inline dispatch off for the rest of the run (a WARNING says which strategy
and how long); the worker delivers every later bar. A strategy exception is logged and counted, as on the
worker, and never reaches ib_async.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import Counter
from collections.abc import Callable, Sequence

from copilot_quant.brokers.live_broker_adapter import LiveBrokerAdapter
from copilot_quant.brokers.market_hours import OutsideHours
from copilot_quant.brokers.runtime import IBRuntime
from copilot_quant.errors import BrokerError
from copilot_quant.live.bar_clock import BarClock
from copilot_quant.live.fills import FillDispatcher
from copilot_quant.live.order_router import OrderRouter
from copilot_quant.live.reconciler import Reconciler
from copilot_quant.live.safety import Safety
from copilot_quant.live.strategy_slot import StrategySlot
from copilot_quant.live.worker import Worker

__all__ = ["INLINE_BUDGET_S", "InlineDispatch"]

log = logging.getLogger(__name__)

#: The longest one ``on_data`` may take on IB's loop thread (seconds): beyond it the engine hands every
#: later bar to its worker thread, so that a slow strategy never holds up IB's messages.
INLINE_BUDGET_S = 0.05
#: The longest the loop thread waits for the journal to commit the fills that came before a bar (seconds;
#: the journal writer never waits for the loop, and a commit takes well under a millisecond).
INLINE_FLUSH_S = 0.05
#: How long after a bar's orders went out the loop thread waits before the work that follows them (the
#: account read, the checkpoint, the next window built ahead; seconds). Meanwhile it sits in its poll, without
#: the GIL, so the threads that have work because of those orders run first: the journal writer (the staged
#: fills, the intents' rows) and a gateway in this process (the orders themselves) — Python hands the GIL
#: over only when its holder blocks or after 5 ms.
AFTER_ORDERS_S = 0.001


class InlineDispatch:
    """Runs completed bars and new fills on the IB loop thread when it may (see the module docstring)."""

    def __init__(
        self,
        *,
        runtime: Callable[[], IBRuntime],
        worker: Worker,
        clock: BarClock,
        safety: Safety,
        reconciler: Reconciler,
        broker: LiveBrokerAdapter,
        router: OrderRouter,
        fills: FillDispatcher,
        slots: Callable[[], Sequence[StrategySlot]],
        wake: threading.Event,
        stop: threading.Event,
        running: Callable[[], bool],
    ) -> None:
        self._runtime = runtime
        self._worker = worker
        self._clock = clock
        self._safety = safety
        self._reconciler = reconciler
        self._broker = broker
        self._router = router
        self._fills = fills
        self._slots = slots
        self._wake = wake
        self._stop = stop
        self._running = running
        #: Whether inline dispatch is used at all (the engine's ``inline_dispatch`` option).
        self.enabled = True
        #: Why inline dispatch was turned off for this run (a slow strategy), or None.
        self.off_reason: str | None = None
        #: Bars delivered on the loop thread this run.
        self.bars = 0
        #: Why bar updates went to the worker instead, counted by reason.
        self.handed_over: Counter[str] = Counter()

    @property
    def active(self) -> bool:
        return self.enabled and self.off_reason is None

    def reset(self) -> None:
        """A new run: inline again (if enabled), counters cleared."""
        self.off_reason = None
        self.bars = 0
        self.handed_over.clear()

    # ------------------------------------------------------------------ bars (IB loop thread)
    def on_bars(self) -> None:
        """A streamed bar changed (IB loop thread): deliver what completed here, or wake the worker."""
        try:
            reason = self._bars()
        except Exception:  # never into ib_async: the worker takes the bar
            log.exception("inline bar dispatch failed; the worker takes over")
            reason = "error"
        if reason is not None:
            self.handed_over[reason] += 1
            self._wake.set()

    def _bars(self) -> str | None:
        """None when the loop handled the update; else why the worker must (it is woken)."""
        reason = self._unable()
        if reason is not None:
            return reason
        worker = self._worker
        if not worker.lock.acquire(blocking=False):
            return "worker busy"
        try:
            if not self._broker.flush_fills(INLINE_FLUSH_S):
                return "fills"  # a fill's journal commit is late (a failing disk?): not on this thread
            if not self._broker.positions_include_fills():
                return "positions"  # IB's position update is still on the way: the worker waits for it
            now = self._clock.known_now_ns()
            if now is None:
                return "clock"  # only IB can say whether the bar closed: the worker asks
            new = self._clock.completed(now)
            if self._clock.recheck_at is not None:
                self._wake.set()  # the worker plans its sleep by the settle re-check
            if len(new) == 0:
                if not self._clock.prepared():  # a new bar began: its window is built before it closes
                    self._later(self._prepare)
                return None
            worker.slowest = ("", 0.0)
            worker.guarded(lambda: worker.deliver_bars(new, inline=True))
            self.bars += len(new)
            self._check_budget(*worker.slowest)
        finally:
            worker.lock.release()
        self._later(self._after_bars, AFTER_ORDERS_S)
        return None

    def _unable(self) -> str | None:
        """Why the loop thread may not run the pipeline now (cheap checks, no I/O to IB), or None."""
        if not self.active:
            return "off"
        if not self._running() or self._stop.is_set():
            return "stopped"
        if not self._runtime().on_loop_thread():
            return "thread"
        if not self._safety.may_step():
            return "connection"
        if self._safety.kill_pending.is_set() or self._safety.need_attention():
            return "rails"
        if self._safety.halted is not None:
            return "halted"  # the worker's round checks first whether the halt is over (data flows again)
        if not self._reconciler.reconciled or self._reconciler.is_due():
            return "reconcile"
        if self._router.outside_hours is not OutsideHours.ALLOW:
            return "outside hours"
        if self._worker.continuous is not None:
            return "continuous"
        if self._broker.fills_need_loop:
            return "fill callbacks"
        if any(slot.held or slot.unsent_cancels for slot in self._slots()):
            return "held"
        return None

    def _check_budget(self, name: str, took: float) -> None:
        if took > INLINE_BUDGET_S and self.off_reason is None:
            self.off_reason = f"{name}.on_data took {took * 1000:.0f} ms"
            log.warning(
                "%s.on_data took %.0f ms on IB's loop thread (budget %.0f ms): the engine's worker thread "
                "delivers the bars from now on, so that IB's messages are never held up",
                name,
                took * 1000,
                INLINE_BUDGET_S * 1000,
            )

    def _after_bars(self) -> None:
        """After the orders went out: the account read and a checkpoint (off the path to the orders)."""
        worker = self._worker
        if not worker.lock.acquire(blocking=False):
            return  # the worker reads the account after its own round
        try:
            worker.guarded(lambda: worker.after_bars(inline=True))
        finally:
            worker.lock.release()

    def _prepare(self) -> None:
        """Build the next bar's window ahead (off the path to the orders), unless the worker is busy."""
        worker = self._worker
        if not worker.lock.acquire(blocking=False):
            return  # the worker builds it after its own round's orders
        try:
            worker.guarded(self._clock.prepare)
        finally:
            worker.lock.release()

    # ------------------------------------------------------------------ fills
    def fills_arrived(self) -> None:
        """A fill is queued for its strategy (journal writer thread): deliver it on the loop, else wake the
        worker."""
        if self.active and self._running():
            try:
                self._runtime().defer(self._deliver_fills)
                return
            except BrokerError:  # the loop is gone
                pass
        self._wake.set()

    def _deliver_fills(self) -> None:  # IB loop thread
        worker = self._worker
        if not self.active or not self._running() or not worker.lock.acquire(blocking=False):
            self._wake.set()
            return
        try:
            worker.guarded(self._drain)
        finally:
            worker.lock.release()

    def _drain(self) -> None:
        if self._fills.drain():
            self._worker.read_account_eager()

    def _later(self, fn: Callable[[], None], delay: float = 0.0) -> None:
        with contextlib.suppress(BrokerError):  # the loop is gone: nothing after the orders to do
            self._runtime().defer(fn, delay=delay)
