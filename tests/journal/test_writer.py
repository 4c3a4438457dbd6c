"""The journal writer runs writes on one thread, in order, and follows up only after a commit."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from copilot_quant.errors import JournalError
from copilot_quant.journal import TradeJournal
from copilot_quant.journal import writer as writer_module
from copilot_quant.journal.durability import FILL_DURABILITY
from copilot_quant.journal.writer import JournalWriter

from tests.journal.support import ACCOUNT, T0, StepClock, buy

pytestmark = pytest.mark.timeout(30)

THREAD_NAME = "copilot-quant-journal"


class Failures:
    """An ``on_failure`` callback that remembers what it was called with."""

    def __init__(self) -> None:
        self.errors: list[JournalError] = []

    def __call__(self, error: JournalError) -> None:
        self.errors.append(error)


@pytest.fixture
def failures() -> Failures:
    return Failures()


@pytest.fixture
def writer(failures: Failures) -> Iterator[JournalWriter]:
    w = JournalWriter(failures)
    yield w
    w.close()


def event(kind: str, detail: str = "") -> Callable[[TradeJournal], None]:
    return lambda j: j.record_event(kind, detail)


def fill(ref: str | None, exec_id: str, qty: float = 1.0) -> Callable[[TradeJournal], bool]:
    return lambda j: j.record_fill(ref, exec_id, "AAPL", "buy", qty, 187.5, T0)


def blocking(started: threading.Event, gate: threading.Event) -> Callable[[TradeJournal], bool]:
    """A write that signals ``started`` and then holds the writer thread until ``gate`` is set."""

    def write(j: TradeJournal) -> bool:
        started.set()
        return gate.wait(10)

    return write


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return condition()


# ---------------------------------------------------------------------------------------------- ordering
def test_writes_run_in_submission_order(journal: TradeJournal, writer: JournalWriter) -> None:
    for i in range(200):
        writer.submit(journal, event("tick", str(i)))
    assert writer.flush()
    assert [e.detail for e in journal.events(kind="tick")] == [str(i) for i in range(200)]


def test_writes_submitted_from_many_threads_run_one_at_a_time_in_each_threads_order(
    journal: TradeJournal, writer: JournalWriter
) -> None:
    ran: list[tuple[int, int]] = []
    running = [0]
    overlaps: list[int] = []

    def write(source: int, i: int) -> Callable[[TradeJournal], None]:
        def run(j: TradeJournal) -> None:
            running[0] += 1
            if running[0] != 1:
                overlaps.append(running[0])
            ran.append((source, i))
            j.record_event("tick", f"{source}:{i}")
            running[0] -= 1

        return run

    def submit_all(source: int) -> None:
        for i in range(50):
            writer.submit(journal, write(source, i))

    threads = [threading.Thread(target=submit_all, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert writer.flush()
    assert overlaps == []
    assert len(ran) == 200
    for source in range(4):
        assert [i for s, i in ran if s == source] == list(range(50))
    assert [e.detail for e in journal.events(kind="tick")] == [f"{s}:{i}" for s, i in ran]


def test_writes_run_on_the_writer_thread_not_the_caller(journal: TradeJournal, writer: JournalWriter) -> None:
    threads: list[threading.Thread] = []
    writer.submit(journal, lambda j: threads.append(threading.current_thread()))
    assert writer.flush()
    assert threads[0] is not threading.current_thread()
    assert threads[0].name == THREAD_NAME
    assert threads[0].daemon


# ---------------------------------------------------------------------------------------------- follow-ups
def test_then_runs_after_the_commit_with_the_writes_result(
    journal: TradeJournal, journal_path: Path, writer: JournalWriter
) -> None:
    ref = journal.record_intent(buy())
    seen: list[tuple[str, bool, bool]] = []

    def then(exec_id: str) -> Callable[[bool], None]:
        def follow_up(result: bool) -> None:
            # another connection sees the row: the write has committed before its follow-up runs
            with TradeJournal(journal_path, read_only=True) as reader:
                seen.append((exec_id, result, reader.has_execution(exec_id)))

        return follow_up

    writer.submit(journal, fill(ref, "E1", 4.0), then=then("E1"))
    assert writer.flush()
    writer.submit(journal, fill(ref, "E1", 4.0), then=then("E1"))  # the same execution again
    writer.submit(journal, fill(ref, "E2", 6.0), then=then("E2"))
    writer.submit(journal, fill(ref, "E2", 6.0), then=then("E2"))
    assert writer.flush()
    assert seen == [("E1", True, True), ("E1", False, True), ("E2", True, True), ("E2", False, True)]
    assert journal.order(ref).filled == 10.0


def test_then_sees_its_commit_also_in_a_burst_committed_together(
    journal: TradeJournal, journal_path: Path, writer: JournalWriter
) -> None:
    gate = threading.Event()
    seen: list[tuple[str, bool, bool]] = []

    def then(exec_id: str) -> Callable[[bool], None]:
        def follow_up(result: bool) -> None:
            with TradeJournal(journal_path, read_only=True) as reader:
                seen.append((exec_id, result, reader.has_execution(exec_id)))

        return follow_up

    writer.submit(journal, lambda j: gate.wait(10))  # holds the thread while the burst queues up
    for exec_id in ("E1", "E2", "E1", "E3", "E2"):
        writer.submit(journal, fill(None, exec_id), then=then(exec_id))
    assert writer.pending == 6
    gate.set()
    assert writer.flush()
    assert seen == [
        ("E1", True, True),
        ("E2", True, True),
        ("E1", False, True),
        ("E3", True, True),
        ("E2", False, True),
    ]
    assert [f.exec_id for f in journal.fills()] == ["E1", "E2", "E3"]


def test_a_failing_write_in_a_burst_fails_alone(
    journal: TradeJournal, writer: JournalWriter, failures: Failures
) -> None:
    gate = threading.Event()
    calls: list[tuple[str, Any]] = []
    writer.submit(journal, lambda j: gate.wait(10))
    writer.submit(journal, fill(None, "E1"), then=lambda r: calls.append(("then-E1", r)))
    writer.submit(journal, event("before"), then=lambda r: calls.append(("then-before", r)))
    writer.submit(
        journal,
        event(""),  # refused: the burst is rolled back and its writes are redone one by one
        then=lambda r: calls.append(("then-bad", r)),
        on_error=lambda e: calls.append(("on_error", type(e))),
    )
    writer.submit(journal, fill(None, "E2"), then=lambda r: calls.append(("then-E2", r)))
    writer.submit(journal, event("after"), then=lambda r: calls.append(("then-after", r)))
    gate.set()
    assert writer.flush()
    assert calls == [
        ("then-E1", True),
        ("then-before", None),
        ("on_error", JournalError),
        ("then-E2", True),
        ("then-after", None),
    ]
    assert len(failures.errors) == 1  # reported once, not once for the batch and once alone
    assert [e.kind for e in journal.events()] == ["before", "after"]
    assert [f.exec_id for f in journal.fills()] == ["E1", "E2"]
    assert journal.knows_fill("E1")
    assert journal.knows_fill("E2")


def test_then_receives_the_return_value_of_any_write(journal: TradeJournal, writer: JournalWriter) -> None:
    results: list[Any] = []
    writer.submit(journal, lambda j: j.record_intent(buy()), then=results.append)
    writer.submit(journal, lambda j: 42, then=results.append)
    writer.submit(journal, event("start"), then=results.append)
    assert writer.flush()
    assert len(results) == 3
    assert journal.has_order(results[0])
    assert results[1:] == [42, None]


def test_a_journal_error_goes_to_on_error_then_on_failure_and_skips_then(
    journal: TradeJournal, journal_path: Path, writer: JournalWriter, failures: Failures
) -> None:
    calls: list[tuple[str, Any]] = []
    errors_seen: list[JournalError] = []

    def on_error(error: JournalError) -> None:
        calls.append(("on_error", error))
        errors_seen.append(error)

    writer.submit(
        journal,
        event(""),  # an empty event kind is refused with a JournalError
        then=lambda r: calls.append(("then", r)),
        on_error=on_error,
    )
    with TradeJournal(journal_path, read_only=True) as read_only:  # a write a read-only journal refuses
        writer.submit(read_only, event("start"), then=lambda r: calls.append(("then-ro", r)))
        assert writer.flush()
    writer.submit(journal, event("after"), then=lambda r: calls.append(("then-after", r)))
    assert writer.flush()
    assert [name for name, _ in calls] == ["on_error", "then-after"]
    assert len(failures.errors) == 2
    assert failures.errors[0] is errors_seen[0]
    assert calls[0][1] is failures.errors[0]
    assert isinstance(failures.errors[1], JournalError)
    assert "read-only" in str(failures.errors[1])
    assert [e.kind for e in journal.events()] == ["after"]
    assert writer.pending == 0


def test_on_error_runs_before_on_failure(journal: TradeJournal) -> None:
    order: list[str] = []
    w = JournalWriter(lambda e: order.append("on_failure"))
    try:
        w.submit(journal, event(""), on_error=lambda e: order.append("on_error"))
        assert w.flush()
    finally:
        w.close()
    assert order == ["on_error", "on_failure"]


def test_an_unexpected_exception_does_not_kill_the_writer(
    journal: TradeJournal, writer: JournalWriter, failures: Failures, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []

    def broken(j: TradeJournal) -> None:
        raise ValueError("a bug in a write")

    caplog.set_level(logging.ERROR, logger="copilot_quant.journal.writer")
    writer.submit(
        journal, broken, then=lambda r: calls.append("then"), on_error=lambda e: calls.append("err")
    )
    writer.submit(journal, event("after"), then=lambda r: calls.append("then-after"))
    assert writer.flush()
    assert calls == ["then-after"]
    assert failures.errors == []  # not a journal failure: trading is not halted for it
    assert [e.kind for e in journal.events()] == ["after"]
    assert any("failed unexpectedly" in r.getMessage() for r in caplog.records)


def test_failing_callbacks_do_not_kill_the_writer(journal: TradeJournal) -> None:
    def explode(_: Any) -> None:
        raise RuntimeError("callback bug")

    w = JournalWriter(explode)
    try:
        w.submit(journal, event(""), on_error=explode)
        w.submit(journal, event("one"), then=explode)
        w.submit(journal, event("two"))
        assert w.flush()
        assert [e.kind for e in journal.events()] == ["one", "two"]
        assert w.pending == 0
    finally:
        w.close()


# ---------------------------------------------------------------------------------------------- flush
def test_flush_waits_for_every_earlier_write(
    journal: TradeJournal, journal_path: Path, writer: JournalWriter
) -> None:
    gate = threading.Event()
    started = threading.Event()

    def blocked(j: TradeJournal) -> None:
        started.set()
        j.record_event("blocked", str(gate.wait(10)))

    assert writer.pending == 0
    assert writer.flush(timeout=0.1)  # nothing submitted yet
    writer.submit(journal, blocked)
    writer.submit(journal, event("queued"))
    assert started.wait(5)
    assert writer.pending == 2
    began = time.monotonic()
    assert writer.flush(timeout=0.2) is False
    assert time.monotonic() - began >= 0.15
    assert writer.pending == 2
    # (read through another connection: the writer thread holds this journal while its write runs)
    with TradeJournal(journal_path, read_only=True) as reader:
        assert reader.events() == []
    gate.set()
    assert writer.flush(timeout=5) is True
    assert writer.pending == 0
    assert [(e.kind, e.detail) for e in journal.events()] == [("blocked", "True"), ("queued", "")]


def test_flush_in_another_thread_returns_when_the_earlier_writes_are_done(
    journal: TradeJournal, writer: JournalWriter
) -> None:
    gate = threading.Event()
    writer.submit(journal, lambda j: gate.wait(10))
    writer.submit(journal, event("queued"))
    flushed: list[tuple[bool, int]] = []
    flusher = threading.Thread(target=lambda: flushed.append((writer.flush(10), len(journal.events()))))
    flusher.start()
    time.sleep(0.1)
    assert flushed == []  # still waiting
    gate.set()
    flusher.join(10)
    assert flushed == [(True, 1)]


def test_flush_inside_a_follow_up_returns_at_once(journal: TradeJournal, writer: JournalWriter) -> None:
    gate = threading.Event()
    inner: list[tuple[bool, float]] = []

    def then(_: Any) -> None:
        began = time.monotonic()
        inner.append((writer.flush(timeout=5), time.monotonic() - began))

    writer.submit(journal, lambda j: gate.wait(10), then=then)
    writer.submit(journal, event("next"))  # queued behind the follow-up: a real wait would deadlock
    gate.set()
    assert writer.flush(timeout=10)
    assert len(inner) == 1
    result, took = inner[0]
    assert result is True
    assert took < 1.0
    assert [e.kind for e in journal.events()] == ["next"]


# ---------------------------------------------------------------------------------------------- close
def test_close_drains_the_queue_and_stops_the_thread(journal: TradeJournal, failures: Failures) -> None:
    w = JournalWriter(failures)
    threads: list[threading.Thread] = []

    def first(j: TradeJournal) -> None:
        threads.append(threading.current_thread())
        time.sleep(0.1)

    w.submit(journal, first)
    for i in range(30):
        w.submit(journal, event("tick", str(i)))
    w.close()
    assert [e.detail for e in journal.events(kind="tick")] == [str(i) for i in range(30)]
    assert w.pending == 0
    (thread,) = threads
    assert thread.name == THREAD_NAME
    assert not thread.is_alive()
    assert thread not in threading.enumerate()
    assert "running=False" in repr(w)


def test_a_submit_after_close_starts_a_new_thread(journal: TradeJournal, failures: Failures) -> None:
    w = JournalWriter(failures, name="cq-journal-test")
    threads: list[threading.Thread] = []

    def note(j: TradeJournal) -> None:
        threads.append(threading.current_thread())
        j.record_event("tick", str(len(threads)))

    w.submit(journal, note)
    w.close()
    w.close()  # idempotent
    w.submit(journal, note)
    assert w.flush()
    assert [e.detail for e in journal.events()] == ["1", "2"]
    first, second = threads
    assert first is not second
    assert not first.is_alive()
    assert second.is_alive()
    assert second.name == "cq-journal-test"
    w.close()
    w.close()
    assert not second.is_alive()
    assert not [t for t in threading.enumerate() if t.name == "cq-journal-test"]


def test_close_without_any_write_does_nothing(failures: Failures) -> None:
    w = JournalWriter(failures, name="cq-journal-never-started")
    w.close()
    w.close()
    assert w.pending == 0
    assert w.flush(timeout=0.1)
    assert not [t for t in threading.enumerate() if t.name == "cq-journal-never-started"]


def test_a_write_submitted_while_close_drains_still_runs(journal: TradeJournal, failures: Failures) -> None:
    w = JournalWriter(failures, name="cq-journal-close-race")
    gate = threading.Event()
    started = threading.Event()
    w.submit(journal, blocking(started, gate))
    assert started.wait(5)
    closer = threading.Thread(target=w.close)
    closer.start()
    assert wait_for(lambda: w._queue.qsize() == 1)  # close() has queued its stop marker and is joining
    w.submit(journal, event("late"))
    gate.set()
    closer.join(10)
    try:
        w.submit(journal, event("later"))  # a new thread
        assert w.flush(timeout=1.0)
        assert [e.kind for e in journal.events()] == ["late", "later"]
    finally:
        w.close()


# ---------------------------------------------------------------------------------------------- knows_fill
def test_knows_fill_is_false_for_an_unknown_execution(journal: TradeJournal) -> None:
    assert journal.knows_fill("E404") is False
    assert journal.knows_fill("") is False


def test_knows_fill_sees_fills_recorded_before_and_after_its_first_call(journal: TradeJournal) -> None:
    ref = journal.record_intent(buy())
    assert journal.record_fill(ref, "E1", "AAPL", "buy", 4, 187.5, T0) is True
    assert journal.knows_fill("E1") is True  # loaded from disk on the first call
    assert journal.knows_fill("E2") is False
    assert journal.record_fill(ref, "E2", "AAPL", "buy", 6, 187.5, T0) is True
    assert journal.knows_fill("E2") is True  # remembered when recorded
    assert journal.record_fill(ref, "E2", "AAPL", "buy", 6, 187.5, T0) is False
    assert journal.knows_fill("E2") is True
    assert journal.knows_fill("E3") is False


def test_knows_fill_sees_a_fill_for_an_unknown_order(journal: TradeJournal) -> None:
    assert journal.knows_fill("X1") is False
    assert journal.record_fill(None, "X1", "AAPL", "sell", 1, 10.0, T0) is True
    assert journal.knows_fill("X1") is True


def test_knows_fill_sees_fills_another_journal_instance_recorded(journal_path: Path) -> None:
    with TradeJournal(journal_path, account=ACCOUNT, clock=StepClock()) as first:
        ref = first.record_intent(buy())
        first.record_fill(ref, "E1", "AAPL", "buy", 4, 187.5, T0)
        with TradeJournal(journal_path, account=ACCOUNT) as second:
            second.record_fill(ref, "E2", "AAPL", "buy", 6, 187.5, T0)
            with TradeJournal(journal_path, read_only=True) as third:
                assert third.knows_fill("E1") is True
                assert third.knows_fill("E2") is True
                assert third.knows_fill("E3") is False
            assert first.knows_fill("E2") is True
            assert second.knows_fill("E1") is True
    with TradeJournal(journal_path) as reopened:
        assert reopened.knows_fill("E1") is True
        assert reopened.knows_fill("E2") is True


def test_a_refused_fill_is_not_known(journal: TradeJournal, journal_path: Path) -> None:
    with TradeJournal(journal_path, read_only=True) as read_only:
        assert read_only.knows_fill("E1") is False
        with pytest.raises(JournalError):
            read_only.record_fill(None, "E1", "AAPL", "buy", 1, 10.0, T0)
        assert read_only.knows_fill("E1") is False
    with pytest.raises(JournalError):
        journal.record_fill(None, "  ", "AAPL", "buy", 1, 10.0, T0)
    assert journal.knows_fill("  ") is False


def test_knows_fill_works_with_fills_written_by_the_writer(
    journal: TradeJournal, writer: JournalWriter
) -> None:
    assert journal.knows_fill("E1") is False
    known_in_then: list[bool] = []
    writer.submit(journal, fill(None, "E1"), then=lambda r: known_in_then.append(journal.knows_fill("E1")))
    assert writer.flush()
    assert known_in_then == [True]
    assert journal.knows_fill("E1") is True


def test_a_fill_rolled_back_with_its_batch_is_not_known(journal: TradeJournal) -> None:
    def abandoned_batch() -> None:
        with journal.batch():
            journal.record_fill(None, "E1", "AAPL", "buy", 1, 10.0, T0)
            raise ValueError("abandon the batch")

    assert journal.knows_fill("E0") is False  # the known ids are loaded now
    with pytest.raises(ValueError, match="abandon"):
        abandoned_batch()
    assert journal.has_execution("E1") is False
    assert journal.knows_fill("E1") is False
    with journal.batch():
        assert journal.record_fill(None, "E2", "AAPL", "buy", 1, 10.0, T0) is True
        assert journal.record_fill(None, "E2", "AAPL", "buy", 1, 10.0, T0) is False
    assert journal.knows_fill("E2") is True
    assert [f.exec_id for f in journal.fills()] == ["E2"]


def test_knows_fill_does_not_wait_for_a_write_in_progress(
    journal: TradeJournal, writer: JournalWriter
) -> None:
    assert journal.knows_fill("E1") is False  # loaded: later calls are answered from memory
    gate = threading.Event()
    started = threading.Event()
    writer.submit(journal, blocking(started, gate))
    writer.submit(journal, fill(None, "E1"))
    assert started.wait(5)
    answers: list[bool] = []
    loop = threading.Thread(target=lambda: answers.append(journal.knows_fill("E2")), daemon=True)
    loop.start()
    loop.join(0.5)
    answered_meanwhile = list(answers)
    gate.set()
    assert writer.flush()
    loop.join(5)
    assert answers == [False]
    assert journal.knows_fill("E1")
    assert answered_meanwhile == [False]  # fails today: the loop thread was still waiting


# ---------------------------------------------------------------------------------------------- durability
class HeldSync:
    """Stands in for ``journal.sync`` (the log's fsync): counts calls and holds each until released."""

    def __init__(self, journal: TradeJournal, error: JournalError | None = None) -> None:
        self._real = journal.sync
        self.calls = 0
        self.entered = threading.Event()
        self.release = threading.Event()
        self.error = error

    def __call__(self) -> None:
        self.calls += 1
        self.entered.set()
        self.release.wait(10)
        if self.error is not None:
            raise self.error
        self._real()


def test_a_fills_follow_up_runs_at_its_commit_while_the_synced_writes_before_it_wait_for_the_sync(
    journal: TradeJournal, writer: JournalWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A status report and a fill committed together: the fill reaches its follow-up (on_fill) without
    waiting for the disk; the status counts as written (flush) only once the log is synced."""
    held = HeldSync(journal)
    monkeypatch.setattr(journal, "sync", held)
    ref = journal.record_intent(buy())
    started, gate = threading.Event(), threading.Event()
    writer.submit(journal, blocking(started, gate))  # the status and the fill queue up behind it
    assert started.wait(5)
    delivered = threading.Event()
    writer.submit(journal, lambda j: j.record_submitted(ref, 7))  # SYNCED (the default)
    writer.submit(journal, fill(ref, "E1"), then=lambda fresh: delivered.set(), durability=FILL_DURABILITY)
    gate.set()
    assert delivered.wait(5)  # the fill's follow-up ran …
    assert held.entered.wait(5)  # … while the status waits for the sync
    assert not writer.flush(timeout=0.2)
    assert writer.pending == 3  # the first write, the status and the fill: done once the sync is
    held.release.set()
    assert writer.flush(timeout=5)
    assert held.calls == 1  # one sync for the batch
    assert journal.order(ref).broker_order_id == 7


def test_writes_of_crash_safe_fills_alone_need_no_sync(
    journal: TradeJournal, writer: JournalWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = HeldSync(journal)
    held.release.set()
    monkeypatch.setattr(journal, "sync", held)
    for k in range(5):
        writer.submit(journal, fill(None, f"E{k}"), durability=FILL_DURABILITY)
    assert writer.flush(timeout=5)
    assert held.calls == 0
    assert len(journal.fills()) == 5


def test_a_failed_sync_fails_the_synced_writes_and_trading_halts(
    journal: TradeJournal, writer: JournalWriter, failures: Failures, monkeypatch: pytest.MonkeyPatch
) -> None:
    error = JournalError("could not sync its log to the disk")
    held = HeldSync(journal, error)
    held.release.set()
    monkeypatch.setattr(journal, "sync", held)
    status_failed: list[JournalError] = []
    delivered: list[bool] = []
    started, gate = threading.Event(), threading.Event()
    writer.submit(journal, blocking(started, gate))
    assert started.wait(5)
    writer.submit(journal, event("halt", "x"), then=delivered.append, on_error=status_failed.append)
    writer.submit(journal, fill(None, "E1"), then=delivered.append, durability=FILL_DURABILITY)
    gate.set()
    assert writer.flush(timeout=5)
    assert delivered == [True]  # the fill was followed up; the event, never synced, was not
    assert status_failed == [error]
    assert failures.errors == [error, error]  # the first write and the event: neither is on the disk


def test_a_synced_commit_made_meanwhile_carries_the_writers_synced_writes_without_a_sync_of_their_own(
    journal: TradeJournal, writer: JournalWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A status report committed by the writer, then a synced commit by another thread (an engine event;
    an intent goes to the intent log instead): that disk sync carries the status too, so the writer adds
    no second sync next to it."""
    held = HeldSync(journal)
    held.release.set()
    monkeypatch.setattr(journal, "sync", held)
    monkeypatch.setattr(writer_module, "_SYNC_GRACE_S", 30.0)  # it would sync only after this
    before = journal.commit_mark()
    writer.submit(journal, event("status", "x"))
    assert wait_for(lambda: journal.commit_mark() > before)  # committed, not synced yet
    assert writer.pending == 1
    assert not journal.is_synced(journal.commit_mark())
    journal.record_event("tick", "y")  # a synced commit
    assert writer.flush(timeout=5)
    assert held.calls == 0
    assert journal.is_synced(journal.commit_mark())


class CountingQueue(queue.SimpleQueue):  # type: ignore[type-arg]
    """The writer's queue, counting how often the writer thread looks into it."""

    def __init__(self) -> None:
        super().__init__()
        self.gets = 0

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        self.gets += 1
        return super().get(block, timeout)


def test_the_writer_sleeps_through_its_sync_grace_and_a_flush_wakes_it(
    journal: TradeJournal, failures: Failures, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While synced writes wait for the grace to end, the writer thread waits on its queue once — it used to
    look every millisecond, each time taking the GIL from the engine's loop thread — and a flush ends the
    grace at once."""
    monkeypatch.setattr(writer_module, "_SYNC_GRACE_S", 30.0)
    writer = JournalWriter(failures)
    writer._queue = counting = CountingQueue()
    try:
        before = journal.commit_mark()
        writer.submit(journal, event("status", "x"))
        assert wait_for(lambda: journal.commit_mark() > before)  # committed; its sync waits for the grace
        looked = counting.gets
        time.sleep(0.2)
        assert counting.gets == looked  # asleep in one wait, not polling
        assert writer.flush(timeout=5)  # the flush wakes it: synced long before the 30 s grace
        assert journal.is_synced(journal.commit_mark())
    finally:
        writer.close()
