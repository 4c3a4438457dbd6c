"""The live engine's named events, its bounded error and event records, and how both are reported.

Subscribers use eventkit (ib_async's event library): ``engine.on.event += handler`` gets ``(kind, detail)``
for every engine event (start, reconcile, alert, halt, resume, kill_switch, stop …); ``engine.on.error +=
handler`` gets ``(kind, message)`` for every error the engine records. Handlers run on the thread that
raised the event (possibly IB's loop thread): keep them short. A handler that raises is logged by eventkit,
never stops the engine.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from eventkit import Event

from copilot_quant.errors import JournalError
from copilot_quant.journal import EventKind, TradeJournal

__all__ = ["EngineEvents", "ErrorLog", "EventLog", "RecentList"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")


class RecentList(list[_T]):
    """A list that keeps only its last ``maxlen`` items: appending beyond that drops the oldest.

    :attr:`LiveStrategyEngine.errors` and :attr:`LiveStrategyEngine.events` are ``RecentList`` objects, so
    ``engine.errors[-5:]``, ``len(engine.errors)`` and iteration work as on any list, and iterating while the
    engine appends from another thread never fails. Appends are thread-safe.
    """

    __slots__ = ("_lock", "maxlen")

    def __init__(self, maxlen: int = 1000) -> None:
        super().__init__()
        self.maxlen = max(1, int(maxlen))
        self._lock = threading.Lock()

    def append(self, item: _T) -> None:
        with self._lock:
            super().append(item)
            excess = len(self) - self.maxlen
            if excess > 0:
                del self[:excess]

    def __reduce__(self) -> tuple[Any, ...]:
        # copy, deepcopy and pickle rebuild it from its items (its lock is not copyable, nor needs to be).
        return (type(self), (self.maxlen,), None, iter(list(self)))


class EngineEvents:
    """The engine's named events (eventkit): ``event(kind, detail)`` and ``error(kind, message)``."""

    __slots__ = ("error", "event")

    def __init__(self) -> None:
        self.event = Event("event")
        self.error = Event("error")


class ErrorLog:
    """The engine's errors: the last ``max_errors`` kept, all counted, each logged and emitted once.

    Strategy exceptions are logged with their traceback while ``max_logged_errors`` allows (``None``: all);
    later ones at DEBUG without one, so a strategy that raises on every bar does not flood the log.
    """

    def __init__(self, events: EngineEvents, max_errors: int, max_logged_errors: int | None) -> None:
        self.entries: RecentList[dict[str, Any]] = RecentList(max_errors)
        self.total = 0
        self.max_logged_errors = max_logged_errors
        self._strategy_errors = 0
        #: Strategy errors by strategy name.
        self.by_strategy: Counter[str] = Counter()
        self._events = events
        self._lock = threading.Lock()

    def record(self, message: str, kind: str, *, quiet: bool = False, strategy: str | None = None) -> None:
        """Keep one error; a strategy's own errors carry its name under ``'strategy'`` (as in a backtest)."""
        entry: dict[str, Any] = {"timestamp": datetime.now(UTC), "error": message, "type": kind}
        if strategy is not None:
            entry["strategy"] = strategy
        with self._lock:
            self.entries.append(entry)
            self.total += 1
        log.log(logging.DEBUG if quiet else logging.ERROR, "%s error: %s", kind, message)
        self._events.error.emit(kind, message)

    def strategy_failed(self, name: str, exc: BaseException, message: str, where: str) -> None:
        """Count and keep a strategy exception; its traceback is logged while ``max_logged_errors`` allows."""
        limit = self.max_logged_errors
        self._strategy_errors += 1
        self.by_strategy[name] += 1
        loud = limit is None or self._strategy_errors <= limit
        self.record(message, "strategy", quiet=not loud, strategy=name)
        if loud:
            log.error("strategy %s failed %s", name, where, exc_info=exc)
        else:
            log.debug("strategy %s failed %s: %s", name, where, message)


class EventLog:
    """Engine events: kept in :attr:`entries`, logged, journaled and emitted as ``events.event``.

    ``journal`` returns the open journal (or None); ``on_journal_failure`` is told when journaling an
    event failed (trading then halts), except for the halt event itself, which must not recurse.
    """

    def __init__(
        self,
        events: EngineEvents,
        journal: Callable[[], TradeJournal | None],
        on_journal_failure: Callable[[JournalError], None],
    ) -> None:
        self.entries: RecentList[dict[str, Any]] = RecentList(1000)
        self._events = events
        self._journal = journal
        self._on_journal_failure = on_journal_failure

    def emit(
        self, kind: EventKind | str, detail: str, *, level: int = logging.INFO, journaled: bool = True
    ) -> None:
        """Keep, log, journal (unless ``journaled=False``: the caller journals it) and emit one event."""
        text = str(kind)
        self.entries.append({"timestamp": datetime.now(UTC), "kind": text, "detail": detail})
        log.log(level, "engine event %s: %s", text, detail)
        journal = self._journal()
        if journaled and journal is not None and not journal.closed:
            try:
                journal.record_event(kind, detail)
            except JournalError as exc:
                if text != EventKind.HALT:
                    self._on_journal_failure(exc)
        self._events.event.emit(text, detail)
