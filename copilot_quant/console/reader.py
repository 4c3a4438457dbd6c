"""Read-only, paged views of an account's journal for the console's pages.

The console opens the journal file with SQLite's ``mode=ro`` (WAL lets it read while the engine writes), so
neither the post-mortem console nor the engine's own console can ever change it, nor wait on the engine's
write lock. Queries are bounded (``LIMIT``) and aggregate in SQL: the overview stays fast with 100,000 fills.
"""

from __future__ import annotations

import csv
import io
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from copilot_quant.errors import ConfigError
from copilot_quant.journal.states import JournalOrderState

__all__ = ["ALERT_KINDS", "JournalFilter", "JournalReader"]

#: Event kinds the journal browser lists as alerts.
ALERT_KINDS = ("alert", "halt", "kill_switch", "console", "notify")
_ACTIVE = tuple(sorted(s.value for s in JournalOrderState if s.is_active))
_CURVE_POINTS = 2000
_TABLES = ("orders", "fills", "events", "alerts", "errors")


@dataclass(frozen=True, slots=True)
class JournalFilter:
    """The journal browser's filters; each one left None is not applied."""

    since: date | None = None
    until: date | None = None
    symbol: str | None = None
    strategy: str | None = None

    @classmethod
    def parse(cls, params: dict[str, str]) -> JournalFilter:
        """From query parameters ``since``/``until`` (YYYY-MM-DD), ``symbol``, ``strategy``; a bad date is a
        ConfigError naming the parameter."""

        def day(name: str) -> date | None:
            text = (params.get(name) or "").strip()
            if not text:
                return None
            try:
                return date.fromisoformat(text)
            except ValueError:
                raise ConfigError(f"{name}={text!r} is not a date; use YYYY-MM-DD") from None

        symbol = (params.get("symbol") or "").strip().upper() or None
        strategy = (params.get("strategy") or "").strip() or None
        return cls(day("since"), day("until"), symbol, strategy)

    def where(
        self, time_col: str, *, symbol_col: str | None, strategy_col: str | None
    ) -> tuple[str, list[Any]]:
        sql, params = " WHERE 1 = 1", []
        if self.since is not None:
            sql += f" AND {time_col} >= ?"
            params.append(self.since.isoformat())
        if self.until is not None:
            sql += f" AND {time_col} < ?"
            params.append((self.until + timedelta(days=1)).isoformat())
        if self.symbol is not None and symbol_col is not None:
            sql += f" AND {symbol_col} = ?"
            params.append(self.symbol.strip().upper())
        if self.strategy is not None and strategy_col is not None:
            sql += f" AND {strategy_col} = ?"
            params.append(self.strategy)
        return sql, params


class JournalReader:
    """Read-only queries over one journal file (see the module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ConfigError(f"no journal at {self.path}; check --journal-dir and --account")

    @contextmanager
    def _conn(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
        conn.row_factory = sqlite3.Row
        try:
            yield conn
        finally:
            conn.close()

    def _rows(self, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with self._conn() as conn:
            return [dict(r) for r in conn.execute(sql, params).fetchall()]

    # ------------------------------------------------------------------ overview
    def counts(self) -> dict[str, int]:
        with self._conn() as conn:
            return {
                t: int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0])  # our own table names
                for t in ("orders", "fills", "events", "errors")
            }

    def max_ids(self) -> tuple[int, ...]:
        """The newest row id of each table: changes whenever anything is journaled (primary keys: instant)."""
        with self._conn() as conn:
            return tuple(
                int(conn.execute(f"SELECT coalesce(max(id), 0) FROM {t}").fetchone()[0])
                for t in ("orders", "order_events", "fills", "events", "errors")
            )

    def account(self) -> str:
        rows = self._rows("SELECT value FROM meta WHERE key = 'account'")
        return str(rows[0]["value"]) if rows else ""

    def strategies(self) -> list[str]:
        rows = self._rows("SELECT DISTINCT strategy FROM orders WHERE strategy IS NOT NULL ORDER BY strategy")
        return [str(r["strategy"]) for r in rows]

    def last_fill_by_symbol(self) -> list[dict[str, Any]]:
        """The newest fill of each symbol the orders name: one backwards walk of the fills per symbol (the
        newest rows come first, so this stays fast however long the journal is)."""
        out = []
        with self._conn() as conn:
            symbols = [r[0] for r in conn.execute("SELECT DISTINCT symbol FROM orders ORDER BY symbol")]
            for symbol in symbols:
                row = conn.execute(
                    "SELECT symbol, time, price FROM fills WHERE symbol = ? ORDER BY id DESC LIMIT 1",
                    [symbol],
                ).fetchone()
                if row is not None:
                    out.append(dict(row))
        return out

    def last_event(self, *kinds: str) -> dict[str, Any] | None:
        marks = ", ".join("?" * len(kinds))
        rows = self._rows(f"SELECT * FROM events WHERE kind IN ({marks}) ORDER BY id DESC LIMIT 1", kinds)
        return rows[0] if rows else None

    def open_orders(self, strategy: str | None = None) -> list[dict[str, Any]]:
        sql = f"SELECT * FROM orders WHERE state IN ({', '.join('?' * len(_ACTIVE))})"
        params: list[Any] = list(_ACTIVE)
        if strategy is not None:
            sql += " AND strategy = ?"
            params.append(strategy)
        return self._rows(sql + " ORDER BY id DESC LIMIT 200", params)

    # ------------------------------------------------------------------ browser
    def table(
        self, name: str, where: JournalFilter, limit: int = 200, offset: int = 0
    ) -> list[dict[str, Any]]:
        """The newest rows of ``orders``, ``fills``, ``events``, ``alerts`` (alert-like events) or ``errors``."""
        sql, params = self._select(name, where)
        return self._rows(sql + " ORDER BY t.id DESC LIMIT ? OFFSET ?", [*params, int(limit), int(offset)])

    def csv(self, name: str, where: JournalFilter) -> str:
        """Every row of the filtered table, oldest first, as CSV text."""
        sql, params = self._select(name, where)
        with self._conn() as conn:
            cursor = conn.execute(sql + " ORDER BY t.id", params)
            columns = [c[0] for c in cursor.description]
            out = io.StringIO()
            writer = csv.writer(out)
            writer.writerow(columns)
            writer.writerows(tuple(r) for r in cursor)
        return out.getvalue()

    def _select(self, name: str, where: JournalFilter) -> tuple[str, list[Any]]:
        if name not in _TABLES:
            raise ConfigError(f"unknown journal table {name!r}; use one of {', '.join(_TABLES)}")
        if name == "orders":
            clause, params = where.where("t.created_at", symbol_col="t.symbol", strategy_col="t.strategy")
            return "SELECT t.* FROM orders t" + clause, params
        if name == "fills":
            clause, params = where.where("t.time", symbol_col="t.symbol", strategy_col="o.strategy")
            return (
                "SELECT t.*, o.strategy FROM fills t LEFT JOIN orders o ON o.order_ref = t.order_ref"
                + clause,
                params,
            )
        if name == "errors":
            clause, params = where.where("t.time", symbol_col="o.symbol", strategy_col="o.strategy")
            return (
                "SELECT t.*, o.symbol, o.strategy FROM errors t LEFT JOIN orders o ON o.order_ref = t.order_ref"
                + clause,
                params,
            )
        clause, params = where.where("t.time", symbol_col=None, strategy_col=None)
        if name == "alerts":
            clause += f" AND t.kind IN ({', '.join('?' * len(ALERT_KINDS))})"
            params += list(ALERT_KINDS)
        return "SELECT t.* FROM events t" + clause, params

    def reconcile_reports(self, limit: int = 50) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM events WHERE kind = 'reconcile' ORDER BY id DESC LIMIT ?", [limit])

    # ------------------------------------------------------------------ per strategy
    def positions(self, strategy: str) -> dict[str, float]:
        """The strategy's net position per symbol from its orders' filled quantities (the orders table is a
        hundred times smaller than the fills)."""
        rows = self._rows(
            "SELECT symbol, sum(CASE side WHEN 'buy' THEN filled ELSE -filled END) AS qty "
            "FROM orders WHERE strategy = ? GROUP BY symbol",
            [strategy],
        )
        return {str(r["symbol"]): float(r["qty"]) for r in rows if abs(float(r["qty"] or 0.0)) > 1e-12}

    def equity_curve(self, strategy: str) -> list[tuple[str, float]]:
        """The strategy's P&L after commissions after each of its fills, marked at its own fill prices
        (what the journal alone knows), thinned to at most 2,000 points."""
        with self._conn() as conn:
            cursor = conn.execute(
                "SELECT f.time, f.symbol, f.side, f.quantity, f.price, coalesce(f.commission, 0) "
                "FROM fills f JOIN orders o ON o.order_ref = f.order_ref WHERE o.strategy = ? ORDER BY f.id",
                [strategy],
            )
            points = list(_pnl_points(cursor))
        step = max(1, len(points) // _CURVE_POINTS)
        thinned = points[::step]
        if points and thinned[-1] is not points[-1]:
            thinned.append(points[-1])
        return thinned


def _pnl_points(rows: Any) -> Iterator[tuple[str, float]]:
    cash = 0.0
    held: dict[str, float] = {}
    marks: dict[str, float] = {}
    value = 0.0  # sum of held * mark, kept up to date per symbol
    for when, symbol, side, quantity, price, commission in rows:
        signed = quantity if side == "buy" else -quantity
        value -= held.get(symbol, 0.0) * marks.get(symbol, 0.0)
        held[symbol] = held.get(symbol, 0.0) + signed
        marks[symbol] = price
        value += held[symbol] * price
        cash -= signed * price + commission
        yield str(when), cash + value
