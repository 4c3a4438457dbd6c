"""Journal-gated, exactly-once delivery of fills to the broker adapter's fill callbacks.

With a journal attached, a fill reaches the callbacks only after the journal committed its ``execId`` for
the order — except a staged fill, below — (on the journal writer thread, so the IB loop keeps decoding meanwhile; crash-safe, without a
disk sync of its own: see :mod:`copilot_quant.journal.durability`); an ``execId`` the
journal already holds is never delivered again — across reconnects and process restarts. A fill the
journal could not record is held back (the journal-failure callbacks halt trading) and reconciliation
delivers it once a working journal is back. Without a journal (or an order ref) fills are delivered at once.

**Staged fills** (:attr:`FillGate.commit_on_loop`, the engine's inline dispatch): on the IB loop thread a
new fill is delivered at once and its journal write is *staged*: handed to the journal writer once the loop
is done with what it is handling now (crash-safe, as above). A fill usually arrives in the same burst of
IB's messages as the bar the strategy then decides on, so its write is committed after that bar's orders
are on the wire, and the path from the bar to its orders holds one journal write, the intents' (synced to the intent log).
Why a fill may reach ``on_fill`` before its commit while an intent may not reach IB before its own: IB
keeps the fill. A crash in between loses it from the journal only; the restart's
reconciliation reads IB's executions and journals it, exactly as a fill that came while the engine was down
(the same words, the same books). Never twice: a staged execution counts as known (a repeat from IB is
not delivered again) from the moment it is staged. If its commit fails, trading halts (a journal failure);
the fill was delivered, and the next start's reconciliation journals it from IB's executions and passes it
to the new run's strategy as a fill made while the engine was down. :meth:`FillGate.flush` waits for the
fills' delivery; the adapter's ``flush_journal`` hands the staged writes over and waits for their commit.

Threading: :meth:`FillGate.pass_fill` runs on the IB loop thread (and stages there with
:attr:`FillGate.commit_on_loop`). Callbacks registered as thread-safe
(the engine's: it only queues the fill for its worker) run on the writer thread right after the commit
(a staged fill's on the loop thread, at once);
the others on the loop thread (posted back from the writer thread) — when there are none, a fill reaches
the engine without that hop back to the loop. :meth:`FillGate.flush` from any other thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from copilot_quant.backtest.orders import Fill
from copilot_quant.errors import BrokerError, JournalError
from copilot_quant.journal import TradeJournal
from copilot_quant.journal.durability import FILL_DURABILITY
from copilot_quant.journal.writer import JournalWriter

if TYPE_CHECKING:
    from copilot_quant.brokers.runtime import IBRuntime

__all__ = ["FillGate"]

log = logging.getLogger(__name__)

#: How often a flush waiting for deliveries checks that the IB loop still runs.
_LOOP_CHECK_S = 0.1


Write = Callable[[TradeJournal], bool]


@dataclass(slots=True)
class _Staged:
    """A fill delivered on the loop thread whose journal write is not committed yet."""

    journal: TradeJournal
    write: Write
    exec_id: str
    order_ref: str


class FillGate:
    """Books (``book``) and delivers (``emit``) each new fill once, after the journal recorded it."""

    def __init__(
        self,
        runtime: Callable[[], IBRuntime],
        writer: JournalWriter,
        *,
        book: Callable[[Fill], Any],
        emit: Callable[[Fill], Any],
        emit_anywhere: Callable[[Fill], Any] = lambda fill: None,
        loop_wanted: Callable[[], bool] = lambda: True,
        journal_failed: Callable[[JournalError], Any],
    ) -> None:
        self._runtime = runtime
        self._writer = writer
        self._book = book
        self._emit = emit  # the callbacks that run on the loop thread
        self._emit_anywhere = emit_anywhere  # the thread-safe ones
        self._loop_wanted = loop_wanted  # whether any callback must run on the loop thread
        self._journal_failed = journal_failed
        self._posted = 0  # fills handed to the loop for delivery (written by the writer thread only)
        self._emitted = 0  # … and delivered (written by the loop thread only)
        self._passed = 0  # fills handed to the journal writer (written by the loop thread only)
        #: Every fill handed to the gate so far (journaled or not; written by the loop thread only).
        self.passed = 0
        #: Deliver each fill on the IB loop thread at once and stage its journal write (see the module
        #: docstring, "staged fills"), instead of delivering it once the writer thread committed it (the
        #: engine's inline dispatch sets it: the bar behind the fill is handled on that thread too, and
        #: would otherwise wait for the fill's commit). Broker events journaled before the fill may still
        #: be queued at the writer: IB does not order a fill and its order's status either, and the
        #: journal takes them in any order.
        self.commit_on_loop = False
        self._committing = 0  # fills being delivered on the loop thread right now (written there only)
        #: Fills delivered on the loop thread whose journal write is not committed yet (loop thread only).
        self._staged: list[_Staged] = []
        #: Their (exec id, order ref), until committed: such an execution is known, never delivered again.
        self._staged_keys: set[tuple[str, str]] = set()
        self._settled = 0  # … and delivered, found already journaled, or failed (under _delivered)
        self._delivered = threading.Condition()  # notified whenever _settled grows

    def pass_fill(self, fill: Fill, exec_id: str, order_ref: str, journal: TradeJournal | None) -> None:
        """A complete execution of the order journaled as ``order_ref``: journal it, then deliver it."""
        self.passed += 1
        if journal is None or not order_ref:
            self._book(fill)
            self._emit_anywhere(fill)
            self._emit(fill)
            return
        try:
            known = (exec_id, order_ref) in self._staged_keys or journal.knows_fill(exec_id, order_ref)
        except JournalError as exc:
            self._held_back(exec_id, exc)
            return
        if known:
            log.info("execution %s is already in the journal; not delivered again", exec_id)
            return
        self._book(fill)
        side = fill.order.side

        def write(j: TradeJournal) -> bool:
            return j.record_fill(
                order_ref,
                exec_id,
                fill.symbol,
                side,
                fill.fill_quantity,
                fill.fill_price,
                fill.timestamp,
                fill.commission,
            )

        def written(fresh: bool) -> None:  # writer thread
            if fresh:
                try:
                    self._emit_anywhere(fill)
                finally:
                    self._post(fill)
            else:
                log.info("execution %s is already in the journal; not delivered again", exec_id)
                self._settle()

        def failed(exc: JournalError) -> None:  # writer thread; on_failure (trading halts) follows
            log.error("execution %s not delivered: the journal could not record it (%s)", exec_id, exc)
            self._settle()

        if self.commit_on_loop and self._runtime().on_loop_thread():
            self._passed += 1
            self._committing += 1  # in flight on this thread: a flush elsewhere waits for it
            try:
                self._stage(_Staged(journal, write, exec_id, order_ref))
                written(True)  # delivered now; journaled with the bar's intents, or just after (module doc)
            finally:
                self._committing -= 1
            return
        # crash-safe: the fill goes to on_fill once committed, without a disk sync of its own (durability.py)
        self._writer.submit(journal, write, then=written, on_error=failed, durability=FILL_DURABILITY)
        self._passed += 1  # after submit: a flush counting it also finds it pending at the writer

    # ------------------------------------------------------------------ staged fills (IB loop thread)
    def _stage(self, staged: _Staged) -> None:
        """Hold ``staged``'s journal write for the bar's intents; hand it to the writer once the loop is done
        with what it is handling now, if no intent took it by then."""
        self._staged.append(staged)
        self._staged_keys.add((staged.exec_id, staged.order_ref))
        if len(self._staged) == 1:
            try:
                self._runtime().defer(self.hand_over_staged)
            except BrokerError:  # the loop is going away: to the writer now
                self.hand_over_staged()

    @property
    def staged(self) -> int:
        """Fills delivered whose journal write is still staged (not committed, nor handed to the writer)."""
        return len(self._staged)

    def hand_over_staged(self) -> None:
        """Hand every staged fill write to the journal writer (crash-safe, in order). Any thread once the
        loop is gone; else the loop thread (the engine's stop and the reconciler hand them over there)."""
        staged, self._staged = self._staged, []
        for item in staged:
            self._submit_staged(item)

    def _submit_staged(self, item: _Staged) -> None:
        key = (item.exec_id, item.order_ref)

        def done(fresh: bool) -> None:  # writer thread: the journal's index knows it from now on
            self._staged_keys.discard(key)
            if not fresh:
                log.info("execution %s was already in the journal (recorded meanwhile)", item.exec_id)

        def failed(exc: JournalError) -> None:
            log.error(
                "execution %s was delivered but the journal could not record it (%s); the next start's "
                "reconciliation journals it from IB's executions",
                item.exec_id,
                exc,
            )

        self._writer.submit(item.journal, item.write, then=done, on_error=failed, durability=FILL_DURABILITY)

    def _post(self, fill: Fill) -> None:
        """Hand ``fill`` to the loop thread's callbacks (writer thread); settled at once when there are none."""
        if not self._loop_wanted():
            self._settle()
            return
        self._posted += 1
        try:
            self._runtime().call_soon(self._emit_posted, fill)
        except BrokerError:  # the IB loop is gone (shutting down): deliver from here, not never
            self._emit_posted(fill)

    def _settle(self) -> None:
        with self._delivered:
            self._settled += 1
            self._delivered.notify_all()

    def _emit_posted(self, fill: Fill) -> None:
        try:
            self._emit(fill)
        finally:
            self._emitted += 1
            self._settle()

    def flush(self, timeout: float) -> bool:
        """Wait until every fill passed so far is journaled and delivered (False on timeout).

        Only the fills are waited for, not the journal's other writes (order statuses) queued behind them,
        and the wait ends when the loop thread has delivered the last one, without a round trip to the
        loop: this is on the path from a bar to its orders when a fill came just before the bar.
        """
        deadline = time.monotonic() + timeout
        target = self._passed
        with self._delivered:
            while self._settled < target:
                left = deadline - time.monotonic()
                if left <= 0 or not self._loop_alive():
                    return False  # timed out, or the loop is gone: what it held will not be delivered now
                if not self._writer.pending and self._posted == self._emitted and not self._committing:
                    break  # nothing in flight any more (a write that raised unexpectedly was logged)
                self._delivered.wait(min(left, _LOOP_CHECK_S))
        return True

    def _loop_alive(self) -> bool:
        try:
            return self._runtime().is_running
        except BrokerError:
            return False

    def _held_back(self, exec_id: str, exc: JournalError) -> None:
        # The journal is the record of what on_fill has seen. A fill it could not record is held back
        # (trading halts now); reconciliation delivers it exactly once when a working journal is back,
        # so a restart never hands the strategy the same execution twice.
        self._journal_failed(exc)
        log.error("execution %s not delivered: the journal could not record it (%s)", exec_id, exc)
