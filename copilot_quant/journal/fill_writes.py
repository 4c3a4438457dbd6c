"""The journal's fill writes: executions, exactly once, and their commission reports; half of
:class:`~copilot_quant.journal.journal.TradeJournal`.

A fill is unique by ``(exec_id, order_ref)`` and moves its order's filled quantity, average price and state
in the same transaction, by the order writes' rules
(:class:`~copilot_quant.journal.order_writes.JournalOrderWrites`, which this class extends). An execution id
reused for another order is recorded with an alert (see :mod:`copilot_quant.journal.journal`).
:meth:`JournalFillWrites.knows_fill` answers from the in-memory :class:`~copilot_quant.journal.exec_ids.ExecIdIndex`.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import threading
from datetime import datetime
from typing import Any

from copilot_quant.errors import JournalError
from copilot_quant.journal.durability import FILL_DURABILITY
from copilot_quant.journal.errors import EXEC_ID_REUSED
from copilot_quant.journal.exec_ids import ANY_ORDER, ExecIdIndex, OrderRefOrAny
from copilot_quant.journal.order_writes import QTY_EPS as _QTY_EPS
from copilot_quant.journal.order_writes import JournalOrderWrites
from copilot_quant.journal.order_writes import finite_or_none as _finite_or_none
from copilot_quant.journal.queries import has_order_row, order_row
from copilot_quant.journal.records import EventKind, to_db_time
from copilot_quant.journal.states import JournalOrderState
from copilot_quant.model.orders import OrderSide

__all__ = ["JournalFillWrites"]

log = logging.getLogger("copilot_quant.journal.journal")  # the journal's one logger, as before the split


def _side(value: OrderSide | str) -> OrderSide:
    if isinstance(value, OrderSide):
        return value
    text = {"b": "buy", "s": "sell"}.get(str(value).strip().lower(), str(value).strip().lower())
    try:
        return OrderSide(text)
    except ValueError:
        raise JournalError(f"unknown side {value!r}; use 'buy' or 'sell'") from None


def _positive(value: float, what: str) -> float:
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise JournalError(f"{what} must be a positive finite number, got {value!r}")
    return number


class JournalFillWrites(JournalOrderWrites):
    """The fill writes of :class:`~copilot_quant.journal.journal.TradeJournal` (which supplies the lock
    and the execution id index)."""

    _lock: threading.RLock
    _exec_ids: ExecIdIndex

    def record_fill(  # noqa: PLR0917 - positional like IB's execDetails fields, as the engine receives them
        self,
        order_ref: str | None,
        exec_id: str,
        symbol: str,
        side: OrderSide | str,
        quantity: float,
        price: float,
        time: datetime,
        commission: float | None = None,
    ) -> bool:
        """Record one execution; True if it is new, False if ``exec_id`` was already journaled for this order.

        Deliver ``on_fill`` only when this returns True: that is what makes delivery exactly-once across
        reconnects and restarts. The order's filled quantity, average price and state are updated in the
        same transaction. A fill for an unknown ``order_ref`` (or None) is still recorded — a fill is a
        fact — and logged as a warning. An ``exec_id`` already journaled for another ``order_ref`` is
        recorded too (True), with an alert (see the module docstring): never silently dropped.
        """
        if not exec_id or not str(exec_id).strip():
            raise JournalError("record_fill needs the broker's exec_id (it is what deduplicates fills)")
        order_ref = order_ref or None  # "" and None both mean "no order known"
        fresh = self._insert_fill(order_ref, exec_id, symbol, side, quantity, price, time, commission)
        with self._lock:  # the execution is in the journal from now on (from the batch's commit on)
            self._exec_ids.recorded(str(exec_id), order_ref)
        return fresh

    def knows_fill(self, exec_id: str, order_ref: OrderRefOrAny = ANY_ORDER) -> bool:
        """Whether execution ``exec_id`` of order ``order_ref`` (default: of any order) is in the journal,
        from memory: no disk I/O and no wait for a write in progress once :meth:`preload_fill_ids` ran (the
        first call runs it).

        A fast pre-check for the IB loop thread; :meth:`record_fill` stays the arbiter of "new". Pass the
        order's ref: an id journaled for another order only is not this order's fill (see the module
        docstring).
        """
        if not self._exec_ids.loaded:
            self.preload_fill_ids()
        return self._exec_ids.knows(exec_id, order_ref)

    def preload_fill_ids(self) -> set[str]:
        """Read the journaled execution ids into memory (once) for :meth:`knows_fill`; call it off the IB loop.

        Returns the execution ids journaled so far.
        """
        with self._lock:
            if self._exec_ids.loaded:
                return self._exec_ids.ids()
            with self._store.reading("load the journaled execution ids") as conn:
                rows = conn.execute("SELECT exec_id, order_ref FROM fills").fetchall()
            return self._exec_ids.load((str(exec_id), order_ref) for exec_id, order_ref in rows)

    def _insert_fill(  # noqa: PLR0917
        self,
        order_ref: str | None,
        exec_id: str,
        symbol: str,
        side: OrderSide | str,
        quantity: float,
        price: float,
        time: datetime,
        commission: float | None,
    ) -> bool:
        side_value = _side(side).value
        qty = _positive(quantity, "fill quantity")
        px = _positive(price, "fill price")
        when = to_db_time(time)
        now = self._now()
        exec_id = str(exec_id)
        name = str(symbol).strip().upper()
        with self._store.writing(f"record fill {exec_id}", FILL_DURABILITY) as conn:
            # The write lock is held (BEGIN IMMEDIATE): nobody can record this execution in between.
            earlier = [
                r[0] for r in conn.execute("SELECT order_ref FROM fills WHERE exec_id = ?", (exec_id,))
            ]
            if order_ref in earlier:
                return False
            cursor = conn.execute(
                """INSERT INTO fills (exec_id, order_ref, symbol, side, quantity, price, time, commission,
                       recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (exec_id, order_ref, name, side_value, qty, px, when, _finite_or_none(commission), now),
            )
            row_id = cursor.lastrowid
            if earlier:
                self._alert_reused_exec_id(
                    conn, now, exec_id, order_ref, earlier, f"{side_value} {qty:g} {name} @ {px:g}"
                )
            pending = conn.execute(
                "SELECT commission, realized_pnl FROM pending_commissions WHERE exec_id = ?", (exec_id,)
            ).fetchone()
            if pending is not None:
                conn.execute(
                    "UPDATE fills SET commission = ?, realized_pnl = ? WHERE id = ?",
                    (pending["commission"], pending["realized_pnl"], row_id),
                )
                conn.execute("DELETE FROM pending_commissions WHERE exec_id = ?", (exec_id,))
            if order_ref is not None and has_order_row(conn, order_ref):
                self._apply_fills(conn, order_ref, now, f"fill {exec_id}")
            else:
                log.warning(
                    "fill %s (%s %s %g @ %g) for unknown order %r",
                    exec_id,
                    side_value,
                    name,
                    qty,
                    px,
                    order_ref,
                )
        return True

    @staticmethod
    def _alert_reused_exec_id(  # noqa: PLR0917 - private, one value each
        conn: sqlite3.Connection,
        now: str,
        exec_id: str,
        order_ref: str | None,
        earlier: list[str | None],
        what: str,
    ) -> None:
        """The broker reported ``exec_id`` again for another order: journal an alert with the fill."""
        message = (
            f"execution id {exec_id} reused: already journaled for order "
            f"{', '.join(repr(r) for r in earlier)}, now reported for order {order_ref!r} ({what}); "
            "recorded and delivered as a separate fill. A broker never reuses execution ids: check that "
            "this journal belongs to this account and broker (a simulated gateway restarted without "
            "--state by an older copilot_quant reuses them)"
        )
        conn.execute(
            "INSERT INTO errors (time, order_ref, code, message) VALUES (?, ?, ?, ?)",
            (now, order_ref, EXEC_ID_REUSED, message),
        )
        conn.execute(
            "INSERT INTO events (time, kind, detail) VALUES (?, ?, ?)", (now, EventKind.ALERT.value, message)
        )
        log.error("journal alert: %s", message)

    def _apply_fills(self, conn: sqlite3.Connection, order_ref: str, now: str, reason: str) -> None:
        row = order_row(conn, order_ref)
        total, notional = conn.execute(
            "SELECT coalesce(sum(quantity), 0), coalesce(sum(quantity * price), 0) FROM fills "
            "WHERE order_ref = ?",
            (order_ref,),
        ).fetchone()
        quantity = float(row["quantity"])
        filled = max(float(row["filled"]), float(total))
        # The broker's status may run ahead of the executions we hold; its average is then the better one.
        avg = float(notional) / float(total) if total >= float(row["filled"]) - _QTY_EPS else row["avg_price"]
        current = JournalOrderState(row["state"])
        state = self._next_state(current, JournalOrderState.PARTIALLY_FILLED, filled, quantity)
        remaining = 0.0 if state is JournalOrderState.FILLED else max(quantity - filled, 0.0)
        conn.execute(
            """UPDATE orders SET state = ?, filled = ?, remaining = ?, avg_price = ?,
                   submitted_at = coalesce(submitted_at, ?), updated_at = ? WHERE order_ref = ?""",
            (state.value, filled, remaining, avg, now, now, order_ref),
        )
        self._append_history(conn, order_ref, now, state, filled, remaining, avg, reason)

    def record_commission(
        self,
        exec_id: str,
        commission: float,
        realized_pnl: float | None = None,
        order_ref: OrderRefOrAny = ANY_ORDER,
    ) -> bool:
        """Attach a commission report to its fill; True if the fill was there to update.

        A report that arrives before its execution is kept and applied when the fill is recorded (then
        this returns False), so nothing is lost whatever the arrival order. IB's report names the
        execution only: should ``exec_id`` have been reused for several orders, it goes to the fill of
        ``order_ref`` when given, else to the most recent fill with that id.
        """
        fee = _finite_or_none(commission)
        if fee is None or fee < 0:
            raise JournalError(f"commission for {exec_id} must be a finite amount >= 0, got {commission!r}")
        pnl = _finite_or_none(realized_pnl)
        with self._store.writing(f"record the commission of {exec_id}") as conn:
            sql = "SELECT max(id) FROM fills WHERE exec_id = ?"
            params: list[Any] = [exec_id]
            if order_ref is not ANY_ORDER:
                sql += " AND order_ref IS ?"
                params.append(order_ref)
            (row_id,) = conn.execute(sql, params).fetchone()
            if row_id is not None:
                conn.execute(
                    "UPDATE fills SET commission = ?, realized_pnl = coalesce(?, realized_pnl) WHERE id = ?",
                    (fee, pnl, row_id),
                )
                return True
            conn.execute(
                """INSERT INTO pending_commissions (exec_id, commission, realized_pnl) VALUES (?, ?, ?)
                   ON CONFLICT (exec_id) DO UPDATE SET commission = excluded.commission,
                       realized_pnl = coalesce(excluded.realized_pnl, realized_pnl)""",
                (exec_id, fee, pnl),
            )
            return False
