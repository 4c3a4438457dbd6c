"""A client-side limiter for IB's historical-data pacing rules, so a big lookback never trips error 162.

IB's rules (tws-protocol-notes §12): no identical request within 15 s; fewer than 6 requests for the same
contract within 2 s; at most 60 requests in any 10-minute window. :meth:`HistoricalPacer.reserve` returns
how long to wait before a request may go out and books it for that moment; the caller sleeps (on the
IB loop: ``await asyncio.sleep``). If IB still answers 162 "pacing violation", the adapter retries after
:attr:`HistoricalPacer.violation_backoff` seconds.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

__all__ = ["HistoricalPacer", "PacingRules"]


@dataclass(frozen=True, slots=True)
class PacingRules:
    identical_window: float = 15.0
    per_contract_window: float = 2.0
    per_contract_max: int = 5
    global_window: float = 600.0
    global_max: int = 60


@dataclass(slots=True)
class HistoricalPacer:
    """Books historical requests so that none of :class:`PacingRules` is broken. Thread-safe."""

    rules: PacingRules = field(default_factory=PacingRules)
    clock: Callable[[], float] = time.monotonic
    violation_backoff: float = 2.0
    _sent: deque[tuple[float, Hashable, Hashable]] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reserve(self, contract: Hashable, request: Hashable) -> float:
        """Seconds to wait before sending ``request`` for ``contract``; the slot is booked at that time."""
        with self._lock:
            now = self.clock()
            r = self.rules
            horizon = max(r.identical_window, r.per_contract_window, r.global_window)
            while self._sent and self._sent[0][0] < now - horizon:
                self._sent.popleft()
            at = now
            same = [t for t, _, q in self._sent if q == request]
            if same:
                at = max(at, max(same) + r.identical_window)
            mine = sorted(t for t, c, _ in self._sent if c == contract)
            if len(mine) >= r.per_contract_max:
                at = max(at, mine[-r.per_contract_max] + r.per_contract_window)
            everything = sorted(t for t, _, _ in self._sent)
            if len(everything) >= r.global_max:
                at = max(at, everything[-r.global_max] + r.global_window)
            self._sent.append((at, contract, request))
            return at - now
