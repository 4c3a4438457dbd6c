"""The intent log's invariant under power loss, not only under a crash of the process: the log is cut only
when every row it holds is in SQLite *on the disk*, so whatever sequence of intents, writes, reads, syncs,
failed transactions, closes, crashes and power losses happens, no intent is lost or doubled.

A power loss is simulated exactly: checkpoints are deferred (the database file then changes only when the
last connection closes, which syncs it), and every sync of SQLite's write-ahead log takes a copy of the log
as it is just before the sync — what that sync surely carries to the disk. A power loss puts the database
file and that copy back; the intent log keeps what it holds (each append is synced, and its cut is assumed
to have reached the disk: the worst case). Every cut of the intent log is checked against that image too.

A power loss can also come during an append, before its sync: the append never returned (its orders were
never sent), and the disk holds some of it — its first blocks, then nothing or zeros up to its end (ext4's
delayed allocation puts the file's new size on the disk before the data), maybe its last block after the
zeros. The model's blocks are small (:data:`_BLOCK`) so that one append spans several, and smaller than a
line, so that a block written after zeros holds no whole line (that would read as damage: the open stops).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from copilot_quant.errors import JournalError
from copilot_quant.journal import JournalOrderState, TradeJournal, intent_log, storage
from copilot_quant.journal.durability import Durability
from copilot_quant.journal.intent_log import IntentLog, intent_log_path
from copilot_quant.journal.order_writes import intent_row
from copilot_quant.journal.writer import JournalWriter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.journal.support import ACCOUNT, T0, abandon, buy, logged


class Disk:
    """What a power loss would leave of the journal at ``path`` (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.wal = Path(f"{path}-wal")
        self.synced_wal: bytes | None = None  # the write-ahead log as its last sync left it on the disk

    def opened(self) -> None:
        """A new connection: the log a clean close or a crash left was checkpointed into the database."""
        self.synced_wal = None

    def before_sync(self) -> None:
        self.synced_wal = self.wal.read_bytes() if self.wal.exists() else None

    def refs(self) -> set[str]:
        """The order refs a power loss now would leave in SQLite."""
        with tempfile.TemporaryDirectory() as scratch:
            copy = Path(scratch) / self.path.name
            shutil.copyfile(self.path, copy)
            if self.synced_wal is not None:
                Path(f"{copy}-wal").write_bytes(self.synced_wal)
            conn = sqlite3.connect(copy)
            try:
                return {str(row[0]) for row in conn.execute("SELECT order_ref FROM orders")}
            finally:
                conn.close()

    def lose_power_mid_append(self, journal: TradeJournal, tail: _Tail) -> list[str]:
        """Stop ``journal`` as a power loss during an append of ``tail.rows`` new intents would (see the
        module docstring); returns their refs (never returned: never sent)."""
        self.lose_power(journal)
        rows = [intent_row(buy("TORN"), None, ACCOUNT, T0) for _ in range(tail.rows)]
        data = b"".join(json.dumps(row, separators=(",", ":")).encode() + b"\n" for row in rows)
        log_path = intent_log_path(self.path)
        start = log_path.stat().st_size
        written = max(0, min(len(data), (start // _BLOCK + tail.blocks) * _BLOCK - start))
        last = max(written, (start + len(data) - 1) // _BLOCK * _BLOCK - start)  # its last block's start
        if not tail.zeros:  # the new size did not reach the disk: the file ends where the written part does
            torn = data[:written]
        elif tail.last_block:
            torn = data[:written] + b"\0" * (last - written) + data[last:]
        else:
            torn = data[:written] + b"\0" * (len(data) - written)
        with log_path.open("ab") as log_file:
            log_file.write(torn)
        return [str(row[0]) for row in rows]

    def lose_power(self, journal: TradeJournal) -> None:
        """Stop ``journal`` as a power loss would: only what reached the disk is left."""
        database = self.path.read_bytes()  # unchanged since the open: no checkpoint ran
        abandon(journal)  # (its close checkpoints: put the disk's image back below)
        self.path.write_bytes(database)
        Path(f"{self.path}-shm").unlink(missing_ok=True)
        if self.synced_wal is None:
            self.wal.unlink(missing_ok=True)
        else:
            self.wal.write_bytes(self.synced_wal)


#: The model's disk block: what a power loss writes whole or not at all (real ones are 4 KiB).
_BLOCK = 128


@dataclass(frozen=True, slots=True)
class _Tail:
    """An append a power loss cut: how many intents it held, how many of the blocks it touched reached
    the disk (the first one also holds the end of the synced lines before it), whether its size did (the
    rest then reads as zeros) and whether its last block did too."""

    rows: int
    blocks: int
    zeros: bool
    last_block: bool


_TAILS = st.builds(_Tail, st.integers(1, 3), st.integers(0, 6), st.booleans(), st.booleans())


@pytest.fixture
def disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Disk:
    image = Disk(tmp_path / f"{ACCOUNT}.sqlite")
    real_sync = storage._datasync
    real_cut = IntentLog._cut

    def datasync(fd: int) -> None:
        image.before_sync()
        real_sync(fd)

    def cut(self: IntentLog) -> None:  # under the log's lock, before the cut
        lines = self.path.read_bytes().split(b"\n")[:-1]  # whole lines; the torn end of a cut append is none
        logged = {str(line.split(b'"')[1].decode()) for line in lines if line.startswith(b"[")}  # no zeros
        missing = logged - image.refs()
        assert not missing, f"the intent log was cut while SQLite's disk image lacked {sorted(missing)}"
        real_cut(self)

    monkeypatch.setattr(storage, "_datasync", datasync)
    monkeypatch.setattr(IntentLog, "_cut", cut)
    monkeypatch.setattr(intent_log, "_CUT_BYTES", 300)  # cut often, so that cuts meet everything else
    return image


def _open(disk: Disk, **kw: Any) -> TradeJournal:
    disk.opened()
    journal = TradeJournal(disk.path, **kw)
    journal.defer_checkpoints()
    return journal


_OP = st.sampled_from(
    [
        "intent",
        "intents",
        "submitted",
        "fill",
        "read",
        "sync",
        "batch",
        "batched intent",
        "second journal",
        "failed",
        "close",
        "crash",
        "power",
        "power mid-append",
    ]
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(_OP, min_size=1, max_size=30), tails=st.lists(_TAILS, min_size=30, max_size=30))
def test_no_intent_is_lost_or_doubled_by_any_mix_of_writes_crashes_and_power_losses(
    disk: Disk, ops: list[str], tails: list[_Tail]
) -> None:
    for leftover in disk.path.parent.glob(f"{disk.path.name}*"):  # hypothesis reuses the fixture
        leftover.unlink()
    journal = _open(disk, account=ACCOUNT)
    refs: list[str] = []
    torn: set[str] = set()  # the refs of appends a power loss cut: never returned, never sent
    submitted: set[str] = set()  # refs whose record_submitted returned: a synced write
    for step, op in enumerate(ops):
        unsent = [ref for ref in refs if ref not in submitted]
        if op == "intent":
            refs.append(journal.record_intent(buy()))
        elif op == "intents":
            refs.extend(journal.record_intents([(buy("MSFT"), None), (buy("SPY"), None)]))
        elif op == "submitted" and unsent:
            journal.record_submitted(unsent[0], step)
            submitted.add(unsent[0])
        elif op == "fill" and submitted:  # crash-safe: committed, not synced
            journal.record_fill(sorted(submitted)[0], f"e{step}", "AAPL", "buy", 1, 100.0, T0)
        elif op == "read":
            journal.orders()
        elif op == "sync":
            journal.sync()
        elif op == "batch":  # as the journal writer does: one crash-safe transaction (then its own sync)
            with journal.batch(Durability.CRASH_SAFE):
                journal.record_event("tick", str(step))
        elif op == "batched intent":  # inside a batch on this thread: straight to SQLite, in the batch
            with journal.batch():
                refs.append(journal.record_intent(buy("QQQ")))
        elif op == "second journal":  # a second writable journal: not the log's owner, synced commits
            with TradeJournal(disk.path) as second:
                assert second._store.intent_log is None
                refs.append(second.record_intent(buy("IWM")))
        elif op == "failed":  # a transaction that fails after it took the pending rows
            with pytest.raises(JournalError), journal._store.writing("fail on purpose") as conn:
                conn.execute("INSERT INTO no_such_table VALUES (1)")
        elif op == "close":
            journal.close()
            journal = _open(disk)
        elif op == "crash":
            abandon(journal)
            journal = _open(disk)
        elif op == "power":
            disk.lose_power(journal)
            journal = _open(disk)
        elif op == "power mid-append":
            torn.update(disk.lose_power_mid_append(journal, tails[step]))
            journal = _open(disk)
    disk.lose_power(journal)
    with _open(disk) as reopened:
        orders = {o.order_ref: o for o in reopened.orders()}
        assert set(refs) <= set(orders)  # every intent, once (an order_ref is unique)
        assert len(set(refs)) == len(refs)
        # An intent of a cut append whose line reached the disk whole is recovered; it is no order IB has.
        assert set(orders) - set(refs) <= torn
        assert all(orders[ref].state is JournalOrderState.INTENT for ref in set(orders) - set(refs))
        assert logged(disk.path) == []
        for ref in refs:
            assert reopened.status_history(ref)[0].state is JournalOrderState.INTENT
        for ref in submitted:  # a synced write survives the power loss
            assert orders[ref].state is not JournalOrderState.INTENT


def test_intents_on_one_thread_and_the_journal_writer_on_another_lose_nothing(disk: Disk) -> None:
    """The engine's threads: the loop appends intents and hands each acknowledgement to the journal writer
    (whose batches take the pending rows); another thread reads and syncs meanwhile. Every cut of the log is
    checked against the disk image (fixture), and a power loss at the end keeps every intent and every
    acknowledgement whose follow-up ran (a synced write)."""
    journal = _open(disk, account=ACCOUNT)
    failures: list[JournalError] = []
    writer = JournalWriter(on_failure=failures.append)
    refs: list[str] = []
    acked: list[str] = []
    done = threading.Event()

    def loop() -> None:
        try:
            for i in range(120):
                ref = journal.record_intent(buy())
                refs.append(ref)
                writer.submit(
                    journal,
                    lambda j, r=ref, n=i: j.record_submitted(r, n),
                    then=lambda _, r=ref: acked.append(r),
                )
                if i % 3 == 0:
                    refs.extend(journal.record_intents([(buy("MSFT"), None), (buy("SPY"), None)]))
        finally:
            done.set()

    unseen: list[set[str]] = []

    def meanwhile() -> None:  # every intent recorded before a read is in what it reads
        while not done.is_set():
            recorded = set(refs)
            if missing := recorded - {o.order_ref for o in journal.orders()}:
                unseen.append(missing)
            journal.sync()

    threads = [threading.Thread(target=loop), threading.Thread(target=meanwhile)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert writer.flush(timeout=60)
    writer.close()
    assert not failures
    assert not unseen
    assert len(acked) == 120
    disk.lose_power(journal)
    with _open(disk) as reopened:
        orders = {o.order_ref: o for o in reopened.orders()}
        assert sorted(orders) == sorted(refs)
        assert all(orders[ref].state is JournalOrderState.SUBMITTED for ref in acked)
