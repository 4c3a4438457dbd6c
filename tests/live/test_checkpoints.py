"""The engine's journal is checkpointed off the order path: SQLite's own checkpoints (on whichever commit
crosses the log's limit, an order's intent included) are turned off and run in the background instead."""

from __future__ import annotations

import threading

from copilot_quant.backtest.orders import Order
from copilot_quant.journal import TradeJournal
from copilot_quant.live.checkpoints import Checkpointer


def _db_bytes(journal: TradeJournal) -> int:
    return journal.path.stat().st_size


def test_the_checkpointer_turns_sqlites_checkpoints_off_and_runs_them_itself(tmp_path):
    journal = TradeJournal(tmp_path / "journal.sqlite", account="DU1234567")
    try:
        checkpointer = Checkpointer(lambda: journal, min_bytes=1, every_commits=1)
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
        checkpointer.close()
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
        checkpointer.close()
    finally:
        journal.close()


def test_the_step_only_counts_commits_and_one_thread_checkpoints_every_few_hundred(tmp_path, monkeypatch):
    """Once SQLite's log file has grown past the limit it stays that size (SQLite reuses it, never shrinks
    it): the step must not read it and start a checkpoint thread every time, only every N commits."""
    journal = TradeJournal(tmp_path / "journal.sqlite", account="DU1234567")
    ran: list[str] = []
    monkeypatch.setattr(journal, "wal_bytes", lambda: 10**9)  # a log file past the limit, for good
    real = journal.checkpoint
    monkeypatch.setattr(
        journal,
        "checkpoint",
        lambda min_wal_bytes=0: (ran.append(threading.current_thread().name), real())[1],
    )
    started = []
    real_start = threading.Thread.start
    monkeypatch.setattr(
        threading.Thread, "start", lambda self: (started.append(self.name), real_start(self))[1]
    )
    try:
        checkpointer = Checkpointer(lambda: journal, min_bytes=1, every_commits=10)
        for _ in range(45):
            journal.record_event("tick", "x")
            checkpointer.after_step()
        checkpointer.wait()
        assert len(ran) == 5  # at the first step, then every 10 commits: not 45
        assert set(ran) == {"copilot-quant-journal-checkpoint"}
        assert started == ["copilot-quant-journal-checkpoint"]  # one thread, kept
        checkpointer.close()
        assert not any(t.name == "copilot-quant-journal-checkpoint" for t in threading.enumerate())
    finally:
        journal.close()
