"""Historical-data pacing as real TWS enforces it (error 162 "Historical data request pacing violation").

A request violates pacing when any of these holds (IB's published rules, see the protocol notes §12):

* an identical request (same contract, end, bar size, duration, whatToShow, useRTH) within 15 s;
* 6 or more requests for the same contract and whatToShow within 2 s;
* more than 60 requests in any 10-minute window.

Switched off by default (fast tests); the gateway's ``pacing=True`` turns it on. Times are monotonic seconds
so tests can feed their own.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass

__all__ = ["HistoricalPacer", "PacingRules"]


@dataclass(frozen=True, slots=True)
class PacingRules:
    identical_window: float = 15.0
    burst_count: int = 6
    burst_window: float = 2.0
    max_requests: int = 60
    long_window: float = 600.0


class HistoricalPacer:
    """Decides whether a historical request may run; :meth:`check` records it when it may."""

    def __init__(
        self,
        enabled: bool = False,
        rules: PacingRules | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.enabled = enabled
        self.rules = rules or PacingRules()
        self._clock = clock
        self._identical: dict[Hashable, float] = {}
        self._per_contract: dict[Hashable, deque[float]] = {}
        self._all: deque[float] = deque()
        #: Requests refused for pacing so far (tests and benchmarks check that a client never trips it).
        self.violations = 0

    def check(self, identity: Hashable, contract_key: Hashable) -> str | None:
        """None if the request may run (and it is recorded), else the reason it violates pacing."""
        if not self.enabled:
            return None
        reason = self._violation(identity, contract_key)
        if reason is not None:
            self.violations += 1
        return reason

    def _violation(self, identity: Hashable, contract_key: Hashable) -> str | None:
        now = self._clock()
        rules = self.rules
        last = self._identical.get(identity)
        if last is not None and now - last < rules.identical_window:
            return f"identical request within {rules.identical_window:.0f} seconds"
        recent = self._per_contract.setdefault(contract_key, deque())
        while recent and now - recent[0] >= rules.burst_window:
            recent.popleft()
        if len(recent) + 1 >= rules.burst_count:
            return f"{rules.burst_count} or more requests for the same contract within {rules.burst_window:.0f} seconds"
        while self._all and now - self._all[0] >= rules.long_window:
            self._all.popleft()
        if len(self._all) >= rules.max_requests:
            return f"more than {rules.max_requests} requests within {rules.long_window / 60:.0f} minutes"
        self._identical[identity] = now
        recent.append(now)
        self._all.append(now)
        return None

    def reset(self) -> None:
        self._identical.clear()
        self._per_contract.clear()
        self._all.clear()
