"""The liveness guard: halt trading when the engine is blind (connection down or market data stale).

The engine feeds it connection changes and the arrival time of market data, and asks :meth:`check`
before each order and on a timer. A short outage is tolerated (IB's own farm hiccups last seconds); a
connection down longer than ``max_disconnect_s``, or no data for ``max_stale_data_s`` while data is
expected, returns a reason — the engine then refuses orders, emits an alert and logs at ERROR. The guard
recovers by itself: once connected and data flows again, :meth:`check` returns None.
"""

from __future__ import annotations

import math
import threading
from datetime import datetime

from copilot_quant.errors import ConfigError

__all__ = ["LivenessGuard"]


def _check_seconds(value: float | None, what: str) -> float | None:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigError(f"{what} must be a positive number of seconds (or None to disable), got {value!r}")
    return float(value)


def _aware(now: datetime) -> datetime:
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise ConfigError(f"liveness times must be tz-aware datetimes, got {now!r}")
    return now


class LivenessGuard:
    """Decides whether the engine can see the market well enough to trade. Thread-safe.

    Feed: :meth:`on_connected`, :meth:`on_disconnected`, :meth:`on_data`. Ask: :meth:`check`. Until the
    first :meth:`on_connected` the guard reports "not connected". Staleness is measured from the later of
    the last data and the (re)connection time, so a fresh connection gets a full ``max_stale_data_s``
    grace period to resubscribe. Pass ``expect_data=False`` to :meth:`check` outside trading hours, when
    silence is normal. Either threshold may be None to disable that rule.
    """

    __slots__ = (
        "_connected_since",
        "_down_since",
        "_last_data",
        "_lock",
        "max_disconnect_s",
        "max_stale_data_s",
    )

    def __init__(self, max_disconnect_s: float | None = 30.0, max_stale_data_s: float | None = 120.0) -> None:
        self.max_disconnect_s = _check_seconds(max_disconnect_s, "max_disconnect_s")
        self.max_stale_data_s = _check_seconds(max_stale_data_s, "max_stale_data_s")
        self._lock = threading.Lock()
        self._connected_since: datetime | None = None
        self._down_since: datetime | None = None
        self._last_data: datetime | None = None

    @property
    def is_connected(self) -> bool:
        return self._connected_since is not None

    def on_connected(self, now: datetime) -> None:
        with self._lock:
            if self._connected_since is None:
                self._connected_since = _aware(now)
            self._down_since = None

    def on_disconnected(self, now: datetime) -> None:
        with self._lock:
            if self._down_since is None:  # the outage started at the first report, not the latest
                self._down_since = _aware(now)
            self._connected_since = None

    def on_data(self, now: datetime) -> None:
        """Market data (a tick or a bar) arrived at ``now``."""
        with self._lock:
            _aware(now)
            if self._last_data is None or now > self._last_data:
                self._last_data = now

    def check(self, now: datetime, *, expect_data: bool = True) -> str | None:
        """None when trading may go on, else the reason to halt (say it in the alert and the log)."""
        _aware(now)
        with self._lock:
            connected_since, down_since, last_data = self._connected_since, self._down_since, self._last_data
        if connected_since is None:
            if down_since is None:
                return "not connected to IB yet; trading starts once the connection is up"
            down = (now - down_since).total_seconds()
            if self.max_disconnect_s is not None and down > self.max_disconnect_s:
                return (
                    f"connection to IB down for {down:.0f}s (limit {self.max_disconnect_s:g}s); "
                    "trading halted until it is back"
                )
            return None
        if not expect_data or self.max_stale_data_s is None:
            return None
        reference = connected_since if last_data is None else max(last_data, connected_since)
        silent = (now - reference).total_seconds()
        if silent > self.max_stale_data_s:
            since = "since connecting" if last_data is None or last_data < connected_since else "in a row"
            return (
                f"no market data for {silent:.0f}s {since} (limit {self.max_stale_data_s:g}s); "
                "trading halted rather than trading blind — check the data subscriptions and IB's farms"
            )
        return None
