"""The intent log: an intent is on the disk when ``record_intent`` returns, every reader of the journal
sees it, a crash loses none, and the log is cut only once SQLite holds its rows on the disk."""

from __future__ import annotations

import errno
import logging
import os
import signal
from pathlib import Path

import pytest
from copilot_quant.errors import JournalError
from copilot_quant.journal import JournalOrderState, TradeJournal, intent_log
from copilot_quant.journal.intent_log import intent_log_path
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.journal.support import ACCOUNT, StepClock, abandon, buy, logged
from tests.journal.test_durability import assert_consistent, reap, run_child

crash = abandon


def test_an_intent_is_in_the_log_only_and_every_read_sees_it(journal: TradeJournal) -> None:
    ref = journal.record_intent(buy(), strategy="Flip")
    log = journal._store.intent_log
    assert log is not None
    assert log.has_pending
    assert logged(journal.path)
    order = journal.order(ref)  # a read writes the pending rows first
    assert order.state is JournalOrderState.INTENT
    assert order.strategy == "Flip"
    assert not log.has_pending
    assert [o.order_ref for o in journal.unsent_intents()] == [ref]


def test_the_next_write_about_an_intent_writes_its_row_first(journal: TradeJournal) -> None:
    ref = journal.record_intent(buy())
    journal.record_submitted(ref, 7)  # would raise "no order with order_ref" without the intent's row
    assert journal.order(ref).state is JournalOrderState.SUBMITTED
    assert [h.state for h in journal.status_history(ref)] == [
        JournalOrderState.INTENT,
        JournalOrderState.SUBMITTED,
    ]


def test_several_intents_take_one_disk_sync(journal: TradeJournal, monkeypatch: pytest.MonkeyPatch) -> None:
    syncs: list[int] = []
    real = intent_log._datasync
    monkeypatch.setattr(intent_log, "_datasync", lambda fd: (syncs.append(fd), real(fd)))
    refs = journal.record_intents([(buy("AAPL"), "A"), (buy("MSFT"), "B"), (buy("SPY"), "A")])
    assert len(syncs) == 1
    assert [(o.order_ref, o.symbol, o.strategy) for o in journal.orders()] == [
        (refs[0], "AAPL", "A"),
        (refs[1], "MSFT", "B"),
        (refs[2], "SPY", "A"),
    ]


def test_a_bad_intent_is_refused_before_anything_is_written(journal: TradeJournal) -> None:
    order = buy()
    object.__setattr__(order, "quantity", float("nan"))
    with pytest.raises(JournalError, match="quantity"):
        journal.record_intents([(buy(), None), (order, None)])
    assert journal.orders() == []
    assert logged(journal.path) == []


def test_intents_journaled_just_before_a_sigkill_are_recovered_at_the_next_open(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / f"{ACCOUNT}.sqlite"
    child = run_child(path, "intents")
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "written"
        with TradeJournal(path, read_only=True) as reader:  # SQLite itself does not have them yet
            assert reader.orders() == []
        child.send_signal(signal.SIGKILL)
    finally:
        reap(child)
    assert child.returncode == -signal.SIGKILL
    with caplog.at_level(logging.WARNING, logger="copilot_quant.journal"):
        journal = assert_consistent(path)
    with journal:
        unsent = journal.unsent_intents()
        assert sorted(o.symbol for o in unsent) == ["AAPL", "MSFT", "SPY"]
        assert {o.strategy for o in unsent} == {"crash"}
        assert "3 order intent(s)" in caplog.text
        assert "recovered" in caplog.text
        assert logged(path) == []  # in SQLite and synced: the log is cut


def test_a_last_line_cut_short_by_a_crash_is_dropped_and_the_rest_recovered(
    journal_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    journal = TradeJournal(journal_path, account=ACCOUNT, clock=StepClock())
    refs = journal.record_intents([(buy("AAPL"), None), (buy("MSFT"), None)])
    crash(journal)
    with intent_log_path(journal_path).open("ab") as log_file:
        log_file.write(b'["cq-DU1234567-01J0000000000000000000TORN",')  # the write a crash cut short
    with caplog.at_level(logging.WARNING), TradeJournal(journal_path) as reopened:
        assert sorted(o.order_ref for o in reopened.unsent_intents()) == sorted(refs)
        assert "cut short by a crash" in caplog.text


def test_a_damaged_line_stops_the_open_with_a_named_error(journal_path: Path) -> None:
    journal = TradeJournal(journal_path, account=ACCOUNT)
    journal.record_intent(buy())
    crash(journal)
    with intent_log_path(journal_path).open("r+b") as log_file:
        log_file.readline()  # the line naming the journal; the intent's line follows
        log_file.write(b"{garbage")
    with pytest.raises(JournalError, match=r"intent log .* is damaged at line 2; move it aside"):
        TradeJournal(journal_path)


def test_a_second_writable_journal_does_not_take_the_log_and_leaves_it_alone(journal: TradeJournal) -> None:
    ref = journal.record_intent(buy())
    with TradeJournal(journal.path) as second:
        assert second._store.intent_log is None  # the first journal owns it
        ref2 = second.record_intent(buy("MSFT"))  # a synced SQLite commit instead
        assert {o.order_ref for o in second.orders()} == {ref2}  # the owner's pending row is its own
    assert journal._store.intent_log is not None
    assert journal._store.intent_log.has_pending
    assert {o.order_ref for o in journal.orders()} == {ref, ref2}


def test_closing_writes_pending_intents_to_sqlite_and_cuts_the_log(journal_path: Path) -> None:
    with TradeJournal(journal_path, account=ACCOUNT) as journal:
        ref = journal.record_intent(buy())
    assert logged(journal_path) == []
    with TradeJournal(journal_path, read_only=True) as reader:
        assert [o.order_ref for o in reader.orders()] == [ref]


def test_the_log_is_cut_only_once_its_rows_are_in_sqlite_and_synced(
    journal: TradeJournal, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(intent_log, "_CUT_BYTES", 1)
    ref = journal.record_intent(buy())
    journal.record_fill(ref, "e1", "AAPL", "buy", 4, 100.0, journal._clock())  # crash-safe: not synced
    assert logged(journal.path)  # the row is in SQLite, but SQLite's log is not on the disk yet
    journal.record_submitted(ref, 3)  # a synced commit
    assert logged(journal.path) == []


# An operation on the journal: a new intent, a write about the latest intent, a sync, or a crash + reopen.
_OPS = st.lists(st.sampled_from(["intent", "intents", "submitted", "sync", "crash"]), min_size=1, max_size=25)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=_OPS)
def test_no_intent_is_lost_or_doubled_whatever_happens_in_between(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, ops: list[str]
) -> None:
    monkeypatch.setattr(intent_log, "_CUT_BYTES", 200)  # cut often, so that cuts meet crashes
    path = tmp_path_factory.mktemp("intents") / f"{ACCOUNT}.sqlite"
    journal = TradeJournal(path, account=ACCOUNT)
    refs: list[str] = []
    for op in ops:
        if op == "intent":
            refs.append(journal.record_intent(buy()))
        elif op == "intents":
            refs.extend(journal.record_intents([(buy("MSFT"), None), (buy("SPY"), None)]))
        elif op == "submitted" and refs:
            journal.record_submitted(refs[-1], len(refs))
        elif op == "sync":
            journal.sync()
        elif op == "crash":
            crash(journal)
            journal = TradeJournal(path)
    crash(journal)
    with TradeJournal(path) as reopened:
        stored = [o.order_ref for o in reopened.orders()]
        assert sorted(stored) == sorted(refs)  # every intent, once
        for ref in refs:
            assert reopened.status_history(ref)[0].state is JournalOrderState.INTENT


def test_sqlite_refusing_writes_keeps_the_intent_in_the_log_until_the_next_open(journal_path: Path) -> None:
    """A fault of SQLite alone (its size cap, a damaged file): the intent is on the disk in the log, the
    next write fails (the engine halts trading on it), and the next open records the intent."""
    journal = TradeJournal(journal_path, account=ACCOUNT)
    assert journal._conn is not None
    journal._conn.execute("PRAGMA query_only = ON")  # SQLite refuses every write from here on
    ref = journal.record_intent(buy())
    with pytest.raises(JournalError, match="read-only"):
        journal.record_submitted(ref, 1)
    crash(journal)
    with TradeJournal(journal_path) as reopened:
        assert [o.order_ref for o in reopened.unsent_intents()] == [ref]


def test_a_disk_that_refuses_the_intent_log_refuses_the_intent(
    journal: TradeJournal, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(fd: int, data: bytes) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(intent_log, "_write_all", full)
    with pytest.raises(JournalError, match=r"intent log .* full; free space; trading must stay halted"):
        journal.record_intent(buy())
    assert journal.orders() == []


def test_a_write_that_fails_halfway_is_taken_back_so_the_next_intent_reads_clean(
    journal_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = TradeJournal(journal_path, account=ACCOUNT)
    first = journal.record_intent(buy())

    def half_then_full(fd: int, data: bytes) -> None:
        os.write(fd, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as patch:
        patch.setattr(intent_log, "_write_all", half_then_full)
        with pytest.raises(JournalError, match="full"):
            journal.record_intent(buy("MSFT"))
    last = journal.record_intent(buy("SPY"))
    crash(journal)
    with TradeJournal(journal_path) as reopened:
        assert sorted(o.order_ref for o in reopened.unsent_intents()) == sorted([first, last])


def test_a_read_only_journal_warns_of_intents_only_the_log_holds(
    journal: TradeJournal, caplog: pytest.LogCaptureFixture
) -> None:
    journal.record_intent(buy())
    with caplog.at_level(logging.WARNING), TradeJournal(journal.path, read_only=True) as reader:
        assert reader.orders() == []  # not written to SQLite yet
    assert "1 order intent(s) are in its intent log" in caplog.text
    assert len(journal.orders()) == 1  # the owner's read writes it
    caplog.clear()
    with caplog.at_level(logging.WARNING), TradeJournal(journal.path, read_only=True) as reader:
        assert len(reader.orders()) == 1
    assert "intent log" not in caplog.text
