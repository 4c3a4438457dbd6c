"""The journal's SQLite file: opening it (WAL, size cap), its schema and account, and the transactions
every read and write runs in.

A :class:`JournalStorage` owns one connection guarded by one re-entrant lock, so any thread may use it.
:meth:`~JournalStorage.writing` is one ``BEGIN IMMEDIATE`` … ``COMMIT`` transaction (or a part of the
open :meth:`~JournalStorage.batch` on this thread); a failure rolls it back and raises a
:class:`~copilot_quant.errors.JournalError` that names the file, the cause and the fix. Each transaction
commits with the :class:`~copilot_quant.journal.durability.Durability` asked for. The connection runs with
``synchronous=NORMAL`` (WAL mode: a commit appends to the log without syncing it); a ``SYNCED`` commit
then syncs the log itself before it counts as done, as ``synchronous=FULL`` would — the same disk sync,
without switching the setting between a crash-safe commit and a synced one (a statement each way, on the
path from a bar to its order's intent). :meth:`~JournalStorage.sync` makes every commit so far durable.

The storage also owns the journal's intent log when it can (:meth:`~JournalStorage.open_intent_log`,
:mod:`~copilot_quant.journal.intent_log`): every transaction first inserts the intents the log holds
that SQLite does not yet, and every read first runs such a transaction, so no reader misses an intent.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from copilot_quant.errors import ConfigError, JournalError
from copilot_quant.journal.durability import Durability
from copilot_quant.journal.errors import JournalFullError
from copilot_quant.journal.intent_log import INTENT_PAGES, IntentLog, IntentRow
from copilot_quant.journal.log_identity import META_KEY, new_identity
from copilot_quant.journal.records import to_db_time
from copilot_quant.journal.schema import create_or_check

__all__ = ["InsertIntents", "JournalStorage", "storage_hint"]

log = logging.getLogger(__name__)

#: Syncs a file's data and what is needed to read it back (its size), not its other metadata (times):
#: what SQLite itself uses on Linux for ``synchronous=FULL``.
_datasync = getattr(os, "fdatasync", os.fsync)

#: Inserts intent rows into SQLite inside the caller's transaction, skipping those already there; returns
#: how many it added (:func:`copilot_quant.journal.order_writes.insert_intents`).
InsertIntents = Callable[[sqlite3.Connection, Sequence[IntentRow]], int]

#: Under a ``max_bytes`` cap, the pages (64 KiB at SQLite's usual 4 KiB) kept from intents for what follows
#: the orders already sent (acknowledgements, fills, cancellations), the refused orders' rejections and the
#: halt's records: at most a quarter of the cap.
_RESERVE_PAGES = 16

#: SQLite's own ceiling for ``max_page_count``: the cap lifted (recovering the intent log, see below).
_NO_CAP_PAGES = 0xFFFFFFFE


def storage_hint(exc: sqlite3.Error) -> str:
    """What a trader should do about SQLite error ``exc``."""
    name = str(getattr(exc, "sqlite_errorname", "") or "")
    text = str(exc).lower()
    if name.startswith("SQLITE_FULL") or "full" in text:
        return (
            "the disk (or the journal's max_bytes cap) is full; free space or raise the cap. "
            "Trading must stay halted until the journal can be written"
        )
    if name.startswith("SQLITE_READONLY") or "readonly" in text or "read-only" in text:
        return (
            "the journal file or its directory is read-only; make it writable or point "
            "$COPILOT_QUANT_JOURNAL_DIR (or path=) at a writable place"
        )
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in text:
        return "another process holds the journal locked; is a second engine running on this account?"
    if name.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")) or "not a database" in text:
        return "the file is not a healthy journal; move it aside (keep it for inspection) and restart"
    if name.startswith("SQLITE_CANTOPEN") or "unable to open" in text:
        return "the file cannot be opened; check that the path exists and is accessible"
    return "check the disk holding the journal"


class JournalStorage:
    """One journal file, opened; :meth:`open_account` must run once before it is used."""

    def __init__(self, path: Path, *, read_only: bool, max_bytes: int | None) -> None:
        self.path = path
        self.read_only = read_only
        self.lock = threading.RLock()
        self._in_batch = False
        self._batch_thread = 0
        #: The intent log this journal owns, if any (:meth:`open_intent_log`), and how its rows reach SQLite.
        self.intent_log: IntentLog | None = None
        self._insert_intents: InsertIntents | None = None
        #: The journal's identity, which its intent log names (:mod:`~copilot_quant.journal.log_identity`);
        #: None only in a read-only view of a journal no writable open has given one yet.
        self.identity: str | None = None
        #: Transactions committed so far, and how many of the first ones are surely on the disk (a synced
        #: commit or a :meth:`sync` carries every earlier commit with it: the log is one file, appended to).
        self.commits = 0
        self.synced_commits = 0
        #: The ``max_bytes`` cap in pages (None: no cap), the page size, and the pages kept from intents.
        self._max_bytes = max_bytes
        self._cap_pages: int | None = None
        self._page_size = 4096
        self._reserve_pages = 0
        self.conn: sqlite3.Connection | None = None
        self.conn = self._connect(max_bytes)

    # ------------------------------------------------------------------ opening and closing
    def _connect(self, max_bytes: int | None) -> sqlite3.Connection:
        if max_bytes is not None and (isinstance(max_bytes, bool) or int(max_bytes) <= 0):
            raise ConfigError(f"max_bytes must be a positive number of bytes, got {max_bytes!r}")
        try:
            if self.read_only:
                if not self.path.is_file():
                    raise JournalError(
                        f"no journal at {self.path}; pass the path of an existing journal file "
                        "(or the account whose engine has run here)"
                    )
                uri = f"{self.path.resolve().as_uri()}?mode=ro"
                conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(
                    str(self.path), isolation_level=None, check_same_thread=False, timeout=10.0
                )
        except OSError as exc:
            raise JournalError(
                f"cannot create the journal directory {self.path.parent}: {exc.strerror or exc}; "
                "choose a writable place with path= or $COPILOT_QUANT_JOURNAL_DIR"
            ) from exc
        except sqlite3.Error as exc:
            raise JournalError(f"cannot open journal {self.path}: {exc} — {storage_hint(exc)}") from exc
        try:
            self._configure(conn, max_bytes)
        except sqlite3.Error as exc:
            conn.close()
            raise JournalError(f"cannot open journal {self.path}: {exc} — {storage_hint(exc)}") from exc
        except BaseException:
            conn.close()
            raise
        return conn

    def _configure(self, conn: sqlite3.Connection, max_bytes: int | None) -> None:
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout = 10000")
        if not self.read_only:
            mode = str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]).lower()
            if mode != "wal":
                raise JournalError(
                    f"journal {self.path} could not be put in WAL mode (got {mode!r}); "
                    "keep journals on a local disk, not a network share"
                )
            # NORMAL: a commit survives a crash of the process; a SYNCED one syncs the log after it, so it
            # survives a power loss too (writing(); durability.py). Checkpoints sync what they copy.
            conn.execute(f"PRAGMA synchronous = {Durability.CRASH_SAFE.pragma}")
        if max_bytes is not None:
            self._page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
            self._cap_pages = max(int(max_bytes) // self._page_size, 1)
            self._reserve_pages = min(_RESERVE_PAGES, self._cap_pages // 4)
            conn.execute(f"PRAGMA max_page_count = {self._cap_pages}")

    def open_account(self, account: str | None, clock: Callable[[], datetime]) -> str:
        """Create or check the schema; returns the file's account (recording ``account`` in a new file)."""
        if self.read_only:
            with self.reading("read the schema") as conn:
                create_or_check(conn, str(self.path), writable=False)
                stored = _meta(conn, "account")
                self.identity = _meta(conn, META_KEY)
        else:
            with self.writing("create the schema") as conn:
                created = create_or_check(conn, str(self.path), writable=True)
                if created:
                    if account is None:
                        raise JournalError(
                            f"{self.path} is a new journal; pass account= (e.g. 'DU1234567') to create it"
                        )
                    now = to_db_time(clock())
                    conn.executemany(
                        "INSERT INTO meta (key, value) VALUES (?, ?)",
                        [("account", account), ("created_at", now)],
                    )
                stored = _meta(conn, "account")
                self.identity = _meta(conn, META_KEY)
                if self.identity is None:  # a new journal, or one made before identities existed
                    self.identity = new_identity()
                    conn.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (META_KEY, self.identity))
        if stored is None:
            raise JournalError(f"journal {self.path} has no account recorded; it is damaged, move it aside")
        if account is not None and account != stored:
            raise JournalError(
                f"journal {self.path} belongs to account {stored!r}, not {account!r}; "
                "each account has its own journal file — pass the matching account or another path"
            )
        return stored

    def close(self) -> None:
        """Close the file (its pending intents written to SQLite and synced first, when it can). Idempotent."""
        with self.lock:
            if self.conn is not None:
                try:
                    self._close_intent_log()
                    self.conn.close()
                finally:
                    self.conn = None

    # ------------------------------------------------------------------ the intent log
    def open_intent_log(self, insert: InsertIntents) -> int:
        """Own the journal's intent log (:mod:`~copilot_quant.journal.intent_log`), if no other journal
        does: recover what a crash left in it into SQLite (returns how many intents that added) and send
        every later intent through it. Writable journals only."""
        if self.read_only or self.intent_log is not None or self.identity is None:
            return 0
        intent_log = IntentLog.claim(self.path, self.identity)
        if intent_log is None:
            return 0

        def recover(rows: Sequence[IntentRow]) -> int:
            with self.writing("recover the intents of the intent log") as conn, self._cap_lifted(conn):
                return insert(conn, rows)

        try:
            added = intent_log.recover(recover)
            self._limit_intents(intent_log)
        except BaseException:
            intent_log.close(in_sqlite=False)
            raise
        self.intent_log, self._insert_intents = intent_log, insert
        return added

    @contextmanager
    def _cap_lifted(self, conn: sqlite3.Connection) -> Iterator[None]:
        """No ``max_bytes`` cap inside: the intent log's rows are orders that may have been sent, and the
        journal must hold them (a log older than the room check, or another journal that took the room:
        the cap could not take them, and every open would fail). Past the cap, each later write fails."""
        if self._cap_pages is None:
            yield
            return
        conn.execute(f"PRAGMA max_page_count = {_NO_CAP_PAGES}")
        try:
            yield
        finally:
            conn.execute(f"PRAGMA max_page_count = {self._cap_pages}")  # never below the file's size

    def _limit_intents(self, intent_log: IntentLog) -> None:
        """Under a cap, let ``intent_log`` take only the intents SQLite has room for (and say at the open
        when there is none: every order would be refused, trading halting at the first)."""
        if self._cap_pages is None or self._max_bytes is None:
            return
        with self.reading("measure the room left under the journal's max_bytes cap") as conn:
            room = self._cap_pages - self._pages_used(conn) - self._reserve_pages
        intent_log.limit(room, self._page_size, self.path, self._max_bytes)
        if room < INTENT_PAGES:
            log.warning(
                "journal %s leaves no room for new orders under its max_bytes cap (%d bytes): each order "
                "will be refused, not sent, and trading halts at the first; raise max_bytes (or move the "
                "journal aside to start a new one)",
                self.path,
                self._max_bytes,
            )

    def _intent_room(self, conn: sqlite3.Connection) -> int | None:
        """The pages SQLite can still give intents under the cap, after the reserve (None: no cap)."""
        if self._cap_pages is None:
            return None
        return self._cap_pages - self._pages_used(conn) - self._reserve_pages

    @staticmethod
    def _pages_used(conn: sqlite3.Connection) -> int:
        """The pages of the file that hold data (its free list, which writes take first, aside)."""
        used, free = conn.execute("SELECT * FROM pragma_page_count(), pragma_freelist_count()").fetchone()
        return int(used) - int(free)

    def log_intents(self, rows: Sequence[IntentRow]) -> bool:
        """Put intent ``rows`` on the disk through the intent log; False when there is none or this thread
        is inside :meth:`batch` (then the caller writes them in SQLite, in that transaction)."""
        intent_log = self.intent_log
        if intent_log is None or (self._in_batch and self._batch_thread == threading.get_ident()):
            return False
        if self.conn is None:
            raise JournalError(f"journal {self.path} is closed; open a new TradeJournal")
        try:
            intent_log.append(rows)
        except JournalFullError:
            if not intent_log.has_pending:
                raise
            # Rows still pending count for the most they may take: write them (which measures the room
            # anew) and ask once more. Only near the cap does an intent cost a transaction this way.
            with self.writing("record the pending intents", Durability.CRASH_SAFE):
                pass
            intent_log.append(rows)
        return True

    def _apply_pending(self, conn: sqlite3.Connection) -> int:
        """Insert the intent log's pending rows in the transaction just begun; how many were taken."""
        if self.intent_log is None or self._insert_intents is None or not self.intent_log.has_pending:
            return 0
        rows = self.intent_log.pending()
        self._insert_intents(conn, rows)
        return len(rows)

    def _close_intent_log(self) -> None:  # under lock
        intent_log, self.intent_log = self.intent_log, None
        if intent_log is None:
            return
        in_sqlite = False
        try:
            if intent_log.has_pending:
                self.intent_log = intent_log  # once more, so that this transaction takes its rows
                with self.writing("record the pending intents"):
                    pass
            else:
                self.sync()
            in_sqlite = True
        except JournalError:
            log.warning(
                "journal %s: pending intents stay in %s until the next open", self.path, intent_log.path
            )
        finally:
            self.intent_log = None
            intent_log.close(in_sqlite=in_sqlite)

    # ------------------------------------------------------------------ checkpoints
    def defer_checkpoints(self) -> None:
        """Stop SQLite's automatic checkpoints on this connection's commits: the one commit that crosses
        the WAL's limit (1,000 pages, about 100 bars of a busy engine) would copy it all into the database
        file and sync it, tens of milliseconds on a busy disk, on whichever write it is — an order's intent
        included. The caller then runs :meth:`checkpoint` when nothing waits on the journal."""
        with self.lock:
            self._require_conn().execute("PRAGMA wal_autocheckpoint = 0")

    def wal_bytes(self) -> int:
        """The size of the write-ahead log file (0 if there is none)."""
        try:
            return (self.path.parent / f"{self.path.name}-wal").stat().st_size
        except OSError:
            return 0

    def checkpoint(self) -> bool:
        """Copy the write-ahead log into the database file, on a connection of its own (PASSIVE: it never
        waits for writers nor blocks them, and this connection's lock is not held). False if it failed."""
        try:
            conn = sqlite3.connect(str(self.path), isolation_level=None, timeout=10.0)
        except sqlite3.Error as exc:
            log.warning("journal %s: checkpoint skipped: %s", self.path, exc)
            return False
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            return True
        except sqlite3.Error as exc:
            log.warning(
                "journal %s: checkpoint failed (the log keeps growing until one works): %s", self.path, exc
            )
            return False
        finally:
            conn.close()

    # ------------------------------------------------------------------ transactions
    def _require_conn(self) -> sqlite3.Connection:
        if self.conn is None:
            raise JournalError(f"journal {self.path} is closed; open a new TradeJournal")
        return self.conn

    def error(self, action: str, exc: sqlite3.Error) -> JournalError:
        """The named error for a failed ``action``, logged."""
        error = JournalError(f"journal {self.path}: could not {action}: {exc} — {storage_hint(exc)}")
        log.error("%s", error)
        return error

    def sync(self) -> None:
        """Make every transaction committed so far durable, as a ``synchronous=FULL`` commit would: sync
        the write-ahead log (each commit appends to it; a checkpoint syncs what it copies out of it).

        Runs without the connection's lock (a disk sync takes milliseconds; other threads keep committing
        meanwhile).
        """
        if self.read_only:
            return
        covered = self.commits  # the sync below carries every commit made up to here
        self._sync_log()
        with self.lock:
            self.synced_commits = max(self.synced_commits, covered)
            if self.intent_log is not None:
                self.intent_log.synced(self.synced_commits)

    def _sync_log(self) -> None:
        """Sync the write-ahead log to the disk (its data and what is needed to read it back: its size).

        SQLite locks the database and its shared-memory index, never the log, so this second handle on the
        log cannot release a lock of the connection when it is closed.
        """
        wal = self.path.parent / f"{self.path.name}-wal"
        try:
            fd = os.open(wal, os.O_RDWR)
        except FileNotFoundError:
            return  # no log: nothing was committed since the last checkpoint removed it (and synced it)
        except OSError as exc:
            raise self._sync_error(exc) from exc
        try:
            _datasync(fd)
        except OSError as exc:
            raise self._sync_error(exc) from exc
        finally:
            os.close(fd)

    def _sync_error(self, exc: OSError) -> JournalError:
        error = JournalError(
            f"journal {self.path}: could not sync its log to the disk: {exc.strerror or exc} — "
            "check the disk holding the journal"
        )
        log.error("%s", error)
        return error

    @contextmanager
    def writing(
        self, action: str, durability: Durability = Durability.SYNCED
    ) -> Iterator[sqlite3.Connection]:
        """One write transaction: all of it is committed, or none of it (then JournalError is raised).

        It commits with ``durability``; inside :meth:`batch`, the batch's durability applies instead.
        """
        with self.lock:
            conn = self._require_conn()
            if self.read_only:
                raise JournalError(
                    f"journal {self.path} was opened read-only; cannot {action} "
                    "(open it with read_only=False to record)"
                )
            if self._in_batch:  # inside batch() on this thread: its transaction holds it all
                yield conn
                return
            try:
                conn.execute("BEGIN IMMEDIATE")  # take the write lock now, not halfway through
            except sqlite3.Error as exc:
                raise self.error(action, exc) from exc
            try:
                applying = self._apply_pending(conn)  # intents first: what follows may be about them
                yield conn
                room = None if self._cap_pages is None or self.intent_log is None else self._intent_room(conn)
                conn.execute("COMMIT")
                self.commits += 1
                if (applying or room is not None) and self.intent_log is not None:
                    self.intent_log.applied(applying, self.commits, room)
                if durability is Durability.SYNCED:  # this sync covers every commit before it too
                    self._sync_log()
                    self.synced_commits = self.commits
                    if self.intent_log is not None:
                        self.intent_log.synced(self.synced_commits)
            except BaseException as exc:
                if conn.in_transaction:
                    try:
                        conn.execute("ROLLBACK")
                    except sqlite3.Error:  # SQLite may already have rolled back (e.g. on SQLITE_FULL)
                        log.debug("rollback after a failed journal write failed too", exc_info=True)
                if isinstance(exc, sqlite3.Error):
                    raise self.error(action, exc) from exc
                raise

    @contextmanager
    def batch(self, durability: Durability = Durability.SYNCED) -> Iterator[None]:
        """One write transaction that every :meth:`writing` on this thread joins until it ends.

        It commits with ``durability``, whatever its parts ask for: a caller that batches ``SYNCED`` records
        into a ``CRASH_SAFE`` batch must :meth:`sync` before it reports them written (the journal writer does).
        """
        with self.lock:
            if self._in_batch:
                raise JournalError("journal batches do not nest")
            with self.writing("write a batch of records", durability):
                self._in_batch, self._batch_thread = True, threading.get_ident()
                try:
                    yield
                finally:
                    self._in_batch, self._batch_thread = False, 0

    @contextmanager
    def reading(self, action: str) -> Iterator[sqlite3.Connection]:
        """A read, which sees every intent ``record_intent`` returned (pending ones are written first)."""
        with self.lock:
            conn = self._require_conn()
            if self.intent_log is not None and self.intent_log.has_pending and not conn.in_transaction:
                try:
                    with self.writing("record the pending intents", Durability.CRASH_SAFE):
                        pass  # the transaction's start inserts them; the intent log keeps them synced
                except JournalError:  # logged; the write that fails next halts trading. Reads go on.
                    pass
            try:
                yield conn
            except sqlite3.Error as exc:
                raise self.error(action, exc) from exc


def _meta(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])
