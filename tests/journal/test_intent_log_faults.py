"""The intent log under review: the defects found in it, each pinned by a test that failed before its fix.

* An intent whose row the ``orders`` table cannot hold (a ``tag`` of None) was appended to the log, its
  ref returned (the order sent), and its row then silently dropped by ``INSERT OR IGNORE`` (which skips a
  NOT NULL violation as it skips a duplicate ref): the journal never knew the order.
* A child forked by the engine's process shared the log's ``flock`` (it belongs to the open file): after a
  SIGKILL of the engine the child still held it, and the next engine neither owned nor recovered the log.
* A journal opened through a symbolic link put its intent log beside the link, not beside the file (where
  SQLite keeps its ``-wal``): a restart through another path did not recover it.
* An append interrupted by an exception other than OSError (KeyboardInterrupt) between its write and its
  sync left its line uncounted; a later failed append then cut the file through a good intent's line.
* A new log's directory was never synced: its synced appends could vanish with its name in a power loss.
* A journal dropped without ``close()`` kept its log's lock for the life of the process.
* A second writable journal (which does not own the log) did not say that intents were in the log only,
  as a read-only one does.
* Zeros a power loss left at the end of the log (an unsynced append, ext4's delayed allocation) read as a
  damaged line when a newline of the append reached the disk: the open failed instead of dropping them.
"""

from __future__ import annotations

import errno
import gc
import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from copilot_quant.errors import JournalError
from copilot_quant.journal import JournalOrderState, TradeJournal, intent_log
from copilot_quant.journal.intent_log import intent_log_path

from tests.journal.support import ACCOUNT, abandon, buy, logged
from tests.journal.test_durability import reap, run_child


# ---------------------------------------------------------------- a row the table cannot hold
@pytest.mark.parametrize("tag", [None, object()])
def test_an_intent_whose_row_the_table_cannot_hold_is_refused_before_it_is_sent(
    journal: TradeJournal, tag: object
) -> None:
    order = buy()
    order.tag = tag  # type: ignore[assignment]
    with pytest.raises(JournalError, match=r"tag .* must be a string"):
        journal.record_intent(order)
    assert logged(journal.path) == []  # nothing on the disk, nothing to send
    ok = journal.record_intent(buy("MSFT"))  # the journal goes on
    assert [o.order_ref for o in journal.orders()] == [ok]


def test_a_numeric_tag_is_kept_as_text_as_sqlite_kept_it(journal: TradeJournal) -> None:
    order = buy()
    order.tag = 7  # type: ignore[assignment]
    ref = journal.record_intent(order)
    assert journal.order(ref).tag == "7"


def test_a_logged_row_that_does_not_fit_stops_the_open_instead_of_vanishing(journal_path: Path) -> None:
    journal = TradeJournal(journal_path, account=ACCOUNT)
    journal.record_intent(buy())
    abandon(journal)
    # A line another version (or a damaged disk) left with a NULL tag: recovering it must not skip it.
    row = json.loads(logged(journal_path)[0])
    row[0], row[11] = row[0][:-4] + "NULL", None  # another ref; the tag (column 12) the table refuses
    with intent_log_path(journal_path).open("ab") as log_file:
        log_file.write(json.dumps(row).encode() + b"\n")
    with pytest.raises(JournalError, match=r"recover the intents .* NOT NULL"):
        TradeJournal(journal_path)


# ---------------------------------------------------------------- a forked child and the log's lock
def test_a_forked_child_that_outlives_the_engine_does_not_keep_its_intent_log(tmp_path: Path) -> None:
    """flock's lock belongs to the open file, which a fork shares: a child forked by the engine's process
    (a fork-started worker pool) held it after a SIGKILL of the engine, so the next engine did not own
    the log and never recovered the intents that only it held."""
    path = tmp_path / f"{ACCOUNT}.sqlite"
    child = run_child(path, "forked")
    grandchild = 0
    try:
        assert child.stdout is not None
        word, pid = child.stdout.readline().split()
        assert word == "written"
        grandchild = int(pid)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        assert _alive(grandchild)  # the forked child lives on
        with TradeJournal(path) as journal:
            assert journal._store.intent_log is not None  # this open owns the log …
            assert sorted(o.symbol for o in journal.unsent_intents()) == [
                "AAPL",
                "MSFT",
                "SPY",
            ]  # … and recovered it
    finally:
        reap(child)
        if grandchild:
            os.kill(grandchild, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_in_a_forked_child_the_parents_log_refuses_intents_and_is_never_cut(journal_path: Path) -> None:
    """What the fork hook leaves the child (run here in-process: a forked pytest could deadlock)."""
    journal = TradeJournal(journal_path, account=ACCOUNT)
    journal.record_intent(buy())
    size = intent_log_path(journal_path).stat().st_size
    owned = journal._store.intent_log
    assert owned is not None
    descriptor = owned._fd
    owned._disown()  # what os.register_at_fork runs in the child
    with pytest.raises(JournalError, match="forked from"):
        journal.record_intent(buy("MSFT"))
    with pytest.raises(OSError, match="Bad file descriptor"):
        os.fstat(descriptor)  # the child's copy is closed
    journal.close()
    assert intent_log_path(journal_path).stat().st_size == size  # the parent's rows stay in its log


def test_programs_the_engine_starts_do_not_inherit_the_log(journal: TradeJournal) -> None:
    """Sound as it was: os.open's files are not inheritable (O_CLOEXEC), so an exec'd program never holds
    the lock; only a fork without exec shares it (above)."""
    owned = journal._store.intent_log
    assert owned is not None
    assert os.get_inheritable(owned._fd) is False


# ---------------------------------------------------------------- a journal that does not own the log
def test_a_second_writable_journal_warns_of_intents_only_the_log_holds(
    journal: TradeJournal, caplog: pytest.LogCaptureFixture
) -> None:
    """As a read-only one does: it does not see them (a second engine on the account, or a restarted one
    whose log another process still holds)."""
    journal.record_intent(buy())
    with caplog.at_level(logging.WARNING), TradeJournal(journal.path) as second:
        assert second._store.intent_log is None
        assert second.orders() == []
    assert "1 order intent(s) are in its intent log and not in this second writable view" in caplog.text


# ---------------------------------------------------------------- a journal opened through a symlink
def test_a_journal_opened_through_a_symlink_keeps_its_intent_log_beside_the_file(tmp_path: Path) -> None:
    """SQLite keeps its write-ahead log beside the real file, whatever link opened it; the intent log was
    put beside the link: an engine started through the link and restarted through the file (or another
    link) never recovered the intents of its crash."""
    real = tmp_path / "journals" / f"{ACCOUNT}.sqlite"
    real.parent.mkdir()
    link = tmp_path / "current.sqlite"
    link.symlink_to(real)
    journal = TradeJournal(link, account=ACCOUNT)
    ref = journal.record_intent(buy())
    abandon(journal)
    with TradeJournal(real) as reopened:
        assert [o.order_ref for o in reopened.unsent_intents()] == [ref]
    assert intent_log_path(link) == intent_log_path(real) == real.parent / f"{real.name}-intents"


# ---------------------------------------------------------------- a journal dropped without close()
def test_a_journal_dropped_without_close_leaves_its_intents_to_the_next_open(journal_path: Path) -> None:
    """Its log's file (a bare descriptor) stayed open, with the lock, for the life of the process: every
    later journal on the file in this process was a second one, and none ever recovered the intents the
    dropped one had only in the log. Now dropping it lets go of the log as a crash would."""
    journal = TradeJournal(journal_path, account=ACCOUNT)
    ref = journal.record_intent(buy())
    del journal
    gc.collect()
    with TradeJournal(journal_path) as reopened:
        assert reopened._store.intent_log is not None
        assert [o.order_ref for o in reopened.unsent_intents()] == [ref]


# ---------------------------------------------------------------- sound: what recovery keeps
def test_recovery_keeps_what_happened_to_an_order_after_its_intent(journal: TradeJournal) -> None:
    """The log keeps rows SQLite already holds until it is cut (past a few hundred kilobytes): recovering
    them after a crash leaves an order that was acknowledged and cancelled since as it is, history too."""
    ref = journal.record_intent(buy())
    journal.record_submitted(ref, 5)
    journal.record_status(ref, "cancelled", 0, 10, None, "by the trader")
    assert logged(journal.path)  # not cut: its row is still in the log
    history = [(h.state, h.reason) for h in journal.status_history(ref)]
    abandon(journal)
    with TradeJournal(journal.path) as reopened:
        assert reopened.order(ref).state is JournalOrderState.CANCELLED
        assert [(h.state, h.reason) for h in reopened.status_history(ref)] == history
        assert reopened.unsent_intents() == []


# ---------------------------------------------------------------- an append interrupted by an exception
def test_an_append_interrupted_between_its_write_and_its_sync_is_taken_back(
    journal_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A KeyboardInterrupt (or any exception but OSError) between the write and its sync left the line in
    the file, uncounted: the log's idea of its size fell behind the file's, and the next failed append
    "took back" its write by cutting the file short there — through the line of an intent recorded (and
    sent) in between, which the next open then dropped as a line a crash had cut short."""
    journal = TradeJournal(journal_path, account=ACCOUNT)
    first = journal.record_intent(buy())
    real_sync = intent_log._datasync

    def interrupted(fd: int) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(intent_log, "_datasync", interrupted)
        with pytest.raises(KeyboardInterrupt):
            journal.record_intent(buy("MSFT"))  # never returned a ref: never sent
    assert intent_log._datasync is real_sync
    sent = journal.record_intent(buy("SPY"))

    def full(fd: int, data: bytes) -> None:
        os.write(fd, data[:5])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as patch:
        patch.setattr(intent_log, "_write_all", full)
        with pytest.raises(JournalError, match="full"):
            journal.record_intent(buy("QQQ"))
    abandon(journal)
    with TradeJournal(journal_path) as reopened:
        assert sorted(o.order_ref for o in reopened.unsent_intents()) == sorted([first, sent])


def test_a_journal_closed_by_an_exit_hook_still_owns_its_log(tmp_path: Path) -> None:
    """The finalizer above must not run at the interpreter's exit: an exit hook registered before the
    journal was opened runs after it, and closing the journal there closed the log's descriptor twice (an
    error, or another file's descriptor closed) and left the log uncut."""
    path = tmp_path / f"{ACCOUNT}.sqlite"
    script = f"""
import atexit
from copilot_quant.backtest.orders import Order
from copilot_quant.journal import TradeJournal
journals = []
atexit.register(lambda: journals[0].close())  # before the open: it runs after the open's own exit hooks
journals.append(TradeJournal({str(path)!r}, account={ACCOUNT!r}))
journals[0].record_intent(Order("AAPL", 10))
"""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    done = subprocess.run(
        [sys.executable, "-c", script], check=False, capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0
    assert "Traceback" not in done.stderr, done.stderr
    assert logged(path) == []  # closed as usual: its row in SQLite, the log cut
    with TradeJournal(path, read_only=True) as reader:
        assert [o.symbol for o in reader.orders()] == ["AAPL"]


# ---------------------------------------------------------------- sound: no flock (Windows)
def test_without_flock_every_intent_is_a_synced_sqlite_commit(
    journal_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(intent_log, "fcntl", None)
    with TradeJournal(journal_path, account=ACCOUNT) as journal:
        assert journal._store.intent_log is None
        before = journal._store.synced_commits
        ref = journal.record_intent(buy())
        assert journal._store.synced_commits == before + 1  # its own commit, synced
        abandon(journal)
    assert not intent_log_path(journal_path).exists()
    with TradeJournal(journal_path, read_only=True) as reader:
        assert [o.order_ref for o in reader.unsent_intents()] == [ref]


# ---------------------------------------------------------------- a new log's name on the disk
@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="names an fd's file through /proc (Linux)")
def test_a_new_intent_log_has_its_directory_synced(
    journal_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its appends are fdatasync'd, but a new file's name is on the disk only once its directory is synced
    (SQLite syncs the directory of a new -wal): a power loss could take the log, synced intents and all."""
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    TradeJournal(journal_path, account=ACCOUNT).close()
    assert str(journal_path.parent.resolve()) in synced
    synced.clear()
    TradeJournal(journal_path).close()  # the log exists: nothing more to sync
    assert str(journal_path.parent.resolve()) not in synced


# ---------------------------------------------------------------- zeros a power loss left at the end
def _logged_with_tail(journal_path: Path, tail: bytes) -> tuple[list[str], bytes]:
    """Two synced intents, then ``tail`` where the next append was: the refs, and the log's lines."""
    journal = TradeJournal(journal_path, account=ACCOUNT)
    refs = journal.record_intents([(buy("AAPL"), None), (buy("MSFT"), None)])
    abandon(journal)
    before = intent_log_path(journal_path).read_bytes()
    intent_log_path(journal_path).write_bytes(before + tail)
    return refs, before


_LINE = 200  # about one intent's line


@pytest.mark.parametrize(
    "tail",
    [
        pytest.param(b"\0" * _LINE, id="all-zeros"),
        pytest.param(b"\0" * (_LINE - 1) + b"\n", id="zeros-then-its-newline"),
        pytest.param(b"\0" * 100 + b'Y"]\n' + b"\0" * _LINE, id="zeros-part-of-a-line-zeros"),
        pytest.param(b'["cq-DU1234567-01J00000000' + b"\0" * 300 + b"\n", id="a-start-then-zeros"),
    ],
)
def test_zeros_a_power_loss_left_at_the_end_are_an_unsent_append_and_are_dropped(
    journal_path: Path, tail: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    """Every append is synced before the next starts, so only the last can be unsynced, and a power loss
    can leave it as zeros (ext4 puts the new size on the disk before the data): its order was never sent."""
    refs, _ = _logged_with_tail(journal_path, tail)
    with caplog.at_level(logging.WARNING), TradeJournal(journal_path) as reopened:
        assert sorted(o.order_ref for o in reopened.unsent_intents()) == sorted(refs)
    assert f"its last {len(tail)} byte(s) hold zeros" in caplog.text
    assert "never sent and are dropped" in caplog.text
    assert logged(journal_path) == []  # recovered: the log is cut


def test_a_whole_line_of_an_append_before_its_zeroed_rest_is_recovered(journal_path: Path) -> None:
    """The append's first line reached the disk, the rest did not: that line is a whole intent (its order
    was never sent: the append never returned; reconciliation finds it is not at IB)."""
    journal = TradeJournal(journal_path, account=ACCOUNT)
    (first,) = journal.record_intents([(buy("AAPL"), None)])
    second, _never_sent = journal.record_intents([(buy("MSFT"), None), (buy("SPY"), None)])
    abandon(journal)
    lines = intent_log_path(journal_path).read_bytes().splitlines(keepends=True)  # its journal, then intents
    zeroed = lines[3][:10] + b"\0" * (len(lines[3]) - 10)
    intent_log_path(journal_path).write_bytes(b"".join(lines[:3]) + zeroed)
    with TradeJournal(journal_path) as reopened:
        assert sorted(o.order_ref for o in reopened.unsent_intents()) == sorted([first, second])


def test_zeros_before_a_good_line_are_damage_and_stop_the_open(journal_path: Path) -> None:
    """Zeros followed by a good line are not a torn end: the line after them was appended after they were
    synced, so they were an intent's line (its order may have been sent) that the disk lost."""
    _, before = _logged_with_tail(journal_path, b"")
    journal_line, first, second = before.splitlines(keepends=True)
    intent_log_path(journal_path).write_bytes(journal_line + b"\0" * (len(first) - 1) + b"\n" + second)
    with pytest.raises(JournalError, match=r"intent log .* is damaged at line 2; move it aside"):
        TradeJournal(journal_path)
