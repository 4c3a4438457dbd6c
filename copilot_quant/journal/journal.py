"""The durable trade journal: one SQLite file (WAL mode) per account that loses nothing.

What it guarantees, and how:

* **Intent before send.** :meth:`TradeJournal.record_intent` writes the order and issues its
  ``order_ref`` (IB's ``orderRef``) *before* the engine sends anything. After a crash,
  :meth:`~TradeJournal.unsent_intents` lists orders that may be in flight; the engine looks them up at the
  broker by ``order_ref`` instead of sending them again.
* **Exactly once.** A fill is unique by ``(exec_id, order_ref)``: :meth:`~TradeJournal.record_fill`
  returns False for an execution of that order it already holds, so the engine delivers ``on_fill`` only
  when it returns True.
* **Never fail open.** An execution id already journaled for a *different* order is not a duplicate. IB's
  ids never repeat, so it means something is wrong (a simulated gateway that forgot its ids, a journal
  shared by two brokers): the fill is recorded and delivered like any other, and the journal raises a loud
  alert in the same transaction: an ``alert`` event, an ``errors`` row with code
  :data:`~copilot_quant.journal.errors.EXEC_ID_REUSED`, and an ERROR log line. Dropping it would leave the
  strategy blind to a position it holds.
* **Whole records only.** Every ``record_*`` is one ``BEGIN IMMEDIATE`` … ``COMMIT`` transaction; a crash
  or a failed write (full or read-only disk) leaves the journal exactly as it was before the call.
  Failures raise :class:`~copilot_quant.errors.JournalError` naming the file, the cause and the fix — the
  engine must halt trading when it sees one.
* **Durability: crash-safe fills** (:mod:`~copilot_quant.journal.durability`). A record is on the disk
  when its ``record_*`` returns (``synchronous=FULL``: it survives a power loss) — the intent above all,
  before the order is sent — except a fill: :meth:`~TradeJournal.record_fill` commits without its own
  fsync (``synchronous=NORMAL``), so a fill survives a crash or SIGKILL of the process but a power loss
  only once the next synced commit, :meth:`~TradeJournal.sync` or checkpoint reached the disk. IB keeps
  its executions and reconciliation re-reads them at every start, so a fill a power loss took is journaled
  and delivered again, once; in exchange, a fill's commit no longer adds a disk sync before ``on_fill``,
  on the path from the bar that follows it to that bar's orders.

The parts: :mod:`~copilot_quant.journal.storage` (the file, its schema and transactions),
:mod:`~copilot_quant.journal.exec_ids` (the in-memory index behind :meth:`~TradeJournal.knows_fill`),
:mod:`~copilot_quant.journal.queries` (the reads and row mappers); this module holds the writes.

Threading: one connection guarded by a lock, so the engine's event-loop thread and the user's thread may
call any method concurrently. Two *processes* may read one journal at once (WAL), but only one engine
should write an account's journal.
"""

from __future__ import annotations

import logging
import math
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from copilot_quant.errors import ConfigError, JournalError
from copilot_quant.journal.durability import FILL_DURABILITY, Durability
from copilot_quant.journal.errors import EXEC_ID_REUSED
from copilot_quant.journal.exec_ids import ANY_ORDER, AnyOrder, ExecIdIndex, OrderRefOrAny
from copilot_quant.journal.paths import check_account, default_journal_path
from copilot_quant.journal.queries import JournalQueries, StatusFilter, has_order_row, order_row
from copilot_quant.journal.records import EventKind, order_terms, to_db_time
from copilot_quant.journal.refs import new_order_ref
from copilot_quant.journal.states import JournalOrderState
from copilot_quant.journal.storage import JournalStorage
from copilot_quant.model.orders import Order, OrderSide, OrderStatus, OrderType, TimeInForce

__all__ = ["ANY_ORDER", "AnyOrder", "StatusFilter", "TradeJournal"]

log = logging.getLogger(__name__)

_QTY_EPS = 1e-9


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _finite_or_none(value: float | None) -> float | None:
    # IB marks "no value" with 1.797e308 (UNSET_DOUBLE); anything non-finite or absurd means "unknown".
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) and abs(number) < 1e300 else None


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


class TradeJournal(JournalQueries):
    """The journal of one account. Open it, record into it from any thread, close it (or use ``with``).

    ``TradeJournal(account='DU1234567')`` opens ``$COPILOT_QUANT_JOURNAL_DIR/DU1234567.sqlite`` (default
    directory ``~/.copilot_quant/journal``), creating it and its schema on first use;
    ``TradeJournal(path)`` opens a given file, whose account is read from the file. ``read_only=True``
    opens an existing journal without ever writing it (the CLI does this, so that it can inspect the
    journal of a running engine). ``max_bytes`` caps the file's size: a write that would grow it beyond
    the cap fails with a :class:`JournalError` exactly as on a full disk. ``clock`` supplies the
    recording times (tz-aware UTC).
    """

    def __init__(
        self,
        path: str | Path | None = None,
        account: str | None = None,
        *,
        read_only: bool = False,
        max_bytes: int | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if path is None:
            if account is None:
                raise ConfigError("TradeJournal needs account= (e.g. 'DU1234567') or path= to a journal file")
            path = default_journal_path(account)
        self._account = check_account(account) if account is not None else None
        self._path = Path(path).expanduser()
        self._read_only = bool(read_only)
        self._clock = clock or _utcnow
        self._store = JournalStorage(self._path, read_only=self._read_only, max_bytes=max_bytes)
        self._lock = self._store.lock
        self._exec_ids = ExecIdIndex()
        try:
            self._account = self._store.open_account(self._account, self._clock)
        except BaseException:
            self.close()
            raise
        log.info("journal %s opened for account %s", self._path, self._account)

    # ------------------------------------------------------------------ opening and closing
    def close(self) -> None:
        """Close the file. Idempotent; recording afterwards raises :class:`JournalError`."""
        self._store.close()

    def __enter__(self) -> TradeJournal:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = "read-only" if self._read_only else "read-write"
        state = "closed" if self.closed else mode
        return f"TradeJournal({str(self._path)!r}, account={self._account!r}, {state})"

    @property
    def path(self) -> Path:
        return self._path

    @property
    def account(self) -> str:
        return str(self._account)

    @property
    def read_only(self) -> bool:
        return self._read_only

    @property
    def closed(self) -> bool:
        return self._store.conn is None

    @property
    def _conn(self) -> sqlite3.Connection | None:
        """The open connection (None once closed), for tests that sabotage the file."""
        return self._store.conn

    # ------------------------------------------------------------------ transactions
    @contextmanager
    def batch(self, durability: Durability = Durability.SYNCED) -> Iterator[None]:
        """Group ``record_*`` calls into one transaction, so the disk is synced once for all of them.

        All of them are committed, or none (an error in any one rolls the whole batch back and is raised).
        Other threads' calls wait until the batch ends. Used by the journal writer thread to commit a burst
        of broker events (status, fill, commission …) together. The batch commits with ``durability``
        whatever its records ask for: after a ``CRASH_SAFE`` batch holding other records than fills, call
        :meth:`sync` before relying on them being on the disk.
        """
        with self._lock, self._store.batch(durability):
            self._exec_ids.begin_batch()
            try:
                yield
            finally:
                committed = self._exec_ids.end_batch()
        self._exec_ids.remember(committed)  # only now: a rolled-back fill must not count as journaled

    def _now(self) -> str:
        return to_db_time(self._clock())

    # ------------------------------------------------------------------ recording
    def defer_checkpoints(self) -> None:
        """Leave WAL checkpoints to :meth:`checkpoint` (see :meth:`JournalStorage.defer_checkpoints`)."""
        self._store.defer_checkpoints()

    def checkpoint(self, min_wal_bytes: int = 0) -> bool:
        """Copy the write-ahead log into the database file if it holds at least ``min_wal_bytes``; True if
        a checkpoint ran. Safe from any thread, next to writes (it never blocks them)."""
        if self.closed or self.wal_bytes() < min_wal_bytes:
            return False
        return self._store.checkpoint()

    def sync(self) -> None:
        """Put every record committed so far on the disk (crash-safe fills included). Any thread; it does
        not hold up other threads' writes while the disk syncs."""
        if self.closed:
            raise JournalError(f"journal {self._path} is closed; open a new TradeJournal")
        self._store.sync()

    def commit_mark(self) -> int:
        """A mark of the transactions committed so far, for :meth:`is_synced`."""
        return self._store.commits

    def is_synced(self, mark: int) -> bool:
        """Whether every transaction committed up to ``mark`` (:meth:`commit_mark`) is surely on the disk:
        a later synced commit (an intent, say) or :meth:`sync` carried it there."""
        return self._store.synced_commits >= mark

    def wal_bytes(self) -> int:
        """The size of the journal's write-ahead log (what the next checkpoint copies)."""
        return self._store.wal_bytes()

    def record_intent(self, order: Order, strategy: str | None = None) -> str:
        """Journal ``order`` before it is sent; returns its new ``order_ref`` (send it as IB's ``orderRef``)."""
        if not isinstance(order, Order):
            raise JournalError(f"record_intent needs an Order, got {type(order).__name__}")
        when = self._clock()
        now = to_db_time(when)
        ref = new_order_ref(self.account, when)
        with self._store.writing(f"record the intent of {order.symbol} order {order.order_id}") as conn:
            conn.execute(
                """INSERT INTO orders (order_ref, account, strategy, order_id, symbol, side, quantity,
                       order_type, limit_price, stop_price, time_in_force, tag, state, remaining,
                       created_at, updated_at, terms)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    ref,
                    self.account,
                    strategy,
                    order.order_id,
                    order.symbol,
                    OrderSide(order.side).value,
                    float(order.quantity),
                    OrderType(order.order_type).value,
                    order.limit_price,
                    order.stop_price,
                    TimeInForce(order.time_in_force).value,
                    order.tag,
                    JournalOrderState.INTENT.value,
                    float(order.quantity),
                    now,
                    now,
                    order_terms(order),
                ),
            )
            self._append_history(
                conn, ref, now, JournalOrderState.INTENT, 0.0, float(order.quantity), 0.0, "intent"
            )
        return ref

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
