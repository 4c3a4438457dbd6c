"""The journal's order writes: an order's intent, submission, status reports, modification and rejection,
and the broker's errors and the engine's events; half of :class:`~copilot_quant.journal.journal.TradeJournal`.

Every method is one transaction (:meth:`~copilot_quant.journal.storage.JournalStorage.writing`) that also
appends the order's history row (:meth:`JournalOrderWrites._append_history`). The state rules in
:meth:`JournalOrderWrites._next_state` (filled never decreases, finished stays finished) are the ones the
fill writes (:mod:`~copilot_quant.journal.fill_writes`) apply too.
"""

from __future__ import annotations

import logging
import math
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from copilot_quant.errors import JournalError
from copilot_quant.journal.errors import JournalFullError
from copilot_quant.journal.intent_log import IntentRow
from copilot_quant.journal.queries import order_row
from copilot_quant.journal.records import EventKind, order_terms, to_db_time
from copilot_quant.journal.refs import new_order_ref
from copilot_quant.journal.states import JournalOrderState
from copilot_quant.model.orders import Order, OrderSide, OrderStatus, OrderType, TimeInForce

if TYPE_CHECKING:
    from copilot_quant.journal.storage import JournalStorage

__all__ = ["QTY_EPS", "JournalOrderWrites", "finite_or_none", "insert_intents", "intent_row"]

log = logging.getLogger("copilot_quant.journal.journal")  # the journal's one logger, as before the split

QTY_EPS = 1e-9
_QTY_EPS = QTY_EPS


def finite_or_none(value: float | None) -> float | None:
    # IB marks "no value" with 1.797e308 (UNSET_DOUBLE); anything non-finite or absurd means "unknown".
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) and abs(number) < 1e300 else None


_finite_or_none = finite_or_none

# ON CONFLICT (order_ref) DO NOTHING, not INSERT OR IGNORE: only a ref SQLite already holds is skipped (the
# intent log's copy of a row); OR IGNORE would also skip a row a NOT NULL or CHECK constraint refuses,
# silently — an intent whose order was sent, gone.
_INSERT_INTENT = """INSERT INTO orders (order_ref, account, strategy, order_id, symbol, side, quantity,
       order_type, limit_price, stop_price, time_in_force, tag, state, remaining, created_at, updated_at, terms)
   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
   ON CONFLICT (order_ref) DO NOTHING"""
_INSERT_EVENT = """INSERT INTO order_events (order_ref, time, state, filled, remaining, avg_price, reason)
   VALUES (?, ?, ?, ?, ?, ?, ?)"""


def intent_row(order: Order, strategy: str | None, account: str, when: datetime) -> IntentRow:
    """The ``orders`` row of ``order``'s intent, with a new ``order_ref`` (first); checked here, before
    anything is written, so that a row the intent log holds always fits the table."""
    if not isinstance(order, Order):
        raise JournalError(f"record_intent needs an Order, got {type(order).__name__}")
    quantity = float(order.quantity)
    if not (math.isfinite(quantity) and quantity > 0):
        raise JournalError(f"order {order.order_id} has quantity {order.quantity!r}; it must be positive")
    now = to_db_time(when)
    order_id = order.order_id
    tag = _tag(order)
    return (
        new_order_ref(account, when),
        account,
        strategy,
        order_id if order_id is None else str(order_id),
        order.symbol,
        OrderSide(order.side).value,
        quantity,
        OrderType(order.order_type).value,
        order.limit_price,
        order.stop_price,
        TimeInForce(order.time_in_force).value,
        tag,
        JournalOrderState.INTENT.value,
        quantity,
        now,
        now,
        order_terms(order),
    )


def _tag(order: Order) -> str:
    """``order.tag`` as the ``orders`` table holds it (TEXT NOT NULL): a number as its text, as SQLite's
    column affinity stored it; anything else is refused here — once the intent is in the intent log its
    order is sent, and a row SQLite then refuses would be an order the journal never knew."""
    tag = order.tag
    if isinstance(tag, str):
        return tag
    if isinstance(tag, int | float) and not isinstance(tag, bool):
        return str(tag)
    raise JournalError(
        f"order {order.order_id} has tag {tag!r}; it must be a string (or a number), e.g. tag='breakout'"
    )


def insert_intents(conn: sqlite3.Connection, rows: Sequence[IntentRow]) -> int:
    """Insert intent ``rows`` (:func:`intent_row`) and their first history event in the caller's
    transaction, skipping any ``order_ref`` already there (the intent log's copy of a row SQLite has);
    returns how many were added."""
    added = 0
    for row in rows:
        if conn.execute(_INSERT_INTENT, row).rowcount:
            ref, quantity, now = row[0], row[6], row[14]
            conn.execute(
                _INSERT_EVENT, (ref, now, JournalOrderState.INTENT.value, 0.0, quantity, 0.0, "intent")
            )
            added += 1
    return added


class JournalOrderWrites:
    """The order writes of :class:`~copilot_quant.journal.journal.TradeJournal` (which supplies the storage,
    the clock and the account)."""

    _store: JournalStorage
    _clock: Callable[[], datetime]

    if TYPE_CHECKING:

        @property
        def account(self) -> str: ...

    def _now(self) -> str:
        return to_db_time(self._clock())

    def record_intent(self, order: Order, strategy: str | None = None) -> str:
        """Journal ``order`` before it is sent; returns its new ``order_ref`` (send it as IB's ``orderRef``).

        On the disk when it returns: through the intent log when this journal owns it (one synced append;
        the row reaches SQLite with the next transaction, :mod:`~copilot_quant.journal.intent_log`), else
        as a synced SQLite commit. Every read of this journal sees it either way."""
        return self.record_intents([(order, strategy)])[0]

    def record_intents(self, items: Sequence[tuple[Order, str | None]]) -> list[str]:
        """Journal several ``(order, strategy)`` intents at once, with one disk sync; their refs in order.
        All of them are on the disk when it returns, or none (JournalError)."""
        when = self._clock()
        rows = [intent_row(order, strategy, self.account, when) for order, strategy in items]
        if not rows:
            return []
        try:
            logged = self._store.log_intents(rows)
        except JournalFullError as exc:
            self._record_refused(rows, str(exc))
            raise
        if not logged:
            with self._store.writing(f"record the intent of {len(rows)} order(s)") as conn:
                insert_intents(conn, rows)
        return [str(row[0]) for row in rows]

    def _record_refused(self, rows: Sequence[IntentRow], reason: str) -> None:
        """Journal intent ``rows`` the ``max_bytes`` cap refused as rejected, never sent (in the room the cap
        keeps for it); when even that fails, say so: the caller halts trading either way."""
        now = self._now()
        rejected = JournalOrderState.REJECTED
        try:
            with self._store.writing(f"record {len(rows)} refused order(s) as rejected") as conn:
                insert_intents(conn, rows)
                for row in rows:
                    ref = str(row[0])
                    conn.execute(
                        """UPDATE orders SET state = ?, remaining = 0, reason = ?, updated_at = ?
                           WHERE order_ref = ?""",
                        (rejected.value, reason, now, ref),
                    )
                    self._append_history(conn, ref, now, rejected, 0.0, 0.0, 0.0, reason)
        except JournalError as exc:
            log.error(
                "the %d order(s) the journal's cap refused could not be journaled as rejected: %s",
                len(rows),
                exc,
            )
            return
        log.error("%d order(s) not sent, journaled as rejected: %s", len(rows), reason)

    def record_submitted(self, order_ref: str, broker_order_id: int, perm_id: int | None = None) -> None:
        """The broker acknowledged the order (IB ``orderId``, and ``permId`` once known)."""
        now = self._now()
        with self._store.writing(f"record the submission of {order_ref}") as conn:
            row = order_row(conn, order_ref)
            state = JournalOrderState(row["state"])
            if state.is_done and state is not JournalOrderState.FILLED:
                log.warning("order %s is %s but was reported submitted; keeping %s", order_ref, state, state)
            new_state = JournalOrderState.SUBMITTED if state is JournalOrderState.INTENT else state
            conn.execute(
                """UPDATE orders SET state = ?, broker_order_id = ?, perm_id = coalesce(?, perm_id),
                       submitted_at = coalesce(submitted_at, ?), updated_at = ? WHERE order_ref = ?""",
                (new_state.value, int(broker_order_id), perm_id, now, now, order_ref),
            )
            self._append_history(
                conn,
                order_ref,
                now,
                new_state,
                row["filled"],
                row["remaining"],
                row["avg_price"],
                f"submitted as broker order {broker_order_id}",
            )

    def record_status(  # noqa: PLR0917 - positional like IB's orderStatus fields, as the engine receives them
        self,
        order_ref: str,
        status: JournalOrderState | OrderStatus | str,
        filled: float | None = None,
        remaining: float | None = None,
        avg_price: float | None = None,
        reason: str = "",
    ) -> bool:
        """Record a status report; returns True if the order's journaled state changed.

        Rules, so that late or repeated reports cannot corrupt the record: the filled quantity never
        decreases; a finished order (filled, cancelled, rejected, expired) stays finished, except that
        it may still become FILLED; a partial fill reported as SUBMITTED is kept as PARTIALLY_FILLED.
        Every report is kept in the order's history (:meth:`status_history`) either way.
        """
        new = JournalOrderState.parse(status)
        now = self._now()
        with self._store.writing(f"record status {new.value} of {order_ref}") as conn:
            row = order_row(conn, order_ref)
            current = JournalOrderState(row["state"])
            quantity = float(row["quantity"])
            best_filled = max(float(row["filled"]), float(filled or 0.0))
            state = self._next_state(current, new, best_filled, quantity)
            price = _finite_or_none(avg_price)
            reported = float(filled or 0.0)
            # IB's avgFillPrice is cumulative: the report that carries the most fills has the best one.
            fresh = reported > _QTY_EPS and reported >= float(row["filled"]) - _QTY_EPS
            new_avg = price if price is not None and price > 0 and fresh else float(row["avg_price"])
            new_remaining = 0.0 if state.is_done else max(quantity - best_filled, 0.0)
            told_remaining = new_remaining if remaining is None else max(float(remaining), 0.0)
            new_reason = reason if reason and new.is_done else row["reason"]
            changed = (
                state.value != row["state"]
                or abs(best_filled - float(row["filled"])) > _QTY_EPS
                or new_reason != row["reason"]
            )
            conn.execute(
                """UPDATE orders SET state = ?, filled = ?, remaining = ?, avg_price = ?, reason = ?,
                       updated_at = ? WHERE order_ref = ?""",
                (state.value, best_filled, new_remaining, new_avg, new_reason, now, order_ref),
            )
            self._append_history(conn, order_ref, now, new, best_filled, told_remaining, new_avg, reason)
        return changed

    @staticmethod
    def _next_state(
        current: JournalOrderState, new: JournalOrderState, filled: float, quantity: float
    ) -> JournalOrderState:
        if filled >= quantity - _QTY_EPS:
            return JournalOrderState.FILLED
        if current.is_done:
            return current  # finished stays finished; only a complete fill (above) can override
        if new is JournalOrderState.INTENT:
            return current
        if new in (JournalOrderState.SUBMITTED, JournalOrderState.PARTIALLY_FILLED):
            return JournalOrderState.PARTIALLY_FILLED if filled > _QTY_EPS else JournalOrderState.SUBMITTED
        return new

    def record_modified(self, order_ref: str, order: Order, reason: str = "modified") -> None:
        """``order`` (journaled as ``order_ref``) has new terms — a modification (IB: the same order id,
        new price, size or time in force). The order row takes them (quantity, prices, time in force,
        :func:`order_terms`), so that a restart rebuilds the order as IB now holds it; its history keeps an
        event with ``reason`` and the new terms. The state and the fills are unchanged."""
        now = self._now()
        with self._store.writing(f"record the modification of {order_ref}") as conn:
            row = order_row(conn, order_ref)
            quantity = float(order.quantity)
            filled = float(row["filled"])
            state = JournalOrderState(row["state"])
            remaining = 0.0 if state.is_done else max(quantity - filled, 0.0)
            conn.execute(
                """UPDATE orders SET quantity = ?, limit_price = ?, stop_price = ?, time_in_force = ?,
                       terms = ?, remaining = ?, updated_at = ? WHERE order_ref = ?""",
                (
                    quantity,
                    order.limit_price,
                    order.stop_price,
                    TimeInForce(order.time_in_force).value,
                    order_terms(order),
                    remaining,
                    now,
                    order_ref,
                ),
            )
            terms = f"quantity {quantity:g}, limit {order.limit_price}, stop {order.stop_price}, tif {TimeInForce(order.time_in_force).value}"
            self._append_history(
                conn, order_ref, now, state, filled, remaining, float(row["avg_price"]), f"{reason}: {terms}"
            )

    def record_rejected(self, order_ref: str, reason: str) -> None:
        """The order was refused (by a risk limit before sending, or by the broker), with ``reason``."""
        if not reason:
            raise JournalError("record_rejected needs a reason; say why the order was refused")
        self.record_status(order_ref, JournalOrderState.REJECTED, reason=reason)

    def record_error(self, order_ref: str | None, code: int, message: str) -> None:
        """An error reported by the broker or raised by the engine (``order_ref`` None when not order-bound)."""
        with self._store.writing(f"record error {code}") as conn:
            conn.execute(
                "INSERT INTO errors (time, order_ref, code, message) VALUES (?, ?, ?, ?)",
                (self._now(), order_ref, int(code), str(message)),
            )

    def record_event(self, kind: EventKind | str, detail: str = "") -> None:
        """An engine event: start, stop, reconnect, halt, kill switch … (see :class:`EventKind`)."""
        text = str(kind.value if isinstance(kind, EventKind) else kind).strip()
        if not text:
            raise JournalError("record_event needs a kind such as 'start', 'reconnect' or 'halt'")
        with self._store.writing(f"record event {text}") as conn:
            conn.execute(
                "INSERT INTO events (time, kind, detail) VALUES (?, ?, ?)", (self._now(), text, str(detail))
            )

    # ------------------------------------------------------------------ helpers for writers
    @staticmethod
    def _append_history(  # noqa: PLR0917 - one column each, private
        conn: sqlite3.Connection,
        order_ref: str,
        now: str,
        state: JournalOrderState,
        filled: float,
        remaining: float,
        avg_price: float,
        reason: str,
    ) -> None:
        conn.execute(
            """INSERT INTO order_events (order_ref, time, state, filled, remaining, avg_price, reason)
               VALUES (?, ?, ?, ?, ?, ?, ?)""",
            (order_ref, now, state.value, filled, remaining, avg_price or 0.0, reason),
        )
