"""Which engine happenings become alerts, and the watchdog for what does not happen (a long disconnect, no
bar in market hours).

Pushed (from the engine's events, on the thread that raised them): fills, order rejections and errors,
halts and the kill switch, reconciliation differences, strategy errors. Watched (a ``copilot-quant-alert-watch``
thread, every second): disconnected longer than ``disconnect_after_s``; no new bar for one bar interval plus
``no_bar_after_min`` minutes, counting market-open time only (so a weekend is never "late"). Each watched
alert fires once per episode.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from copilot_quant.alerts.dispatcher import AlertDispatcher, Delivery
from copilot_quant.alerts.model import Alert, AlertKind
from copilot_quant.alerts.settings import AlertSettings
from copilot_quant.alerts.throttle import Throttle
from copilot_quant.brokers.market_hours import is_market_open
from copilot_quant.errors import JournalError

if TYPE_CHECKING:
    from copilot_quant.live.engine import LiveStrategyEngine
    from copilot_quant.model.orders import Fill

__all__ = ["EngineAlerts"]

log = logging.getLogger(__name__)

_BAR_SECONDS = {"1m": 60, "2m": 120, "5m": 300, "15m": 900, "30m": 1800, "1h": 3600, "1d": 86400}
_WATCH_S = 1.0


class EngineAlerts:
    """Turns one engine's events into alerts on a :class:`AlertDispatcher` (see the module docstring)."""

    def __init__(
        self, engine: LiveStrategyEngine, dispatcher: AlertDispatcher, settings: AlertSettings
    ) -> None:
        self.engine = engine
        self.dispatcher = dispatcher
        self.settings = settings
        self.wanted = settings.wanted()
        self._closed = False
        self._unhooks: list[Any] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._down_since: datetime | None = None
        self._down_told = False
        self._no_bar_told = False
        self._bar_seen: object = None
        self._open_waited = 0.0  # market-open seconds since the last new bar

    @classmethod
    def from_settings(cls, engine: LiveStrategyEngine, settings: AlertSettings | None = None) -> EngineAlerts:
        config = settings or AlertSettings.load()
        throttle = Throttle(config.dedupe_s, config.max_per_minute)
        dispatcher = AlertDispatcher(
            config.channels(),
            throttle,
            retries=config.retries,
            backoff_s=config.retry_backoff_s,
            on_result=partial(_journal_delivery, engine),
        )
        return cls(engine, dispatcher, config)

    def start(self) -> EngineAlerts:
        engine = self.engine
        for source, handler in ((engine.on.event, self._on_event), (engine.on.error, self._on_error)):
            source.connect(handler)
            self._unhooks.append(partial(source.disconnect, handler))
        engine.broker.register_fill_callback(self._on_fill)  # no unregister: _closed silences it
        self._thread = threading.Thread(target=self._watch, name="copilot-quant-alert-watch", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._closed = True
        for unhook in self._unhooks:
            unhook()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.dispatcher.close()

    def _send(self, kind: AlertKind, title: str, text: str, key: str = "") -> None:
        if self._closed or kind not in self.wanted:
            return
        account = str(self.engine.connection.account or "")
        self.dispatcher.notify(Alert(kind, title, text, account, key))

    # ------------------------------------------------------------------ pushed
    def _on_event(self, kind: str, detail: str) -> None:
        if kind == "halt":
            self._send(AlertKind.HALT, "trading halted", detail)
        elif kind == "kill_switch":
            self._send(AlertKind.KILL_SWITCH, "kill switch engaged", detail)
        elif kind == "reconcile" and not detail.split(": ", 1)[-1].startswith("clean"):
            self._send(AlertKind.RECONCILE, "reconciliation found differences", detail)

    def _on_error(self, kind: str, message: str) -> None:
        if kind == "strategy":
            self._send(AlertKind.STRATEGY_ERROR, "strategy error", message)
        elif kind == "order":
            self._send(AlertKind.REJECTION, "order rejected or in error", message)

    def _on_fill(self, fill: Fill) -> None:
        order = fill.order
        text = f"{order.side} {fill.fill_quantity:g} {order.symbol} @ {fill.fill_price:g} (order {order.order_id})"
        self._send(AlertKind.FILL, f"fill {order.symbol}", text, key=f"fill|{fill.fill_id or text}")

    # ------------------------------------------------------------------ watched
    def _watch(self) -> None:
        while not self._stop.wait(_WATCH_S):
            now = datetime.now(UTC)
            self.check_connection(now)
            self.check_bars(now)

    def check_connection(self, now: datetime) -> None:
        if self.engine.connection.is_connected():
            if self._down_told and self._down_since is not None:
                gone = (now - self._down_since).total_seconds()
                self._send(AlertKind.DISCONNECT, "IB connection back", f"reconnected after {gone:.0f} s")
            self._down_since, self._down_told = None, False
            return
        if not self.engine.is_running():
            return
        if self._down_since is None:
            self._down_since = now
        gone = (now - self._down_since).total_seconds()
        if not self._down_told and gone > self.settings.disconnect_after_s:
            self._down_told = True
            state = self.engine.connection.state.value
            self._send(
                AlertKind.DISCONNECT,
                "IB connection lost",
                f"disconnected for {gone:.0f} s (state {state}); trading is blind",
                key=f"disconnect|{self._down_since.isoformat()}",
            )

    def check_bars(self, now: datetime, step_s: float = _WATCH_S) -> None:
        """Count market-open seconds since the last new bar (``step_s`` per call while the market is open;
        nights and weekends do not count); past one bar interval plus ``no_bar_after_min``, alert once."""
        engine = self.engine
        last = engine.last_bar
        if last != self._bar_seen:
            self._bar_seen, self._open_waited, self._no_bar_told = last, 0.0, False
            return
        if last is None or not engine.is_running() or not is_market_open(now):
            return
        self._open_waited += step_s
        bar_s = _BAR_SECONDS.get(engine.data_interval, 86400)
        if self._open_waited <= bar_s + self.settings.no_bar_after_min * 60 or self._no_bar_told:
            return
        self._no_bar_told = True
        minutes = (self._open_waited - bar_s) / 60
        self._send(
            AlertKind.NO_BAR,
            "no bar in market hours",
            f"no new {engine.data_interval} bar for {minutes:.0f} min of market hours past its due time "
            f"(last bar {last}); is the data flowing?",
            key=f"no_bar|{last}",
        )


def _journal_delivery(engine: LiveStrategyEngine, delivery: Delivery) -> None:
    """Journal what became of an alert (a ``notify`` event; the console's journal browser lists them), from
    the alert thread: never on the trading path; a journal that cannot take it is only logged."""
    journal = engine.journal
    if journal is None or journal.closed:
        return
    alert = delivery.alert
    outcome = (
        "sent" if delivery.ok else f"NOT delivered after {delivery.attempts} attempt(s): {delivery.error}"
    )
    try:
        journal.record_event(
            "notify", f"{alert.kind} via {delivery.channel} {outcome}: {alert.title}: {alert.text}"
        )
    except JournalError as exc:
        log.warning("could not journal the alert delivery: %s", exc)
