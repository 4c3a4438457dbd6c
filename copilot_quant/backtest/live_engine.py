"""``LiveStrategyEngine``: run an unchanged backtest :class:`Strategy` against IB (paper or live).

Timing model, in one sentence: the strategy's ``on_data(timestamp, data)`` is called once per newly
*completed* bar — a bar whose close time has passed on the broker's clock — with the lookback history plus
every live bar up to and including that one (never a later one), in exactly the backtest's shape (flat
``Open, High, Low, Close, Volume`` for one symbol, ``(Metric, Symbol)`` columns for several, tz-aware UTC
index and ``timestamp``); the orders it returns go to IB immediately and fill at the prices IB reports.

Cancelling: ``strategy.cancel(order_or_id)`` (from ``on_data`` or ``on_fill``) sends the cancel to IB at
once, before it returns, from the worker thread; the order becomes ``CANCELLED`` ("cancelled by the
strategy", journaled) when IB confirms, normally well before the next bar. If IB executed the order
first, IB refuses the cancel and the fill reaches ``on_fill`` as usual: the order ends ``FILLED``. A
cancel that cannot be sent (connection down) is retried once the connection is back. An order held back
while the market is closed (``outside_hours='hold'``) is cancelled without reaching IB.
``strategy.open_orders()`` lists the strategy's orders of this run still working and not being
cancelled, in submission order. Orders of an earlier run that reconciliation found still working at IB
are tracked (fills, statuses, the kill switch) but are not the new strategy instance's: it does not see
them there and cannot cancel them by id.

Architecture: the engine owns one :class:`~copilot_quant.brokers.connection.IBConnection` (one socket,
one client id) shared by its :class:`LiveDataFeedAdapter` and :class:`LiveBrokerAdapter`. ib_async runs on
the connection's loop thread; the strategy runs on the engine's own worker thread, which sleeps on an
event (woken by new bars, fills, or every ``update_interval`` seconds) — so ``stop()`` is prompt and the
user's thread is free (the guide's ``time.sleep(60)`` loop works).

Threading contract: public methods may be called from any thread (not from strategy callbacks, which run
on the worker thread, except ``stop()``). ``strategy.on_data``, ``on_fill``, ``on_stop`` and ``finalize``
all run on the worker thread, never concurrently with each other.

Errors: an exception in a strategy hook, an order rejection or an order error never stops the engine; each
is logged and appended to :attr:`errors`, a list (slice it as usual) of the last ``max_errors`` entries
``{'timestamp': datetime, 'error': str, 'type': str}``; ``total_errors`` counts all. An order refused
because trading is halted (kill switch, liveness guard, competing session) is not an error: the halt was
reported once (``alert``/``halt``/``kill_switch`` events, logged at ERROR); each refused order is one
WARNING line and is journaled as rejected with the reason.

Trust (journal and safety rails): :meth:`start` opens the account's durable
:class:`~copilot_quant.journal.TradeJournal` and reconciles it with IB before trading; so does the worker
after every reconnect. Each order passes the :class:`~copilot_quant.risk.RiskManager` (limits, kill switch,
liveness), is journaled as an intent *before* it is sent, carries its journal ref as IB ``orderRef`` (so it
is never sent twice, whatever crashes), and every status, fill, commission and error is journaled; a fill
reaches ``on_fill`` only if the journal did not hold its ``execId`` yet (exactly once, across restarts).
A failed journal write engages the kill switch. Engine events (start, reconcile, alert, halt, resume,
kill_switch, stop) are journaled, kept in :attr:`events` and sent to :meth:`register_event_callback`.
"""

from __future__ import annotations

import logging
import math
import queue
import signal
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from copilot_quant.backtest.interfaces import combine_symbols
from copilot_quant.backtest.orders import (
    Fill,
    Order,
    OrderSide,
    OrderStatus,
    OrderType,
    Position,
    continue_order_ids_after,
)
from copilot_quant.backtest.strategy import CANCELLED_BY_STRATEGY, Strategy
from copilot_quant.brokers.config import (
    CONFIRM_LIVE_ENV,
    check_live_confirmed,
    live_confirmed,
    resolve_connection,
)
from copilot_quant.brokers.connection import IBConnection
from copilot_quant.brokers.ib_mapping import check_interval
from copilot_quant.brokers.live_broker_adapter import LiveBrokerAdapter
from copilot_quant.brokers.live_data_adapter import LiveDataFeedAdapter
from copilot_quant.brokers.market_hours import OutsideHours, is_market_open
from copilot_quant.brokers.order_tracking import OrderRecord
from copilot_quant.brokers.reconciliation import fetch_broker_state
from copilot_quant.brokers.reconnect import ConnectionState
from copilot_quant.data.dates import EXCHANGE_TZ
from copilot_quant.errors import (
    BrokerError,
    ConfigError,
    CopilotQuantError,
    JournalError,
    NotConnectedError,
    StrategyError,
)
from copilot_quant.journal import EventKind, ReconcileReport, TradeJournal
from copilot_quant.journal.reconcile import reconcile as reconcile_journal
from copilot_quant.risk import KillSwitch, LivenessGuard, RiskDecision, RiskLimits, RiskManager, RiskRule
from copilot_quant.risk.kill_file import read_kill_file

__all__ = ["CONFIRM_LIVE_ENV", "LiveStrategyEngine", "RecentList"]

log = logging.getLogger(__name__)


EventCallback = Callable[[str, str], Any]
#: How often (seconds) a sleeping worker checks the kill-switch file and the liveness guard.
_RAIL_POLL_S = 1.0
#: The longest the worker waits for IB's position update after fills before the next ``on_data``.
_POSITION_SYNC_S = 0.5
#: How long past its close a bar waits when only the clock says it closed: IB rewrites a forming bar about
#: every 5 s, so its final values can lag its close by that much (trades the stream has caught up with
#: prove completion at once and need no wait).
_BAR_SETTLE_NS = 6_000_000_000
#: IB's "no market data during a competing live session" message.
_COMPETING_SESSION = 10197


def _file_stamp(path: Path | None) -> tuple[int, int] | None:
    """``(mtime_ns, size)`` of ``path``, or None if there is none: tells a rewritten kill file from a seen one."""
    if path is None:
        return None
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size


_T = TypeVar("_T")


class RecentList(list[_T]):
    """A list that keeps only its last ``maxlen`` items: appending beyond that drops the oldest.

    :attr:`LiveStrategyEngine.errors` and :attr:`LiveStrategyEngine.events` are ``RecentList`` objects, so
    ``engine.errors[-5:]``, ``len(engine.errors)`` and iteration work as on any list, and iterating while the
    engine appends from another thread never fails. Appends are thread-safe.
    """

    __slots__ = ("_lock", "maxlen")

    def __init__(self, maxlen: int = 1000) -> None:
        super().__init__()
        self.maxlen = max(1, int(maxlen))
        self._lock = threading.Lock()

    def append(self, item: _T) -> None:
        with self._lock:
            super().append(item)
            excess = len(self) - self.maxlen
            if excess > 0:
                del self[:excess]

    def __reduce__(self) -> tuple[Any, ...]:
        # copy, deepcopy and pickle rebuild it from its items (its lock is not copyable, nor needs to be).
        return (type(self), (self.maxlen,), None, iter(list(self)))


class _AccountView:
    """What a strategy sees of the engine: ``self.positions``, ``self.cash``, ``self.equity`` (read-only),
    and its own working orders (``self.open_orders()``, ``self.cancel()``)."""

    __slots__ = ("_engine",)

    def __init__(self, engine: LiveStrategyEngine) -> None:
        self._engine = engine

    def positions(self) -> Mapping[str, Position]:
        return self._engine._positions_snapshot()

    def cash(self) -> float:
        return self._engine._last_cash

    def equity(self) -> float:
        return self._engine._last_account_value

    def open_orders(self) -> list[Order]:
        return self._engine._strategy_open_orders()

    def cancel(self, order: Order | str) -> None:
        self._engine._strategy_cancel(order)

    def symbols(self) -> tuple[str, ...]:
        return tuple(self._engine.symbols)


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
        max_logged_errors: how many strategy exceptions are logged with their traceback (``None``: all);
            later ones are logged at DEBUG without one, and all are counted and kept in :attr:`errors`.
        fill_timeout: seconds each market order is waited for before the worker moves on.
        stale_after: seconds without ticks during the regular session before the feed counts as stale
            (``DEGRADED``, subscriptions renewed); ``None`` turns the watchdog off.
        risk_limits: pre-trade :class:`~copilot_quant.risk.RiskLimits` every order must pass.
        journal: the durable :class:`~copilot_quant.journal.TradeJournal` (or a path to its file); by
            default the account's journal in ``$COPILOT_QUANT_JOURNAL_DIR`` (``~/.copilot_quant/journal``),
            opened by :meth:`start` once the account is known.
        confirm_live: required (or ``COPILOT_QUANT_CONFIRM_LIVE=yes``) with ``paper_trading=False``.
        max_disconnect_s / max_stale_data_s: liveness thresholds; beyond them trading halts with an alert.
        kill_switch_file: if this file appears, the kill switch is engaged (its text is the reason).

    ``with LiveStrategyEngine(...) as engine:`` connects on entry (``NotConnectedError`` if it cannot), as
    the adapters do, and stops and disconnects on exit.
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
        max_logged_errors: int | None = None,
        fill_timeout: float = 10.0,
        stale_after: float | None = 120.0,
        risk_limits: RiskLimits | None = None,
        journal: TradeJournal | str | Path | None = None,
        confirm_live: bool = False,
        max_disconnect_s: float | None = 30.0,
        max_stale_data_s: float | None = 300.0,
        kill_switch_file: str | Path | None = None,
    ) -> None:
        check_live_confirmed(paper_trading, confirm_live)
        if risk_limits is not None and not isinstance(risk_limits, RiskLimits):
            raise ConfigError(f"risk_limits must be a RiskLimits, got {type(risk_limits).__name__}")
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
            confirm_live=live_confirmed(confirm_live),  # checked above; the broker checks it again
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
        self.errors: RecentList[dict[str, Any]] = RecentList(max_errors)
        if max_logged_errors is not None and max_logged_errors < 0:
            raise ConfigError(
                f"max_logged_errors must be 0 or more (or None for all), got {max_logged_errors}"
            )
        self.max_logged_errors = max_logged_errors
        self._strategy_errors_logged = 0
        #: Every real fill received while running, in order.
        self.fills: list[Fill] = []
        self.total_errors = 0
        self.bars_processed = 0
        self.symbols: list[str] = []
        self.data_interval = "1d"
        self._fill_queue: queue.SimpleQueue[Fill] = queue.SimpleQueue()
        self._held: list[Order] = []
        # The strategy's orders by order_id, in submission order (for open_orders() and cancel()); the ids
        # whose cancel the strategy requested; and those whose cancel could not be sent yet (retried).
        # The strategy's orders in submission order. Ids are the strategy's to choose and may repeat, so
        # cancels are tracked by object (id(order)); the list keeps every object alive.
        self._strategy_orders: list[Order] = []
        self._cancel_requested: set[int] = set()
        self._unsent_cancels: dict[int, Order] = {}
        self._stop = threading.Event()
        self._state_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._running = False
        self._finished = True
        self._last_bar: pd.Timestamp | None = None
        self._server_ns: int | None = None
        self._asked_for: int | None = None
        self._asked_ns: int | None = None  # the broker's clock by its last reqCurrentTime answer
        self._traded_ns: int | None = None  # the newest trade every bar stream has caught up with
        self._recheck_at: float | None = None  # monotonic time of a pending settle re-check
        self._timer_fired = False
        self._last_cash = float("nan")
        self._last_account_value = float("nan")
        self._last_positions: dict[str, Position] = {}
        self._errors_lock = threading.Lock()

        # Safety rails and the journal (see the package docs of copilot_quant.risk / copilot_quant.journal).
        self.risk = RiskManager(risk_limits, liveness=LivenessGuard(max_disconnect_s, max_stale_data_s))
        self.kill_switch: KillSwitch = self.risk.kill_switch
        self._journal_arg = journal
        self.journal: TradeJournal | None = journal if isinstance(journal, TradeJournal) else None
        self._owns_journal = False
        self.kill_switch_file = Path(kill_switch_file) if kill_switch_file is not None else None
        self._also_watched: list[Path] = []  # kill-switch files besides kill_switch_file (watch_kill_file)
        self._kill_file_seen: dict[Path, tuple[int, int]] = {}  # the version of each kill file acted on
        #: The last engine events, oldest first: ``{'timestamp', 'kind', 'detail'}`` dicts.
        self.events: RecentList[dict[str, Any]] = RecentList(1000)
        self._event_callbacks: list[EventCallback] = []
        self.last_reconcile: ReconcileReport | None = None
        self._reconcile_pending = threading.Event()
        self._kill_pending = threading.Event()
        self._halt_reason: str | None = None
        self._polled_only = False
        self._day_start_equity: float | None = None
        self._equity_day: date | None = None
        self.broker.register_journal_failure_callback(self._on_journal_failure)
        self.connection.restored += self._on_restored
        self.connection.ib_error += self._on_ib_message
        self._competing_since: float | None = None

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
        """Stop (if running), close the journal this engine opened, and close the connection. Idempotent."""
        self.stop()
        journal = self.journal
        if journal is not None and self._owns_journal and not self._running:
            self.broker.flush_journal()
            self.broker.journal = None
            self.journal = None
            journal.close()
        self.broker.disconnect()  # stops its journal writer; the shared socket is closed just below
        self.connection.disconnect()

    def __enter__(self) -> LiveStrategyEngine:
        """``with LiveStrategyEngine(...) as engine:`` connects, as the adapters' ``with`` blocks do (raises
        :class:`~copilot_quant.errors.NotConnectedError` if TWS/Gateway cannot be reached); leaving the block
        stops the engine and disconnects."""
        if not self.connect():
            raise NotConnectedError(
                f"could not connect to {self.connection.settings.describe()}; is TWS/IB Gateway running "
                "with the API enabled?"
            )
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()

    # ------------------------------------------------------------------ start / stop
    def start(self, symbols: list[str], lookback_days: int = 30, data_interval: str = "1d") -> bool:
        """Load history, stream bars and start the worker.

        ``False`` (with the reason in :attr:`errors`) if there is no strategy, no connection, the engine
        already runs, or it cannot start trading: a symbol IB knows no stock for (error type ``'symbol'``,
        checked first), the journal, reconciliation, the history or the strategy's ``initialize`` failed.
        """
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
        try:
            unknown = self.data_feed.unknown_symbols(names)
        except (BrokerError, TimeoutError, ConnectionError) as exc:
            self._record_error(f"could not look up {', '.join(names)}: {exc}", "connection")
            return False
        if unknown:
            listed = ", ".join(repr(s) for s in unknown)
            self._record_error(f"IB knows no US stock {listed}; check the ticker symbol", "symbol")
            return False
        if not self._open_journal():
            return False
        self._strategy_orders.clear()
        self._cancel_requested.clear()
        self._unsent_cancels.clear()
        self.risk.liveness.on_connected(datetime.now(UTC))  # type: ignore[union-attr]
        try:
            if self.journal is not None:  # new order ids never repeat a journaled one
                continue_order_ids_after(self.journal.order_ids())
            self.reconcile("start")  # before trading: what happened while we were not running
        except JournalError as exc:
            self._on_journal_failure(exc)
            return False
        except (BrokerError, TimeoutError, ConnectionError) as exc:
            self._record_error(f"reconciliation at start failed: {exc}; not trading", "reconcile")
            return False
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
            self._strategy_failed(exc, f"{type(exc).__name__}: {exc}", "to initialize")
            self.data_feed.stop_bar_streams()
            self.data_feed.unsubscribe(names)
            return False
        # Only bars completed from now on are "new"; the history is there for lookback windows.
        self._server_ns = self._asked_ns = self._traded_ns = None
        self._recheck_at = None
        self._last_bar = None
        history = self._new_bar_stamps(self._clock_ns(fresh=True))
        self._last_bar = pd.Timestamp(int(history[-1]), tz="UTC") if len(history) else None
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
                    self.broker.cancel_order(order, reason="engine stopped (cancel_on_stop=True)")
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
                    message = f"{type(exc).__name__} in {hook.__name__}: {exc}"
                    self._strategy_failed(exc, message, f"in {hook.__name__}")
        self.broker.flush_journal()  # what IB reported up to now is in the journal before it closes
        journal = self.journal
        if journal is not None:
            try:
                journal.record_event(EventKind.STOP, why)
            except JournalError as exc:
                log.error("could not journal the stop: %s", exc)
            if self._owns_journal:
                self.broker.journal = None
                journal.close()
                self.journal = None
        log.info("engine stopped: %s", why)

    def install_signal_handlers(self, *, kill: bool = False, flatten: bool = False) -> None:
        """Stop and disconnect cleanly on SIGINT/SIGTERM (main thread only), then re-raise KeyboardInterrupt.

        ``kill=True`` engages the kill switch first (cancels open orders; ``flatten`` closes positions).
        """

        def handler(signum: int, frame: FrameType | None) -> None:
            log.info("signal %d received: shutting down", signum)
            if kill:
                self.kill(f"signal {signum}", flatten=flatten)
            self.disconnect()
            raise KeyboardInterrupt

        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)

    # ------------------------------------------------------------------ worker
    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._drain_fills()
                if self._polled_only:
                    # A safety poll, not a wake-up: only the rails are checked, no bars, no account refresh.
                    self._check_kill_file()
                    self._check_liveness()
                    self._timer_fired = self._sleep()
                    continue
                self._check_kill_file()
                if self._kill_pending.is_set():
                    self._kill_pending.clear()
                    self._carry_out_kill()
                self._check_liveness()
                if self.connection.state is ConnectionState.STOPPED:
                    self._record_error(
                        "connection to IB lost and not reconnecting; engine stopped", "connection"
                    )
                    break
                if self.connection.state is ConnectionState.CONNECTED:
                    try:
                        if self._reconcile_pending.is_set():
                            self._reconcile_pending.clear()
                            self.reconcile("reconnect")
                        self._step()
                    except JournalError as exc:
                        self._on_journal_failure(exc)
                    except CopilotQuantError as exc:
                        self._record_error(str(exc), "engine")
                    except (TimeoutError, ConnectionError) as exc:
                        self._record_error(f"{type(exc).__name__}: {exc}", "connection")
                    except Exception as exc:  # the worker's last line of defence: log, count, keep running
                        log.exception("unexpected error in the engine loop")
                        self._record_error(f"{type(exc).__name__}: {exc}", "engine")
                self._timer_fired = self._sleep()
        finally:
            self._finish("worker exited")

    def _sleep(self) -> bool:
        """Sleep until woken or ``update_interval`` passes (then True); poll the rails every second.

        A pending settle re-check (see :meth:`_completion_cutoff`) shortens the sleep and counts as the timer.
        """
        deadline = time.monotonic() + self.update_interval
        if self._recheck_at is not None:
            deadline = min(deadline, self._recheck_at)
        self._polled_only = False
        while not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                self._recheck_at = None
                return True
            if self._wake.wait(min(left, _RAIL_POLL_S)):
                self._wake.clear()
                return False
            if self._rails_need_attention():
                self._polled_only = True
                return False
        return False

    def _rails_need_attention(self) -> bool:
        """Cheap check (no I/O to IB) whether the kill-switch file or the liveness guard has news."""
        for path in self._kill_files():
            stamp = _file_stamp(path)
            if stamp is not None and stamp != self._kill_file_seen.get(path):
                return True
        guard = self.risk.liveness
        if guard is None:
            return False
        now = datetime.now(UTC)
        if self.connection.state.has_socket:
            guard.on_data(now - timedelta(seconds=self.connection.seconds_since_data))
        blind = guard.check(now, expect_data=self._expect_data()) is not None
        return blind != (self._halt_reason is not None)

    def _step(self) -> None:
        now = self._clock_ns(fresh=self._timer_fired)
        self._timer_fired = False
        if self._unsent_cancels:
            self._retry_cancels()
        if self._held:
            self._release_held(pd.Timestamp(now, tz="UTC"))
        cutoff = self._completion_cutoff(now)
        new = self._new_bar_stamps(cutoff)
        if cutoff < now and len(self._new_bar_stamps(now)) > len(new):
            # Closed by the clock, not yet settled: ask again once IB's last update must have come.
            self._recheck_at = time.monotonic() + _BAR_SETTLE_NS / 1e9
        if len(new) == 0:
            self._refresh_account()
            return
        # One DataFrame per step, built once: pandas calls cost ~0.2 ms each on a cold CPU between bars,
        # so the path from a bar to its orders decides on int64 stamps and touches pandas only here.
        data = self._window(int(new[-1]))
        positions = pd.DatetimeIndex(data.index).asi8 if len(new) > 1 else None
        for k, stamp_ns in enumerate(new):
            if self._stop.is_set():
                return
            stamp = pd.Timestamp(int(stamp_ns), tz="UTC")
            # As in a backtest, the fills that happened before this bar closed reach on_fill before
            # on_data, and the account view already includes them.
            self.broker.flush_fills()
            if self._drain_fills():
                self.broker.await_positions(_POSITION_SYNC_S)
                self._refresh_account()
            if positions is None or k == len(new) - 1:
                window = data
            else:
                window = data.iloc[: int(positions.searchsorted(stamp_ns, side="right"))]
            self._deliver(stamp, window)
            self._last_bar = stamp
            self._drain_fills()
        self._refresh_account()  # after the orders: the account view is off the tick-to-order path

    def _new_bar_stamps(self, now: int) -> np.ndarray:
        """Stamps (int64 ns, ascending) of the bars completed since the last one delivered, up to the
        newest stamp every symbol has reached (with several symbols, a bar waits for all of them)."""
        stamps = [self.data_feed.completed_stamps(s, now) for s in self.symbols]
        if not stamps or any(len(a) == 0 for a in stamps):
            return np.empty(0, dtype="int64")
        common_end = min(int(a[-1]) for a in stamps)
        merged = stamps[0] if len(stamps) == 1 else np.unique(np.concatenate(stamps))
        after = -1 if self._last_bar is None else self._last_bar.value
        lo = int(merged.searchsorted(after, side="right"))
        hi = int(merged.searchsorted(common_end, side="right"))
        return merged[lo:hi]

    def _window(self, end_ns: int) -> pd.DataFrame:
        """The strategy's data up to and including the bar stamped ``end_ns``, in the backtest's shape."""
        end = pd.Timestamp(end_ns, tz="UTC")
        frames = {s: self.data_feed.completed_bars(s, end) for s in self.symbols}
        if len(frames) == 1:
            return next(iter(frames.values()))
        return combine_symbols(frames)

    def _now(self, *, fresh: bool = False) -> pd.Timestamp:
        """:meth:`_clock_ns` as a UTC Timestamp."""
        return pd.Timestamp(self._clock_ns(fresh=fresh), tz="UTC")

    def _clock_ns(self, *, fresh: bool = False) -> int:
        """What the engine knows of the broker's clock (int64 ns): a lower bound, asked for only when needed.

        Two sources, both never ahead of IB's clock (so no forming bar is ever taken for a closed one):
        the last ``reqCurrentTime`` answer and the newest trade time IB stamped on a tick (tick 45; a
        trade at 16:00:00 proves the 16:00 bar closed) that every symbol's bar stream had caught up with
        when its latest update arrived (so the bar's streamed values are final, not one update behind,
        and a week's bar has its Friday). Bars stamped at or before that bound are complete
        whatever the time is now, so the round trip (≈1 ms, counted against IB's message rate) is skipped
        whenever the trades already prove a new bar closed; it is made when a streamed bar is newer than
        the bound (once per forming bar), on the ``update_interval`` timer, and at start. Plain ints, no
        pandas: this runs between a bar's arrival and the strategy's orders.
        """
        newest = max(
            (t for t in (self.data_feed.last_bar_ns(s) for s in self.symbols) if t is not None),
            default=None,
        )
        known = self._server_ns
        traded = self.data_feed.synced_trade_ns(self.symbols) if known is not None else None
        if traded is not None:
            self._traded_ns = traded
            if known is not None and traded > known:
                known = self._server_ns = traded
        # A bar still forming (stamp in the future) is re-checked when a newer bar arrives or on the timer,
        # not on every update of that same bar.
        unseen = newest is not None and (known is None or newest > known) and newest != self._asked_for
        if fresh or known is None or unseen:
            asked = self.data_feed.server_time().value
            self._asked_ns = asked if self._asked_ns is None else max(asked, self._asked_ns)
            known = asked if known is None else max(asked, known)
            self._server_ns, self._asked_for = known, newest
        return known

    def _completion_cutoff(self, now: int) -> int:
        """Bars stamped at or before this are complete *and* final (``now`` from :meth:`_clock_ns`).

        A trade the streams have caught up with proves both. The clock alone (``reqCurrentTime``: no trade
        since, e.g. an illiquid symbol or delayed data) proves only that the bar closed: IB rewrites a
        forming bar about every 5 s, so its last update may still be on the way; such a bar waits until
        the clock is ``_BAR_SETTLE_NS`` past its close (:meth:`_step` schedules the re-check).
        """
        traded = -1 if self._traded_ns is None else self._traded_ns
        if traded >= now or self._asked_ns is None:
            return now
        return max(traded, self._asked_ns - _BAR_SETTLE_NS)

    @property
    def _server_now(self) -> pd.Timestamp | None:
        """The broker's clock as last known (see :meth:`_clock_ns`), or ``None`` before the first check."""
        return None if self._server_ns is None else pd.Timestamp(self._server_ns, tz="UTC")

    def _deliver(self, stamp: pd.Timestamp, window: pd.DataFrame) -> None:
        strategy = self.strategy
        if strategy is None:
            return
        self.bars_processed += 1
        try:
            orders = strategy.on_data(stamp, window)
        except Exception as exc:
            self._strategy_failed(exc, f"{type(exc).__name__}: {exc}", f"in on_data at {stamp}")
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
            if order.timestamp is None:  # as in a backtest: the bar the order was decided on
                order.timestamp = stamp.to_pydatetime()
            self._strategy_orders.append(order)
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
        journal = self.journal
        if journal is None:
            raise JournalError("the engine has no open journal; start() opens it before trading")
        decision = self.risk.check(
            order,
            price if math.isfinite(price) else None,
            self._last_positions,
            self._last_account_value if math.isfinite(self._last_account_value) else None,
            self._day_start_equity,
            open_orders=self.broker.get_open_orders(),
            expect_data=self._expect_data(),
        )
        strategy = self.strategy.name if self.strategy is not None else None
        try:
            ref = journal.record_intent(order, strategy)  # before anything is sent: nothing is lost
        except JournalError as exc:
            order.status = OrderStatus.REJECTED
            order.reject_reason = f"journal write failed, trading halted: {exc}"
            self._on_journal_failure(exc)
            return
        halt = self._halt_refusal(decision)
        if halt is not None:
            # Not an error: the halt itself was reported once, loudly; the journal keeps the refused order.
            self.risk.release_reservation(order)
            self.broker.reject(order, halt, order_ref=ref, report=False)
            log.warning(
                "order %s %s %g %s not sent, %s (journaled as rejected)",
                order.order_id,
                order.side,
                order.quantity,
                order.symbol,
                halt,
            )
            return
        if not decision.ok:
            self.broker.reject(order, f"risk check: {decision.reason}", order_ref=ref)
            return
        try:
            self.broker.execute_order(order, price, stamp.to_pydatetime(), order_ref=ref)
        except CopilotQuantError as exc:
            self.risk.release_reservation(order)  # never sent: its order-rate slot is free again
            self._record_error(f"order {order.order_id} {order.symbol}: {exc}", "order")
            return
        if order.status is not OrderStatus.REJECTED:
            self.risk.record_submitted(order)

    def _halt_refusal(self, decision: RiskDecision) -> str | None:
        """The reason an order is refused because trading is halted (kill switch, liveness, competing
        session), or None when the decision is not about a halt."""
        if decision.rule in (RiskRule.KILL_SWITCH, RiskRule.LIVENESS):
            return f"trading halted: {decision.reason}"
        if decision.ok and self._competing_since is not None:
            return f"trading halted: {self.halted}"
        return None

    # ------------------------------------------------------------------ the strategy's working orders
    def _strategy_open_orders(self) -> list[Order]:
        """``strategy.open_orders()``: working (or held back) and not being cancelled, oldest first."""
        requested = self._cancel_requested
        return [
            order
            for order in self._strategy_orders
            if id(order) not in requested
            and (
                order.status in (OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED)
                or (order.status is OrderStatus.CREATED and any(h is order for h in self._held))
            )
        ]

    def _strategy_cancel(self, order: Order | str) -> None:
        """``strategy.cancel(order)``: send the cancel to IB now (see the module docstring)."""
        name = self.strategy.name if self.strategy is not None else "the strategy"
        order_id = str(order.order_id) if isinstance(order, Order) else order
        target = self._find_strategy_order(order)
        if target is None:
            raise StrategyError(
                f"{name}.cancel({order_id!r}): unknown order; this strategy submitted no order with this id in "
                "this run, and none from an earlier run is still working at IB (orders count as submitted "
                "once on_data has returned them)"
            )
        held = next((i for i, h in enumerate(self._held) if h is target), None)
        if held is not None:  # never sent: it simply is not sent
            del self._held[held]
            target.status = OrderStatus.CANCELLED
            target.reject_reason = CANCELLED_BY_STRATEGY
            log.info(
                "%s cancelled order %s before it was sent (held while the market is closed)", name, order_id
            )
            return
        requested = id(target) in self._cancel_requested
        if requested or target.status not in (OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED):
            state = "being cancelled" if requested else f"already {target.status.value}"
            log.info("%s.cancel(%r): the order is %s; nothing to cancel", name, order_id, state)
            return
        self._cancel_requested.add(id(target))
        if self.broker.cancel_order(target, reason=CANCELLED_BY_STRATEGY):
            log.info("%s asked IB to cancel order %s", name, order_id)
        elif not target.status.is_done:
            self._unsent_cancels[id(target)] = target
            log.warning(
                "the cancel of order %s could not be sent to IB; it is retried when connected", order_id
            )

    def _find_strategy_order(self, order: Order | str) -> Order | None:
        """The strategy's order: this very object, or the latest one with this ``order_id``."""
        if isinstance(order, Order):
            return next((o for o in self._strategy_orders if o is order), None)
        return next((o for o in reversed(self._strategy_orders) if o.order_id == order), None)

    def _retry_cancels(self) -> None:
        """Send the strategy's cancels that could not be sent earlier (worker thread, connected)."""
        for key, order in list(self._unsent_cancels.items()):
            if order.status.is_done or self.broker.cancel_order(order, reason=CANCELLED_BY_STRATEGY):
                del self._unsent_cancels[key]

    def _release_held(self, now: pd.Timestamp) -> None:
        if self._held and is_market_open(now):
            held, self._held = self._held, []
            for order in held:
                self._submit(order, now)

    # ------------------------------------------------------------------ journal, reconciliation, rails
    def register_event_callback(self, callback: EventCallback) -> None:
        """``callback(kind, detail)`` on every engine event: start, reconcile, alert, halt, resume, kill_switch …

        It runs on the thread that raised the event (possibly the IB loop thread): keep it short.
        """
        self._event_callbacks.append(callback)

    def _emit_event(self, kind: EventKind | str, detail: str, *, level: int = logging.INFO) -> None:
        text = str(kind)
        self.events.append({"timestamp": datetime.now(UTC), "kind": text, "detail": detail})
        log.log(level, "engine event %s: %s", text, detail)
        journal = self.journal
        if journal is not None and not journal.closed:
            try:
                journal.record_event(kind, detail)
            except JournalError as exc:
                if text != EventKind.HALT:
                    self._on_journal_failure(exc)
        for callback in list(self._event_callbacks):
            try:
                callback(text, detail)
            except Exception:
                log.exception("event callback %r failed", callback)

    def _open_journal(self) -> bool:
        """Open the account's journal (once the managed account is known and checked)."""
        if self.journal is not None and not self.journal.closed:
            self.broker.journal = self.journal
            self._emit_event(EventKind.START, f"account {self.connection.account}")
            return True
        account = self.connection.account
        try:
            if self._journal_arg is not None and not isinstance(self._journal_arg, TradeJournal):
                self.journal = TradeJournal(self._journal_arg, account=account)
            else:
                if not account:
                    raise ConfigError("the IB account is unknown; connect() before start()")
                self.journal = TradeJournal(account=account)
        except (JournalError, ConfigError) as exc:
            self._record_error(f"cannot open the trade journal: {exc}", "journal")
            return False
        self._owns_journal = True
        self.broker.journal = self.journal
        self._emit_event(EventKind.START, f"account {account}, journal {self.journal.path}")
        return True

    def reconcile(self, reason: str = "manual") -> ReconcileReport:
        """Compare the journal with IB's orders, executions and positions; repair what can be repaired.

        Fills that happened while the engine was away are journaled and delivered to ``on_fill`` exactly
        once; orders that reached IB are never sent again (they are recognised by their ``orderRef``) and
        working ones are tracked again; orders placed outside the engine and positions the journal's fills
        do not explain are reported, not adopted (IB's cash is shown, not compared). The
        findings are logged, journaled and emitted as a ``reconcile`` event. Raises ``JournalError`` if the
        journal cannot be written (then the caller halts trading).
        """
        journal = self.journal
        if journal is None:
            raise JournalError("no journal is open; start() opens it")
        account = journal.account or self.connection.account or None
        self.broker.flush_journal()  # compare IB with everything already reported, not a queue behind
        state = self.connection.run(fetch_broker_state(self.connection.ib, account), timeout=30)
        report = reconcile_journal(
            journal.orders("active"),
            state.orders,
            state.executions,
            journal.fills(),
            journal.account,
            broker_positions=state.positions,
        )
        self._apply_reconcile(journal, report, state.working)
        self.last_reconcile = report
        lines = report.summary()
        for line in lines:
            log.warning("reconcile (%s): %s", reason, line)
        detail = f"{reason}: " + ("clean" if not lines else "; ".join(lines))
        if state.cash is not None:  # information only: deposits and fees never reach the journal
            detail += f" (IB cash {state.cash:,.2f}, not compared)"
        # each finding was logged as a warning just above: the event itself (journaled) is one INFO line
        self._emit_event(EventKind.RECONCILE, detail, level=logging.INFO)
        return report

    def _apply_reconcile(
        self, journal: TradeJournal, report: ReconcileReport, working: Mapping[str, tuple[int, int]]
    ) -> None:
        for record, broker in report.unconfirmed_submissions:
            if broker.broker_order_id is not None:
                journal.record_submitted(record.order_ref, broker.broker_order_id, broker.perm_id)
        for execution in report.missing_fills:
            ref = execution.order_ref
            tracked = self.broker.tracker.find(order_ref=ref) if ref else None
            if tracked is not None and self.broker.deliver_execution(tracked, execution):
                continue  # the adapter journals it and delivers it (once) like a live execution
            # IB never reuses an execution id: one journaled for another order is still this order's fill
            # (the journal records it with an alert); count it as the adapter does for a tracked order
            reused = (
                bool(ref)
                and journal.knows_fill(execution.exec_id)
                and not journal.knows_fill(execution.exec_id, ref)
            )
            if not journal.record_fill(
                ref,
                execution.exec_id,
                execution.symbol,
                execution.side,
                execution.quantity,
                execution.price,
                execution.time,
                execution.commission,
            ):
                continue
            if reused:
                self._record_error(
                    f"execution id {execution.exec_id} was reported before for another order; recorded as "
                    f"a fill of {ref} too (found by reconciliation)",
                    "order",
                )
            order = journal.order(ref).to_order() if ref and journal.has_order(ref) else None
            if order is None:
                continue
            fill = Fill(
                order,
                float(execution.price),
                float(execution.quantity),
                float(execution.commission or 0.0),
                execution.time,
                execution.exec_id,
            )
            self._fill_queue.put(fill)
            self._wake.set()
        for change in report.status_changes:
            journal.record_status(
                change.order_ref, change.broker_status, change.broker_filled, reason="reconciled with IB"
            )
        for record in report.vanished_orders:
            if record.order_ref not in working:
                journal.record_status(
                    record.order_ref, OrderStatus.CANCELLED, reason="no longer known to IB (reconciled)"
                )
        for record in report.unsent_intents:
            journal.record_rejected(
                record.order_ref, "journaled but never sent before a restart; not resent (reconciled)"
            )
        # Our orders still working at IB but not tracked by this process (a restart): track them again.
        for ref, (ib_id, perm_id) in working.items():
            if not ref or self.broker.tracker.find(order_ref=ref) is not None or not journal.has_order(ref):
                continue
            record = journal.order(ref)
            if record.state.is_done:
                continue
            tracked = self.broker.adopt(record.to_order(), ref, ib_id, perm_id)
            log.info("order %s (IB %d) is still working at IB: tracking it again", ref, ib_id)
            # the strategy's own order from its last run: open_orders() lists it, cancel() reaches it
            own = self.strategy is not None and record.strategy == self.strategy.name
            if own and not any(o is tracked.order for o in self._strategy_orders):
                self._strategy_orders.append(tracked.order)
        if report.foreign_orders or report.foreign_executions:
            self._emit_event(
                EventKind.ALERT,
                f"{len(report.foreign_orders)} order(s) and {len(report.foreign_executions)} execution(s) "
                "placed outside the engine: reported, not adopted",
                level=logging.WARNING,
            )

    def kill(self, reason: str = "kill switch", flatten: bool = False) -> None:
        """Engage the kill switch: no new orders, cancel every open order, optionally flatten positions.

        Safe from any thread and from signal handlers. Stays engaged until ``kill_switch.release()``.
        """
        self.kill_switch.engage(reason, cancel_all=True, flatten=flatten)
        self._emit_event(EventKind.KILL_SWITCH, f"{reason} (flatten={flatten})", level=logging.ERROR)
        if self.connection.runtime.on_loop_thread():
            self._kill_pending.set()  # blocking on the loop from its own thread would deadlock
            self._wake.set()
            return
        self._carry_out_kill()

    def _carry_out_kill(self) -> None:
        engagement = self.kill_switch.engagement
        if engagement is None:
            return
        if not self.connection.is_connected():
            self._kill_pending.set()  # cancel (and flatten) as soon as the connection is back
            return
        for order in self.broker.get_open_orders():
            self.broker.cancel_order(order, reason=f"kill switch: {engagement.reason}")
        if not engagement.flatten:
            return
        try:
            positions = self.broker.get_positions()
        except (BrokerError, TimeoutError, ConnectionError) as exc:
            self._record_error(f"kill switch: cannot read positions to flatten: {exc}", "kill_switch")
            return
        now = datetime.now(UTC)
        for symbol, position in positions.items():
            if position.is_flat:
                continue
            side = OrderSide.SELL if position.quantity > 0 else OrderSide.BUY
            order = Order(
                symbol=symbol,
                quantity=abs(position.quantity),
                order_type=OrderType.MARKET,
                side=side,
                allow_fractional=not float(position.quantity).is_integer(),
                tag="kill_switch_flatten",
            )
            ref = ""
            if self.journal is not None:
                try:
                    ref = self.journal.record_intent(order, "kill_switch")
                except JournalError as exc:
                    log.error("flattening %s without a journal entry: %s", symbol, exc)
            # Flattening bypasses the risk check on purpose: it is the way out, not a new risk.
            self.broker.execute_order(order, float("nan"), now, order_ref=ref)

    def _on_journal_failure(self, error: JournalError) -> None:
        """A journal write failed: halt trading (kill switch), say so loudly. Any thread."""
        self._record_error(f"journal write failed; trading halted: {error}", "journal")
        if not self.kill_switch.is_engaged:
            self.kill(f"journal write failed: {error}")

    def _expect_data(self) -> bool:
        now = self._server_now
        return now is not None and is_market_open(now)

    def _check_liveness(self) -> None:
        since = self._competing_since
        if since is not None and time.monotonic() - self.connection.seconds_since_data > since:
            self._competing_since = None  # market data flows again
            self._emit_event(EventKind.RESUME, "market data flows again after the competing session")
        guard = self.risk.liveness
        if guard is None or not self._running:
            return
        now = datetime.now(UTC)
        if self.connection.state.has_socket:
            guard.on_data(now - timedelta(seconds=self.connection.seconds_since_data))
        reason = guard.check(now, expect_data=self._expect_data())
        if reason is not None and self._halt_reason is None:
            self._halt_reason = reason
            self._emit_event(EventKind.ALERT, reason, level=logging.ERROR)
            self._emit_event(EventKind.HALT, reason, level=logging.ERROR)
        elif reason is None and self._halt_reason is not None:
            self._emit_event(EventKind.RESUME, f"trading resumed after: {self._halt_reason}")
            self._halt_reason = None

    @property
    def halted(self) -> str | None:
        """Why trading is halted (kill switch or liveness), or None while orders may go out."""
        if self.kill_switch.is_engaged:
            return f"kill switch engaged: {self.kill_switch.reason}"
        if self._competing_since is not None:
            return "competing live session (IB 10197): no market data"
        return self._halt_reason

    def watch_kill_file(self, path: str | Path) -> None:
        """Also watch ``path`` as a kill-switch file (besides ``kill_switch_file``), e.g. the account's own
        ``<journal dir>/<ACCOUNT>.kill`` when the engine was given a file of its own."""
        target = Path(path)
        if target != self.kill_switch_file and target not in self._also_watched:
            self._also_watched.append(target)

    def _kill_files(self) -> list[Path]:
        own = [self.kill_switch_file] if self.kill_switch_file is not None else []
        return own + self._also_watched

    def _check_kill_file(self) -> None:
        """Engage the kill switch when a kill-switch file appears, and escalate to flattening when a later
        write of one asks for that (``copilot-quant kill --flatten`` after a plain kill)."""
        for path in self._kill_files():
            stamp = _file_stamp(path)
            if stamp is None or stamp == self._kill_file_seen.get(path):
                continue
            self._kill_file_seen[path] = stamp
            found = read_kill_file(path)
            if found is None:
                continue  # removed between the stat and the read
            engagement = self.kill_switch.engagement
            if engagement is not None and (engagement.flatten or not found.flatten):
                continue  # already halted, and the file asks for nothing more
            said = f": {found.text}" if found.text else ""
            self.kill(f"kill switch file {path}{said}", flatten=found.flatten)

    # ------------------------------------------------------------------ fills and errors
    def _on_connection_change(self, old: ConnectionState, new: ConnectionState, reason: str) -> None:
        now = datetime.now(UTC)
        if new.has_socket:
            self.risk.liveness.on_connected(now)  # type: ignore[union-attr]
        elif self._running:
            self.risk.liveness.on_disconnected(now)  # type: ignore[union-attr]
        self._wake.set()  # the worker re-checks the state now, not after update_interval

    def _on_ib_message(self, req_id: int, code: int, message: str) -> None:  # IB loop thread
        if code != _COMPETING_SESSION or self._competing_since is not None:
            return
        # Another session (TWS, mobile) took the market data: trading on would be trading blind.
        self._competing_since = time.monotonic()
        reason = f"IB {code}: competing live session, no market data ({message}); trading halted"
        self._emit_event(EventKind.ALERT, reason, level=logging.ERROR)
        self._emit_event(EventKind.HALT, reason, level=logging.ERROR)
        self._wake.set()

    def _on_restored(self, data_lost: bool) -> None:  # IB loop thread: the worker reconciles
        self._reconcile_pending.set()
        self._wake.set()

    def _on_fill_event(self, fill: Fill) -> None:  # IB loop thread: hand over, never block
        self._fill_queue.put(fill)
        self._wake.set()

    def _drain_fills(self) -> int:
        """Deliver queued fills to ``on_fill`` (worker thread); returns how many."""
        strategy = self.strategy
        count = 0
        while True:
            try:
                fill = self._fill_queue.get_nowait()
            except queue.Empty:
                return count
            count += 1
            self.fills.append(fill)
            if strategy is not None:
                try:
                    strategy.on_fill(fill)
                except Exception as exc:
                    self._strategy_failed(exc, f"{type(exc).__name__} in on_fill: {exc}", "in on_fill")

    def _on_order_error(self, record: OrderRecord, message: str) -> None:
        order = record.order
        self._record_error(
            f"order {order.order_id} {order.side} {order.quantity:g} {order.symbol}: {message}", "order"
        )

    def _record_error(self, message: str, kind: str, *, quiet: bool = False) -> None:
        with self._errors_lock:
            self.errors.append({"timestamp": datetime.now(UTC), "error": message, "type": kind})
            self.total_errors += 1
        log.log(logging.DEBUG if quiet else logging.ERROR, "%s error: %s", kind, message)

    def _strategy_failed(self, exc: BaseException, message: str, where: str) -> None:
        """Count and keep a strategy exception; log its traceback while ``max_logged_errors`` allows (the
        rest at DEBUG without one, so a strategy that raises on every bar does not flood the log)."""
        limit = self.max_logged_errors
        self._strategy_errors_logged += 1
        loud = limit is None or self._strategy_errors_logged <= limit
        self._record_error(message, "strategy", quiet=not loud)
        name = self.strategy.name if self.strategy is not None else "?"
        if loud:
            log.error("strategy %s failed %s", name, where, exc_info=exc)
        else:
            log.debug("strategy %s failed %s: %s", name, where, message)

    # ------------------------------------------------------------------ account and reporting
    def _refresh_account(self) -> None:
        try:
            # one trip to the loop thread, not three: this runs after every fill, before on_data
            value, cash, positions = self.broker.account_snapshot()
            self._last_account_value, self._last_cash, self._last_positions = value, cash, positions
        except (BrokerError, TimeoutError, ConnectionError) as exc:
            log.debug("account refresh failed: %s", exc)
            return
        today = self._trading_day()
        if self._equity_day != today and math.isfinite(self._last_account_value):
            # The daily-loss limit counts from the first account value seen each trading day.
            self._equity_day, self._day_start_equity = today, self._last_account_value

    def _trading_day(self) -> date:
        """The exchange's date now (New York for the NYSE), by the broker's clock when known: a session
        never spans two of them, while a UTC day splits the evening off (8 pm New York is already tomorrow).
        """
        now = self._server_now or pd.Timestamp.now(tz="UTC")
        return now.tz_convert(EXCHANGE_TZ).date()

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
            "halted": self.halted,
            "journal": str(self.journal.path) if self.journal is not None else None,
        }

    def __repr__(self) -> str:
        name = self.strategy.name if self.strategy is not None else None
        return f"LiveStrategyEngine(strategy={name}, running={self._running}, {self.connection.settings.describe()})"
