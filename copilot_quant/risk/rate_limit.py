"""A sliding-window order-rate limiter: never more than ``max_orders`` in any window of ``window``.

Two ways to use it:

* ``allows(now)`` then ``record(now)`` — simple, but not atomic: two threads can both be allowed the
  last slot. Fine for one thread.
* ``reserve(now, key)`` — atomic check-and-hold of one slot; then ``confirm(now, key)`` once the order
  was sent (the hold becomes a record at ``now``), or ``release(key)`` if it was not. This is what
  :class:`~copilot_quant.risk.RiskManager` does.

A held slot (a *reservation*) counts against every check while it is held, whatever the time — the order
may go out at any moment — and is dropped by itself after ``reservation_timeout`` (default: one window)
so that a caller that neither confirms nor releases cannot block the limiter for ever.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime, timedelta

from copilot_quant.errors import ConfigError

__all__ = ["OrderRateLimiter"]


@dataclass(frozen=True, slots=True)
class _Reservation:
    time: datetime
    owner: object


class OrderRateLimiter:
    """Counts recorded submissions (and held reservations) in a sliding window.

    Guarantee (hypothesis-tested): if :meth:`record` is only called after :meth:`allows` said yes at the
    same time, no half-open interval ``[t, t + window)`` ever holds more than ``max_orders`` records —
    even when the clock steps back by less than one window (a record counts against every time less than
    ``window`` before it, including earlier ones). With :meth:`reserve` / :meth:`confirm` the same holds
    for the confirmed records under any interleaving of threads, as long as a reservation is confirmed
    within ``reservation_timeout``. Thread-safe.
    """

    __slots__ = ("_lock", "_pending", "_times", "max_orders", "reservation_timeout", "window")

    def __init__(
        self,
        max_orders: int,
        window: timedelta = timedelta(seconds=60),
        *,
        reservation_timeout: timedelta | None = None,
    ) -> None:
        if isinstance(max_orders, bool) or not isinstance(max_orders, int) or max_orders < 1:
            raise ConfigError(f"max_orders must be a whole number >= 1, got {max_orders!r}")
        if window <= timedelta(0):
            raise ConfigError(f"window must be a positive duration, got {window!r}")
        timeout = window if reservation_timeout is None else reservation_timeout
        if timeout <= timedelta(0):
            raise ConfigError(f"reservation_timeout must be a positive duration, got {timeout!r}")
        self.max_orders = max_orders
        self.window = window
        self.reservation_timeout = timeout
        self._times: list[datetime] = []  # sorted
        self._pending: dict[Hashable, _Reservation] = {}  # insertion order: oldest first
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ queries
    def count(self, now: datetime, *, exclude: Hashable | None = None) -> int:
        """Records that still count at ``now`` (those later than ``now - window``) plus held reservations.

        ``exclude``: leave out the reservation held under this key (a re-check of the same order).
        """
        with self._lock:
            return self._count(now, exclude)

    def allows(self, now: datetime, *, exclude: Hashable | None = None) -> bool:
        return self.count(now, exclude=exclude) < self.max_orders

    @property
    def pending(self) -> int:
        """How many reservations are held (neither confirmed, released nor timed out yet)."""
        with self._lock:
            return len(self._pending)

    def next_allowed_at(self, now: datetime) -> datetime:
        """The earliest time (>= ``now``) at which :meth:`allows` will say yes, given no further records
        (a held reservation is assumed to run until its timeout)."""
        with self._lock:
            self._prune(now)
            self._expire(now)
            start = bisect.bisect_right(self._times, now - self.window)
            ends = [t + self.window for t in self._times[start:]]
            ends += [max(now, r.time + self.reservation_timeout) for r in self._pending.values()]
            if len(ends) < self.max_orders:
                return now
            ends.sort()
            return max(now, ends[len(ends) - self.max_orders])

    # ------------------------------------------------------------------ updates
    def record(self, now: datetime) -> None:
        """Count one submission at ``now`` (no reservation involved)."""
        with self._lock:
            bisect.insort(self._times, now)
            self._prune(now)

    def reserve(self, now: datetime, key: Hashable, owner: object = None) -> bool:
        """Atomically: if a slot is free at ``now``, hold it under ``key`` and return True; else False.

        A key that already holds a reservation keeps it (True, not counted twice). ``owner`` is kept with
        the reservation for :meth:`release_where` (e.g. the order, to release it once it is rejected).
        """
        with self._lock:
            if key in self._pending:
                return True
            if self._count(now, None) >= self.max_orders:
                return False
            self._pending[key] = _Reservation(now, owner)
            return True

    def confirm(self, now: datetime, key: Hashable | None = None) -> None:
        """The order was sent: turn its reservation into a record at ``now``.

        Without a reservation under ``key`` (none was made, it was released or it timed out) the oldest
        held reservation is taken over if there is one — the count stays right for callers that check one
        object and record another — else it is a plain :meth:`record`.
        """
        with self._lock:
            self._expire(now)
            if key is not None and key in self._pending:
                del self._pending[key]
            elif self._pending:
                del self._pending[next(iter(self._pending))]
            bisect.insort(self._times, now)
            self._prune(now)

    def release(self, key: Hashable) -> bool:
        """The reserved order was not sent: free its slot. False if ``key`` held no reservation."""
        with self._lock:
            return self._pending.pop(key, None) is not None

    def release_where(self, predicate: Callable[[object], bool]) -> int:
        """Release every reservation whose ``owner`` satisfies ``predicate``; returns how many."""
        with self._lock:
            gone = [key for key, r in self._pending.items() if predicate(r.owner)]
            for key in gone:
                del self._pending[key]
            return len(gone)

    # ------------------------------------------------------------------ internals (lock held)
    def _count(self, now: datetime, exclude: Hashable | None) -> int:
        self._prune(now)
        self._expire(now)
        recorded = len(self._times) - bisect.bisect_right(self._times, now - self.window)
        held = len(self._pending) - (1 if exclude is not None and exclude in self._pending else 0)
        return recorded + held

    def _expire(self, now: datetime) -> None:
        if not self._pending:
            return
        cut = now - self.reservation_timeout
        stale = [key for key, r in self._pending.items() if r.time <= cut]
        for key in stale:
            del self._pending[key]

    def _prune(self, now: datetime) -> None:
        # Keep one extra window of history so that a clock stepping back a little still sees recent records.
        cut = bisect.bisect_right(self._times, now - 2 * self.window)
        if cut:
            del self._times[:cut]
