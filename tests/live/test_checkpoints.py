"""The engine's journal is checkpointed off the order path: SQLite's own checkpoints (on whichever commit
crosses the log's limit, an order's intent included) are turned off and run in the background instead."""

from __future__ import annotations

from copilot_quant.backtest.orders import Order
from copilot_quant.journal import TradeJournal
from copilot_quant.live.checkpoints import Checkpointer


def _db_bytes(journal: TradeJournal) -> int:
    return journal.path.stat().st_size


def test_the_checkpointer_turns_sqlites_checkpoints_off_and_runs_them_itself(tmp_path):
    journal = TradeJournal(tmp_path / "journal.sqlite", account="DU1234567")
    try:
        checkpointer = Checkpointer(lambda: journal, min_bytes=1)
        checkpointer.after_step()
        checkpointer.wait()
        assert journal._conn is not None
        assert journal._conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        before = _db_bytes(journal)

        refs = [journal.record_intent(Order("AAPL", 1, "market", "buy"), "S") for _ in range(200)]
        assert len(journal.orders()) == 200  # a read writes the intent log's rows to SQLite first
        assert journal.wal_bytes() > 0
        assert _db_bytes(journal) == before  # committed (synced to the log), not copied yet

        checkpointer.after_step()
        checkpointer.wait()
        assert _db_bytes(journal) > before  # copied into the database file, in the background
        assert journal.order(refs[-1]).symbol == "AAPL"
    finally:
        journal.close()


def test_no_checkpoint_below_the_threshold_and_none_without_a_journal(tmp_path):
    Checkpointer(lambda: None).after_step()  # before start(): nothing to do, no error
    journal = TradeJournal(tmp_path / "journal.sqlite", account="DU1234567")
    try:
        checkpointer = Checkpointer(lambda: journal, min_bytes=10**9)
        checkpointer.after_step()
        checkpointer.wait()
        assert not journal.checkpoint(min_wal_bytes=10**9)
        assert journal.checkpoint()  # forced: runs next to the open connection
    finally:
        journal.close()
