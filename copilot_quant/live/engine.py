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
are tracked (fills, statuses, the kill switch) and, if a strategy of the same name sent them, listed
there and cancellable by it.

Architecture (``copilot_quant.live``): the engine wires its parts — the :class:`BarClock` (when a bar is
complete and final), one :class:`StrategySlot` per strategy (its orders and cancels), the
:class:`OrderRouter` (market hours → risk → journal intent → broker), the :class:`Reconciler` (a state
machine; no order goes out until the books are reconciled), :class:`Safety` (kill switch, kill files,
liveness, competing session: one ``halted``), the :class:`AccountState` a strategy sees through its view,
and named events (:class:`EngineEvents`). It owns one :class:`~copilot_quant.brokers.connection.IBConnection`
(one socket, one client id) shared by its :class:`LiveDataFeedAdapter` and :class:`LiveBrokerAdapter`.
ib_async runs on the connection's loop thread; the strategy runs on the engine's own worker thread, which
sleeps on an event (woken by new bars, fills, or every ``update_interval`` seconds) — so ``stop()`` is
prompt and the user's thread is free (the guide's ``time.sleep(60)`` loop works).

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
after every reconnect, retrying a failed reconciliation until it succeeds (no order goes out meanwhile).
Each order passes the :class:`~copilot_quant.risk.RiskManager` (limits, kill switch, liveness), is
journaled as an intent *before* it is sent, carries its journal ref as IB ``orderRef`` (so it is never
sent twice, whatever crashes), and every status, fill, commission and error is journaled; a fill reaches
``on_fill`` only if the journal did not hold its ``execId`` yet (exactly once, across restarts). A failed
journal write engages the kill switch. Engine events (start, reconcile, alert, halt, resume, kill_switch,
stop) are journaled, kept in :attr:`events`, emitted on ``engine.on.event`` and sent to
:meth:`register_event_callback`.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import pandas as pd

from copilot_quant.backtest.books import allocate_capital, check_capital
from copilot_quant.backtest.strategy import Strategy
from copilot_quant.brokers.config import check_live_confirmed, live_confirmed, resolve_connection
from copilot_quant.brokers.connection import IBConnection
from copilot_quant.brokers.ib_mapping import check_interval
from copilot_quant.brokers.live_broker_adapter import LiveBrokerAdapter
from copilot_quant.brokers.live_data_adapter import LiveDataFeedAdapter
from copilot_quant.brokers.market_hours import OutsideHours
from copilot_quant.brokers.order_tracking import OrderRecord
from copilot_quant.brokers.reconnect import ConnectionState
from copilot_quant.errors import (
    BrokerError,
    ConfigError,
    CopilotQuantError,
    JournalError,
    NotConnectedError,
    StrategyError,
)
from copilot_quant.journal import EventKind, ReconcileReport, TradeJournal
from copilot_quant.live.account_view import AccountState, StrategyView
from copilot_quant.live.bar_clock import BarClock
from copilot_quant.live.events import EngineEvents, ErrorLog, EventLog, RecentList
from copilot_quant.live.fills import FillDispatcher
from copilot_quant.live.flatten import flatten_strategies
from copilot_quant.live.holdings import opening_books
from copilot_quant.live.order_router import OrderRouter
from copilot_quant.live.reconciler import Reconciler
from copilot_quant.live.safety import Safety
from copilot_quant.live.strategy_slot import StrategySlot
from copilot_quant.live.summary import strategy_summaries
from copilot_quant.model.orders import Fill, Order, continue_order_ids_after
from copilot_quant.risk import KillSwitch, LivenessGuard, RiskLimits, RiskManager

__all__ = ["LiveStrategyEngine"]

log = logging.getLogger(__name__)

EventCallback = Callable[[str, str], Any]
#: How often (seconds) a sleeping worker checks the kill-switch file and the liveness guard.
_RAIL_POLL_S = 1.0
#: The longest a stop with ``flatten_on_stop`` waits for the closing fills (at least ``fill_timeout``).
_FLATTEN_WAIT_S = 10.0
#: The longest the worker waits for IB's position update after fills before the next ``on_data``.
_POSITION_SYNC_S = 0.5


class LiveStrategyEngine:
    """Runs one or more strategies live on one account: data in, orders out, fills back (see the module
    docstring and :meth:`add_strategy`).

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
        flatten_on_stop: in :meth:`stop`, each strategy cancels its own working orders and closes its own
            positions at market (the account's other positions are left alone), waiting up to 10 s (or
            ``fill_timeout``) for the closing fills; by default a stop leaves
            positions and working orders (GTC ones for days) at IB, and says which orders still work.
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
        flatten_on_stop: bool = False,
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
        if max_logged_errors is not None and max_logged_errors < 0:
            raise ConfigError(
                f"max_logged_errors must be 0 or more (or None for all), got {max_logged_errors}"
            )
        try:
            outside = OutsideHours(str(outside_hours).lower())
        except ValueError:
            raise ConfigError(
                f"outside_hours={outside_hours!r} is not one of 'allow', 'hold', 'reject'"
            ) from None
        settings = resolve_connection(paper_trading, host, port, client_id, use_gateway)
        self.paper_trading = paper_trading
        self.update_interval = float(update_interval)
        self.enable_reconnect = enable_reconnect
        self.cancel_on_stop = cancel_on_stop
        self.flatten_on_stop = bool(flatten_on_stop)
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
        self._stop = threading.Event()
        self.data_feed.bars_changed = self._wake  # bar updates wake the worker directly

        #: The engine's named events (eventkit): ``on.event(kind, detail)``, ``on.error(kind, message)``.
        self.on = EngineEvents()
        self._errors = ErrorLog(self.on, max_errors, max_logged_errors)
        self._journal_arg = journal
        self.journal: TradeJournal | None = journal if isinstance(journal, TradeJournal) else None
        self._owns_journal = False
        self._events = EventLog(self.on, lambda: self.journal, self._on_journal_failure)
        self.clock = BarClock(self.data_feed)
        self.account = AccountState()
        liveness = LivenessGuard(max_disconnect_s, max_stale_data_s)
        self.risk = RiskManager(risk_limits, liveness=liveness)
        self.kill_switch: KillSwitch = self.risk.kill_switch
        self.safety = Safety(
            connection=self.connection,
            broker=self.broker,
            risk=self.risk,
            liveness=liveness,
            clock=self.clock,
            events=self._events,
            errors=self._errors,
            journal=lambda: self.journal,
            wake=self._wake,
            running=lambda: self._running,
            kill_switch_file=Path(kill_switch_file) if kill_switch_file is not None else None,
            claims=self._claims,
        )
        self.router = OrderRouter(
            broker=self.broker,
            feed=self.data_feed,
            risk=self.risk,
            safety=self.safety,
            clock=self.clock,
            account=self.account,
            errors=self._errors,
            journal=lambda: self.journal,
            outside_hours=outside,
            reconciled=lambda: self.reconciler.reconciled,
            stopping=self._stop,
        )
        self._slots: list[StrategySlot] = []
        self.dispatcher = FillDispatcher(
            broker=self.broker,
            journal=lambda: self.journal,
            account=self.account,
            errors=self._errors,
            wake=self._wake,
            slots=lambda: self._slots,
        )
        self.reconciler = Reconciler(
            connection=self.connection,
            broker=self.broker,
            journal=lambda: self.journal,
            events=self._events,
            errors=self._errors,
            deliver=self.dispatcher.recovered,
            adopted=self._adopted,
        )
        self.bars_processed = 0
        self.symbols: list[str] = []
        self.data_interval = "1d"
        self._state_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._running = False
        self._finished = True
        self._timer_fired = False
        self._polled_only = False

        self.broker.register_fill_callback(self.dispatcher.live)
        self.broker.register_error_callback(self._on_order_error)
        self.broker.register_journal_failure_callback(self._on_journal_failure)
        self.connection.machine.state_changed += self.safety.on_connection_change
        self.connection.machine.state_changed += self._on_connection_change
        self.connection.restored += self._on_restored
        self.connection.ib_error += self.safety.on_ib_message

    # ------------------------------------------------------------------ read-only state
    @property
    def strategy(self) -> Strategy | None:
        """The strategy this engine runs (the first one added, with several), or None."""
        return self._slots[0].strategy if self._slots else None

    @property
    def strategy_slots(self) -> tuple[StrategySlot, ...]:
        """One slot per strategy added, in the order they were added."""
        return tuple(self._slots)

    @property
    def fills(self) -> list[Fill]:
        """Every real fill received while running, in order."""
        return self.dispatcher.fills

    @property
    def _sleeves(self) -> bool:
        """Whether each strategy reads its own sleeve (several strategies, or a capital given)."""
        return len(self._slots) > 1 or any(s.capital is not None for s in self._slots)

    @property
    def errors(self) -> RecentList[dict[str, Any]]:
        """The last ``max_errors`` errors, oldest first: ``{'timestamp', 'error', 'type'}`` dicts."""
        return self._errors.entries

    @property
    def total_errors(self) -> int:
        return self._errors.total

    @property
    def max_logged_errors(self) -> int | None:
        return self._errors.max_logged_errors

    @property
    def events(self) -> RecentList[dict[str, Any]]:
        """The last engine events, oldest first: ``{'timestamp', 'kind', 'detail'}`` dicts."""
        return self._events.entries

    @property
    def outside_hours(self) -> OutsideHours:
        return self.router.outside_hours

    @property
    def last_bar(self) -> pd.Timestamp | None:
        """The last bar delivered to the strategy (UTC), or None before the first."""
        return self.clock.last_bar

    # parity.py (and older code) read the private name
    _last_bar = last_bar

    @property
    def last_reconcile(self) -> ReconcileReport | None:
        return self.reconciler.last_report

    @property
    def halted(self) -> str | None:
        """Why trading is halted (kill switch, liveness, competing session), or None while orders may go out."""
        return self.safety.halted

    @property
    def kill_switch_file(self) -> Path | None:
        """The kill-switch file the engine watches (besides those given to :meth:`watch_kill_file`)."""
        return self.safety.kill_switch_file

    @kill_switch_file.setter
    def kill_switch_file(self, path: str | Path | None) -> None:
        self.safety.kill_switch_file = Path(path) if path is not None else None

    # ------------------------------------------------------------------ setup and connection
    def add_strategy(self, strategy: Strategy, *, capital: float | None = None) -> None:
        """Add a strategy to run (call it again for several, while stopped).

        Strategies share the account (cash, buying power, risk limits, the kill switch); each has its own
        book: ``self.positions``, ``on_fill`` and ``open_orders()`` concern only its own orders, which are
        tagged with its name (the journal's strategy, carried to IB as the order's ``orderRef``). IB sees the
        netted position. Names must differ: the name is the tag, also across restarts. With several
        strategies (or a ``capital``), ``self.cash``/``self.equity`` are the strategy's sleeve, as in
        :meth:`BacktestEngine.add_strategy <copilot_quant.backtest.engine.BacktestEngine.add_strategy>`:
        ``capital`` is its share of the account's value at start (default: an equal share of what the
        others were not given).
        """
        if not isinstance(strategy, Strategy):
            raise StrategyError(
                f"add_strategy() needs a Strategy instance, got {type(strategy).__name__}; "
                "subclass copilot_quant.backtest.strategy.Strategy"
            )
        if self._running:
            raise StrategyError("cannot change the strategies while the engine is running; call stop() first")
        if any(slot.strategy is strategy for slot in self._slots):
            raise StrategyError(f"{strategy.name} was already added to this engine")
        if any(slot.name == strategy.name for slot in self._slots):
            raise StrategyError(
                f"a strategy named {strategy.name!r} was already added; each strategy's orders are tagged with "
                f"its name, so give this one another: strategy.name = '{strategy.name}2'"
            )
        self._slots.append(StrategySlot(strategy, capital=check_capital(capital)))

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
        if not self._slots:
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
        for slot in self._slots:
            slot.reset()
        self.dispatcher.booking = False  # fills found at start are in what the books open from
        self.safety.liveness.on_connected(datetime.now(UTC))
        try:
            if self.journal is not None:  # new order ids never repeat a journaled one
                continue_order_ids_after(self.journal.order_ids())
            self.reconciler.run("start")  # before trading: what happened while we were not running
        except JournalError as exc:
            self._on_journal_failure(exc)
            return False
        except (BrokerError, TimeoutError, ConnectionError):
            return False  # the reconciler recorded why: not trading
        self._open_books()
        if not self._begin_streams(names, lookback_days, data_interval):
            return False
        self._stop.clear()
        self._wake.clear()
        self._running = True
        self._finished = False
        self._thread = threading.Thread(target=self._run, name="copilot-quant-engine", daemon=True)
        self._thread.start()
        log.info(
            "started %s on %s (%s bars)",
            ", ".join(s.name for s in self._slots),
            ", ".join(names),
            data_interval,
        )
        return True

    def _open_books(self) -> None:
        """Open the account's ledger from IB and each strategy's book from its journaled fills, and say
        what the account holds and whose it is."""
        self._refresh_account()
        ledger = self.account.open_ledger()
        names = [s.name for s in self._slots]
        books, lines = opening_books(self.journal, names, ledger.positions)
        value = self.account.known_value
        capitals = allocate_capital(
            value if value is not None else ledger.cash, [s.capital for s in self._slots], names
        )
        for slot, capital in zip(self._slots, capitals, strict=True):
            slot.book = books[slot.name]
            slot.book.capital = capital
        self.dispatcher.booking = True
        for line in lines:
            log.info("%s", line)
        if lines:
            self._events.emit("holdings", "; ".join(lines))

    def _begin_streams(self, names: list[str], lookback_days: int, data_interval: str) -> bool:
        """Stream bars, subscribe quotes, initialize the strategies and start the bar clock."""
        streamed = self.data_feed.stream_bars(names, data_interval, lookback_days)
        missing = [s for s, ok in streamed.items() if not ok]
        if missing:
            self._record_error(f"could not load data for {', '.join(missing)}", "data")
            self.data_feed.stop_bar_streams()
            return False
        self.data_feed.subscribe(names)
        self.symbols, self.data_interval = names, data_interval
        self.router.symbols = frozenset(names)
        for slot in self._slots:
            strategy = slot.strategy
            strategy.bind(
                StrategyView(slot, self.account, self._strategy_cancel, tuple(names), sleeve=self._sleeves)
            )
            try:
                strategy.initialize()
                strategy.on_start()
            except Exception as exc:
                self._errors.strategy_failed(
                    strategy.name, exc, f"{type(exc).__name__}: {exc}", "to initialize"
                )
                self.data_feed.stop_bar_streams()
                self.data_feed.unsubscribe(names)
                return False
        self.clock.start(names)
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
        left = ""
        if self.connection.is_connected():
            if self.flatten_on_stop:
                wait = max(self.broker.fill_timeout, _FLATTEN_WAIT_S)
                flatten_strategies(self._slots, self.broker, self.journal, wait)
                self.broker.flush_fills()
                self._drain_fills()  # the closing fills reach the books and on_fill before on_stop
            left = self._leave_orders()
            try:
                self.data_feed.unsubscribe(self.symbols)
                self.data_feed.stop_bar_streams()
            except (BrokerError, TimeoutError, ConnectionError) as exc:
                log.warning("unsubscribing failed: %s", exc)
        for slot in self._slots:
            for hook in (slot.strategy.on_stop, slot.strategy.finalize):
                try:
                    hook()
                except Exception as exc:
                    message = f"{type(exc).__name__} in {hook.__name__}: {exc}"
                    self._errors.strategy_failed(slot.name, exc, message, f"in {hook.__name__}")
        self.broker.flush_journal()  # what IB reported up to now is in the journal before it closes
        detail = why + left
        level = logging.WARNING if "still working" in left else logging.INFO
        self._events.emit(EventKind.STOP, detail, level=level, journaled=False)
        journal = self.journal
        if journal is not None:
            try:  # a journal failure now must not engage the kill switch (it would cancel orders)
                journal.record_event(EventKind.STOP, detail)
            except JournalError as exc:
                log.error("could not journal the stop: %s", exc)
            if self._owns_journal:
                self.broker.journal = None
                journal.close()
                self.journal = None
        log.info("engine stopped: %s", why)

    def _leave_orders(self) -> str:
        """Cancel the working orders if asked to; say which ones stay working at IB (they can still fill)."""
        working = self.broker.get_open_orders()
        if self.cancel_on_stop and working:
            for order in working:
                self.broker.cancel_order(order, reason="engine stopped (cancel_on_stop=True)")
            return f"; cancel sent for {len(working)} working order(s)"
        if not working:
            return ""
        listed = ", ".join(
            f"{o.order_id} {o.side} {o.remaining_quantity:g} {o.symbol} {o.order_type} ({o.time_in_force})"
            for o in working
        )
        return (
            f"; {len(working)} order(s) still working at IB and may fill without the engine: {listed} — "
            "cancel them in TWS, or run with cancel_on_stop/--flatten-on-stop"
        )

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
                    self.safety.check_kill_files()
                    self.safety.check_liveness()
                    self._timer_fired = self._sleep()
                    continue
                self.safety.poll()
                if self.connection.state is ConnectionState.STOPPED:
                    self._record_error(
                        "connection to IB lost and not reconnecting; engine stopped", "connection"
                    )
                    break
                if self.connection.state is ConnectionState.CONNECTED:
                    self._guarded_step()
                self._timer_fired = self._sleep()
        finally:
            self._finish("worker exited")

    def _guarded_step(self) -> None:
        """One step of the worker; whatever goes wrong is recorded, never ends the loop."""
        try:
            if not self.reconciler.run_due():
                return  # no bar, no order until the books are reconciled (retried with backoff)
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

    def _sleep(self) -> bool:
        """Sleep until woken or ``update_interval`` passes (then True); poll the rails every second.

        A pending settle re-check (see :meth:`BarClock.completed`) shortens the sleep and counts as the timer.
        """
        deadline = time.monotonic() + self.update_interval
        if self.clock.recheck_at is not None:
            deadline = min(deadline, self.clock.recheck_at)
        retry_at = self.reconciler.retry_at
        if retry_at is not None:
            deadline = min(deadline, retry_at)
        self._polled_only = False
        while not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                self.clock.recheck_at = None
                return True
            if self._wake.wait(min(left, _RAIL_POLL_S)):
                self._wake.clear()
                return False
            if self.safety.need_attention():
                self._polled_only = True
                return False
        return False

    def _step(self) -> None:
        now = self.clock.now_ns(fresh=self._timer_fired)
        self._timer_fired = False
        for slot in self._slots:
            if slot.unsent_cancels:
                slot.retry_cancels(self.broker)
            if slot.held:
                self.router.release_held(slot, pd.Timestamp(now, tz="UTC"))
        new = self.clock.completed(now)
        if len(new) == 0:
            self._refresh_account()
            return
        # One DataFrame per step, built once: pandas calls cost ~0.2 ms each on a cold CPU between bars,
        # so the path from a bar to its orders decides on int64 stamps and touches pandas only here.
        data = self.clock.window(int(new[-1]))
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
            self.account.marks.set(window, self.symbols)
            self._deliver(stamp, window)
            self.clock.last_bar = stamp
            self._drain_fills()
        self._refresh_account()  # after the orders: the account view is off the tick-to-order path

    def _deliver(self, stamp: pd.Timestamp, window: pd.DataFrame) -> None:
        self.bars_processed += 1
        for slot in self._slots:
            self._deliver_to(slot, stamp, window)

    def _deliver_to(self, slot: StrategySlot, stamp: pd.Timestamp, window: pd.DataFrame) -> None:
        try:
            orders = slot.strategy.on_data(stamp, window)
        except Exception as exc:
            self._errors.strategy_failed(
                slot.name, exc, f"{type(exc).__name__}: {exc}", f"in on_data at {stamp}"
            )
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
            slot.add(order)
            self.router.submit(slot, order, stamp)

    def _strategy_cancel(self, slot: StrategySlot, order: Order | str) -> None:
        slot.cancel(order, self.broker)

    # ------------------------------------------------------------------ journal, reconciliation, rails
    def register_event_callback(self, callback: EventCallback) -> None:
        """``callback(kind, detail)`` on every engine event: start, reconcile, alert, halt, resume, kill_switch …

        It runs on the thread that raised the event (possibly the IB loop thread): keep it short. The same
        events are on ``engine.on.event`` (eventkit).
        """

        def guarded(kind: str, detail: str) -> None:
            try:
                callback(kind, detail)
            except Exception:
                log.exception("event callback %r failed", callback)

        self.on.event.connect(guarded, keep_ref=True)

    def _open_journal(self) -> bool:
        """Open the account's journal (once the managed account is known and checked)."""
        if self.journal is not None and not self.journal.closed:
            self.broker.journal = self.journal
            self._events.emit(EventKind.START, f"account {self.connection.account}")
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
        self._events.emit(EventKind.START, f"account {account}, journal {self.journal.path}")
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
        return self.reconciler.run(reason)

    def _adopted(self, strategy: str, order: Order) -> None:
        """An order of an earlier run still working at IB: the slot of the strategy of that name owns it."""
        for slot in self._slots:
            if slot.name == strategy and not slot.owns(order):
                slot.add(order)
                return

    def kill(self, reason: str = "kill switch", flatten: bool = False) -> None:
        """Engage the kill switch: no new orders, cancel every open order, optionally flatten positions.

        Safe from any thread and from signal handlers. Stays engaged until ``kill_switch.release()``.
        """
        self.safety.kill(reason, flatten)

    def watch_kill_file(self, path: str | Path) -> None:
        """Also watch ``path`` as a kill-switch file (besides ``kill_switch_file``), e.g. the account's own
        ``<journal dir>/<ACCOUNT>.kill`` when the engine was given a file of its own."""
        self.safety.watch(path)

    def _claims(self) -> dict[str, dict[str, float]]:
        """Each strategy's positions by its own book (worker thread; the kill switch splits by them)."""
        return {s.name: {sym: p.quantity for sym, p in s.book.positions().items()} for s in self._slots}

    def _on_journal_failure(self, error: JournalError) -> None:
        self.safety.on_journal_failure(error)

    # ------------------------------------------------------------------ fills and errors
    def _on_connection_change(self, old: ConnectionState, new: ConnectionState, reason: str) -> None:
        if self._running and old.has_socket and not new.has_socket:
            # from the moment the socket drops the books may differ from IB's: nothing goes out until the
            # reconciliation after the reconnect succeeded
            self.reconciler.request("reconnect")

    def _on_restored(self, data_lost: bool) -> None:  # IB loop thread: the worker reconciles
        self.reconciler.request("reconnect")
        self._wake.set()

    def _drain_fills(self) -> int:
        """Book queued fills and deliver them to their strategy's ``on_fill`` (worker thread)."""
        return self.dispatcher.drain()

    def _on_order_error(self, record: OrderRecord, message: str) -> None:
        order = record.order
        self._record_error(
            f"order {order.order_id} {order.side} {order.quantity:g} {order.symbol}: {message}", "order"
        )

    def _record_error(self, message: str, kind: str, *, quiet: bool = False) -> None:
        self._errors.record(message, kind, quiet=quiet)

    # ------------------------------------------------------------------ account and reporting
    def _refresh_account(self) -> None:
        self.account.refresh(self.broker, self.clock.trading_day)

    def get_performance_summary(self) -> dict[str, Any]:
        """Account value, cash, positions ``{symbol: quantity}``, fills, errors and state, as plain values:
        the account combined (as IB reports it), and ``strategies``: each strategy's own positions, fills,
        commissions, realized P&L, P&L at the last bar, open orders and errors (see
        :mod:`copilot_quant.live.summary`)."""
        if self.is_connected():
            self._refresh_account()
        account = self.account
        return {
            "strategy": self.strategy.name if self.strategy is not None else None,
            "strategies": strategy_summaries(self._slots, account.marks, self._errors.by_strategy),
            "account_value": float(account.value),
            "cash_balance": float(account.cash),
            "positions": {s: p.quantity for s, p in account.positions.items()},
            "total_fills": len(self.fills),
            "total_errors": self.total_errors,
            "bars_processed": self.bars_processed,
            "last_bar": self.last_bar,
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
