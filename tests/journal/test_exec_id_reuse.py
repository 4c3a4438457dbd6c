"""An execution id already journaled for another order is a new fill with a loud alert, never a duplicate.

IB's execution ids never repeat, so a repeat for a *different* order means the broker reused one (the
simulated gateway did after a restart without its state): dropping it, as the journal once did, hid real
fills from the strategy. A repeat for the *same* order stays a silent duplicate (reconnect replays).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from copilot_quant.journal import (
    ANY_ORDER,
    EXEC_ID_REUSED,
    SCHEMA_VERSION,
    BrokerExecution,
    BrokerOrder,
    EventKind,
    JournalOrderState,
    TradeJournal,
)

from tests.journal.support import ACCOUNT, T0, StepClock, buy, reconcile_journal


def _two_orders(journal: TradeJournal) -> tuple[str, str]:
    first, second = journal.record_intent(buy(qty=10)), journal.record_intent(buy(qty=10))
    journal.record_submitted(first, 1)
    journal.record_submitted(second, 1)  # a fresh gateway numbers its orders from 1 again, too
    return first, second


def test_an_exec_id_journaled_for_another_order_is_recorded_as_a_new_fill_with_an_alert(
    journal: TradeJournal,
) -> None:
    first, second = _two_orders(journal)
    assert journal.record_fill(first, "000f4241.00000001.01.01", "AAPL", "buy", 10, 100.0, T0)
    assert journal.record_fill(second, "000f4241.00000001.01.01", "AAPL", "buy", 10, 101.0, T0)
    fills = journal.fills()
    assert [(f.order_ref, f.price) for f in fills] == [(first, 100.0), (second, 101.0)]
    assert journal.order(second).state is JournalOrderState.FILLED
    (error,) = journal.errors()
    assert (error.code, error.order_ref) == (EXEC_ID_REUSED, second)
    assert "000f4241.00000001.01.01" in error.message
    assert first in error.message
    (alert,) = journal.events(kind=EventKind.ALERT)
    assert alert.detail == error.message


def test_the_same_exec_id_for_the_same_order_stays_a_silent_duplicate(journal: TradeJournal) -> None:
    first, _ = _two_orders(journal)
    assert journal.record_fill(first, "E1", "AAPL", "buy", 10, 100.0, T0)
    assert not journal.record_fill(first, "E1", "AAPL", "buy", 10, 100.0, T0)  # a reconnect replay
    assert len(journal.fills()) == 1
    assert journal.errors() == []
    assert journal.events() == []
    assert journal.order(first).filled == 10


def test_a_fill_without_an_order_ref_deduplicates_against_itself_only(journal: TradeJournal) -> None:
    first, _ = _two_orders(journal)
    assert journal.record_fill(None, "X1", "AAPL", "buy", 1, 100.0, T0)
    assert not journal.record_fill(None, "X1", "AAPL", "buy", 1, 100.0, T0)
    assert not journal.record_fill("", "X1", "AAPL", "buy", 1, 100.0, T0)  # "" is "no order" too
    assert journal.record_fill(first, "X1", "AAPL", "buy", 1, 100.0, T0)
    assert [e.code for e in journal.errors()] == [EXEC_ID_REUSED]


def test_knows_fill_and_has_execution_tell_orders_apart(journal: TradeJournal) -> None:
    first, second = _two_orders(journal)
    journal.record_fill(first, "E1", "AAPL", "buy", 10, 100.0, T0)
    assert journal.knows_fill("E1")
    assert journal.knows_fill("E1", ANY_ORDER)
    assert journal.knows_fill("E1", first)
    assert not journal.knows_fill("E1", second)
    assert journal.has_execution("E1", first)
    assert not journal.has_execution("E1", second)
    journal.record_fill(second, "E1", "AAPL", "buy", 10, 100.0, T0)
    assert journal.knows_fill("E1", second)
    assert journal.has_execution("E1", second)


def test_knows_fill_loaded_from_disk_tells_orders_apart(journal_path: Path) -> None:
    with TradeJournal(journal_path, account=ACCOUNT, clock=StepClock()) as writer:
        first, second = _two_orders(writer)
        writer.record_fill(first, "E1", "AAPL", "buy", 10, 100.0, T0)
    with TradeJournal(journal_path, account=ACCOUNT) as reader:
        assert reader.knows_fill("E1", first)
        assert not reader.knows_fill("E1", second)


def test_a_commission_report_for_a_reused_exec_id_goes_to_its_own_fill(journal: TradeJournal) -> None:
    first, second = _two_orders(journal)
    journal.record_fill(first, "E1", "AAPL", "buy", 10, 100.0, T0, commission=1.0)
    journal.record_fill(second, "E1", "AAPL", "buy", 10, 100.0, T0)
    assert journal.record_commission("E1", 2.5, order_ref=second)
    assert [f.commission for f in journal.fills()] == [1.0, 2.5]
    assert journal.record_commission("E1", 3.0)  # no order named: the most recent fill with the id
    assert [f.commission for f in journal.fills()] == [1.0, 3.0]


def test_a_commission_that_arrives_before_a_reused_executions_fill_waits_for_it(
    journal: TradeJournal,
) -> None:
    first, second = _two_orders(journal)
    journal.record_fill(first, "E1", "AAPL", "buy", 10, 100.0, T0, commission=1.0)
    assert not journal.record_commission("E1", 2.0, order_ref=second)  # second's fill is not there yet
    journal.record_fill(second, "E1", "AAPL", "buy", 10, 100.0, T0)
    assert [f.commission for f in journal.fills()] == [1.0, 2.0]


def test_a_batch_that_records_a_reused_exec_id_remembers_it_per_order(journal: TradeJournal) -> None:
    first, second = _two_orders(journal)
    journal.preload_fill_ids()
    with journal.batch():
        journal.record_fill(first, "E1", "AAPL", "buy", 10, 100.0, T0)
        journal.record_fill(second, "E1", "AAPL", "buy", 10, 100.0, T0)
    assert journal.knows_fill("E1", first)
    assert journal.knows_fill("E1", second)
    assert len(journal.events(kind=EventKind.ALERT)) == 1


# ---------------------------------------------------------------------------------------------- schema v1
_V1_FILLS = """CREATE TABLE fills (
    id INTEGER PRIMARY KEY AUTOINCREMENT, exec_id TEXT NOT NULL UNIQUE, order_ref TEXT,
    symbol TEXT NOT NULL, side TEXT NOT NULL, quantity REAL NOT NULL CHECK (quantity > 0),
    price REAL NOT NULL CHECK (price > 0), time TEXT NOT NULL, commission REAL, realized_pnl REAL,
    recorded_at TEXT NOT NULL)"""


def _make_version_1(path: Path) -> tuple[str, str]:
    """A journal as version 1 wrote it: ``fills.exec_id`` UNIQUE on its own."""
    with TradeJournal(path, account=ACCOUNT, clock=StepClock()) as journal:
        first, second = _two_orders(journal)
        journal.record_fill(first, "E1", "AAPL", "buy", 10, 100.0, T0, commission=1.0)
    with sqlite3.connect(path) as raw:
        rows = raw.execute("SELECT * FROM fills").fetchall()
        raw.execute("DROP TABLE fills")
        raw.execute(_V1_FILLS)
        raw.execute("CREATE INDEX fills_order_ref ON fills (order_ref)")
        raw.execute("CREATE INDEX fills_time ON fills (time)")
        raw.executemany(f"INSERT INTO fills VALUES ({', '.join('?' * 11)})", rows)
        raw.execute("PRAGMA user_version = 1")
    return first, second


def test_a_version_1_journal_is_readable_and_migrated_when_opened_for_writing(journal_path: Path) -> None:
    first, second = _make_version_1(journal_path)
    with TradeJournal(journal_path, read_only=True) as reader:  # e.g. the CLI: reads, never migrates
        assert [f.exec_id for f in reader.fills()] == ["E1"]
    with sqlite3.connect(journal_path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == 1
    with TradeJournal(journal_path, account=ACCOUNT, clock=StepClock()) as journal:
        (kept,) = journal.fills()
        assert (kept.exec_id, kept.order_ref, kept.commission) == ("E1", first, 1.0)
        assert journal.record_fill(second, "E1", "AAPL", "buy", 10, 100.0, T0)  # v1 dropped this
        assert not journal.record_fill(second, "E1", "AAPL", "buy", 10, 100.0, T0)
        assert len(journal.fills()) == 2
        assert journal.order(second).filled == 10
    with sqlite3.connect(journal_path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        names = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"fills_exec_order", "fills_order_ref", "fills_time"} <= names


def test_the_fills_index_refuses_a_true_duplicate_even_written_behind_the_journals_back(
    journal: TradeJournal,
) -> None:
    first, _ = _two_orders(journal)
    journal.record_fill(first, "E1", "AAPL", "buy", 10, 100.0, T0)
    with sqlite3.connect(journal.path) as raw, pytest.raises(sqlite3.IntegrityError):
        raw.execute(
            "INSERT INTO fills (exec_id, order_ref, symbol, side, quantity, price, time, recorded_at) "
            "SELECT exec_id, order_ref, symbol, side, quantity, price, time, recorded_at FROM fills"
        )


# ---------------------------------------------------------------------------------------------- reconcile
def test_reconcile_finds_an_execution_whose_id_is_journaled_for_another_order_missing(
    journal: TradeJournal,
) -> None:
    first, second = _two_orders(journal)
    journal.record_fill(first, "E1", "AAPL", "buy", 10, 100.0, T0)
    broker = [
        BrokerOrder(first, 1, "AAPL", "buy", 10, 10, "filled"),
        BrokerOrder(second, 1, "AAPL", "buy", 10, 10, "filled"),
    ]
    reported = [
        BrokerExecution("E1", first, "AAPL", "buy", 10, 100.0, T0, 1),
        BrokerExecution("E1", second, "AAPL", "buy", 10, 101.0, T0, 1),
    ]
    report = reconcile_journal(journal, broker, reported)
    assert [(e.exec_id, e.order_ref) for e in report.missing_fills] == [("E1", second)]
    (missing,) = report.missing_fills
    assert journal.record_fill(
        missing.order_ref, missing.exec_id, missing.symbol, missing.side, missing.quantity, missing.price, T0
    )
    assert reconcile_journal(journal, broker, reported).missing_fills == ()


def test_reconcile_does_not_call_a_journaled_execution_foreign_when_the_broker_forgot_its_order(
    journal: TradeJournal,
) -> None:
    first, _ = _two_orders(journal)
    journal.record_fill(first, "E1", "AAPL", "buy", 10, 100.0, T0)
    report = reconcile_journal(journal, [], [BrokerExecution("E1", None, "AAPL", "buy", 10, 100.0, T0, 99)])
    assert report.foreign_executions == ()
    assert report.missing_fills == ()
