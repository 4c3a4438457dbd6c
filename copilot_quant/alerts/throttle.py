"""De-duplication and rate limiting of alerts: a flapping connection must not send a hundred e-mails."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from copilot_quant.alerts.model import Alert
from copilot_quant.errors import ConfigError

__all__ = ["Throttle"]


class Throttle:
    """``allow(alert)``: False for a repeat within ``dedupe_s`` of the same key, or beyond ``max_per_minute``
    alerts in the last 60 s. Refused alerts are counted in :attr:`suppressed`. Thread-safe."""

    def __init__(
        self, dedupe_s: float = 300.0, max_per_minute: int = 20, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if dedupe_s < 0 or max_per_minute < 1:
            raise ConfigError(
                f"alert throttle: dedupe_s must be >= 0 and max_per_minute >= 1, got {dedupe_s}, {max_per_minute}"
            )
        self.dedupe_s = float(dedupe_s)
        self.max_per_minute = int(max_per_minute)
        self._clock = clock
        self._last: dict[str, float] = {}
        self._sent: deque[float] = deque()
        self._lock = threading.Lock()
        self.suppressed = 0

    def allow(self, alert: Alert) -> bool:
        now = self._clock()
        with self._lock:
            key = alert.dedupe_key
            last = self._last.get(key)
            while self._sent and now - self._sent[0] >= 60.0:
                self._sent.popleft()
            if (last is not None and now - last < self.dedupe_s) or len(self._sent) >= self.max_per_minute:
                self.suppressed += 1
                return False
            self._last[key] = now
            self._sent.append(now)
            if len(self._last) > 10_000:  # old keys only matter within dedupe_s
                self._last = {k: t for k, t in self._last.items() if now - t < self.dedupe_s}
            return True
