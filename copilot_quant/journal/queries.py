"""The journal's reads: orders, their histories, fills, errors and events as typed records, and tables as
DataFrames. Mixed into :class:`~copilot_quant.journal.journal.TradeJournal`; every read runs under the
storage's lock, so it never sees half of a write.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from copilot_quant.errors import ConfigError, JournalError
from copilot_quant.journal.errors import UnknownOrderRefError
from copilot_quant.journal.exec_ids import ANY_ORDER, OrderRefOrAny
from copilot_quant.journal.records import (
    ErrorRecord,
    EventKind,
    EventRecord,
    FillRecord,
    JournalOrder,
    StatusRecord,
    from_db_time,
    to_db_time,
)
from copilot_quant.journal.schema import TABLES
from copilot_quant.journal.states import JournalOrderState
from copilot_quant.model.orders import OrderSide, OrderStatus, OrderType, TimeInForce

if TYPE_CHECKING:
    import pandas as pd

    from copilot_quant.journal.storage import JournalStorage

__all__ = ["JournalQueries", "StatusFilter", "has_order_row", "order_row"]

StatusFilter = JournalOrderState | OrderStatus | str | Iterable[JournalOrderState | OrderStatus | str] | None
_GROUPS: dict[str, frozenset[JournalOrderState]] = {
    "active": frozenset(s for s in JournalOrderState if s.is_active),
    "open": frozenset(s for s in JournalOrderState if s.is_active),
    "working": frozenset(s for s in JournalOrderState if s.is_working),
    "done": frozenset(s for s in JournalOrderState if s.is_done),
    "all": frozenset(JournalOrderState),
}


def has_order_row(conn: sqlite3.Connection, order_ref: str) -> bool:
    return conn.execute("SELECT 1 FROM orders WHERE order_ref = ?", (order_ref,)).fetchone() is not None


def order_row(conn: sqlite3.Connection, order_ref: str) -> sqlite3.Row:
    """The ``orders`` row of ``order_ref``; raises :class:`UnknownOrderRefError` if there is none."""
    row = conn.execute("SELECT * FROM orders WHERE order_ref = ?", (order_ref,)).fetchone()
    if row is None:
        raise UnknownOrderRefError(order_ref)
    return row


class JournalQueries:
    """The read half of :class:`~copilot_quant.journal.journal.TradeJournal`."""

    _store: JournalStorage

    def order(self, order_ref: str) -> JournalOrder:
        """The order with ``order_ref``; raises :class:`UnknownOrderRefError` if the journal lacks it."""
        with self._store.reading(f"read order {order_ref}") as conn:
            return _order_record(order_row(conn, order_ref))

    def has_order(self, order_ref: str) -> bool:
        with self._store.reading(f"look up order {order_ref}") as conn:
            return has_order_row(conn, order_ref)

    def order_ref_for(self, broker_order_id: int) -> str | None:
        """The ref of the most recent order the broker knows as ``broker_order_id`` (None: not ours)."""
        with self._store.reading(f"look up broker order {broker_order_id}") as conn:
            row = conn.execute(
                "SELECT order_ref FROM orders WHERE broker_order_id = ? ORDER BY id DESC LIMIT 1",
                (int(broker_order_id),),
            ).fetchone()
        return None if row is None else str(row[0])

    def order_ids(self) -> list[str]:
        """Every strategy order id the journal holds (distinct; the engine continues its ids after them)."""
        with self._store.reading("read order ids") as conn:
            rows = conn.execute("SELECT DISTINCT order_id FROM orders WHERE order_id IS NOT NULL").fetchall()
        return [str(r[0]) for r in rows]

    def orders(
        self, status: StatusFilter = None, *, symbol: str | None = None, since: datetime | None = None
    ) -> list[JournalOrder]:
        """Orders in creation order. ``status``: None (all), ``'active'``/``'open'`` (not finished),
        ``'working'`` (confirmed and fillable), ``'done'``, a state (``JournalOrderState``/``OrderStatus`` or its
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
        with self._store.reading("read orders") as conn:
            rows = conn.execute(sql + " ORDER BY id", params).fetchall()
        return [_order_record(r) for r in rows]

    def bracket(self, order_ref: str) -> list[JournalOrder]:
        """The bracket ``order_ref`` belongs to, as one unit: its entry, then its exits in the order they
        were journaled (linked by the exits' ``parent_id`` term, within the entry's strategy); ``[]`` when
        the order is in no bracket. Raises :class:`UnknownOrderRefError` for an unknown ref."""
        order = self.order(order_ref)
        entry_id = json.loads(order.terms).get("parent_id") if order.terms else None
        entry_id = entry_id or order.order_id
        sql = (
            "SELECT * FROM orders WHERE account = ? AND strategy IS ? AND (order_id = ? OR "
            "(terms != '' AND json_extract(terms, '$.parent_id') = ?)) ORDER BY id"
        )
        with self._store.reading(f"read the bracket of {order_ref}") as conn:
            rows = conn.execute(sql, (order.account, order.strategy, entry_id, entry_id)).fetchall()
        group = [_order_record(r) for r in rows]
        entries = [o for o in group if not o.terms or "parent_id" not in json.loads(o.terms)]
        exits = [o for o in group if o not in entries]
        return [*entries[-1:], *exits] if exits else []

    def unsent_intents(self) -> list[JournalOrder]:
        """Orders journaled but never confirmed by the broker — after a crash they may or may not have
        reached it. Look each up at the broker by ``order_ref`` (see :func:`~copilot_quant.journal.reconcile.reconcile`); never resend blindly."""
        return self.orders(JournalOrderState.INTENT)

    def status_history(self, order_ref: str) -> list[StatusRecord]:
        with self._store.reading(f"read the history of {order_ref}") as conn:
            rows = conn.execute(
                "SELECT * FROM order_events WHERE order_ref = ? ORDER BY id", (order_ref,)
            ).fetchall()
        return [
            StatusRecord(
                order_ref=r["order_ref"],
                time=_time(r["time"]),
                state=JournalOrderState(r["state"]),
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
        with self._store.reading("read fills") as conn:
            rows = conn.execute(sql + " ORDER BY id", params).fetchall()
        return [_fill_record(r) for r in rows]

    def has_execution(self, exec_id: str, order_ref: OrderRefOrAny = ANY_ORDER) -> bool:
        """Whether execution ``exec_id`` of order ``order_ref`` (default: of any order) is journaled."""
        sql = "SELECT 1 FROM fills WHERE exec_id = ?"
        params: list[Any] = [exec_id]
        if order_ref is not ANY_ORDER:
            sql += " AND order_ref IS ?"
            params.append(order_ref)
        with self._store.reading(f"look up execution {exec_id}") as conn:
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
        with self._store.reading(f"read {table}") as conn:
            return conn.execute(sql + " ORDER BY id", params).fetchall()

    # ------------------------------------------------------------------ frames and export
    def to_frame(self, table: str) -> pd.DataFrame:
        """A table (``orders``, ``order_events``, ``fills``, ``errors``, ``events``) as a DataFrame with
        tz-aware UTC time columns."""
        from copilot_quant.journal.export import table_frame  # noqa: PLC0415 - pandas loads on demand

        name = _check_table(table)
        with self._store.reading(f"read {name}") as conn:
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


def _states(status: StatusFilter) -> frozenset[JournalOrderState] | None:
    if status is None:
        return None
    if isinstance(status, str) and status.strip().lower() in _GROUPS:
        return _GROUPS[status.strip().lower()]
    if isinstance(status, JournalOrderState | OrderStatus | str):
        return frozenset({JournalOrderState.parse(status)})
    result: set[JournalOrderState] = set()
    for item in status:
        result |= _states(item) or set()
    return frozenset(result)


def _time(text: str) -> datetime:
    value = from_db_time(text)
    if value is None:  # pragma: no cover - the schema makes these columns NOT NULL
        raise JournalError("journal row without a time; the file is damaged")
    return value


def _order_record(r: sqlite3.Row) -> JournalOrder:
    return JournalOrder(
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
        state=JournalOrderState(r["state"]),
        broker_order_id=r["broker_order_id"],
        perm_id=r["perm_id"],
        filled=float(r["filled"]),
        remaining=float(r["remaining"]),
        avg_price=float(r["avg_price"]),
        reason=r["reason"],
        created_at=_time(r["created_at"]),
        submitted_at=from_db_time(r["submitted_at"]),
        updated_at=_time(r["updated_at"]),
        # a version-2 file read without migrating has no terms column (a Row's `in` tests values, not keys)
        terms=r["terms"] if "terms" in r.keys() else "",  # noqa: SIM118
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
