"""WAL checkpoints of the engine's journal, run off the path from a bar to its orders.

SQLite checkpoints its write-ahead log by itself on the commit that crosses about 1,000 pages: on an engine
trading every bar, roughly every 100 bars one journal write — possibly an order's intent, which must be on
disk before the order is sent — would also copy the log into the database file and sync it (tens of
milliseconds on a busy disk). The engine turns that off for its journal and checkpoints on a thread of its
own right after a step's orders went out, once the log has grown past :data:`CHECKPOINT_BYTES` (looked at
every :data:`CHECKPOINT_COMMITS` commits). A
checkpoint changes nothing about durability: each record reaches the log as its policy says
(:mod:`copilot_quant.journal.durability`), and a checkpoint syncs what it copies.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from copilot_quant.errors import JournalError
from copilot_quant.journal import TradeJournal

__all__ = ["CHECKPOINT_BYTES", "CHECKPOINT_COMMITS", "Checkpointer"]

log = logging.getLogger(__name__)

#: The log size (bytes) past which the engine checkpoints its journal (SQLite's own default is ~4 MB).
CHECKPOINT_BYTES = 2_000_000
#: How many journal commits between two looks at the log's size (≈ 100 bars of a busy engine). Counting
#: commits is an integer comparison on the loop thread; the file's size is read on the checkpoint thread.
CHECKPOINT_COMMITS = 250
#: How long the checkpoint thread waits for work before it ends (the next checkpoint starts a new one).
_IDLE_S = 60.0


class Checkpointer:
    """Checkpoints the engine's journal in the background when its log is large.

    :meth:`after_step` runs on the engine's path right after a step's orders went out, so it only counts:
    once :attr:`every_commits` journal commits have passed it hands the journal to one long-lived
    checkpoint thread, which checkpoints if the log holds :attr:`min_bytes` or more. (It used to read the
    log's size and start a thread on every step; SQLite never shrinks the log file, so once it had grown
    past the limit that was a thread start — ≈ 0.5 ms of the loop thread — and a checkpoint on every bar.)
    """

    __slots__ = (
        "_busy",
        "_deferred",
        "_idle",
        "_journal",
        "_mark",
        "_queue",
        "_thread",
        "every_commits",
        "min_bytes",
    )

    def __init__(
        self,
        journal: Callable[[], TradeJournal | None],
        min_bytes: int = CHECKPOINT_BYTES,
        every_commits: int = CHECKPOINT_COMMITS,
    ) -> None:
        self._journal = journal
        self.min_bytes = int(min_bytes)
        self.every_commits = int(every_commits)
        self._deferred: TradeJournal | None = None  # the journal whose automatic checkpoints are off
        self._mark = 0  # its commit count at the last hand-over
        self._queue: queue.SimpleQueue[TradeJournal | None] = queue.SimpleQueue()
        self._idle = threading.Condition()
        self._busy = 0  # journals handed over and not checkpointed yet (under _idle)
        self._thread: threading.Thread | None = None

    def after_step(self) -> None:
        """Hand the journal to the checkpoint thread every :attr:`every_commits` commits (cheap otherwise)."""
        journal = self._journal()
        if journal is None or journal.closed:
            return
        if journal is not self._deferred:
            try:
                journal.defer_checkpoints()
            except JournalError as exc:  # SQLite's own checkpoints stay on: slower, still correct
                log.warning("journal checkpoints stay automatic: %s", exc)
                return
            self._deferred, self._mark = journal, journal.commit_mark() - self.every_commits
        mark = journal.commit_mark()
        if mark - self._mark < self.every_commits:
            return
        self._mark = mark
        with self._idle:
            self._busy += 1
            self._queue.put(journal)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="copilot-quant-journal-checkpoint", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                journal = self._queue.get(timeout=_IDLE_S)
            except queue.Empty:
                with self._idle:
                    if self._busy == 0:  # nothing was handed over meanwhile: end; the next one starts anew
                        self._thread = None
                        return
                continue
            if journal is None:  # close()
                with self._idle:
                    self._busy -= 1
                    self._thread = None
                    self._idle.notify_all()
                return
            try:
                if not journal.closed:
                    journal.checkpoint(self.min_bytes)
            except Exception:  # a checkpoint is an optimisation: never let it kill the thread
                log.warning("journal checkpoint failed", exc_info=True)
            finally:
                with self._idle:
                    self._busy -= 1
                    self._idle.notify_all()

    def close(self, timeout: float = 10.0) -> None:
        """End the checkpoint thread once what was handed over is done (the engine stops). Idempotent;
        a later :meth:`after_step` starts a new one."""
        with self._idle:
            thread = self._thread
            if thread is None:
                return
            self._busy += 1
            self._queue.put(None)
        thread.join(timeout)

    def wait(self, timeout: float = 10.0) -> None:
        """Wait for the checkpoints handed over so far to end (at most ``timeout`` seconds)."""
        with self._idle:
            self._idle.wait_for(lambda: self._busy == 0, timeout)
