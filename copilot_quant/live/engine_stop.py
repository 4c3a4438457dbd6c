"""The live engine's stop: the worker ends promptly, then ``on_stop``/``finalize`` run once.

Part of :class:`~copilot_quant.live.engine.LiveStrategyEngine` (a mixin, so that the guide's ``stop()`` stays
on the engine): :meth:`EngineStop.stop` wakes and joins the worker thread, and ``_finish`` — called once, by
whichever thread gets there first (the user's, or the worker as it exits) — drains the last fills, flattens
or leaves the strategies' positions and orders (:mod:`copilot_quant.live.on_stop`), unsubscribes, runs the
strategies' stop hooks and journals the stop.
"""

from __future__ import annotations

import logging
import threading

from copilot_quant.brokers.live_broker_adapter import LiveBrokerAdapter
from copilot_quant.brokers.live_data_adapter import LiveDataFeedAdapter
from copilot_quant.errors import BrokerError
from copilot_quant.journal import EventKind, TradeJournal
from copilot_quant.live.engine_state import EngineState
from copilot_quant.live.gc_policy import BetweenBarsGc
from copilot_quant.live.on_stop import flatten_strategies, journal_stop, leave_orders, run_stop_hooks
from copilot_quant.live.worker import Worker

__all__ = ["EngineStop"]

log = logging.getLogger("copilot_quant.live.engine")  # the engine's log, as before the split

#: The longest a stop with ``flatten_on_stop`` waits for the closing fills (at least ``fill_timeout``).
_FLATTEN_WAIT_S = 10.0


class EngineStop(EngineState):
    """The engine's ``stop()`` and its one-time shutdown (the engine sets the parts below)."""

    data_feed: LiveDataFeedAdapter
    broker: LiveBrokerAdapter
    journal: TradeJournal | None
    flatten_on_stop: bool
    cancel_on_stop: bool
    _owns_journal: bool
    _data_symbols: list[str]
    _state_lock: threading.Lock
    _thread: threading.Thread | None
    _finished: bool
    _stop: threading.Event
    _wake: threading.Event
    worker: Worker
    _gc: BetweenBarsGc

    def stop(self) -> None:
        """Stop the worker promptly, then unsubscribe and call ``on_stop``/``finalize`` once. Idempotent."""
        self._stop.set()
        self._wake.set()
        if self.connection.runtime.on_loop_thread():
            # from a strategy run inline on IB's loop: nothing may wait there; the worker, woken, sees the
            # stop once the loop's dispatch ends and shuts down as it exits
            return
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=self.broker.fill_timeout + 10)
            if thread.is_alive():
                # Never run the shutdown hooks next to a strategy call: the worker runs them as it exits.
                log.warning("the engine worker is still busy; it will finish shutting down after its step")
                return
        self._finish("stop() called")

    def _finish(self, why: str) -> None:
        with self._state_lock:
            if self._finished:
                return
            self._finished = True
        self._running = False
        with self.worker.lock:  # an inline dispatch on IB's loop ends first: no strategy call beside ours
            self._shut_down(why)

    def _shut_down(self, why: str) -> None:
        self._gc.stop()  # the interpreter's collector as it was before start
        self._drain_fills()
        left = ""
        if self.connection.is_connected():
            if self.flatten_on_stop:
                wait = max(self.broker.fill_timeout, _FLATTEN_WAIT_S)
                flatten_strategies(
                    self._slots, self.broker, self.journal, wait, blocked=self.reconciler.guard.refusal
                )
                self.broker.flush_fills()
                self._drain_fills()  # the closing fills reach the books and on_fill before on_stop
            left = leave_orders(self.broker, self.cancel_on_stop)
            try:
                self.data_feed.unsubscribe(self._data_symbols)
                self.data_feed.stop_bar_streams()
            except (BrokerError, TimeoutError, ConnectionError) as exc:
                log.warning("unsubscribing failed: %s", exc)
        run_stop_hooks(self._slots, self._errors)
        self.broker.flush_journal()  # what IB reported up to now is in the journal before it closes
        detail = why + left
        level = logging.WARNING if "still working" in left else logging.INFO
        self._events.emit(EventKind.STOP, detail, level=level, journaled=False)
        self.checkpointer.close()
        journal = self.journal
        if journal is not None:
            journal_stop(journal, detail)
            if self._owns_journal:
                self.broker.journal = None
                journal.close()
                self.journal = None
        log.info("engine stopped: %s", why)

    def _drain_fills(self) -> int:
        """Book queued fills and deliver them to their strategy's ``on_fill`` (worker thread)."""
        return self.dispatcher.drain()
