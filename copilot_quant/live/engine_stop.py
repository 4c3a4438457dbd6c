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
from copilot_quant.live.fills import FillDispatcher
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
    dispatcher: FillDispatcher

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
        detail = why + left
        level = logging.WARNING if "still working" in left else logging.INFO
        self._events.emit(EventKind.STOP, detail, level=level, journaled=False)
        self.checkpointer.close()
        journal = self.journal
        if journal is not None and self._owns_journal:
            self._close_journal(detail)
        elif journal is not None:  # the caller's journal stays open and attached: what IB reports goes on
            self.broker.flush_journal()
            journal_stop(journal, detail)
        log.info("engine stopped: %s", why)

    def _close_journal(self, detail: str | None) -> None:
        """Close the journal this engine opened with everything IB reported up to now in it, the stop last.

        IB's reports keep coming while the engine stops (a fill or a cancel of an order left working). Each
        was journaled by a write that captured the journal on the IB loop thread and ran later on the journal
        writer; one that ran after the close failed ("journal is closed") and engaged the kill switch, which
        cancelled the orders the stop meant to leave. So: the journal is detached first, on the loop thread
        (every report handled before that was handed to the journal, every one after is not), then every
        write handed over is waited for, then the stop is journaled and the journal closed. A report after the
        detach is not journaled now: the next start's reconciliation reads IB's orders and executions and
        records it — as it does for whatever happens while no engine runs — and each fill of those is logged
        as a WARNING (:meth:`~copilot_quant.live.fills.FillDispatcher.left_for_reconciliation`). Waiting for
        them instead would keep the journal open for as long as an order works at IB (a GTC one: days).
        """
        journal = self.journal
        if journal is None:
            return
        self.dispatcher.hold_late()  # the strategies have stopped: fills from now on are not queued for them
        runtime = self.connection.runtime
        try:  # on the loop: a report being handled there now is handed to the journal before this runs
            runtime.call(self._detach_journal)
        except (BrokerError, TimeoutError) as exc:  # the loop is gone (or stuck): nothing more comes from it
            log.debug("journal detached off the IB loop: %s", exc)
            self._detach_journal()
        if not self.broker.flush_journal():
            log.warning("the journal writer did not finish before the journal closes; see the errors")
        for fill in self.dispatcher.take_late():
            if fill.fill_id and journal.knows_fill(fill.fill_id):
                log.info(
                    "fill %s came in as the engine stopped: journaled (its strategy had stopped)",
                    fill.fill_id,
                )
            else:
                self.dispatcher.left_for_reconciliation(fill)
        if detail is not None:
            journal_stop(journal, detail)
        self.journal = None
        journal.close()

    def _detach_journal(self) -> None:
        self.broker.journal = None

    def _drain_fills(self) -> int:
        """Book queued fills and deliver them to their strategy's ``on_fill`` (worker thread)."""
        return self.dispatcher.drain()
