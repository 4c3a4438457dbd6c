"""The reconciler: the journal and IB compared and repaired, as an explicit state machine.

States and moves::

    IDLE ──request()──▶ DUE ──run()──▶ FETCHING ──▶ APPLYING ──▶ CLEAN     (nothing to report)
                         ▲                 │            │    └──▶ DIVERGED  (differences reported)
                         │                 └─── error ──┴──────▶ FAILED ──(backoff passed)──┐
                         └──────────────────────────────────────────────────────────────────┘

* ``CLEAN`` / ``DIVERGED``: the books were compared and repaired (:attr:`Reconciler.reconciled`). Fills
  and status changes that happened while the engine was away are news (recorded, delivered once): CLEAN.
  What needs a trader's attention (a trade outside the engine, a position the journal cannot explain)
  is reported, never adopted: DIVERGED. Orders go out in both — except for a symbol whose position
  disagrees with the books (below).
* ``FAILED``: IB could not be asked or the journal could not be written. The reconciliation is due again
  after a capped, jittered backoff; until one succeeds the engine routes no order (trading on
  unreconciled books could send an order that already went out, or size from fills it never saw).

Positions: after the repairs, IB's netted position in each symbol is compared with the strategies' books
(:func:`~copilot_quant.journal.positions.position_gaps`) and the
:class:`~copilot_quant.live.position_guard.PositionGuard` blocks the symbols that disagree (DIVERGED; the
other symbols trade on). A fill made while the engine was away is not a mismatch: it was just journaled and
counts. :meth:`Reconciler.adopt` makes the next reconciliation adopt IB's positions instead: adjusting
journal records (:mod:`~copilot_quant.journal.adjustments`) so that the books equal IB, booked into the
running strategies' books through ``adjusted``. While a symbol is blocked the reconciliation runs again
every :attr:`Reconciler.recheck_s` seconds (``recheck``; it says nothing when it finds the same), so that a
position fixed in TWS resumes trading without a reconnect; :meth:`Reconciler.recheck_soon` (the
:class:`~copilot_quant.live.position_watch.PositionWatch`) makes one due at once. A blocking gap is
confirmed by a second read of IB first (:meth:`Reconciler._confirmed`).

Every change is emitted on :attr:`Reconciler.state_changed` as ``(old, new, reason)``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from eventkit import Event

from copilot_quant.brokers.connection import IBConnection
from copilot_quant.brokers.ib_modify import held_terms
from copilot_quant.brokers.live_broker_adapter import LiveBrokerAdapter
from copilot_quant.brokers.reconciliation import BrokerState, fetch_broker_state
from copilot_quant.brokers.reconnect import Backoff
from copilot_quant.errors import ConfigError, JournalError
from copilot_quant.journal import EventKind, ReconcileReport, TradeJournal
from copilot_quant.journal.adjustments import record_adjustments
from copilot_quant.journal.positions import PositionGap, adoption_plan, position_gaps
from copilot_quant.journal.reconcile import reconcile as reconcile_journal
from copilot_quant.journal.records import JournalOrder
from copilot_quant.live.events import ErrorLog, EventLog
from copilot_quant.live.position_guard import PositionGuard
from copilot_quant.live.reconcile_notes import ReconcileNotes, reconcile_notes
from copilot_quant.model.instruments import multiplier_of
from copilot_quant.model.orders import Fill, Order, OrderStatus

__all__ = ["ReconcileState", "Reconciler"]

log = logging.getLogger(__name__)


class ReconcileState(StrEnum):
    IDLE = "idle"
    DUE = "due"
    FETCHING = "fetching"
    APPLYING = "applying"
    CLEAN = "clean"
    DIVERGED = "diverged"
    FAILED = "failed"


_R = ReconcileState
_ALLOWED: dict[ReconcileState, frozenset[ReconcileState]] = {
    _R.IDLE: frozenset({_R.DUE}),
    _R.DUE: frozenset({_R.FETCHING, _R.DUE}),
    _R.FETCHING: frozenset({_R.APPLYING, _R.FAILED}),
    _R.APPLYING: frozenset({_R.CLEAN, _R.DIVERGED, _R.FAILED}),
    _R.CLEAN: frozenset({_R.DUE}),
    _R.DIVERGED: frozenset({_R.DUE}),
    _R.FAILED: frozenset({_R.DUE}),
}

#: When what a reconciliation finds happened, by the reason it ran.
_AWAY = {"start": "while the engine was not running", "reconnect": "while disconnected"}


def _records(journal: TradeJournal, report: ReconcileReport) -> dict[str, JournalOrder]:
    """The journal's records of the orders the report names, by ref."""
    refs = {e.order_ref for e in report.missing_fills if e.order_ref}
    refs |= {c.order_ref for c in report.status_changes} | {m.order_ref for m in report.quantity_mismatches}
    return {ref: journal.order(ref) for ref in refs if journal.has_order(ref)}


def _journaled(journal: TradeJournal, state: BrokerState, ref: str | None, unseen: float) -> bool:
    """Whether the journal already holds the fills of ``ref`` that IB no longer returns as executions
    (a live fill journaled before IB's executions window moved past it)."""
    if not ref or not journal.has_order(ref):
        return False
    seen = sum(e.quantity for e in state.executions if e.order_ref == ref)
    held = sum(f.quantity for f in journal.fills(order_ref=ref))
    return held >= seen + unseen - 1e-9


#: Retries of a failed reconciliation: soon at first, then at most every 30 s, forever.
RETRY = Backoff(initial=1.0, maximum=30.0, factor=2.0, jitter=0.2, max_attempts=None)

#: How often (seconds) a reconciliation re-checks IB's positions while a symbol is blocked.
RECHECK_S = 30.0
#: ... and how soon the first re-check after a new block runs.
FIRST_RECHECK_S = 2.0

#: ``adjusted(strategy, symbol, signed quantity, price)``: an adjustment to book into a running strategy.
Adjusted = Callable[[str, str, float, float], None]


@dataclass(frozen=True, slots=True, eq=False)
class _Adopt:
    """A pending request to adopt IB's positions at the next reconciliation (compared by identity: a
    request made while a reconciliation runs is a new one)."""

    strategy: str | None


class Reconciler:
    """Runs reconciliations on the worker thread; :meth:`request` may be called from any thread.

    ``adopt(order_ref, record, ib_id, perm_id)`` is called for each of our orders still working at IB
    that this process does not track (a restart); ``deliver(fill, order_ref)`` for each fill found missing;
    ``guard`` takes the position gaps found; ``adjusted`` books an adoption's adjustment into a running
    strategy's book, ``price_of(symbol)`` prices a position adopted beside the strategies' (IB's average cost).
    """

    def __init__(
        self,
        *,
        connection: IBConnection,
        broker: LiveBrokerAdapter,
        journal: Callable[[], TradeJournal | None],
        events: EventLog,
        errors: ErrorLog,
        deliver: Callable[[Fill, str], None],
        adopted: Callable[[str, Order], None] | None = None,
        retry: Backoff = RETRY,
        guard: PositionGuard | None = None,
        adjusted: Adjusted | None = None,
        price_of: Callable[[str], float | None] = lambda symbol: None,
        unjournaled: Callable[[str], bool] = lambda exec_id: False,
    ) -> None:
        self._conn = connection
        self._broker = broker
        self._journal = journal
        self._events = events
        self._errors = errors
        self._deliver = deliver
        self._adopted = adopted
        self._retry = retry
        self.guard = guard if guard is not None else PositionGuard(events=events, errors=errors)
        self._adjusted = adjusted
        self._price_of = price_of
        #: Whether an execution id reached the adapter after the stop closed the journal (and forget it): the
        #: adapter has seen it, so it would not hand it over again; it is recorded here instead.
        self._unjournaled = unjournaled
        self._adopt: _Adopt | None = None
        #: While a symbol is blocked, the reconciliation runs again every ``recheck_s`` seconds, so that a
        #: position fixed in TWS resumes trading without a reconnect.
        self.recheck_s = RECHECK_S
        self._recheck_at: float | None = None
        self._lock = threading.Lock()
        self._state = ReconcileState.IDLE
        self._failures = 0
        self._retry_at = 0.0
        self._reason = ""
        self.state_changed = Event("state_changed")
        self.last_report: ReconcileReport | None = None
        #: What IB reported for the last successful reconciliation (positions, cash, orders).
        self.last_state: BrokerState | None = None
        #: The position gaps the last reconciliation found (blocking or explained), by symbol.
        self.last_gaps: tuple[PositionGap, ...] = ()
        #: The last report in a trader's words.
        self.last_notes: ReconcileNotes | None = None
        #: Why the last reconciliation failed, or None.
        self.last_failure: str | None = None
        self._unseen_alerted: set[tuple[str | None, int | None, int | None, float]] = set()

    @property
    def state(self) -> ReconcileState:
        return self._state

    @property
    def retry_at(self) -> float | None:
        """Monotonic time of the next retry of a failed reconciliation, or of the next re-check while a
        symbol is blocked by a position mismatch; None if neither is scheduled."""
        if self._state is ReconcileState.FAILED:
            return self._retry_at
        return self._recheck_at if self.reconciled else None

    @property
    def reconciled(self) -> bool:
        """Whether the books were compared and repaired since the last (re)connect: orders may go out."""
        return self._state in (ReconcileState.CLEAN, ReconcileState.DIVERGED)

    def _move(self, new: ReconcileState, reason: str) -> None:
        with self._lock:
            old = self._state
            if new not in _ALLOWED[old]:
                raise JournalError(f"reconciliation cannot go from {old} to {new}")  # a bug, said loudly
            self._state = new
        if old is not new:
            log.debug("reconciliation %s -> %s (%s)", old, new, reason)
            self.state_changed.emit(old, new, reason)

    def request(self, reason: str) -> None:
        """Make a reconciliation due (after a reconnect); the worker runs it before its next step."""
        self._reason = reason
        self._failures = 0
        self._retry_at = 0.0
        self._move(ReconcileState.DUE, reason)

    def adopt(self, strategy: str | None = None) -> None:
        """Adopt IB's positions at the next reconciliation (made due now): journal adjustments so that the
        books equal what IB holds (:func:`~copilot_quant.journal.positions.adoption_plan`; ``strategy``
        puts each whole difference on that strategy's book). Once: a later mismatch blocks again."""
        self._adopt = _Adopt(strategy)
        if self._state not in (ReconcileState.FETCHING, ReconcileState.APPLYING):
            self.request("adopt")  # else the running reconciliation makes it due again when it ends

    def recheck_soon(self) -> None:
        """Make a re-check due now, if the books are reconciled (worker thread: the position watch)."""
        if self.reconciled:
            self._recheck_at = time.monotonic()

    def is_due(self) -> bool:
        """Whether the worker should run a reconciliation now (due, failed and its retry time came, or a
        symbol is blocked and its re-check time came)."""
        state = self._state
        if state is ReconcileState.DUE:
            return True
        if self.reconciled:
            recheck = self._recheck_at
            return recheck is not None and time.monotonic() >= recheck
        return state is ReconcileState.FAILED and time.monotonic() >= self._retry_at

    def run_due(self) -> bool:
        """Run a due reconciliation; ``True`` if the books are reconciled afterwards (worker thread)."""
        if self.is_due():
            if self._state is ReconcileState.FAILED:
                self._move(ReconcileState.DUE, f"retry {self._failures} of {self._reason}")
            elif self._state is not ReconcileState.DUE:
                self.request("recheck")  # a symbol is blocked: has IB's position come to agree?
            try:
                self.run(self._reason or "retry")
            except JournalError:
                raise  # the engine halts trading on a journal failure
            except Exception as exc:  # recorded by run(); the scheduled retry is the answer
                log.debug("reconciliation failed: %s", exc)
        return self.reconciled

    def run(self, reason: str = "manual") -> ReconcileReport:
        """Compare the journal with IB's orders, executions and positions; repair what can be repaired.

        Raises what failed (after moving to ``FAILED`` and scheduling the retry).
        """
        if self._state is not ReconcileState.DUE:
            self.request(reason)
        self._move(ReconcileState.FETCHING, reason)
        taken = self._adopt
        try:
            journal = self._journal()
            if journal is None:
                raise JournalError("no journal is open; start() opens it")
            account = journal.account or self._conn.account or None
            self._broker.flush_journal()  # compare IB with everything already reported, not a queue behind
            state = self._conn.run(fetch_broker_state(self._conn.ib, account), timeout=30)
            self._move(ReconcileState.APPLYING, reason)
            report = reconcile_journal(
                journal.orders("active"),
                state.orders,
                state.executions,
                journal.fills(),
                journal.account,
                broker_positions=state.positions,
            )
            self._apply(journal, report, state.working)
            gaps = position_gaps(
                journal.orders(), journal.fills(), state.positions, report.foreign_executions
            )
            gaps = self._confirmed(journal, account, gaps)
            if taken is not None and gaps:
                gaps = self._adopt_positions(journal, gaps, state, report, taken)
        except Exception as exc:
            self._failed(reason, exc)
            raise
        if self._adopt is taken:
            self._adopt = None
        self.last_report = report
        self.last_state = state
        self.last_gaps = gaps
        self._alert_unseen(state, journal)
        self.last_failure = None
        self._failures = 0
        fresh = self.guard.update(gaps)
        away = _AWAY.get(reason, "since the last check")
        notes = reconcile_notes(report, _records(journal, report), away, gaps)
        repeated = reason == "recheck" and notes == self.last_notes
        self.last_notes = notes
        if not repeated:  # a re-check that found what the last one did says nothing again
            self._say(reason, notes, state)
        # a new block may be one of our fills in flight (IB's positions are read before its executions): the
        # first look again comes soon
        delay = min(FIRST_RECHECK_S, self.recheck_s) if fresh else self.recheck_s
        self._recheck_at = time.monotonic() + delay if self.guard.gaps() else None  # else the watch asks
        self._move(ReconcileState.DIVERGED if notes.attention else ReconcileState.CLEAN, reason)
        if self._adopt is not None:  # asked for while this one ran: adopt at the next, at once
            self.request("adopt")
        return report

    def _say(self, reason: str, notes: ReconcileNotes, state: BrokerState) -> None:
        for line in notes.news:
            log.info("reconcile (%s): %s", reason, line)
        for line in notes.attention:
            log.warning("reconcile (%s): needs attention: %s", reason, line)
        lines = notes.lines
        detail = f"{reason}: " + ("clean" if not lines else "; ".join(lines))
        if state.cash is not None:  # information only: deposits and fees never reach the journal
            detail += f" (IB cash {state.cash:,.2f}, not compared)"
        # each finding was logged just above (attention as a warning): the event itself (journaled) is one
        # INFO line, so a finding never prints twice
        self._events.emit(EventKind.RECONCILE, detail, level=logging.INFO)

    def _confirmed(
        self, journal: TradeJournal, account: str | None, gaps: tuple[PositionGap, ...]
    ) -> tuple[PositionGap, ...]:
        """The gaps, less the blocking ones a second look at IB does not find again.

        IB's positions are read before its executions: one of our fills that lands in between is in the
        journal but not yet in the position, a gap for an instant. Read again, a fill can fall in one of
        the two windows only, so a gap in both reads is real (only when there is one: it costs a trip)."""
        if all(g.explained for g in gaps):
            return gaps
        again = self._conn.run(fetch_broker_state(self._conn.ib, account), timeout=30)
        report = reconcile_journal(
            journal.orders("active"), again.orders, again.executions, journal.fills(), journal.account
        )
        seen = position_gaps(
            journal.orders(),
            journal.fills(),
            again.positions,
            report.foreign_executions,
            unjournaled=report.missing_fills,
        )
        real = {g.symbol for g in seen if not g.explained}
        return tuple(g for g in gaps if g.explained or g.symbol in real)

    def _adopt_positions(
        self,
        journal: TradeJournal,
        gaps: tuple[PositionGap, ...],
        state: BrokerState,
        report: ReconcileReport,
        request: _Adopt,
    ) -> tuple[PositionGap, ...]:
        """Journal the adjustments that make the books equal IB (a trader asked for it); returns the gaps
        left (those whose adoption was refused: several strategies, no name)."""
        for gap in gaps:
            reason = f"adopted IB's position {gap.symbol} {gap.broker:g} (the books said {gap.journal:g})"
            try:
                plan = adoption_plan(gap, request.strategy)
                done = record_adjustments(journal, gap.symbol, plan, reason, price=self._price_of(gap.symbol))
            except ConfigError as exc:  # ambiguous, or no price: the symbol stays blocked, and says why
                self._errors.record(f"IB's position not adopted: {exc}", "position")
                continue
            for adjustment in done:
                whose = adjustment.owner or "no strategy"
                self._events.emit(
                    EventKind.ALERT,
                    f"{reason}: journaled {adjustment.quantity:+g} {gap.symbol} @ {adjustment.price:g} for "
                    f"{whose} (order {adjustment.order_ref}, tag 'adjustment')",
                    level=logging.WARNING,
                )
                if adjustment.owner is not None and self._adjusted is not None:
                    self._adjusted(adjustment.owner, gap.symbol, adjustment.quantity, adjustment.price)
        return position_gaps(journal.orders(), journal.fills(), state.positions, report.foreign_executions)

    def _alert_unseen(self, state: BrokerState, journal: TradeJournal) -> None:
        """Alert once per order on fills IB counts in an order's filled quantity but no longer returns as
        executions (older than ``reqExecutions``' window, docs/ib-behaviours.md row 10) and the journal
        does not hold either: not booked, since IB no longer gives their price or execution id."""
        for gap in state.unseen_fills:
            key = (gap.order_ref, gap.perm_id, gap.broker_order_id, gap.quantity)
            if key in self._unseen_alerted or _journaled(journal, state, gap.order_ref, gap.quantity):
                continue
            self._unseen_alerted.add(key)
            who = gap.order_ref or f"IB order {gap.broker_order_id}"
            self._events.emit(
                EventKind.ALERT,
                f"IB reports {gap.quantity:g} {gap.symbol} {gap.side} filled for {who} without the execution "
                "(older than IB's executions window): not in the journal or the books; check the account "
                "statement and the position",
                level=logging.WARNING,
            )

    def _failed(self, reason: str, exc: BaseException) -> None:
        delay = self._retry.delay(self._failures)
        self._failures += 1
        self._retry_at = time.monotonic() + delay
        self.last_failure = f"{type(exc).__name__}: {exc}"
        self._errors.record(
            f"reconciliation ({reason}) failed: {exc}; no orders are sent until it succeeds "
            f"(retry {self._failures} in {delay:.0f}s)",
            "reconcile",
        )
        self._move(ReconcileState.FAILED, reason)

    def _apply(
        self, journal: TradeJournal, report: ReconcileReport, working: Mapping[str, tuple[int, int]]
    ) -> None:
        broker = self._broker
        for record, found in report.unconfirmed_submissions:
            if found.broker_order_id is not None:
                journal.record_submitted(record.order_ref, found.broker_order_id, found.perm_id)
        for execution in report.missing_fills:
            ref = execution.order_ref
            tracked = broker.tracker.find(order_ref=ref) if ref else None
            if tracked is not None and self._unjournaled(execution.exec_id):
                tracked = None  # it came after the last stop closed the journal: recorded and delivered here
            if tracked is not None and broker.deliver_execution(tracked, execution):
                continue  # the adapter journals it and delivers it (once) like a live execution
            # IB never reuses an execution id: one journaled for another order is still this order's fill
            # (the journal records it with an alert); count it as the adapter does for a tracked order
            reused = (
                bool(ref)
                and journal.knows_fill(execution.exec_id)
                and not journal.knows_fill(execution.exec_id, ref)
            )
            if not journal.record_fill(
                ref,
                execution.exec_id,
                execution.symbol,
                execution.side,
                execution.quantity,
                execution.price,
                execution.time,
                execution.commission,
            ):
                continue
            if reused:
                self._errors.record(
                    f"execution id {execution.exec_id} was reported before for another order; recorded as "
                    f"a fill of {ref} too (found by reconciliation)",
                    "order",
                )
            order = journal.order(ref).to_order() if ref and journal.has_order(ref) else None
            if order is None:
                continue
            self._deliver(
                Fill(
                    order,
                    float(execution.price),
                    float(execution.quantity),
                    float(execution.commission or 0.0),
                    execution.time,
                    execution.exec_id,
                    multiplier=multiplier_of(order.symbol),
                ),
                ref or "",
            )
        for change in report.status_changes:
            journal.record_status(
                change.order_ref, change.broker_status, change.broker_filled, reason="reconciled with IB"
            )
        for record in report.vanished_orders:
            if record.order_ref not in working:
                journal.record_status(
                    record.order_ref, OrderStatus.CANCELLED, reason="no longer known to IB (reconciled)"
                )
        for record in report.unsent_intents:
            journal.record_rejected(
                record.order_ref, "journaled but never sent before a restart; not resent (reconciled)"
            )
        self._adopt_working(journal, working)
        if report.foreign_orders or report.foreign_executions:
            self._events.emit(
                EventKind.ALERT,
                f"{len(report.foreign_orders)} order(s) and {len(report.foreign_executions)} execution(s) "
                "placed outside the engine: reported, not adopted",
                level=logging.WARNING,
            )

    def _adopt_working(self, journal: TradeJournal, working: Mapping[str, tuple[int, int]]) -> None:
        """Our orders still working at IB but not tracked by this process (a restart): track them again."""
        broker = self._broker
        for ref, (ib_id, perm_id) in working.items():
            if not ref or broker.tracker.find(order_ref=ref) is not None or not journal.has_order(ref):
                continue
            record = journal.order(ref)
            if record.state.is_done:
                continue
            tracked = broker.adopt(record.to_order(), ref, ib_id, perm_id)
            log.info("order %s (IB %d) is still working at IB: tracking it again", ref, ib_id)
            held = held_terms(tracked.order, tracked.ib_order)
            if held is not None:  # a modification the journal did not see to the end: IB's terms count
                log.warning(
                    "order %s: IB holds other terms than the journal (%s); taking IB's",
                    ref,
                    held.describe(tracked.order),
                )
                held.apply_to(tracked.order)
                journal.record_modified(ref, tracked.order, "terms as IB holds them (reconciled)")
            if self._adopted is not None:
                self._adopted(record.strategy or "", tracked.order)
