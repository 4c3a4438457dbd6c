"""Journal writes on their own thread, in order, so that no IB message waits for the disk.

A disk sync takes ≈0.4 ms on a fast SSD, much more on a slow or busy disk. The broker adapter journals what
IB reports — acknowledgements, statuses, fills, commissions, errors — from ib_async's event-loop thread;
done there, each sync would hold up every message behind it, including the bar the strategy is waiting
for. :class:`JournalWriter` takes those writes off the loop: one daemon thread runs them first in, first
out (so the journal sees events in the order IB sent them), and a follow-up (``then``) runs only once its
write is as durable as it asked (:mod:`~copilot_quant.journal.durability`) — the adapter delivers a fill
to ``on_fill`` that way, so a fill is never handed to a strategy before the journal holds it.

Writes queued while the thread was busy are committed together in one transaction, without a sync of its
own; the follow-ups of ``CRASH_SAFE`` writes (fills) run at once, and the ``SYNCED`` ones count as done
once the log is on the disk: carried there by a synced commit made since by another thread, else synced by
the writer itself after a short grace (``_SYNC_GRACE_S``: a fill usually comes just before a bar, whose order
intents are synced to the intent log then — not to SQLite's log, but to the same disk), or at once when a
thread waits for it in :meth:`JournalWriter.flush`. Writes
queued meanwhile are committed first, so a fill right behind a status report never waits for the status's
disk sync, and the intent's sync is not slowed down by a second one at the same moment. If any write of a batch fails, the batch is rolled back and each is
written alone, so only the failing write fails.

A write that fails (full or read-only disk …) is reported to ``on_failure`` (the engine halts trading)
and its follow-up does not run. :meth:`JournalWriter.flush` waits until everything submitted so far is
written; callers that need their write done (or want to read the journal) flush first.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from copilot_quant.errors import JournalError
from copilot_quant.journal.durability import Durability

if TYPE_CHECKING:
    from copilot_quant.journal.journal import TradeJournal

__all__ = ["JournalWriter"]

log = logging.getLogger(__name__)

#: The most batches committed before the SYNCED writes among them are synced, however busy the queue.
_MAX_ROUNDS_OWED = 8
#: How long committed SYNCED writes may wait for a synced commit of someone else to carry them to the disk,
#: before the writer syncs the log itself: a bar's order intents usually follow a fill within milliseconds,
#: and two disk syncs at once would slow down theirs (to the intent log), on the path to the order.
_SYNC_GRACE_S = 0.01
#: Put in the queue by :meth:`JournalWriter.flush` to end the writer's grace at once (a thread waits). The
#: writer sleeps through its grace in one wait on the queue: polling it every millisecond took the GIL
#: from the engine's loop thread, on the path from a bar to its orders.
_WAKE: Final = "wake"

Write = Callable[["TradeJournal"], Any]
FailureCallback = Callable[[JournalError], Any]


@dataclass(slots=True)
class _Job:
    journal: TradeJournal
    write: Write
    then: Callable[[Any], Any] | None
    on_error: Callable[[JournalError], Any] | None
    durability: Durability
    seq: int  # its place in submission order (1, 2, …)


class _Owed:
    """Committed SYNCED writes waiting for the log to reach the disk, with each journal's commit mark."""

    __slots__ = ("deadline", "jobs", "marks", "rounds")

    def __init__(self) -> None:
        self.jobs: list[tuple[_Job, Any]] = []
        self.marks: dict[int, tuple[TradeJournal, int]] = {}
        self.deadline = 0.0
        self.rounds = 0  # batches committed since the first owed one

    def __bool__(self) -> bool:
        return bool(self.jobs)

    def add(self, journal: TradeJournal, jobs: list[tuple[_Job, Any]]) -> None:
        if not jobs:
            return
        if not self.jobs:
            self.deadline = time.monotonic() + _SYNC_GRACE_S
        self.jobs += jobs
        self.marks[id(journal)] = (journal, journal.commit_mark())

    def synced(self) -> bool:
        """Whether synced commits since have carried every one of them to the disk."""
        return all(journal.is_synced(mark) for journal, mark in self.marks.values())

    def due(self) -> bool:
        return self.rounds >= _MAX_ROUNDS_OWED or time.monotonic() >= self.deadline


class JournalWriter:
    """One background thread that runs journal writes in submission order (started on first use).

    Thread-safe: :meth:`submit` and :meth:`flush` may be called from any thread. ``on_failure(error)`` runs
    on the writer thread for every failed write.
    """

    def __init__(self, on_failure: FailureCallback, name: str = "copilot-quant-journal") -> None:
        self._on_failure = on_failure
        self._name = name
        self._queue: queue.SimpleQueue[_Job | str | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._idle = threading.Condition()
        self._submitted = 0
        self._done = 0
        self._flushing = 0  # threads waiting in flush()

    def submit(
        self,
        journal: TradeJournal,
        write: Write,
        then: Callable[[Any], Any] | None = None,
        on_error: Callable[[JournalError], Any] | None = None,
        durability: Durability = Durability.SYNCED,
    ) -> None:
        """Queue ``write(journal)``; ``then(result)`` runs on the writer thread once it is as durable as
        ``durability`` says: committed for ``CRASH_SAFE``, committed and synced to the disk for ``SYNCED``.

        ``on_error(error)`` runs (before ``on_failure``) if the write raises :class:`JournalError`.
        """
        with self._start_lock:  # never behind close()'s stop marker: a submit waits for a close to finish
            self._ensure_thread()
            with self._idle:
                self._submitted += 1
                seq = self._submitted
            self._queue.put(_Job(journal, write, then, on_error, durability, seq))

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Wait until every write submitted before this call finished (as durable as it asked); False on
        timeout."""
        if self._thread is threading.current_thread():
            return True  # a follow-up flushing its own writer would wait for itself
        with self._idle:
            target = self._submitted
            self._flushing += 1  # someone waits: the writer syncs at once, without its grace
            if self._done < target:
                self._queue.put(_WAKE)  # … and wakes up for it now
            try:
                return self._idle.wait_for(lambda: self._done >= target, timeout)
            finally:
                self._flushing -= 1

    @property
    def pending(self) -> int:
        """Writes submitted and not finished yet."""
        with self._idle:
            return self._submitted - self._done

    def close(self, timeout: float = 10.0) -> None:
        """Finish the queued writes, then stop the thread. Idempotent; a later submit starts a new one."""
        with self._start_lock:  # held while draining: a submit meanwhile waits instead of racing a new thread
            thread = self._thread
            if thread is None:
                return
            self._queue.put(None)
            thread.join(timeout)
            self._thread = None
            if thread.is_alive():
                # A write hangs (disk): that thread keeps its queue; the next submit starts a fresh one.
                self._queue = queue.SimpleQueue()
                log.warning(
                    "the journal writer did not finish within %.0fs; %d write(s) pending",
                    timeout,
                    self.pending,
                )

    def _ensure_thread(self) -> None:  # under _start_lock
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, args=(self._queue,), name=self._name, daemon=True
            )
            self._thread.start()

    def _run(self, jobs_queue: queue.SimpleQueue[_Job | str | None]) -> None:
        stop = False
        owed = _Owed()  # committed SYNCED writes waiting for the log to reach the disk
        last = 0  # the newest job taken from the queue
        while not stop:
            if owed:
                if owed.synced() or owed.due() or self._flushing:
                    self._sync(owed, last)
                    owed = _Owed()
                    continue
                try:  # meanwhile, commit what comes (a fill must not wait for a status's disk sync)
                    first = jobs_queue.get(timeout=max(owed.deadline - time.monotonic(), 0.0))
                except queue.Empty:
                    continue
                owed.rounds += 1
            else:
                first = jobs_queue.get()
            jobs = [first]
            while True:  # group commit: everything queued meanwhile goes into the same transaction
                try:
                    jobs.append(jobs_queue.get_nowait())
                except queue.Empty:
                    break
            if None in jobs:
                stop = True
                jobs = jobs[: jobs.index(None)]  # nothing is submitted after close()'s marker
            real = [job for job in jobs if isinstance(job, _Job)]  # not flush()'s wake-ups
            if not real:
                owed.rounds -= bool(owed)
                continue
            try:
                for group in _by_journal(real):
                    owed.add(group[0].journal, self._execute_group(group))
            finally:
                last = max([last, *(job.seq for job in real)])
                if not owed:
                    self._finished(last)
        if owed:
            self._sync(owed, last)

    def _finished(self, seq: int) -> None:
        """Every job up to ``seq`` is done (committed, and synced when SYNCED)."""
        with self._idle:
            self._done = max(self._done, seq)
            self._idle.notify_all()

    def _sync(self, owed: _Owed, last: int) -> None:
        """Make sure the log under the ``owed`` SYNCED writes is on the disk — a synced commit since (by
        another thread) may have carried it there already; else one fsync per journal — then run their
        follow-ups and count every job up to ``last`` done."""
        try:
            failed: set[int] = set()
            for journal, mark in owed.marks.values():
                if journal.is_synced(mark):
                    continue
                try:
                    journal.sync()
                except JournalError as exc:
                    failed.add(id(journal))
                    for job, _ in owed.jobs:
                        if job.journal is journal:
                            self._failed(job, exc)
            for job, result in owed.jobs:
                if job.then is not None and id(job.journal) not in failed:
                    _safely(job.then, result)
        finally:
            self._finished(last)

    def _execute_group(self, jobs: list[_Job]) -> list[tuple[_Job, Any]]:
        """Run ``jobs`` (same journal) in one transaction committed crash-safe; follow up the CRASH_SAFE ones
        at once and return the SYNCED ones with their results, to follow up once the log is synced. If
        anything fails, the jobs run one by one, each committed as its own write asks (nothing owed then).
        """
        journal = jobs[0].journal
        try:
            with journal.batch(Durability.CRASH_SAFE):
                results = [job.write(journal) for job in jobs]
        except Exception as exc:  # rolled back as a whole
            if len(jobs) == 1:
                self._report(jobs[0], exc)
                return []
            log.debug(
                "a batch of %d journal writes failed; writing them one by one", len(jobs), exc_info=True
            )
            for job in jobs:  # redo each alone, so only the failing one fails
                self._execute(job)
            return []
        owed = []
        for job, result in zip(jobs, results, strict=True):
            if job.durability is Durability.SYNCED:
                owed.append((job, result))
            elif job.then is not None:
                _safely(job.then, result)
        return owed

    def _execute(self, job: _Job) -> None:
        try:
            result = job.write(job.journal)
        except Exception as exc:
            self._report(job, exc)
            return
        if job.then is not None:
            _safely(job.then, result)

    def _report(self, job: _Job, exc: Exception) -> None:
        if isinstance(exc, JournalError):
            self._failed(job, exc)
        else:  # a bug in a write must not kill the thread every later write needs
            log.error("journal write failed unexpectedly", exc_info=exc)

    def _failed(self, job: _Job, exc: JournalError) -> None:
        if job.on_error is not None:
            _safely(job.on_error, exc)
        _safely(self._on_failure, exc)

    def __repr__(self) -> str:
        return f"JournalWriter(pending={self.pending}, running={self._thread is not None})"


def _by_journal(jobs: list[_Job]) -> list[list[_Job]]:
    """Consecutive runs of jobs on the same journal (order is kept across runs)."""
    groups: list[list[_Job]] = []
    for job in jobs:
        if groups and groups[-1][-1].journal is job.journal:
            groups[-1].append(job)
        else:
            groups.append([job])
    return groups


def _safely(fn: Callable[[Any], Any], arg: Any) -> None:
    try:
        fn(arg)
    except Exception:
        log.exception("journal writer callback %r failed", fn)
