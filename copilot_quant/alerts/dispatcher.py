"""Alert delivery on a background thread: ``notify`` only queues (never blocks the caller, an engine thread);
the ``copilot-quant-alerts`` thread sends to each channel, retrying with a doubling backoff."""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from copilot_quant.alerts.channels import AlertChannel
from copilot_quant.alerts.model import Alert
from copilot_quant.alerts.throttle import Throttle

__all__ = ["AlertDispatcher", "Delivery"]

log = logging.getLogger(__name__)

_QUEUE_SIZE = 1000
_STOP = object()


@dataclass(frozen=True, slots=True)
class Delivery:
    """What happened to one alert on one channel (kept in :attr:`AlertDispatcher.deliveries`)."""

    alert: Alert
    channel: str
    ok: bool
    attempts: int
    error: str = ""


class AlertDispatcher:
    def __init__(
        self,
        channels: Sequence[AlertChannel],
        throttle: Throttle | None = None,
        *,
        retries: int = 3,
        backoff_s: float = 1.0,
        on_result: Callable[[Delivery], None] | None = None,
    ) -> None:
        self.channels = list(channels)
        self.on_result = on_result
        self.throttle = throttle or Throttle()
        self.retries = int(retries)
        self.backoff_s = float(backoff_s)
        #: The last 1,000 deliveries, oldest first.
        self.deliveries: deque[Delivery] = deque(maxlen=1000)
        self.dropped = 0
        self._queue: queue.Queue[object] = queue.Queue(_QUEUE_SIZE)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="copilot-quant-alerts", daemon=True)
        self._thread.start()

    def notify(self, alert: Alert) -> bool:
        """Queue ``alert`` unless throttled (or the queue is full); returns whether it was queued."""
        log.warning("alert %s: %s", alert.kind, alert.text)
        if not self.channels or not self.throttle.allow(alert):
            return False
        try:
            self._queue.put_nowait(alert)
        except queue.Full:
            self.dropped += 1
            log.error("alert queue full; dropped: %s", alert.title)
            return False
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Deliver what is queued (up to ``timeout`` s), then end the thread."""
        with contextlib.suppress(queue.Full):  # full and stuck: the join below gives up in time
            self._queue.put(_STOP, timeout=timeout)
        self._thread.join(timeout)
        self._stopping.set()  # a retry still waiting gives up now
        self._thread.join(1.0)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            assert isinstance(item, Alert)
            for channel in self.channels:
                delivery = self._deliver(channel, item)
                self.deliveries.append(delivery)
                if self.on_result is not None:
                    try:
                        self.on_result(delivery)
                    except Exception:  # a failing report must not stop the deliveries
                        log.exception("alert delivery report failed")

    def _deliver(self, channel: AlertChannel, alert: Alert) -> Delivery:
        error = ""
        for attempt in range(1, self.retries + 2):
            try:
                channel.send(alert)
                return Delivery(alert, channel.name, True, attempt)
            except Exception as exc:  # any failure of a channel is retried, then logged: never raised
                error = f"{type(exc).__name__}: {exc}"
                log.warning("alert via %s failed (attempt %d): %s", channel.name, attempt, error)
            if attempt <= self.retries and self._stopping.wait(self.backoff_s * 2 ** (attempt - 1)):
                break
        log.error("alert via %s not delivered: %s (%s)", channel.name, alert.title, error)
        return Delivery(alert, channel.name, False, attempt, error)
