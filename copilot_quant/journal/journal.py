"""The durable trade journal: one SQLite file (WAL mode) per account that loses nothing.

What it guarantees, and how:

* **Intent before send.** :meth:`TradeJournal.record_intent` writes the order and issues its
  ``order_ref`` (IB's ``orderRef``) *before* the engine sends anything — on the disk when it returns,
  through the journal's intent log (one small synced append, :mod:`~copilot_quant.journal.intent_log`;
  the row reaches SQLite with the next transaction and every read sees it). After a crash,
  :meth:`~TradeJournal.unsent_intents` lists orders that may be in flight; the engine looks them up at the
  broker by ``order_ref`` instead of sending them again.
* **Exactly once.** A fill is unique by ``(exec_id, order_ref)``: :meth:`~TradeJournal.record_fill`
  returns False for an execution of that order it already holds, so the engine delivers ``on_fill`` only
  when it returns True.
* **Never fail open.** An execution id already journaled for a *different* order is not a duplicate. IB's
  ids never repeat, so it means something is wrong (a simulated gateway that forgot its ids, a journal
  shared by two brokers): the fill is recorded and delivered like any other, and the journal raises a loud
  alert in the same transaction: an ``alert`` event, an ``errors`` row with code
  :data:`~copilot_quant.journal.errors.EXEC_ID_REUSED`, and an ERROR log line. Dropping it would leave the
  strategy blind to a position it holds.
* **Whole records only.** Every ``record_*`` is one ``BEGIN IMMEDIATE`` … ``COMMIT`` transaction (an
  intent: one append to the intent log, taken back if it fails, its row inserted whole by the next
  transaction); a crash or a failed write (full or read-only disk) leaves the journal exactly as it was
  before the call.
  Failures raise :class:`~copilot_quant.errors.JournalError` naming the file, the cause and the fix — the
  engine must halt trading when it sees one.
* **Durability: crash-safe fills** (:mod:`~copilot_quant.journal.durability`). A record is on the disk
  when its ``record_*`` returns (``synchronous=FULL``: it survives a power loss) — the intent above all,
  before the order is sent — except a fill: :meth:`~TradeJournal.record_fill` commits without its own
  fsync (``synchronous=NORMAL``), so a fill survives a crash or SIGKILL of the process but a power loss
  only once the next synced commit, :meth:`~TradeJournal.sync` or checkpoint reached the disk. IB keeps
  its executions and reconciliation re-reads them at every start, so a fill a power loss took is journaled
  and delivered again, once; in exchange, a fill's commit no longer adds a disk sync before ``on_fill``,
  on the path from the bar that follows it to that bar's orders.

The parts: :mod:`~copilot_quant.journal.storage` (the file, its schema and transactions),
:mod:`~copilot_quant.journal.exec_ids` (the in-memory index behind :meth:`~TradeJournal.knows_fill`),
:mod:`~copilot_quant.journal.queries` (the reads and row mappers), :mod:`~copilot_quant.journal.order_writes`
(intents, status reports, modifications, errors, events) and :mod:`~copilot_quant.journal.fill_writes` (fills,
exactly once, and commissions); this module opens, closes and syncs the journal and puts the halves together.

Threading: one connection guarded by a lock, so the engine's event-loop thread and the user's thread may
call any method concurrently. Two *processes* may read one journal at once (WAL), but only one engine
should write an account's journal.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from copilot_quant.errors import ConfigError, JournalError
from copilot_quant.journal.durability import Durability
from copilot_quant.journal.exec_ids import ANY_ORDER, AnyOrder, ExecIdIndex
from copilot_quant.journal.fill_writes import JournalFillWrites
from copilot_quant.journal.intent_log import IntentLog
from copilot_quant.journal.order_writes import insert_intents
from copilot_quant.journal.paths import check_account, default_journal_path
from copilot_quant.journal.queries import JournalQueries, StatusFilter
from copilot_quant.journal.storage import JournalStorage

__all__ = ["ANY_ORDER", "AnyOrder", "StatusFilter", "TradeJournal"]

log = logging.getLogger(__name__)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class TradeJournal(JournalFillWrites, JournalQueries):
    """The journal of one account. Open it, record into it from any thread, close it (or use ``with``).

    ``TradeJournal(account='DU1234567')`` opens ``$COPILOT_QUANT_JOURNAL_DIR/DU1234567.sqlite`` (default
    directory ``~/.copilot_quant/journal``), creating it and its schema on first use;
    ``TradeJournal(path)`` opens a given file, whose account is read from the file. ``read_only=True``
    opens an existing journal without ever writing it (the CLI does this, so that it can inspect the
    journal of a running engine). ``max_bytes`` caps the file's size: a write that would grow it beyond
    the cap fails with a :class:`JournalError` exactly as on a full disk, and an intent (an order about to
    be sent) is refused with :class:`~copilot_quant.journal.errors.JournalFullError` a little before, while
    the cap still has room for what follows the orders already sent (and to journal the refused ones as
    rejected). ``clock`` supplies the recording times (tz-aware UTC).
    """

    def __init__(
        self,
        path: str | Path | None = None,
        account: str | None = None,
        *,
        read_only: bool = False,
        max_bytes: int | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if path is None:
            if account is None:
                raise ConfigError("TradeJournal needs account= (e.g. 'DU1234567') or path= to a journal file")
            path = default_journal_path(account)
        self._account = check_account(account) if account is not None else None
        self._path = Path(path).expanduser()
        self._read_only = bool(read_only)
        self._clock = clock or _utcnow
        self._store = JournalStorage(self._path, read_only=self._read_only, max_bytes=max_bytes)
        self._lock = self._store.lock
        self._exec_ids = ExecIdIndex()
        try:
            self._account = self._store.open_account(self._account, self._clock)
            recovered = self._store.open_intent_log(insert_intents)
        except BaseException:
            self.close()
            raise
        log.info("journal %s opened for account %s", self._path, self._account)
        if self._store.intent_log is None:  # read-only, or another journal owns the log
            self._warn_unrecorded_intents()
        if recovered:
            log.warning(
                "journal %s: %d order intent(s) journaled just before the last run stopped were recovered "
                "from its intent log; the start's reconciliation looks them up at IB (sent or not)",
                self._path,
                recovered,
            )

    def _warn_unrecorded_intents(self) -> None:
        """A journal that does not own the intent log (read-only, or a second writable one) does not see
        intents still in the log only (an engine that is running, or stopped when SQLite could not take
        them): say so, once, at open."""
        with self._store.reading("look up the intent log's order refs") as conn:

            def recorded(ref: str) -> bool:  # one indexed lookup per line of the log (none when it is empty)
                return conn.execute("SELECT 1 FROM orders WHERE order_ref = ?", (ref,)).fetchone() is not None

            missing = IntentLog.unrecorded(self._path, recorded, self._store.identity)
        if missing:
            log.warning(
                "journal %s: %d order intent(s) are in its intent log and not in this %s view yet "
                "(a running engine records them within milliseconds; a stopped one at its next start)",
                self._path,
                missing,
                "read-only" if self._read_only else "second writable",
            )

    # ------------------------------------------------------------------ opening and closing
    def close(self) -> None:
        """Close the file. Idempotent; recording afterwards raises :class:`JournalError`."""
        self._store.close()

    def __enter__(self) -> TradeJournal:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = "read-only" if self._read_only else "read-write"
        state = "closed" if self.closed else mode
        return f"TradeJournal({str(self._path)!r}, account={self._account!r}, {state})"

    @property
    def path(self) -> Path:
        return self._path

    @property
    def account(self) -> str:
        return str(self._account)

    @property
    def read_only(self) -> bool:
        return self._read_only

    @property
    def closed(self) -> bool:
        return self._store.conn is None

    @property
    def _conn(self) -> sqlite3.Connection | None:
        """The open connection (None once closed), for tests that sabotage the file."""
        return self._store.conn

    # ------------------------------------------------------------------ transactions
    @contextmanager
    def batch(self, durability: Durability = Durability.SYNCED) -> Iterator[None]:
        """Group ``record_*`` calls into one transaction, so the disk is synced once for all of them.

        All of them are committed, or none (an error in any one rolls the whole batch back and is raised).
        Other threads' calls wait until the batch ends. Used by the journal writer thread to commit a burst
        of broker events (status, fill, commission …) together. The batch commits with ``durability``
        whatever its records ask for: after a ``CRASH_SAFE`` batch holding other records than fills, call
        :meth:`sync` before relying on them being on the disk.
        """
        with self._lock, self._store.batch(durability):
            self._exec_ids.begin_batch()
            try:
                yield
            finally:
                committed = self._exec_ids.end_batch()
        self._exec_ids.remember(committed)  # only now: a rolled-back fill must not count as journaled

    # ------------------------------------------------------------------ checkpoints and syncs
    def defer_checkpoints(self) -> None:
        """Leave WAL checkpoints to :meth:`checkpoint` (see :meth:`JournalStorage.defer_checkpoints`)."""
        self._store.defer_checkpoints()

    def checkpoint(self, min_wal_bytes: int = 0) -> bool:
        """Copy the write-ahead log into the database file if it holds at least ``min_wal_bytes``; True if
        a checkpoint ran. Safe from any thread, next to writes (it never blocks them)."""
        if self.closed or self.wal_bytes() < min_wal_bytes:
            return False
        return self._store.checkpoint()

    def sync(self) -> None:
        """Put every record committed so far on the disk (crash-safe fills included). Any thread; it does
        not hold up other threads' writes while the disk syncs."""
        if self.closed:
            raise JournalError(f"journal {self._path} is closed; open a new TradeJournal")
        self._store.sync()

    def commit_mark(self) -> int:
        """A mark of the transactions committed so far, for :meth:`is_synced`."""
        return self._store.commits

    def is_synced(self, mark: int) -> bool:
        """Whether every transaction committed up to ``mark`` (:meth:`commit_mark`) is surely on the disk:
        a later synced commit (an acknowledgement, say; an intent is synced to the intent log, not to SQLite) or
        :meth:`sync` carried it there."""
        return self._store.synced_commits >= mark

    def wal_bytes(self) -> int:
        """The size of the journal's write-ahead log (what the next checkpoint copies)."""
        return self._store.wal_bytes()
