"""What the console watches: the engine's named events (pushed at once) and a sampler that notices the rest.

:class:`EngineWatch` subscribes to ``engine.on.event``/``engine.on.error``, to the connection's state changes
and to fills, and publishes each on the :class:`~copilot_quant.console.hub.EventHub` from the thread that
raised it (cheap: a hand-over to the server's loop). A sampler thread (``copilot-quant-console``) reads the
engine's account and strategy books once a second (no request to IB), keeps each strategy's P&L
curve, and publishes ``changed`` when the journal or the engine's state moved. :class:`JournalWatch` is the
sampler alone, for the read-only console over a journal another process may still be writing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from copilot_quant.console.hub import EventHub
from copilot_quant.console.reader import JournalReader
from copilot_quant.live.summary import strategy_summaries

if TYPE_CHECKING:
    from copilot_quant.brokers.reconnect import ConnectionState
    from copilot_quant.live.engine import LiveStrategyEngine
    from copilot_quant.model.orders import Fill

__all__ = ["ConnectionChange", "EngineWatch", "JournalWatch"]

log = logging.getLogger(__name__)

_CURVE_POINTS = 5000
_HISTORY = 200
_SUMMARY_S = 1.0


@dataclass(frozen=True, slots=True)
class ConnectionChange:
    time: datetime
    old: str
    new: str
    reason: str


class JournalWatch:
    """Publishes ``changed`` whenever the journal gains rows (polled every ``interval`` seconds)."""

    def __init__(self, reader: JournalReader, hub: EventHub, interval: float = 0.5) -> None:
        self.reader = reader
        self.hub = hub
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last: object = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="copilot-quant-console", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def fingerprint(self) -> object:
        try:
            return self.reader.max_ids()
        except Exception as exc:  # the file may be mid-checkpoint or gone: try again next round
            log.debug("console: journal not readable now: %s", exc)
            return self._last

    def sample(self) -> None:
        """One round; overridden by :class:`EngineWatch` to also keep the curves."""

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sample()
                now = self.fingerprint()
            except Exception:  # never let the console's sampler die silently
                log.exception("console sampler failed")
                continue
            if now != self._last:
                self._last = now
                self.hub.publish("changed", reason="state")


class EngineWatch(JournalWatch):
    """The running engine's state for the console (see the module docstring)."""

    def __init__(
        self, engine: LiveStrategyEngine, reader: JournalReader, hub: EventHub, interval: float = 0.5
    ) -> None:
        super().__init__(reader, hub, interval)
        self.engine = engine
        self.connection_history: deque[ConnectionChange] = deque(maxlen=_HISTORY)
        self.curves: dict[str, deque[tuple[str, float]]] = {}
        self.summary: dict[str, Any] = {}
        self._closed = False
        self._unhooks: list[Callable[[], None]] = []
        self._next_summary = 0.0

    def start(self) -> None:
        engine = self.engine
        self.connection_history.append(
            ConnectionChange(datetime.now(UTC), "", engine.connection.state.value, "console attached")
        )
        hooks: list[tuple[Any, Callable[..., None]]] = [
            (engine.on.event, self._on_event),
            (engine.on.error, self._on_error),
            (engine.connection.machine.state_changed, self._on_state),
        ]
        for source, handler in hooks:
            source.connect(handler)
            self._unhooks.append(partial(source.disconnect, handler))
        engine.broker.register_fill_callback(self._on_fill)  # no unregister: _closed silences it
        self._refresh_summary()
        super().start()

    def stop(self) -> None:
        self._closed = True
        for unhook in self._unhooks:
            unhook()
        self._unhooks.clear()
        super().stop()

    # ------------------------------------------------------------------ pushed at once (any thread)
    def _on_event(self, kind: str, detail: str) -> None:
        self.hub.publish("engine", kind=kind, detail=detail)

    def _on_error(self, kind: str, message: str) -> None:
        self.hub.publish("error", kind=kind, message=message)

    def _on_state(self, old: ConnectionState, new: ConnectionState, reason: str) -> None:
        self.connection_history.append(ConnectionChange(datetime.now(UTC), old.value, new.value, reason))
        self.hub.publish("connection", state=new.value, reason=reason)

    def _on_fill(self, fill: Fill) -> None:
        if not self._closed:
            self.hub.publish(
                "fill", symbol=fill.order.symbol, quantity=fill.fill_quantity, price=fill.fill_price
            )

    # ------------------------------------------------------------------ sampled
    def fingerprint(self) -> object:
        engine = self.engine
        return (
            super().fingerprint(),
            engine.is_running(),
            engine.halted,
            engine.connection.state.value,
            engine.bars_processed,
            len(engine.fills),
            engine.total_errors,
            tuple((name, s.get("pnl")) for name, s in self.summary.get("strategies", {}).items()),
        )

    def sample(self) -> None:
        now = time.monotonic()
        if now >= self._next_summary:  # a loop-thread round trip: once a second is what a page needs
            self._next_summary = now + _SUMMARY_S
            self._refresh_summary()

    def _refresh_summary(self) -> None:
        """The account and each strategy's book as the engine last saw them — read, never asked of IB (no
        round trip to IB's loop thread, which carries the orders)."""
        engine = self.engine
        try:
            strategies = strategy_summaries(engine.strategy_slots, engine.account.marks, {})
        except Exception as exc:  # a book mid-update on the worker: keep the last one, read again soon
            log.debug("console: strategy books not readable now: %s", exc)
            return
        errors = sum(1 for e in engine.errors if e["type"] == "strategy")
        for values in strategies.values():
            values["errors"] = errors  # the engine's strategy errors are not kept per strategy
        self.summary = {
            "account_value": float(engine.account.value),
            "cash_balance": float(engine.account.cash),
            "strategies": strategies,
        }
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        for name, values in strategies.items():
            curve = self.curves.setdefault(name, deque(maxlen=_CURVE_POINTS))
            pnl = float(values.get("pnl", 0.0))
            if not curve or curve[-1][1] != pnl or curve[-1][0] != stamp:
                curve.append((stamp, pnl))
