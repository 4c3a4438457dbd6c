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
* **Whole records only.** Every ``record_*`` is one ``BEGIN IMMEDIATE`` … ``COMMIT`` transaction with
  ``synchronous=FULL``; a crash or a failed write (full or read-only disk) leaves the journal exactly as it
  was before the call. Failures raise :class:`~copilot_quant.errors.JournalError` naming the file, the cause
  and the fix — the engine must halt trading when it sees one.

Threading: one connection guarded by a lock, so the engine's event-loop thread and the user's thread may
call any method concurrently. Two *processes* may read one journal at once (WAL), but only one engine
should write an account's journal.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from copilot_quant.backtest.orders import Order, OrderSide, OrderStatus, OrderType, TimeInForce
from copilot_quant.errors import ConfigError, JournalError
from copilot_quant.journal.errors import EXEC_ID_REUSED, UnknownOrderRefError
from copilot_quant.journal.paths import check_account, default_journal_path
from copilot_quant.journal.reconcile import BrokerExecution, BrokerOrder, ReconcileReport, reconcile
from copilot_quant.journal.records import (
    ErrorRecord,
    EventKind,
    EventRecord,
    FillRecord,
    OrderRecord,
    StatusRecord,
    from_db_time,
    to_db_time,
)
from copilot_quant.journal.refs import new_order_ref
from copilot_quant.journal.schema import TABLES, create_or_check
from copilot_quant.journal.states import OrderState

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ANY_ORDER", "AnyOrder", "StatusFilter", "TradeJournal"]

log = logging.getLogger(__name__)

_QTY_EPS = 1e-9
StatusFilter = OrderState | OrderStatus | str | Iterable[OrderState | OrderStatus | str] | None
_GROUPS: dict[str, frozenset[OrderState]] = {
    "active": frozenset(s for s in OrderState if s.is_active),
    "open": frozenset(s for s in OrderState if s.is_active),
    "working": frozenset(s for s in OrderState if s.is_working),
    "done": frozenset(s for s in OrderState if s.is_done),
    "all": frozenset(OrderState),
}


class AnyOrder(Enum):
    """Type of :data:`ANY_ORDER`."""

    ANY = "any"


#: ``order_ref`` meaning "whichever order" in :meth:`TradeJournal.knows_fill` and friends.
ANY_ORDER = AnyOrder.ANY
OrderRefOrAny = str | None | Literal[AnyOrder.ANY]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _hint(exc: sqlite3.Error) -> str:
    name = str(getattr(exc, "sqlite_errorname", "") or "")
    text = str(exc).lower()
    if name.startswith("SQLITE_FULL") or "full" in text:
        return (
            "the disk (or the journal's max_bytes cap) is full; free space or raise the cap. "
            "Trading must stay halted until the journal can be written"
        )
    if name.startswith("SQLITE_READONLY") or "readonly" in text or "read-only" in text:
        return (
            "the journal file or its directory is read-only; make it writable or point "
            "$COPILOT_QUANT_JOURNAL_DIR (or path=) at a writable place"
        )
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in text:
        return "another process holds the journal locked; is a second engine running on this account?"
    if name.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")) or "not a database" in text:
        return "the file is not a healthy journal; move it aside (keep it for inspection) and restart"
    if name.startswith("SQLITE_CANTOPEN") or "unable to open" in text:
        return "the file cannot be opened; check that the path exists and is accessible"
    return "check the disk holding the journal"


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


class TradeJournal:
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
        self._lock = threading.RLock()
        # Journaled executions, exec id -> order refs it was recorded for; loaded by knows_fill().
        self._exec_ids: dict[str, set[str | None]] | None = None
        self._batch_fills: list[tuple[str, str | None]] | None = None  # recorded in the open batch()
        self._ids_lock = threading.Lock()  # guards _exec_ids alone, so knows_fill never waits for a commit
        self._conn: sqlite3.Connection | None = None
        self._conn = self._connect(max_bytes)
        try:
            self._account = self._open_schema(self._account)
        except BaseException:
            self.close()
            raise
        log.info("journal %s opened for account %s", self._path, self._account)

    # ------------------------------------------------------------------ opening and closing
    def _connect(self, max_bytes: int | None) -> sqlite3.Connection:
        if max_bytes is not None and (isinstance(max_bytes, bool) or int(max_bytes) <= 0):
            raise ConfigError(f"max_bytes must be a positive number of bytes, got {max_bytes!r}")
        try:
            if self._read_only:
                if not self._path.is_file():
                    raise JournalError(
                        f"no journal at {self._path}; pass the path of an existing journal file "
                        "(or the account whose engine has run here)"
                    )
                uri = f"{self._path.resolve().as_uri()}?mode=ro"
                conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            else:
                self._path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(
                    str(self._path), isolation_level=None, check_same_thread=False, timeout=10.0
                )
        except OSError as exc:
            raise JournalError(
                f"cannot create the journal directory {self._path.parent}: {exc.strerror or exc}; "
                "choose a writable place with path= or $COPILOT_QUANT_JOURNAL_DIR"
            ) from exc
        except sqlite3.Error as exc:
            raise JournalError(f"cannot open journal {self._path}: {exc} — {_hint(exc)}") from exc
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA busy_timeout = 10000")
            if not self._read_only:
                mode = str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]).lower()
                if mode != "wal":
                    raise JournalError(
                        f"journal {self._path} could not be put in WAL mode (got {mode!r}); "
                        "keep journals on a local disk, not a network share"
                    )
                # FULL: a committed record survives power loss, not only a process crash.
                conn.execute("PRAGMA synchronous = FULL")
            if max_bytes is not None:
                page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
                conn.execute(f"PRAGMA max_page_count = {max(int(max_bytes) // page_size, 1)}")
        except sqlite3.Error as exc:
            conn.close()
            raise JournalError(f"cannot open journal {self._path}: {exc} — {_hint(exc)}") from exc
        except BaseException:
            conn.close()
            raise
        return conn

    def _open_schema(self, account: str | None) -> str:
        if self._read_only:
            with self._reading("read the schema") as conn:
                create_or_check(conn, str(self._path), writable=False)
                stored = self._meta(conn, "account")
        else:
            with self._writing("create the schema") as conn:
                created = create_or_check(conn, str(self._path), writable=True)
                if created:
                    if account is None:
                        raise JournalError(
                            f"{self._path} is a new journal; pass account= (e.g. 'DU1234567') to create it"
                        )
                    now = to_db_time(self._clock())
                    conn.executemany(
                        "INSERT INTO meta (key, value) VALUES (?, ?)",
                        [("account", account), ("created_at", now)],
                    )
                stored = self._meta(conn, "account")
        if stored is None:
            raise JournalError(f"journal {self._path} has no account recorded; it is damaged, move it aside")
        if account is not None and account != stored:
            raise JournalError(
                f"journal {self._path} belongs to account {stored!r}, not {account!r}; "
                "each account has its own journal file — pass the matching account or another path"
            )
        return stored

    @staticmethod
    def _meta(conn: sqlite3.Connection, key: str) -> str | None:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def close(self) -> None:
        """Close the file. Idempotent; recording afterwards raises :class:`JournalError`."""
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.close()
                finally:
                    self._conn = None

    def __enter__(self) -> TradeJournal:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = "read-only" if self._read_only else "read-write"
        state = "closed" if self._conn is None else mode
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
        return self._conn is None

    # ------------------------------------------------------------------ transactions
    def _require_conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise JournalError(f"journal {self._path} is closed; open a new TradeJournal")
        return self._conn

    def _storage_error(self, action: str, exc: sqlite3.Error) -> JournalError:
        error = JournalError(f"journal {self._path}: could not {action}: {exc} — {_hint(exc)}")
        log.error("%s", error)
        return error

    @contextmanager
    def _writing(self, action: str) -> Iterator[sqlite3.Connection]:
        """One write transaction: all of it is committed, or none of it (then JournalError is raised)."""
        with self._lock:
            conn = self._require_conn()
            if self._read_only:
                raise JournalError(
                    f"journal {self._path} was opened read-only; cannot {action} "
                    "(open it with read_only=False to record)"
                )
            if self._batch_fills is not None:  # inside batch() on this thread: its transaction holds it all
                yield conn
                return
            try:
                conn.execute("BEGIN IMMEDIATE")  # take the write lock now, not halfway through
            except sqlite3.Error as exc:
                raise self._storage_error(action, exc) from exc
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    try:
                        conn.execute("ROLLBACK")
                    except sqlite3.Error:  # SQLite may already have rolled back (e.g. on SQLITE_FULL)
                        log.debug("rollback after a failed journal write failed too", exc_info=True)
                if isinstance(exc, sqlite3.Error):
                    raise self._storage_error(action, exc) from exc
                raise

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Group ``record_*`` calls into one transaction, so the disk is synced once for all of them.

        All of them are committed, or none (an error in any one rolls the whole batch back and is raised).
        Other threads' calls wait until the batch ends. Used by the journal writer thread to commit a burst
        of broker events (status, fill, commission …) together.
        """
        with self._lock:
            if self._batch_fills is not None:
                raise JournalError("journal batches do not nest")
            committed: list[tuple[str, str | None]] = []
            with self._writing("write a batch of records"):
                self._batch_fills = []
                try:
                    yield
                finally:
                    committed, self._batch_fills = self._batch_fills, None
            self._remember_fills(committed)  # only now: a rolled-back fill must not count as journaled

    @contextmanager
    def _reading(self, action: str) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._require_conn()
            try:
                yield conn
            except sqlite3.Error as exc:
                raise self._storage_error(action, exc) from exc

    def _now(self) -> str:
        return to_db_time(self._clock())

    # ------------------------------------------------------------------ recording
    def record_intent(self, order: Order, strategy: str | None = None) -> str:
        """Journal ``order`` before it is sent; returns its new ``order_ref`` (send it as IB's ``orderRef``)."""
        if not isinstance(order, Order):
            raise JournalError(f"record_intent needs an Order, got {type(order).__name__}")
        when = self._clock()
        now = to_db_time(when)
        ref = new_order_ref(self.account, when)
        with self._writing(f"record the intent of {order.symbol} order {order.order_id}") as conn:
            conn.execute(
                """INSERT INTO orders (order_ref, account, strategy, order_id, symbol, side, quantity,
                       order_type, limit_price, stop_price, time_in_force, tag, state, remaining,
                       created_at, updated_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
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
                    OrderState.INTENT.value,
                    float(order.quantity),
                    now,
                    now,
                ),
            )
            self._append_history(conn, ref, now, OrderState.INTENT, 0.0, float(order.quantity), 0.0, "intent")
        return ref

    def record_submitted(self, order_ref: str, broker_order_id: int, perm_id: int | None = None) -> None:
        """The broker acknowledged the order (IB ``orderId``, and ``permId`` once known)."""
        now = self._now()
        with self._writing(f"record the submission of {order_ref}") as conn:
            row = self._order_row(conn, order_ref)
            state = OrderState(row["state"])
            if state.is_done and state is not OrderState.FILLED:
                log.warning("order %s is %s but was reported submitted; keeping %s", order_ref, state, state)
            new_state = OrderState.SUBMITTED if state is OrderState.INTENT else state
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
        status: OrderState | OrderStatus | str,
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
        new = OrderState.parse(status)
        now = self._now()
        with self._writing(f"record status {new.value} of {order_ref}") as conn:
            row = self._order_row(conn, order_ref)
            current = OrderState(row["state"])
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
    def _next_state(current: OrderState, new: OrderState, filled: float, quantity: float) -> OrderState:
        if filled >= quantity - _QTY_EPS:
            return OrderState.FILLED
        if current.is_done:
            return current  # finished stays finished; only a complete fill (above) can override
        if new is OrderState.INTENT:
            return current
        if new in (OrderState.SUBMITTED, OrderState.PARTIALLY_FILLED):
            return OrderState.PARTIALLY_FILLED if filled > _QTY_EPS else OrderState.SUBMITTED
        return new

    def record_rejected(self, order_ref: str, reason: str) -> None:
        """The order was refused (by a risk limit before sending, or by the broker), with ``reason``."""
        if not reason:
            raise JournalError("record_rejected needs a reason; say why the order was refused")
        self.record_status(order_ref, OrderState.REJECTED, reason=reason)

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
            if self._batch_fills is not None:
                self._batch_fills.append((str(exec_id), order_ref))
            else:
                self._remember_fills([(str(exec_id), order_ref)])
        return fresh

    def knows_fill(self, exec_id: str, order_ref: OrderRefOrAny = ANY_ORDER) -> bool:
        """Whether execution ``exec_id`` of order ``order_ref`` (default: of any order) is in the journal,
        from memory: no disk I/O and no wait for a write in progress once :meth:`preload_fill_ids` ran (the
        first call runs it).

        A fast pre-check for the IB loop thread; :meth:`record_fill` stays the arbiter of "new". Pass the
        order's ref: an id journaled for another order only is not this order's fill (see the module
        docstring).
        """
        with self._ids_lock:
            ids = self._exec_ids
        if ids is None:
            self.preload_fill_ids()
        with self._ids_lock:
            refs = (self._exec_ids or {}).get(str(exec_id))
            if not refs:
                return False
            return order_ref is ANY_ORDER or (order_ref or None) in refs

    def preload_fill_ids(self) -> set[str]:
        """Read the journaled execution ids into memory (once) for :meth:`knows_fill`; call it off the IB loop.

        Returns the execution ids journaled so far.
        """
        with self._lock:
            with self._ids_lock:
                if self._exec_ids is not None:
                    return set(self._exec_ids)
            with self._reading("load the journaled execution ids") as conn:
                rows = conn.execute("SELECT exec_id, order_ref FROM fills").fetchall()
            pending = set(self._batch_fills or ())  # read inside this thread's open batch: not committed
            ids: dict[str, set[str | None]] = {}
            for exec_id, order_ref in rows:
                if (str(exec_id), order_ref) not in pending:
                    ids.setdefault(str(exec_id), set()).add(order_ref)
            with self._ids_lock:
                self._exec_ids = ids
            return set(ids)

    def _remember_fills(self, fills: list[tuple[str, str | None]]) -> None:
        with self._ids_lock:
            if self._exec_ids is not None:
                for exec_id, order_ref in fills:
                    self._exec_ids.setdefault(exec_id, set()).add(order_ref)

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
        with self._writing(f"record fill {exec_id}") as conn:
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
            if order_ref is not None and self._has_order(conn, order_ref):
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
        row = self._order_row(conn, order_ref)
        total, notional = conn.execute(
            "SELECT coalesce(sum(quantity), 0), coalesce(sum(quantity * price), 0) FROM fills "
            "WHERE order_ref = ?",
            (order_ref,),
        ).fetchone()
        quantity = float(row["quantity"])
        filled = max(float(row["filled"]), float(total))
        # The broker's status may run ahead of the executions we hold; its average is then the better one.
        avg = float(notional) / float(total) if total >= float(row["filled"]) - _QTY_EPS else row["avg_price"]
        current = OrderState(row["state"])
        state = self._next_state(current, OrderState.PARTIALLY_FILLED, filled, quantity)
        remaining = 0.0 if state is OrderState.FILLED else max(quantity - filled, 0.0)
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
        with self._writing(f"record the commission of {exec_id}") as conn:
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
        with self._writing(f"record error {code}") as conn:
            conn.execute(
                "INSERT INTO errors (time, order_ref, code, message) VALUES (?, ?, ?, ?)",
                (self._now(), order_ref, int(code), str(message)),
            )

    def record_event(self, kind: EventKind | str, detail: str = "") -> None:
        """An engine event: start, stop, reconnect, halt, kill switch … (see :class:`EventKind`)."""
        text = str(kind.value if isinstance(kind, EventKind) else kind).strip()
        if not text:
            raise JournalError("record_event needs a kind such as 'start', 'reconnect' or 'halt'")
        with self._writing(f"record event {text}") as conn:
            conn.execute(
                "INSERT INTO events (time, kind, detail) VALUES (?, ?, ?)", (self._now(), text, str(detail))
            )

    # ------------------------------------------------------------------ helpers for writers
    @staticmethod
    def _has_order(conn: sqlite3.Connection, order_ref: str) -> bool:
        return conn.execute("SELECT 1 FROM orders WHERE order_ref = ?", (order_ref,)).fetchone() is not None

    @staticmethod
    def _order_row(conn: sqlite3.Connection, order_ref: str) -> sqlite3.Row:
        row = conn.execute("SELECT * FROM orders WHERE order_ref = ?", (order_ref,)).fetchone()
        if row is None:
            raise UnknownOrderRefError(order_ref)
        return row

    @staticmethod
    def _append_history(  # noqa: PLR0917 - one column each, private
        conn: sqlite3.Connection,
        order_ref: str,
        now: str,
        state: OrderState,
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

    # ------------------------------------------------------------------ queries
    def order(self, order_ref: str) -> OrderRecord:
        """The order with ``order_ref``; raises :class:`UnknownOrderRefError` if the journal lacks it."""
        with self._reading(f"read order {order_ref}") as conn:
            return _order_record(self._order_row(conn, order_ref))

    def has_order(self, order_ref: str) -> bool:
        with self._reading(f"look up order {order_ref}") as conn:
            return self._has_order(conn, order_ref)

    def order_ref_for(self, broker_order_id: int) -> str | None:
        """The ref of the most recent order the broker knows as ``broker_order_id`` (None: not ours)."""
        with self._reading(f"look up broker order {broker_order_id}") as conn:
            row = conn.execute(
                "SELECT order_ref FROM orders WHERE broker_order_id = ? ORDER BY id DESC LIMIT 1",
                (int(broker_order_id),),
            ).fetchone()
        return None if row is None else str(row[0])

    def order_ids(self) -> list[str]:
        """Every strategy order id the journal holds (distinct; the engine continues its ids after them)."""
        with self._reading("read order ids") as conn:
            rows = conn.execute("SELECT DISTINCT order_id FROM orders WHERE order_id IS NOT NULL").fetchall()
        return [str(r[0]) for r in rows]

    def orders(
        self, status: StatusFilter = None, *, symbol: str | None = None, since: datetime | None = None
    ) -> list[OrderRecord]:
        """Orders in creation order. ``status``: None (all), ``'active'``/``'open'`` (not finished),
        ``'working'`` (confirmed and fillable), ``'done'``, a state (``OrderState``/``OrderStatus`` or its
        value), or several of those. ``since``: created at or after that (tz-aware) time."""
        states = _states(status)
        sql = "SELECT * FROM orders WHERE 1 = 1"
        params: list[Any] = []
        if states is not None:
            sql += f" AND state IN ({', '.join('?' * len(states))})"
            params.extend(sorted(s.value for s in states))
        if symbol is not None:
            sql += " AND symbol = ?"
            params.append(symbol.strip().upper())
        if since is not None:
            sql += " AND created_at >= ?"
            params.append(to_db_time(since))
        with self._reading("read orders") as conn:
            rows = conn.execute(sql + " ORDER BY id", params).fetchall()
        return [_order_record(r) for r in rows]

    def unsent_intents(self) -> list[OrderRecord]:
        """Orders journaled but never confirmed by the broker — after a crash they may or may not have
        reached it. Look each up at the broker by ``order_ref`` (see :func:`reconcile`); never resend blindly."""
        return self.orders(OrderState.INTENT)

    def status_history(self, order_ref: str) -> list[StatusRecord]:
        with self._reading(f"read the history of {order_ref}") as conn:
            rows = conn.execute(
                "SELECT * FROM order_events WHERE order_ref = ? ORDER BY id", (order_ref,)
            ).fetchall()
        return [
            StatusRecord(
                order_ref=r["order_ref"],
                time=_time(r["time"]),
                state=OrderState(r["state"]),
                filled=r["filled"],
                remaining=r["remaining"],
                avg_price=r["avg_price"],
                reason=r["reason"],
            )
            for r in rows
        ]

    def fills(
        self, since: datetime | None = None, *, order_ref: str | None = None, symbol: str | None = None
    ) -> list[FillRecord]:
        """Executions in recording order; ``since`` filters on the execution time (inclusive)."""
        sql = "SELECT * FROM fills WHERE 1 = 1"
        params: list[Any] = []
        if since is not None:
            sql += " AND time >= ?"
            params.append(to_db_time(since))
        if order_ref is not None:
            sql += " AND order_ref = ?"
            params.append(order_ref)
        if symbol is not None:
            sql += " AND symbol = ?"
            params.append(symbol.strip().upper())
        with self._reading("read fills") as conn:
            rows = conn.execute(sql + " ORDER BY id", params).fetchall()
        return [_fill_record(r) for r in rows]

    def has_execution(self, exec_id: str, order_ref: OrderRefOrAny = ANY_ORDER) -> bool:
        """Whether execution ``exec_id`` of order ``order_ref`` (default: of any order) is journaled."""
        sql = "SELECT 1 FROM fills WHERE exec_id = ?"
        params: list[Any] = [exec_id]
        if order_ref is not ANY_ORDER:
            sql += " AND order_ref IS ?"
            params.append(order_ref)
        with self._reading(f"look up execution {exec_id}") as conn:
            return conn.execute(sql, params).fetchone() is not None

    def errors(self, since: datetime | None = None) -> list[ErrorRecord]:
        rows = self._select_since("errors", since)
        return [ErrorRecord(_time(r["time"]), r["order_ref"], int(r["code"]), r["message"]) for r in rows]

    def events(self, since: datetime | None = None, kind: EventKind | str | None = None) -> list[EventRecord]:
        rows = self._select_since("events", since)
        wanted = None if kind is None else str(kind.value if isinstance(kind, EventKind) else kind)
        return [
            EventRecord(_time(r["time"]), r["kind"], r["detail"])
            for r in rows
            if wanted is None or r["kind"] == wanted
        ]

    def _select_since(self, table: str, since: datetime | None) -> list[sqlite3.Row]:
        sql = f"SELECT * FROM {table}"  # table is one of our own constant names
        params: list[Any] = []
        if since is not None:
            sql += " WHERE time >= ?"
            params.append(to_db_time(since))
        with self._reading(f"read {table}") as conn:
            return conn.execute(sql + " ORDER BY id", params).fetchall()

    def reconcile(
        self, broker_orders: Iterable[BrokerOrder], broker_executions: Iterable[BrokerExecution]
    ) -> ReconcileReport:
        """:func:`~copilot_quant.journal.reconcile.reconcile` this journal against the broker's view."""
        return reconcile(self.orders("active"), broker_orders, broker_executions, self.fills(), self.account)

    # ------------------------------------------------------------------ frames and export
    def to_frame(self, table: str) -> pd.DataFrame:
        """A table (``orders``, ``order_events``, ``fills``, ``errors``, ``events``) as a DataFrame with
        tz-aware UTC time columns."""
        from copilot_quant.journal.export import table_frame  # noqa: PLC0415 - pandas loads on demand

        name = _check_table(table)
        with self._reading(f"read {name}") as conn:
            rows = conn.execute(f"SELECT * FROM {name} ORDER BY id").fetchall()
            columns = [c[1] for c in conn.execute(f"PRAGMA table_info({name})").fetchall()]
        return table_frame(columns, [tuple(r) for r in rows])

    def export(self, path: str | Path, table: str = "orders", fmt: str | None = None) -> Path:
        """Write ``table`` to ``path`` as CSV or Parquet (``fmt`` defaults to the file's suffix)."""
        from copilot_quant.journal.export import write_frame  # noqa: PLC0415 - pandas loads on demand

        return write_frame(self.to_frame(table), Path(path), fmt)


def _check_table(table: str) -> str:
    name = str(table).strip().lower()
    if name not in TABLES:
        raise ConfigError(f"unknown journal table {table!r}; use one of {', '.join(TABLES)}")
    return name


def _states(status: StatusFilter) -> frozenset[OrderState] | None:
    if status is None:
        return None
    if isinstance(status, str) and status.strip().lower() in _GROUPS:
        return _GROUPS[status.strip().lower()]
    if isinstance(status, OrderState | OrderStatus | str):
        return frozenset({OrderState.parse(status)})
    result: set[OrderState] = set()
    for item in status:
        result |= _states(item) or set()
    return frozenset(result)


def _time(text: str) -> datetime:
    value = from_db_time(text)
    if value is None:  # pragma: no cover - the schema makes these columns NOT NULL
        raise JournalError("journal row without a time; the file is damaged")
    return value


def _order_record(r: sqlite3.Row) -> OrderRecord:
    return OrderRecord(
        order_ref=r["order_ref"],
        account=r["account"],
        strategy=r["strategy"],
        order_id=r["order_id"],
        symbol=r["symbol"],
        side=OrderSide(r["side"]),
        quantity=float(r["quantity"]),
        order_type=OrderType(r["order_type"]),
        limit_price=r["limit_price"],
        stop_price=r["stop_price"],
        time_in_force=TimeInForce(r["time_in_force"]),
        tag=r["tag"],
        state=OrderState(r["state"]),
        broker_order_id=r["broker_order_id"],
        perm_id=r["perm_id"],
        filled=float(r["filled"]),
        remaining=float(r["remaining"]),
        avg_price=float(r["avg_price"]),
        reason=r["reason"],
        created_at=_time(r["created_at"]),
        submitted_at=from_db_time(r["submitted_at"]),
        updated_at=_time(r["updated_at"]),
    )


def _fill_record(r: sqlite3.Row) -> FillRecord:
    return FillRecord(
        exec_id=r["exec_id"],
        order_ref=r["order_ref"],
        symbol=r["symbol"],
        side=OrderSide(r["side"]),
        quantity=float(r["quantity"]),
        price=float(r["price"]),
        time=_time(r["time"]),
        commission=r["commission"],
        realized_pnl=r["realized_pnl"],
        recorded_at=_time(r["recorded_at"]),
    )
