"""A crash or a failing disk leaves the journal consistent: whole records only, and a clear error.

Root ignores file permissions, so a read-only disk is simulated the way SQLite sees one (the
connection's writes refused with SQLITE_READONLY), a full disk with the journal's ``max_bytes`` cap
(SQLITE_FULL), and crashes with real child processes killed by SIGKILL or dying inside a transaction.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from copilot_quant.errors import JournalError
from copilot_quant.journal import JournalOrderState, TradeJournal, intent_log, storage
from copilot_quant.journal.durability import FILL_DURABILITY, Durability

from tests.journal.support import ACCOUNT, T0, buy

CHILD = Path(__file__).with_name("crash_writer.py")


def assert_consistent(path: Path) -> TradeJournal:
    """Reopen the journal and check that it holds only whole records; returns it (writable) for more."""
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    journal = TradeJournal(path)
    orders = {o.order_ref: o for o in journal.orders()}
    fills = journal.fills()
    assert all(f.order_ref in orders for f in fills), "a fill without its order"
    for ref, order in orders.items():
        filled = sum(f.quantity for f in fills if f.order_ref == ref)
        assert order.filled == pytest.approx(filled), f"{ref}: order says {order.filled}, fills say {filled}"
        if filled:
            assert order.state is not JournalOrderState.INTENT
        history = journal.status_history(ref)
        assert history, f"{ref} has no history"
        assert history[0].state is JournalOrderState.INTENT
    return journal


def reap(child: subprocess.Popen[str]) -> None:
    """Kill ``child`` if it still runs, wait for it and close its pipes."""
    child.kill()
    child.wait(timeout=30)
    for stream in (child.stdin, child.stdout):
        if stream is not None:
            stream.close()


def run_child(path: Path, mode: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    stdin = (
        subprocess.PIPE if mode in ("fills", "intents", "forked") else None
    )  # these wait on it until killed
    return subprocess.Popen(
        [sys.executable, str(CHILD), str(path), mode], stdin=stdin, stdout=subprocess.PIPE, text=True, env=env
    )


@pytest.mark.parametrize("records_before_kill", [5, 60])
def test_a_writer_killed_at_any_moment_leaves_only_whole_records(
    tmp_path: Path, records_before_kill: int
) -> None:
    path = tmp_path / f"{ACCOUNT}.sqlite"
    child = run_child(path, "loop")
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        with TradeJournal(path, read_only=True) as watcher:  # kill once enough lifecycles are under way
            while len(watcher.events()) < records_before_kill:
                assert child.poll() is None, "the writer died by itself"
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=30)
        if child.stdout is not None:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    journal = assert_consistent(path)
    with journal:
        assert len(journal.events()) >= records_before_kill
        ref = journal.record_intent(buy())  # and the engine carries on writing after the restart
        assert journal.record_fill(ref, "after-restart", "AAPL", "buy", 10, 1.0, T0)


def test_a_crash_safe_fill_survives_a_sigkill_of_the_process_that_wrote_it(tmp_path: Path) -> None:
    """Fills commit without a disk sync of their own (durability.py): the process is killed right after,
    with nothing synced since, and a new process still finds them, whole, with their order."""
    path = tmp_path / f"{ACCOUNT}.sqlite"
    child = run_child(path, "fills")
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "written"
        child.send_signal(signal.SIGKILL)
    finally:
        reap(child)
    assert child.returncode == -signal.SIGKILL
    journal = assert_consistent(path)
    with journal:
        assert sorted(f.exec_id for f in journal.fills()) == ["crash-safe.1", "crash-safe.2"]
        [order] = journal.orders()
        assert order.filled == 10
        assert order.state is JournalOrderState.FILLED


def _synced_of_each_commit(
    journal: TradeJournal, record: Callable[[], object], monkeypatch: pytest.MonkeyPatch
) -> list[str]:
    """Whether each transaction of ``record()`` was synced to the disk before its write returned, in order:
    "FULL" (its log synced right after its commit) or "NORMAL" (not) — and "LOGGED" for an append to
    the intent log (synced, no SQLite transaction)."""
    steps: list[str] = []
    assert journal._conn is not None
    assert journal._conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL: commits never sync
    real_sync = storage._datasync

    def datasync(fd: int) -> None:
        steps.append("sync")
        real_sync(fd)

    def log_sync(fd: int) -> None:
        steps.append("intent log sync")
        real_sync(fd)

    monkeypatch.setattr(storage, "_datasync", datasync)
    monkeypatch.setattr(intent_log, "_datasync", log_sync)
    journal._conn.set_trace_callback(steps.append)
    try:
        record()
    finally:
        journal._conn.set_trace_callback(None)
    commits = []
    for k, step in enumerate(steps):
        if step.startswith("PRAGMA synchronous"):
            commits.append("a PRAGMA synchronous switch")  # never: the setting stays NORMAL
        elif step == "COMMIT":
            synced = k + 1 < len(steps) and steps[k + 1] == "sync"
            commits.append("FULL" if synced else "NORMAL")
        elif step == "intent log sync":
            commits.append("LOGGED")
    return commits


def _lifecycle(journal: TradeJournal) -> Callable[[], None]:
    def lifecycle() -> None:
        ref = journal.record_intent(buy())
        journal.record_submitted(ref, 7)
        journal.record_fill(ref, "e1", "AAPL", "buy", 4, 100.0, T0)
        ref2 = journal.record_intent(buy())  # right after a crash-safe fill
        journal.record_commission("e1", 1.0)
        journal.record_fill(ref2, "e2", "AAPL", "buy", 10, 100.0, T0)
        journal.record_status(ref, "cancelled", 4, 0, 100.0)
        journal.record_event("tick", "x")

    return lifecycle


def test_fills_commit_crash_safe_and_everything_else_synced(
    journal: TradeJournal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The durability policy, "crash-safe fills": a fill's commit has no disk sync of its own; the intent
    (durable before the order is sent: one synced append to the intent log, no SQLite commit), statuses,
    commissions and events are synced before the write returns — also the intent that follows a fill."""
    assert journal._store.intent_log is not None  # the journal that opened the file first owns the log
    assert _synced_of_each_commit(journal, _lifecycle(journal), monkeypatch) == [
        "LOGGED",  # intent
        "FULL",  # submitted (its transaction writes the intent's row first)
        "NORMAL",  # fill
        "LOGGED",  # the next intent
        "FULL",  # commission
        "NORMAL",  # fill
        "FULL",  # status
        "FULL",  # event
    ]
    assert FILL_DURABILITY is Durability.CRASH_SAFE


def test_a_journal_without_the_intent_log_commits_intents_synced(
    journal: TradeJournal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second writable journal on the file does not own the intent log: its intents are synced commits."""
    with TradeJournal(journal.path) as second:
        assert second._store.intent_log is None
        assert _synced_of_each_commit(second, _lifecycle(second), monkeypatch) == [
            "FULL",  # intent
            "FULL",  # submitted
            "NORMAL",  # fill
            "FULL",  # the next intent
            "FULL",  # commission
            "NORMAL",  # fill
            "FULL",  # status
            "FULL",  # event
        ]


def test_sync_puts_crash_safe_fills_on_the_disk_and_a_closed_journal_refuses_it(
    journal: TradeJournal,
) -> None:
    ref = journal.record_intent(buy())
    journal.record_fill(ref, "e1", "AAPL", "buy", 4, 100.0, T0)
    journal.sync()  # fsyncs the log the fill is in (no error, nothing changes)
    assert [f.exec_id for f in journal.fills()] == ["e1"]
    journal.close()
    with pytest.raises(JournalError, match="closed"):
        journal.sync()


def test_a_crash_inside_a_transaction_rolls_the_whole_record_back(tmp_path: Path) -> None:
    path = tmp_path / f"{ACCOUNT}.sqlite"
    child = run_child(path, "midtx")
    child.communicate(timeout=60)
    assert child.returncode == 3  # died inside record_fill, after inserting the fill row
    with assert_consistent(path) as journal:
        assert [f.exec_id for f in journal.fills()] == ["whole"]
        assert not journal.has_execution("torn")
        (order,) = journal.orders()
        assert order.filled == 4.0
        # the redelivered execution is new to the journal, so on_fill would fire for it exactly once
        assert journal.record_fill(order.order_ref, "torn", "AAPL", "buy", 6, 101.0, T0) is True
        assert journal.order(order.order_ref).state is JournalOrderState.FILLED


def test_a_full_disk_raises_a_clear_error_and_writes_nothing_half(tmp_path: Path) -> None:
    path = tmp_path / f"{ACCOUNT}.sqlite"
    recorded = 0
    with TradeJournal(path, account=ACCOUNT, max_bytes=160 * 1024) as journal:
        ref = journal.record_intent(buy(qty=1_000_000))
        failure: JournalError | None = None
        for i in range(100_000):
            try:
                journal.record_fill(ref, f"exec-{i:06d}-" + "x" * 40, "AAPL", "buy", 1, 100.0, T0)
            except JournalError as exc:
                failure = exc
                break
            recorded += 1
        assert failure is not None, "the cap never made a write fail"
        message = str(failure)
        assert str(path) in message
        assert "full" in message
        assert "halted" in message
        assert recorded > 10
        assert len(journal.fills()) == recorded  # the failed record left no trace, the others are intact
    with assert_consistent(path) as reopened:  # no cap now: the engine can carry on after space is freed
        assert len(reopened.fills()) == recorded
        assert reopened.order(ref).filled == recorded
        assert reopened.record_fill(ref, "after-cleanup", "AAPL", "buy", 1, 100.0, T0)


def test_a_disk_turning_read_only_under_a_running_engine_raises_a_clear_error(journal: TradeJournal) -> None:
    ref = journal.record_intent(buy())
    journal.record_fill(ref, "e1", "AAPL", "buy", 4, 100.0, T0)
    # Fault injection: from here on SQLite refuses every write on this connection, as on a read-only mount.
    journal._conn.execute("PRAGMA query_only = ON")  # type: ignore[union-attr]
    with pytest.raises(JournalError, match="read-only") as caught:
        journal.record_fill(ref, "e2", "AAPL", "buy", 6, 100.0, T0)
    assert str(journal.path) in str(caught.value)
    # The intent log is on another file: the intent is on the disk, and SQLite's refusal shows at the next
    # transaction (the broker's acknowledgement, which halts trading), not at the intent itself.
    late = journal.record_intent(buy())
    with pytest.raises(JournalError, match="read-only"):
        journal.record_submitted(late, 8)
    assert [f.exec_id for f in journal.fills()] == ["e1"]  # reads still work; nothing half-written
    assert journal.order(ref).filled == 4.0


def test_an_unwritable_journal_location_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the journal directory should be")
    with pytest.raises(JournalError, match="cannot create the journal directory"):
        TradeJournal(blocker / "journal" / f"{ACCOUNT}.sqlite", account=ACCOUNT)
