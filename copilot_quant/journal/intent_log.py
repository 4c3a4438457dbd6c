"""The intent log: an order's intent on the disk before the order is sent, in one small synced append.

Journaling an intent in SQLite before ``placeOrder`` costs a transaction (two rows, their indexes, a
dozen pages written to the write-ahead log) and a disk sync of that log: ≈ 0.8 ms on the path from a
bar to its order. The intent log cuts it to what durability needs: the intent's row, one line of JSON,
appended to ``<journal>-intents`` and ``fdatasync``'d (≈ 0.3 ms, the disk's own cost). The row goes
into SQLite with the journal's next transaction, whichever thread runs it: the engine's next journal
write follows the send by a millisecond (a staged fill, IB's acknowledgement of the order), and every
read through that journal (from any thread) applies the pending rows first, so its readers never miss an
intent ``record_intent`` returned; another ``TradeJournal`` on the file, even in this process, sees them
once SQLite has them (it warns at open when the log holds some it lacks). What the log holds is a copy:
a row leaves it (the file is cut) only once it is in SQLite *and* that SQLite commit is on the disk.

**Crash:** at the next open for writing, every line of the log whose ``order_ref`` is not in SQLite is
inserted as an intent (state ``intent``), then reconciliation looks it up at IB as any unsent intent. A
last line the crash cut short was never synced, so its order was never sent: it is dropped, with a
warning. So are zeros at the end, in the last lines (what a power loss leaves of an append that was never
synced on ext4, whose delayed allocation puts a file's new size on the disk before its data): every
append is synced before the next one starts, so only the last one can be unsynced. A damaged line before
a good one (only a damaged disk does that) stops the open with a
:class:`~copilot_quant.errors.JournalError` naming the file.

**Whose log.** The log's first line names its journal (``meta.journal_id``,
:mod:`~copilot_quant.journal.log_identity`); a cut keeps it. A log that names another journal (one moved
aside after a crash left its log behind) is not recovered into this one: the open moves it aside, with a
warning naming both files and how to recover it into its own journal. A log naming none (an older
version's) is recovered as before, with a warning.

**Size cap.** Under the journal's ``max_bytes`` cap the log takes only the intents SQLite has room for:
after each transaction the journal tells it how many pages are left (a reserve aside, for what follows
the orders already sent), and an append counts the most its rows and those still pending may take
(:data:`INTENT_PAGES` each, and their bytes twice): one that does not fit raises
:class:`~copilot_quant.journal.errors.JournalFullError` before anything is written, so its order is never
sent (a counter and a comparison on the append path; no system call). The refused orders are journaled
as rejected, in the reserve. A log SQLite cannot hold all the same (an older version's, or another
journal took the room) is recovered past the cap, with a warning: its rows may be orders that were sent.

**One owner.** The writable journal that opens the log holds an exclusive ``flock`` on it for its life
(released by the kernel if the process dies, and by the log when its journal is dropped unclosed). The
lock belongs to the open file, which ``fork`` shares with the child: a forked child closes its copy at
once (and leaves the log alone), so that a child outliving a killed engine (a worker of a fork-started
pool) cannot keep the next engine from recovering the log. A second writable journal on the same file —
another process, or another ``TradeJournal`` in this one — does not get it: its intents go straight to
SQLite, synced, as before, it leaves the owner's log alone, and it warns at open of intents only the log
holds, as a read-only journal does (``copilot-quant journal`` opens read-only). Read-only journals never
touch the log (a crashed engine's last intents show up once it is opened for writing — the next start
does). The log lives beside the journal's real file (a symbolic link to the journal finds the same log,
as SQLite's ``-wal``). Where ``fcntl`` does not exist (Windows) there is no intent log; every intent is a
synced SQLite commit.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import threading
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from copilot_quant.errors import JournalError
from copilot_quant.journal.errors import JournalFullError
from copilot_quant.journal.log_identity import aside_path, foreign_log_warning, identity_line, split_identity

try:  # POSIX only; without it the journal has no intent log (see the module docstring)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["INTENT_PAGES", "IntentLog", "IntentRow", "intent_log_path"]

log = logging.getLogger(__name__)

#: One intent's journal row (the ``orders`` columns ``record_intent`` writes, ``order_ref`` first).
IntentRow = tuple[Any, ...]

#: The log is cut once what it holds is in SQLite and on the disk and it has grown past this size (a cut
#: on every intent would only add file-size changes to the disk syncs).
_CUT_BYTES = 256 * 1024

#: The most one intent can take in SQLite, in pages, besides its bytes: a row in ``orders`` and one in
#: ``order_events`` touch six B-trees (the tables, their four indexes), a page split in each at worst
#: (measured over thousands of intents: 0 to 3 pages). Its bytes count twice (its row, its index keys).
INTENT_PAGES = 8

_datasync = getattr(os, "fdatasync", os.fsync)


#: The logs this process owns, for :func:`_disown_in_child` (a fork hook sees no journal object).
_OWNED: weakref.WeakSet[IntentLog] = weakref.WeakSet()


def _disown_in_child() -> None:
    """Right after a fork, in the child: give up every log the parent owns (see the module docstring)."""
    for intent_log in list(_OWNED):
        intent_log._disown()


def _close_quietly(fd: int) -> None:
    with contextlib.suppress(OSError):  # nothing to do about it (a child, a finalizer)
        os.close(fd)


def _sync_directory(directory: Path) -> None:
    """Put ``directory``'s entries on the disk (what SQLite does for a new ``-wal``): an append synced to
    a file whose name a power loss takes is lost with it."""
    try:
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:  # some file systems refuse to sync a directory; their entries are synced anyway
        log.warning("could not sync the journal's directory %s: %s", directory, exc.strerror or exc)


def _hint(exc: OSError) -> str:
    if exc.errno == errno.EROFS:
        return "the disk holding the journal is read-only; make it writable"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "the disk holding the journal is full; free space"
    return "check the disk holding the journal"


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:  # a write to a regular file may be short (a signal, a full disk)
        view = view[os.write(fd, view) :]


def _drop_zeroed_tail(lines: list[bytes]) -> bool:
    """Take the lines at the end of ``lines`` (the log's complete lines) that hold a NUL byte off it;
    whether there were any.

    A power loss can leave zeros where an append was (ext4's delayed allocation puts a file's new size on
    the disk before its data). Every append is synced before the next one starts, so only the last one can
    be unsynced: zeros in the lines at the end are an append that never returned (its orders were never
    sent). JSON never holds a raw NUL, so a line with one is no intent; before a good line it is damage.
    """
    end = len(lines)
    while end and b"\0" in lines[end - 1]:
        end -= 1
    dropped = end < len(lines)
    del lines[end:]
    return dropped


def intent_log_path(journal_path: Path) -> Path:
    """Where the intent log of the journal at ``journal_path`` lives: beside the file, like SQLite's
    ``-wal`` — beside the real file when the path is a symbolic link (as SQLite does), so that every path
    to one journal finds its one log."""
    real = Path(os.path.realpath(journal_path))
    return real.parent / f"{real.name}-intents"


class IntentLog:
    """The owned, open intent log of one journal, and the rows it holds that SQLite does not have yet.

    Thread-safe: the engine's loop thread appends (:meth:`append`) while the journal writer's transactions
    take the pending rows (:meth:`pending`) and report them committed (:meth:`applied`) and on the disk
    (:meth:`synced`).
    """

    def __init__(self, path: Path, fd: int, journal: Path, identity: str) -> None:
        self.path = path
        self._fd = fd
        #: The journal this log belongs to, and the first line that says so (:mod:`.log_identity`): a cut
        #: keeps it, so that every line after it is this journal's.
        self._journal = journal
        self._identity = identity
        self._header = identity_line(identity)
        self._lock = threading.Lock()
        self._pending: list[IntentRow] = []
        self._applied_at = 0  # the storage's commit count when the last pending rows were committed
        self._size = os.fstat(fd).st_size
        self._broken = False
        #: Under the journal's max_bytes cap: the pages SQLite can still give intents (:meth:`limit`), and
        #: what each pending row may take of them. None: no cap.
        self._room: int | None = None
        self._costs: list[int] = []
        self._page_size = 4096
        self._cap = ""
        _OWNED.add(self)
        # A journal dropped without close(): let go of the file (and its lock) as a crash would, so that
        # the next open in this process owns the log and recovers what only it holds. Detached at close.
        self._release = weakref.finalize(self, _close_quietly, fd)
        self._release.atexit = False  # at exit the journal may still be in use (an atexit hook closing it)

    @classmethod
    def claim(cls, journal_path: Path, identity: str) -> IntentLog | None:
        """Open and lock the log of the journal at ``journal_path`` (whose ``meta.journal_id`` is
        ``identity``); None when another journal owns it (or the platform has no ``flock``): that journal
        then writes its intents straight to SQLite."""
        fd = cls._open_locked(intent_log_path(journal_path))
        return None if fd is None else cls(intent_log_path(journal_path), fd, journal_path, identity)

    @staticmethod
    def _open_locked(path: Path) -> int | None:
        """The log at ``path``, opened (created if need be) and locked; None if another journal holds it."""
        if fcntl is None:  # pragma: no cover - Windows
            return None
        created = not path.exists()
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as exc:
            raise JournalError(
                f"cannot open the intent log {path}: {exc.strerror or exc} — check that the journal's "
                "directory is writable"
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            log.info("intent log %s is owned by another journal; intents go straight to SQLite", path)
            return None
        if created:  # a new file's name is on the disk once its directory is synced, not its own data
            _sync_directory(path.parent)
        return fd

    @staticmethod
    def unrecorded(journal_path: Path, recorded: Callable[[str], bool], identity: str | None) -> int:
        """How many intents the log of the journal at ``journal_path`` (``meta.journal_id`` ``identity``)
        holds that ``recorded`` (is this ``order_ref`` in SQLite?) says SQLite lacks — read without owning
        the log (a read-only journal). None of another journal's log (:mod:`.log_identity`)."""
        try:
            data = intent_log_path(journal_path).read_bytes()
        except OSError:
            return 0
        owner, data = split_identity(data)
        if owner is not None and owner != identity:
            return 0  # the next writable open moves it aside, and says so
        count = 0
        for line in data.split(b"\n")[:-1]:
            try:
                ref = json.loads(line)[0]
            except (ValueError, IndexError, TypeError, KeyError):
                continue  # the owner's open reports damage; a reader only counts
            count += isinstance(ref, str) and not recorded(ref)
        return count

    # ------------------------------------------------------------------ the engine's side
    def append(self, rows: Sequence[IntentRow]) -> None:
        """Put ``rows`` on the disk (one write, one ``fdatasync``) and keep them pending for SQLite."""
        data = b"".join(json.dumps(row, separators=(",", ":")).encode() + b"\n" for row in rows)
        with self._lock:
            if self._fd < 0:
                raise JournalError(
                    f"the intent log {self.path} is closed (or belongs to the process this one was forked "
                    "from); open a new TradeJournal"
                )
            costs = self._reserve(len(rows), len(data)) if self._room is not None else ()
            start = self._size
            try:
                if self._broken:
                    raise OSError(errno.EIO, "an earlier write failed and could not be undone")
                _write_all(self._fd, data)
                _datasync(self._fd)
                self._size = start + len(data)
                self._pending.extend(rows)  # the last step: once it is done, nothing is taken back
                self._costs.extend(costs)
            except OSError as exc:
                self._undo(start)
                raise JournalError(
                    f"could not write the intent log {self.path}: {exc.strerror or exc} — {_hint(exc)}; "
                    "trading must stay halted until it can be written"
                ) from exc
            except BaseException:  # an interrupt (KeyboardInterrupt): no ref returned, nothing sent
                self._undo(start)
                raise

    def _reserve(self, count: int, size: int) -> list[int]:  # under _lock
        """What ``count`` intents of ``size`` bytes (as logged) may take in SQLite, per intent; raises
        :class:`JournalFullError` when that is more than the cap leaves them, before anything is written."""
        each = INTENT_PAGES + -(-2 * size // (max(count, 1) * self._page_size))
        room = self._room
        if room is not None and sum(self._costs) + each * count > room:
            raise JournalFullError(
                f"journal {self._cap}: no room left for the intent of {count} more order(s), so none was "
                "sent; trading must stay halted — raise max_bytes (or move the journal aside to start a new "
                "one) and restart"
            )
        return [each] * count

    # ------------------------------------------------------------------ the storage's side
    def limit(self, room: int, page_size: int, journal: Path, max_bytes: int) -> None:
        """From now on, refuse (:class:`JournalFullError`) an intent SQLite might not take under the
        ``max_bytes`` cap of the journal at ``journal``, before it is written: ``room`` pages of
        ``page_size`` bytes are left for intents (the storage keeps a reserve besides, for what follows
        them); :meth:`applied` tells the room after each transaction."""
        with self._lock:
            self._room, self._page_size = room, page_size
            self._cap = f"{journal} is full under its max_bytes cap ({max_bytes} bytes)"

    @property
    def has_pending(self) -> bool:
        """Whether rows wait for SQLite (a lock-free peek: a row appended meanwhile is taken next time)."""
        return bool(self._pending)

    def pending(self) -> list[IntentRow]:
        """The rows on the disk that SQLite does not hold yet (a copy; oldest first)."""
        with self._lock:
            return list(self._pending)

    def applied(self, count: int, commit: int, room: int | None = None) -> None:
        """The oldest ``count`` pending rows were committed to SQLite, as its ``commit``-th transaction,
        which left ``room`` pages for intents under the cap (None: no cap) — in one step, so that an append
        meanwhile counts either both or neither."""
        with self._lock:
            if count:
                del self._pending[:count]
                del self._costs[:count]
                self._applied_at = commit
            if room is not None:
                self._room = room

    def synced(self, synced_commits: int) -> None:
        """SQLite's first ``synced_commits`` transactions are on the disk: cut the log if all it holds is
        in them and it has grown past a few hundred kilobytes."""
        with self._lock:
            if self._pending or self._applied_at > synced_commits or self._size < _CUT_BYTES:
                return
            self._cut()

    def _undo(self, size: int) -> None:  # under _lock
        """Take back what a failed append may have written (the file was ``size`` bytes before it), so that
        the next line starts clean (a torn line before a good one would read as damage) and the log's size
        stays the file's; if even that fails, refuse every later append."""
        try:
            os.ftruncate(self._fd, size)
        except OSError:
            self._broken = True
            return
        self._size = size

    def _cut(self) -> None:  # under _lock
        """Drop every intent line, keeping the identity line (the file starts with it: :meth:`recover`)."""
        try:
            os.ftruncate(self._fd, len(self._header))
        except OSError as exc:  # harmless: the rows are in SQLite too, and recovery skips them
            log.warning("could not cut the intent log %s: %s", self.path, exc.strerror or exc)
            return
        self._size = len(self._header)

    # ------------------------------------------------------------------ opening and closing
    def recover(self, insert: Callable[[Sequence[IntentRow]], int]) -> int:
        """Hand every row of the log to ``insert`` (which commits them to SQLite, synced, skipping those it
        already has, and returns how many it added), then cut the log down to its identity line; returns
        that count. A log that names another journal is moved aside instead (:mod:`.log_identity`). Run
        once, at open, before anything is appended."""
        with self._lock:
            data = self._read()
        owner, body = split_identity(data)
        if owner is not None and owner != self._identity:
            with self._lock:
                self._set_aside(owner)
            data = body = b""
        elif owner is None and data.strip(b"\0"):
            log.warning(
                "intent log %s names no journal (an older copilot_quant wrote it): its intents are taken as "
                "those of journal %s, as before",
                self.path,
                self._journal,
            )
        rows = self._parse(body, first=1 if body is data else 2)
        added = insert(rows) if rows else 0  # a synced commit: its rows are on the disk in SQLite
        with self._lock:
            if data != self._header:
                self._restart()
        return added

    def _read(self) -> bytes:  # under _lock
        try:
            os.lseek(self._fd, 0, os.SEEK_SET)
            with os.fdopen(os.dup(self._fd), "rb") as file:
                return file.read()
        except OSError as exc:
            raise JournalError(
                f"could not read the intent log {self.path}: {exc.strerror or exc} — check the disk"
            ) from exc

    def _restart(self) -> None:  # under _lock
        """Empty the log but for its identity line, on the disk before any intent follows it."""
        try:
            os.ftruncate(self._fd, 0)
            _write_all(self._fd, self._header)
            _datasync(self._fd)
        except OSError as exc:
            raise JournalError(
                f"could not write the intent log {self.path}: {exc.strerror or exc} — {_hint(exc)}"
            ) from exc
        self._size = len(self._header)

    def _set_aside(self, owner: str) -> None:  # under _lock
        """The log names journal ``owner``: move it aside (it keeps that journal's intents for it) and own
        a new, empty log in its place."""
        aside = aside_path(self.path, owner)
        try:
            os.rename(self.path, aside)
        except OSError as exc:
            raise JournalError(
                f"intent log {self.path} belongs to another journal (journal_id {owner}) and could not be "
                f"moved aside: {exc.strerror or exc} — move it away by hand (keep it: it holds that "
                "journal's last intents) and restart"
            ) from exc
        fd = self._open_locked(self.path)
        if fd is None:
            raise JournalError(
                f"another journal took the intent log {self.path} while this one moved a foreign log aside; "
                "is a second engine starting on this account?"
            )
        self._release.detach()
        os.close(self._fd)  # the moved log's lock goes with it
        self._fd = fd
        self._release = weakref.finalize(self, _close_quietly, fd)
        self._release.atexit = False
        _sync_directory(self.path.parent)  # the rename, on the disk
        log.warning("%s", foreign_log_warning(self.path, owner, self._journal, self._identity, aside))

    def _parse(self, data: bytes, first: int = 1) -> list[IntentRow]:
        """The rows of ``data``, the log's lines from line ``first`` on (the identity line aside)."""
        lines = data.split(b"\n")
        fragment = lines.pop()  # what follows the last newline: nothing, unless a crash cut a write short
        if _drop_zeroed_tail(lines) or b"\0" in fragment:
            log.warning(
                "intent log %s: its last %d byte(s) hold zeros, as a power loss leaves an append that was "
                "never synced; its order(s) were never sent and are dropped",
                self.path,
                len(data) - sum(len(line) + 1 for line in lines),
            )
        elif fragment:
            log.warning(
                "intent log %s: its last line was cut short by a crash; that order was never sent and is "
                "dropped",
                self.path,
            )
        rows = []
        for number, line in enumerate(lines, start=first):
            try:
                row = json.loads(line)
            except ValueError:
                row = None
            if not isinstance(row, list) or not row or not isinstance(row[0], str):
                raise JournalError(
                    f"intent log {self.path} is damaged at line {number}; move it aside (keep it for "
                    "inspection: it holds orders that may have been sent) and restart"
                )
            rows.append(tuple(row))
        return rows

    def close(self, in_sqlite: bool) -> None:
        """Close the log, cut first when ``in_sqlite`` (every row is in SQLite and on the disk). Releases
        the lock. Idempotent."""
        with self._lock:
            if self._fd < 0:
                return
            if in_sqlite and not self._pending:
                self._cut()
            self._release.detach()
            os.close(self._fd)
            self._fd = -1
            _OWNED.discard(self)

    def _disown(self) -> None:
        """In a forked child: close this copy of the parent's log (the parent keeps its lock and its rows).
        Without ``_lock``: a thread of the parent may have held it at the fork, and it is not in the child."""
        self._lock = threading.Lock()
        self._pending = []
        self._costs = []
        if self._fd >= 0:
            self._release.detach()
            _close_quietly(self._fd)
            self._fd = -1

    def __repr__(self) -> str:
        return f"IntentLog({str(self.path)!r}, pending={len(self._pending)}, bytes={self._size})"


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_disown_in_child)
