"""``LiveStrategyEngine``: run an unchanged backtest :class:`Strategy` against IB (paper or live).

Timing model, in one sentence: the strategy's ``on_data(timestamp, data)`` is called once per newly
*completed* bar — a bar whose close time has passed on the broker's clock — with the lookback history plus
every live bar up to and including that one (never a later one), in exactly the backtest's shape (flat
``Open, High, Low, Close, Volume`` for one symbol, ``(Metric, Symbol)`` columns for several, tz-aware UTC
index and ``timestamp``); the orders it returns go to IB immediately and fill at the prices IB reports.

Architecture: the engine owns one :class:`~copilot_quant.brokers.connection.IBConnection` (one socket,
one client id) shared by its :class:`LiveDataFeedAdapter` and :class:`LiveBrokerAdapter`. ib_async runs on
the connection's loop thread; the strategy runs on the engine's own worker thread, which sleeps on an
event (woken by new bars, fills, or every ``update_interval`` seconds) — so ``stop()`` is prompt and the
user's thread is free (the guide's ``time.sleep(60)`` loop works).

Threading contract: public methods may be called from any thread (not from strategy callbacks, which run
on the worker thread, except ``stop()``). ``strategy.on_data``, ``on_fill``, ``on_stop`` and ``finalize``
all run on the worker thread, never concurrently with each other.

Errors: an exception in a strategy hook, an order rejection or an order error never stops the engine; each
is logged and appended to :attr:`errors` as ``{'timestamp': datetime, 'error': str, 'type': str}`` (the
last ``max_errors`` are kept; ``total_errors`` counts all).
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from collections import deque
from collections.abc import Mapping
from datetime import UTC, datetime
from types import FrameType
from typing import Any

import pandas as pd

from copilot_quant.backtest.interfaces import combine_symbols
from copilot_quant.backtest.orders import Fill, Order, OrderStatus, Position
from copilot_quant.backtest.strategy import Strategy
from copilot_quant.brokers.config import resolve_connection
from copilot_quant.brokers.connection import IBConnection
from copilot_quant.brokers.ib_mapping import check_interval
from copilot_quant.brokers.live_broker_adapter import LiveBrokerAdapter
from copilot_quant.brokers.live_data_adapter import LiveDataFeedAdapter
from copilot_quant.brokers.market_hours import OutsideHours, is_market_open
from copilot_quant.brokers.order_tracking import OrderRecord
from copilot_quant.brokers.reconnect import ConnectionState
from copilot_quant.errors import BrokerError, ConfigError, CopilotQuantError, StrategyError

__all__ = ["LiveStrategyEngine"]

log = logging.getLogger(__name__)


class _AccountView:
    """The read-only view a strategy gets (``self.positions``, ``self.cash``, ``self.equity``)."""

    __slots__ = ("_engine",)

    def __init__(self, engine: LiveStrategyEngine) -> None:
        self._engine = engine

    def positions(self) -> Mapping[str, Position]:
        return self._engine._positions_snapshot()

    def cash(self) -> float:
        return self._engine._last_cash

    def equity(self) -> float:
        return self._engine._last_account_value


class LiveStrategyEngine:
    """Orchestrates one strategy live: data in, orders out, fills back (see the module docstring).

    Args:
        paper_trading: paper (default) or live trading; enforced against port and account.
        host, port, client_id, use_gateway: connection settings (see :mod:`copilot_quant.brokers.config`).
        commission, slippage: rates of the cost *models* (buying-power checks, estimates); real fills
            carry IB's actual prices and commissions.
        update_interval: the longest the worker sleeps between checks for completed bars (seconds); new
            bars and fills wake it earlier. 60 s suits daily strategies.
        enable_reconnect: reconnect (resubscribe, backfill, reconcile) after a drop; if False the engine
            stops cleanly when the connection is lost.
        outside_hours: ``'allow'`` (default), ``'hold'`` or ``'reject'`` orders returned while the NYSE
            regular session is closed (see :class:`~copilot_quant.brokers.market_hours.OutsideHours`).
        cancel_on_stop: cancel this engine's working orders in :meth:`stop` (default keeps them at IB).
        max_errors: how many error entries :attr:`errors` keeps.
        fill_timeout: seconds each market order is waited for before the worker moves on.
        stale_after: seconds without ticks during the regular session before the feed counts as stale
            (``DEGRADED``, subscriptions renewed); ``None`` turns the watchdog off.
    """

    def __init__(  # noqa: PLR0917 - the guide's positional signature
        self,
        paper_trading: bool = True,
        host: str | None = None,
        port: int | None = None,
        client_id: int | None = None,
        use_gateway: bool = False,
        commission: float = 0.001,
        slippage: float = 0.0005,
        update_interval: float = 60.0,
        enable_reconnect: bool = True,
        *,
        outside_hours: OutsideHours | str = OutsideHours.ALLOW,
        cancel_on_stop: bool = False,
        max_errors: int = 1000,
        fill_timeout: float = 10.0,
        stale_after: float | None = 120.0,
    ) -> None:
        if not update_interval or update_interval <= 0:
            raise ConfigError(
                f"update_interval must be a positive number of seconds, got {update_interval!r}"
            )
        try:
            self.outside_hours = OutsideHours(str(outside_hours).lower())
        except ValueError:
            raise ConfigError(
                f"outside_hours={outside_hours!r} is not one of 'allow', 'hold', 'reject'"
            ) from None
        settings = resolve_connection(paper_trading, host, port, client_id, use_gateway)
        self.paper_trading = paper_trading
        self.update_interval = float(update_interval)
        self.enable_reconnect = enable_reconnect
        self.cancel_on_stop = cancel_on_stop
        self.connection = IBConnection(
            settings, auto_reconnect=enable_reconnect, stale_after=stale_after, name="copilot-quant-engine"
        )
        self.data_feed = LiveDataFeedAdapter(paper_trading, connection=self.connection)
        self.broker = LiveBrokerAdapter(
            paper_trading,
            commission_rate=commission,
            slippage_rate=slippage,
            connection=self.connection,
            fill_timeout=fill_timeout,
        )
        self._wake = threading.Event()
        self.data_feed.bars_changed = self._wake  # bar updates wake the worker directly
        self.broker.register_fill_callback(self._on_fill_event)
        self.broker.register_error_callback(self._on_order_error)
        self.connection.machine.state_changed += self._on_connection_change

        self.strategy: Strategy | None = None
        #: The last ``max_errors`` errors, oldest first: ``{'timestamp', 'error', 'type'}`` dicts.
        self.errors: deque[dict[str, Any]] = deque(maxlen=max(1, int(max_errors)))
        #: Every real fill received while running, in order.
        self.fills: list[Fill] = []
        self.total_errors = 0
        self.bars_processed = 0
        self.symbols: list[str] = []
        self.data_interval = "1d"
        self._fill_queue: queue.SimpleQueue[Fill] = queue.SimpleQueue()
        self._held: list[Order] = []
        self._stop = threading.Event()
        self._state_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._running = False
        self._finished = True
        self._last_bar: pd.Timestamp | None = None
        self._server_now: pd.Timestamp | None = None
        self._asked_for: pd.Timestamp | None = None
        self._timer_fired = False
        self._last_cash = float("nan")
        self._last_account_value = float("nan")
        self._last_positions: dict[str, Position] = {}
        self._errors_lock = threading.Lock()

    # ------------------------------------------------------------------ setup and connection
    def add_strategy(self, strategy: Strategy) -> None:
        """Set the strategy to run (one per engine; replaces a previous one while stopped)."""
        if not isinstance(strategy, Strategy):
            raise StrategyError(
                f"add_strategy() needs a Strategy instance, got {type(strategy).__name__}; "
                "subclass copilot_quant.backtest.strategy.Strategy"
            )
        if self._running:
            raise StrategyError("cannot change the strategy while the engine is running; call stop() first")
        self.strategy = strategy

    def connect(self, timeout: float = 30, retry_count: int = 3) -> bool:
        """Connect the shared IB connection, retrying ``retry_count`` times; ``True`` on success."""
        attempts = max(1, int(retry_count))
        for attempt in range(attempts):
            if self.data_feed.connect(timeout) and self.broker.connect(timeout):
                self._refresh_account()
                return True
            if attempt + 1 < attempts:
                time.sleep(min(2.0**attempt, 5.0))
        log.error(
            "could not connect to %s after %d attempt(s)", self.connection.settings.describe(), attempts
        )
        return False

    def is_connected(self) -> bool:
        return self.connection.is_connected()

    def is_running(self) -> bool:
        return self._running

    def disconnect(self) -> None:
        """Stop (if running) and close the connection. Idempotent."""
        self.stop()
        self.connection.disconnect()

    def __enter__(self) -> LiveStrategyEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()

    # ------------------------------------------------------------------ start / stop
    def start(self, symbols: list[str], lookback_days: int = 30, data_interval: str = "1d") -> bool:
        """Load history, stream bars and start the worker. ``False`` if no strategy, not connected or running."""
        if self.strategy is None:
            log.error("start(): no strategy; call add_strategy() first")
            return False
        if self._running:
            log.error("start(): the engine is already running")
            return False
        if not self.is_connected():
            log.error("start(): not connected; call connect() first")
            return False
        check_interval(data_interval)
        if isinstance(symbols, str):
            symbols = [symbols]
        names = [s.strip().upper() for s in symbols]
        if not names:
            raise ConfigError("start() needs at least one symbol, e.g. start(['AAPL'])")
        streamed = self.data_feed.stream_bars(names, data_interval, lookback_days)
        missing = [s for s, ok in streamed.items() if not ok]
        if missing:
            self._record_error(f"could not load data for {', '.join(missing)}", "data")
            self.data_feed.stop_bar_streams()
            return False
        self.data_feed.subscribe(names)
        self.symbols, self.data_interval = names, data_interval
        strategy = self.strategy
        strategy.bind(_AccountView(self))
        try:
            strategy.initialize()
            strategy.on_start()
        except Exception as exc:
            self._record_error(f"{type(exc).__name__}: {exc}", "strategy")
            log.exception("strategy %s failed to initialize", strategy.name)
            self.data_feed.stop_bar_streams()
            self.data_feed.unsubscribe(names)
            return False
        # Only bars completed from now on are "new"; the history is there for lookback windows.
        self._server_now = None
        self._last_bar = self._current_data(self._now())[1]
        self._stop.clear()
        self._wake.clear()
        self._running = True
        self._finished = False
        self._thread = threading.Thread(target=self._run, name="copilot-quant-engine", daemon=True)
        self._thread.start()
        log.info("started %s on %s (%s bars)", strategy.name, ", ".join(names), data_interval)
        return True

    def stop(self) -> None:
        """Stop the worker promptly, then unsubscribe and call ``on_stop``/``finalize`` once. Idempotent."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=self.broker.fill_timeout + 10)
            if thread.is_alive():
                # Never run the shutdown hooks next to a strategy call: the worker runs them as it exits.
                log.warning("the engine worker is still busy; it will finish shutting down after its step")
                return
        self._finish("stop() called")

    def _finish(self, why: str) -> None:
        with self._state_lock:
            if self._finished:
                return
            self._finished = True
        self._running = False
        self._drain_fills()
        if self.connection.is_connected():
            if self.cancel_on_stop:
                for order in self.broker.get_open_orders():
                    self.broker.cancel_order(order)
            try:
                self.data_feed.unsubscribe(self.symbols)
                self.data_feed.stop_bar_streams()
            except (BrokerError, TimeoutError, ConnectionError) as exc:
                log.warning("unsubscribing failed: %s", exc)
        strategy = self.strategy
        if strategy is not None:
            for hook in (strategy.on_stop, strategy.finalize):
                try:
                    hook()
                except Exception as exc:
                    self._record_error(f"{type(exc).__name__} in {hook.__name__}: {exc}", "strategy")
                    log.exception("strategy %s failed in %s", strategy.name, hook.__name__)
        log.info("engine stopped: %s", why)

    def install_signal_handlers(self) -> None:
        """Stop and disconnect cleanly on SIGINT/SIGTERM (main thread only), then re-raise KeyboardInterrupt."""

        def handler(signum: int, frame: FrameType | None) -> None:
            log.info("signal %d received: shutting down", signum)
            self.disconnect()
            raise KeyboardInterrupt

        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)

    # ------------------------------------------------------------------ worker
    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._drain_fills()
                if self.connection.state is ConnectionState.STOPPED:
                    self._record_error(
                        "connection to IB lost and not reconnecting; engine stopped", "connection"
                    )
                    break
                if self.connection.state is ConnectionState.CONNECTED:
                    try:
                        self._step()
                    except CopilotQuantError as exc:
                        self._record_error(str(exc), "engine")
                    except (TimeoutError, ConnectionError) as exc:
                        self._record_error(f"{type(exc).__name__}: {exc}", "connection")
                    except Exception as exc:  # the worker's last line of defence: log, count, keep running
                        log.exception("unexpected error in the engine loop")
                        self._record_error(f"{type(exc).__name__}: {exc}", "engine")
                self._timer_fired = not self._wake.wait(self.update_interval)
                self._wake.clear()
        finally:
            self._finish("worker exited")

    def _step(self) -> None:
        now = self._now(fresh=self._timer_fired)
        self._timer_fired = False
        self._release_held(now)
        data, _ = self._current_data(now)
        if data is None or data.empty:
            self._refresh_account()
            return
        index = data.index
        start = 0 if self._last_bar is None else int(index.searchsorted(self._last_bar, side="right"))
        for i in range(start, len(index)):
            if self._stop.is_set():
                return
            stamp = index[i]
            self._deliver(stamp, data.iloc[: i + 1])
            self._last_bar = stamp
            self._drain_fills()
        self._refresh_account()  # after the orders: the account view is off the tick-to-order path

    def _now(self, *, fresh: bool = False) -> pd.Timestamp:
        """The broker's clock, asked only when a streamed bar is newer than what it last said.

        Bars stamped at or before the last known server time are complete whatever the time is now, so
        the round trip (which counts against IB's message rate) is skipped on wake-ups without new bars.
        """
        newest = max(
            (t for t in (self.data_feed.last_bar_time(s) for s in self.symbols) if t is not None),
            default=None,
        )
        known = self._server_now
        # A bar still forming (stamp in the future) is re-checked when a newer bar arrives or on the timer,
        # not on every update of that same bar.
        unseen = newest is not None and (known is None or newest > known) and newest != self._asked_for
        if fresh or known is None or unseen:
            asked = self.data_feed.server_time()
            known = asked if known is None else max(asked, known)
            self._server_now, self._asked_for = known, newest
        return known

    def _current_data(self, now: pd.Timestamp) -> tuple[pd.DataFrame | None, pd.Timestamp | None]:
        """The strategy's data (completed bars only) and the newest timestamp every symbol has reached."""
        frames = {s: self.data_feed.completed_bars(s, now) for s in self.symbols}
        if not frames or any(f.empty for f in frames.values()):
            return None, self._last_bar
        # With several symbols, deliver a timestamp only once every symbol's bar for it is in.
        common_end = min(f.index[-1] for f in frames.values())
        data = next(iter(frames.values())) if len(frames) == 1 else combine_symbols(frames)
        data = data.loc[data.index <= common_end]
        return data, common_end

    def _deliver(self, stamp: pd.Timestamp, window: pd.DataFrame) -> None:
        strategy = self.strategy
        if strategy is None:
            return
        self.bars_processed += 1
        try:
            orders = strategy.on_data(stamp, window)
        except Exception as exc:
            self._record_error(f"{type(exc).__name__}: {exc}", "strategy")
            log.exception("strategy %s failed in on_data at %s", strategy.name, stamp)
            return
        if orders is None:
            return
        if not isinstance(orders, list | tuple) or not all(isinstance(o, Order) for o in orders):
            self._record_error(
                f"on_data must return a list of Order objects or None, got {type(orders).__name__}",
                "strategy",
            )
            return
        for order in orders:
            self._submit(order, stamp)

    def _submit(self, order: Order, stamp: pd.Timestamp) -> None:
        if self.outside_hours is not OutsideHours.ALLOW and not is_market_open(self._now(fresh=True)):
            if self.outside_hours is OutsideHours.HOLD:
                log.info("market closed: holding order %s until the session opens", order.order_id)
                self._held.append(order)
                return
            order.status = OrderStatus.REJECTED
            order.reject_reason = "market closed (outside_hours='reject')"
            self._record_error(f"order {order.order_id} {order.symbol} rejected: market closed", "order")
            return
        price = self.data_feed.get_latest_price(order.symbol) or float("nan")
        try:
            self.broker.execute_order(order, price, stamp.to_pydatetime())
        except CopilotQuantError as exc:
            self._record_error(f"order {order.order_id} {order.symbol}: {exc}", "order")

    def _release_held(self, now: pd.Timestamp) -> None:
        if self._held and is_market_open(now):
            held, self._held = self._held, []
            for order in held:
                self._submit(order, now)

    # ------------------------------------------------------------------ fills and errors
    def _on_connection_change(self, old: ConnectionState, new: ConnectionState, reason: str) -> None:
        self._wake.set()  # the worker re-checks the state now, not after update_interval

    def _on_fill_event(self, fill: Fill) -> None:  # IB loop thread: hand over, never block
        self._fill_queue.put(fill)
        self._wake.set()

    def _drain_fills(self) -> None:
        strategy = self.strategy
        while True:
            try:
                fill = self._fill_queue.get_nowait()
            except queue.Empty:
                return
            self.fills.append(fill)
            if strategy is not None:
                try:
                    strategy.on_fill(fill)
                except Exception as exc:
                    self._record_error(f"{type(exc).__name__} in on_fill: {exc}", "strategy")
                    log.exception("strategy %s failed in on_fill", strategy.name)

    def _on_order_error(self, record: OrderRecord, message: str) -> None:
        order = record.order
        self._record_error(
            f"order {order.order_id} {order.side} {order.quantity:g} {order.symbol}: {message}", "order"
        )

    def _record_error(self, message: str, kind: str) -> None:
        with self._errors_lock:
            self.errors.append({"timestamp": datetime.now(UTC), "error": message, "type": kind})
            self.total_errors += 1
        log.error("%s error: %s", kind, message)

    # ------------------------------------------------------------------ account and reporting
    def _refresh_account(self) -> None:
        try:
            self._last_account_value = self.broker.get_account_value()
            self._last_cash = self.broker.get_cash_balance()
            self._last_positions = self.broker.get_positions()
        except (BrokerError, TimeoutError, ConnectionError) as exc:
            log.debug("account refresh failed: %s", exc)

    def _positions_snapshot(self) -> dict[str, Position]:
        return {s: p.snapshot() for s, p in self._last_positions.items()}

    def get_performance_summary(self) -> dict[str, Any]:
        """Account value, cash, positions ``{symbol: quantity}``, fills, errors and state, as plain values."""
        if self.is_connected():
            self._refresh_account()
        return {
            "strategy": self.strategy.name if self.strategy is not None else None,
            "account_value": float(self._last_account_value),
            "cash_balance": float(self._last_cash),
            "positions": {s: p.quantity for s, p in self._last_positions.items()},
            "total_fills": len(self.fills),
            "total_errors": self.total_errors,
            "bars_processed": self.bars_processed,
            "last_bar": self._last_bar,
            "open_orders": len(self.broker.get_open_orders()),
            "is_running": self._running,
            "is_connected": self.is_connected(),
            "connection_state": self.connection.state.value,
            "account": self.connection.account,
            "symbols": list(self.symbols),
        }

    def __repr__(self) -> str:
        name = self.strategy.name if self.strategy is not None else None
        return f"LiveStrategyEngine(strategy={name}, running={self._running}, {self.connection.settings.describe()})"
