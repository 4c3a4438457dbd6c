"""The journal's SQLite schema, versioned with ``PRAGMA user_version`` and created on first open.

Every time is UTC text in one fixed ISO-8601 layout (see :mod:`copilot_quant.journal.records`), so that
text order is time order. A fill is unique by ``(exec_id, order_ref)``: that index is what makes recording
the same execution twice a no-op, whichever thread or process tries, while an execution id a broker reuses
for another order is still recorded (version 1 had ``exec_id`` alone UNIQUE and silently dropped those;
opening a version-1 journal for writing migrates it).
"""

from __future__ import annotations

import sqlite3

from copilot_quant.errors import JournalError

__all__ = ["SCHEMA_VERSION", "TABLES", "create_or_check"]

SCHEMA_VERSION = 3

# The fills table and its indexes (version 2): one execution of one order per row.
_FILLS = """
CREATE TABLE fills (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    exec_id      TEXT NOT NULL,
    order_ref    TEXT,
    symbol       TEXT NOT NULL,
    side         TEXT NOT NULL,
    quantity     REAL NOT NULL CHECK (quantity > 0),
    price        REAL NOT NULL CHECK (price > 0),
    time         TEXT NOT NULL,
    commission   REAL,
    realized_pnl REAL,
    recorded_at  TEXT NOT NULL
);
CREATE UNIQUE INDEX fills_exec_order ON fills (exec_id, coalesce(order_ref, ''));
CREATE INDEX fills_order_ref ON fills (order_ref);
CREATE INDEX fills_time ON fills (time);
"""

# Everything else (the fills table follows in _FILLS).
_SCHEMA = """
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE orders (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    order_ref       TEXT NOT NULL UNIQUE,
    account         TEXT NOT NULL,
    strategy        TEXT,
    order_id        TEXT,
    symbol          TEXT NOT NULL,
    side            TEXT NOT NULL,
    quantity        REAL NOT NULL CHECK (quantity > 0),
    order_type      TEXT NOT NULL,
    limit_price     REAL,
    stop_price      REAL,
    time_in_force   TEXT NOT NULL,
    tag             TEXT NOT NULL DEFAULT '',
    state           TEXT NOT NULL,
    broker_order_id INTEGER,
    perm_id         INTEGER,
    filled          REAL NOT NULL DEFAULT 0,
    remaining       REAL NOT NULL,
    avg_price       REAL NOT NULL DEFAULT 0,
    reason          TEXT NOT NULL DEFAULT '',
    created_at      TEXT NOT NULL,
    submitted_at    TEXT,
    updated_at      TEXT NOT NULL,
    terms           TEXT NOT NULL DEFAULT ''
);
CREATE INDEX orders_state ON orders (state);
CREATE INDEX orders_broker_id ON orders (broker_order_id);
CREATE TABLE order_events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    order_ref TEXT NOT NULL,
    time      TEXT NOT NULL,
    state     TEXT NOT NULL,
    filled    REAL NOT NULL,
    remaining REAL NOT NULL,
    avg_price REAL NOT NULL,
    reason    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX order_events_ref ON order_events (order_ref);
-- A commission report that arrived before its execution waits here until the fill is recorded.
CREATE TABLE pending_commissions (
    exec_id      TEXT PRIMARY KEY,
    commission   REAL NOT NULL,
    realized_pnl REAL
);
CREATE TABLE errors (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    time      TEXT NOT NULL,
    order_ref TEXT,
    code      INTEGER NOT NULL,
    message   TEXT NOT NULL
);
CREATE TABLE events (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    time   TEXT NOT NULL,
    kind   TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
"""

#: Tables a user can read or export (``pending_commissions`` and ``meta`` are internal).
TABLES = ("orders", "order_events", "fills", "errors", "events")


def create_or_check(conn: sqlite3.Connection, path: str, *, writable: bool) -> bool:
    """Create the schema in an empty database, or check the version of an existing one.

    Returns True when the schema was just created. The caller holds a write transaction when
    ``writable`` so that two processes opening a new journal at once cannot both create it.
    """
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version == SCHEMA_VERSION:
        return False
    if version in (1, 2):
        if writable:
            if version == 1:
                _migrate_v1(conn)
            _migrate_v2(conn)
        # Read-only: the file is migrated when an engine next opens it (reads tolerate the missing column).
        return False
    if version > SCHEMA_VERSION:
        raise JournalError(
            f"journal {path} has schema version {version}, newer than this copilot_quant understands "
            f"({SCHEMA_VERSION}); upgrade copilot_quant to read it"
        )
    if version == 0:
        tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
        if tables:
            raise JournalError(
                f"{path} is an SQLite database but not a copilot_quant journal; choose another journal path"
            )
        if not writable:
            raise JournalError(f"{path} is empty, not a journal; open it writable once to create it")
        for statement in _statements(_SCHEMA) + _statements(_FILLS):
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        return True
    # Versions between 1 and SCHEMA_VERSION would be migrated here, one step at a time.
    raise JournalError(f"journal {path} has unknown schema version {version}")  # pragma: no cover


def _migrate_v1(conn: sqlite3.Connection) -> None:
    """Version 1 → 2: rebuild ``fills`` without the UNIQUE on ``exec_id`` alone (rows and ids kept)."""
    conn.execute("ALTER TABLE fills RENAME TO fills_v1")
    for index in ("fills_order_ref", "fills_time"):
        conn.execute(f"DROP INDEX IF EXISTS {index}")
    for statement in _statements(_FILLS):
        conn.execute(statement)
    columns = (
        "id, exec_id, order_ref, symbol, side, quantity, price, time, commission, realized_pnl, recorded_at"
    )
    conn.execute(f"INSERT INTO fills ({columns}) SELECT {columns} FROM fills_v1")
    conn.execute("DROP TABLE fills_v1")
    conn.execute("PRAGMA user_version = 2")


def _migrate_v2(conn: sqlite3.Connection) -> None:
    """Version 2 → 3: ``orders.terms``, the order's terms beyond the common columns (OCA group, trail)."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(orders)")}
    if "terms" not in columns:
        conn.execute("ALTER TABLE orders ADD COLUMN terms TEXT NOT NULL DEFAULT ''")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _statements(script: str) -> list[str]:
    # executescript() would COMMIT the caller's transaction first; run statement by statement instead.
    body = "\n".join(line for line in script.splitlines() if not line.strip().startswith("--"))
    return [s.strip() for s in body.split(";") if s.strip()]
