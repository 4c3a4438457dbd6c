"""Journal writes on their own thread, in order, so that no IB message waits for the disk.

Every journal commit is fsync'd (≈0.4 ms on a fast SSD, much more on a slow or busy disk). The broker
adapter journals what IB reports — acknowledgements, statuses, fills, commissions, errors — from ib_async's
event-loop thread; done there, each fsync would hold up every message behind it, including the bar the
strategy is waiting for. :class:`JournalWriter` takes those writes off the loop: one daemon thread runs
them first in, first out (so the journal sees events in the order IB sent them), and a follow-up (``then``)
runs only after its write committed — the adapter delivers a fill to ``on_fill`` that way, so a fill is
never handed to a strategy before it is on disk. Writes queued while the thread was busy are committed
together in one transaction (one disk sync for a burst of status, fill and commission events); if any of
them fails, the batch is rolled back and each is written alone, so only the failing write fails.

A write that fails (full or read-only disk …) is reported to ``on_failure`` (the engine halts trading)
and its follow-up does not run. :meth:`JournalWriter.flush` waits until everything submitted so far is
written; callers that need their write done (or want to read the journal) flush first.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from copilot_quant.errors import JournalError

if TYPE_CHECKING:
    from copilot_quant.journal.journal import TradeJournal

__all__ = ["JournalWriter"]

log = logging.getLogger(__name__)

Write = Callable[["TradeJournal"], Any]
FailureCallback = Callable[[JournalError], Any]


@dataclass(slots=True)
class _Job:
    journal: TradeJournal
    write: Write
    then: Callable[[Any], Any] | None
    on_error: Callable[[JournalError], Any] | None


class JournalWriter:
    """One background thread that runs journal writes in submission order (started on first use).

    Thread-safe: :meth:`submit` and :meth:`flush` may be called from any thread. ``on_failure(error)`` runs
    on the writer thread for every failed write.
    """

    def __init__(self, on_failure: FailureCallback, name: str = "copilot-quant-journal") -> None:
        self._on_failure = on_failure
        self._name = name
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._idle = threading.Condition()
        self._submitted = 0
        self._done = 0

    def submit(
        self,
        journal: TradeJournal,
        write: Write,
        then: Callable[[Any], Any] | None = None,
        on_error: Callable[[JournalError], Any] | None = None,
    ) -> None:
        """Queue ``write(journal)``; ``then(result)`` runs on the writer thread once it committed.

        ``on_error(error)`` runs (before ``on_failure``) if the write raises :class:`JournalError`.
        """
        with self._start_lock:  # never behind close()'s stop marker: a submit waits for a close to finish
            self._ensure_thread()
            with self._idle:
                self._submitted += 1
            self._queue.put(_Job(journal, write, then, on_error))

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Wait until every write submitted before this call finished; False on timeout."""
        if self._thread is threading.current_thread():
            return True  # a follow-up flushing its own writer would wait for itself
        with self._idle:
            target = self._submitted
            return self._idle.wait_for(lambda: self._done >= target, timeout)

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

    def _run(self, jobs_queue: queue.SimpleQueue[_Job | None]) -> None:
        stop = False
        while not stop:
            jobs = [jobs_queue.get()]
            while True:  # group commit: everything queued meanwhile goes into the same transaction
                try:
                    jobs.append(jobs_queue.get_nowait())
                except queue.Empty:
                    break
            if None in jobs:
                stop = True
                jobs = jobs[: jobs.index(None)]  # nothing is submitted after close()'s marker
            try:
                for group in _by_journal([job for job in jobs if job is not None]):
                    self._execute_group(group)
            finally:
                with self._idle:
                    self._done += len(jobs)
                    self._idle.notify_all()

    def _execute_group(self, jobs: list[_Job]) -> None:
        """Run ``jobs`` (same journal) in one transaction; if anything fails, one by one as usual."""
        if len(jobs) == 1:
            self._execute(jobs[0])
            return
        journal = jobs[0].journal
        try:
            with journal.batch():
                results = [job.write(journal) for job in jobs]
        except Exception:  # rolled back as a whole: redo each alone, so only the failing one fails
            log.debug(
                "a batch of %d journal writes failed; writing them one by one", len(jobs), exc_info=True
            )
            for job in jobs:
                self._execute(job)
            return
        for job, result in zip(jobs, results, strict=True):
            if job.then is not None:
                _safely(job.then, result)

    def _execute(self, job: _Job) -> None:
        try:
            result = job.write(job.journal)
        except JournalError as exc:
            if job.on_error is not None:
                _safely(job.on_error, exc)
            _safely(self._on_failure, exc)
            return
        except Exception:  # a bug in a write must not kill the thread every later write needs
            log.exception("journal write failed unexpectedly")
            return
        if job.then is not None:
            _safely(job.then, result)

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
