"""A sliding-window order-rate limiter: never more than ``max_orders`` in any window of ``window``."""

from __future__ import annotations

import bisect
import threading
from datetime import datetime, timedelta

from copilot_quant.errors import ConfigError

__all__ = ["OrderRateLimiter"]


class OrderRateLimiter:
    """Counts recorded submissions in a sliding window.

    Guarantee (hypothesis-tested): if :meth:`record` is only called after :meth:`allows` said yes at the
    same time, no half-open interval ``[t, t + window)`` ever holds more than ``max_orders`` records —
    even when the clock steps back by less than one window (a record counts against every time less than
    ``window`` before it, including earlier ones). Thread-safe.
    """

    __slots__ = ("_lock", "_times", "max_orders", "window")

    def __init__(self, max_orders: int, window: timedelta = timedelta(seconds=60)) -> None:
        if isinstance(max_orders, bool) or not isinstance(max_orders, int) or max_orders < 1:
            raise ConfigError(f"max_orders must be a whole number >= 1, got {max_orders!r}")
        if window <= timedelta(0):
            raise ConfigError(f"window must be a positive duration, got {window!r}")
        self.max_orders = max_orders
        self.window = window
        self._times: list[datetime] = []  # sorted
        self._lock = threading.Lock()

    def count(self, now: datetime) -> int:
        """Records that still count at ``now``: those later than ``now - window``."""
        with self._lock:
            self._prune(now)
            return len(self._times) - bisect.bisect_right(self._times, now - self.window)

    def allows(self, now: datetime) -> bool:
        return self.count(now) < self.max_orders

    def next_allowed_at(self, now: datetime) -> datetime:
        """The earliest time (>= ``now``) at which :meth:`allows` will say yes, given no further records."""
        with self._lock:
            self._prune(now)
            start = bisect.bisect_right(self._times, now - self.window)
            active = self._times[start:]
            if len(active) < self.max_orders:
                return now
            return active[len(active) - self.max_orders] + self.window

    def record(self, now: datetime) -> None:
        with self._lock:
            bisect.insort(self._times, now)
            self._prune(now)

    def _prune(self, now: datetime) -> None:
        # Keep one extra window of history so that a clock stepping back a little still sees recent records.
        cut = bisect.bisect_right(self._times, now - 2 * self.window)
        if cut:
            del self._times[:cut]
