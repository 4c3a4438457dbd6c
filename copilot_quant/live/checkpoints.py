"""WAL checkpoints of the engine's journal, run off the path from a bar to its orders.

SQLite checkpoints its write-ahead log by itself on the commit that crosses about 1,000 pages: on an engine
trading every bar, roughly every 100 bars one journal write — possibly an order's intent, which must be on
disk before the order is sent — would also copy the log into the database file and sync it (tens of
milliseconds on a busy disk). The engine turns that off for its journal and checkpoints on a thread of its
own right after a step's orders went out, once the log has grown past :data:`CHECKPOINT_BYTES`. A
checkpoint changes nothing about durability: each record reaches the log as its policy says
(:mod:`copilot_quant.journal.durability`), and a checkpoint syncs what it copies.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from copilot_quant.errors import JournalError
from copilot_quant.journal import TradeJournal

__all__ = ["CHECKPOINT_BYTES", "Checkpointer"]

log = logging.getLogger(__name__)

#: The log size (bytes) past which the engine checkpoints its journal (SQLite's own default is ~4 MB).
CHECKPOINT_BYTES = 2_000_000


class Checkpointer:
    """Checkpoints the engine's journal in the background when its log is large (worker thread calls)."""

    __slots__ = ("_deferred", "_journal", "_thread", "min_bytes")

    def __init__(self, journal: Callable[[], TradeJournal | None], min_bytes: int = CHECKPOINT_BYTES) -> None:
        self._journal = journal
        self.min_bytes = int(min_bytes)
        self._deferred: TradeJournal | None = None  # the journal whose automatic checkpoints are off
        self._thread: threading.Thread | None = None

    def after_step(self) -> None:
        """Start a checkpoint if the log is past :attr:`min_bytes` and none is running (cheap otherwise)."""
        journal = self._journal()
        if journal is None or journal.closed:
            return
        if journal is not self._deferred:
            try:
                journal.defer_checkpoints()
            except JournalError as exc:  # SQLite's own checkpoints stay on: slower, still correct
                log.warning("journal checkpoints stay automatic: %s", exc)
                return
            self._deferred = journal
        if (self._thread is not None and self._thread.is_alive()) or journal.wal_bytes() < self.min_bytes:
            return
        self._thread = threading.Thread(
            target=journal.checkpoint, name="copilot-quant-journal-checkpoint", daemon=True
        )
        self._thread.start()

    def wait(self, timeout: float = 10.0) -> None:
        """Wait for a running checkpoint to end (at most ``timeout`` seconds)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
