"""``LiveStrategyEngine``: run unchanged backtest strategies against IB (paper or live), on one account.

Timing model, in one sentence: each strategy's ``on_data(timestamp, data)`` is called once per newly
*completed* bar — a bar whose close time has passed on the broker's clock — with the lookback history plus
every live bar up to and including that one (never a later one), in exactly the backtest's shape (flat
``Open, High, Low, Close, Volume`` for one symbol, ``(Metric, Symbol)`` columns for several, tz-aware UTC
index and ``timestamp``); the orders it returns go to IB immediately and fill at the prices IB reports.
Cancels and working orders follow :mod:`copilot_quant.backtest.strategy`'s live contract.

The engine wires the parts of :mod:`copilot_quant.live` (bar clock, strategy slots, order router,
reconciler, safety, account view, fills, events, worker, and the reactions to what real IB does —
``ib_reactions.py``, ``link_policy.py``, docs/ib-behaviours.md) around one
:class:`~copilot_quant.brokers.connection.IBConnection` (one socket, one client id) shared by its
:class:`LiveDataFeedAdapter` and :class:`LiveBrokerAdapter`. ib_async runs on the connection's loop
thread; the strategies run on the engine's worker thread — so ``stop()`` is prompt and the user's thread
is free (the guide's ``time.sleep(60)`` loop works). Its read-only state, its start, its stop and its
performance summary are mixins of their own: ``engine_state.py``, ``engine_start.py``, ``engine_stop.py``,
``engine_report.py``.

Threading contract: public methods may be called from any thread (not from strategy callbacks, except
``stop()``). ``strategy.on_data`` and ``on_fill`` run on ib_async's loop thread when inline dispatch is on
(the default: :mod:`copilot_quant.live.inline`), else on the worker thread; ``on_stop`` and ``finalize``
on the worker or the stopping thread — never two of them at once (the worker's step lock).

Errors: an exception in a strategy hook, an order rejection or an order error never stops the engine; each
is logged and appended to :attr:`errors` (the last ``max_errors`` ``{'timestamp', 'error', 'type'}``
dicts); ``total_errors`` counts all. An order refused because trading is halted is not an error: the halt
was reported once (``alert``/``halt``/``kill_switch`` events); each refused order is one WARNING line and
is journaled as rejected with the reason.

Trust: :meth:`start` opens the account's durable :class:`~copilot_quant.journal.TradeJournal` and
reconciles it with IB before trading, as the worker does after every reconnect (retrying until it
succeeds; no order goes out meanwhile). Each order passes the :class:`~copilot_quant.risk.RiskManager`, is
journaled as an intent *before* it is sent and carries its journal ref as IB ``orderRef`` (never sent
twice, whatever crashes); a fill reaches ``on_fill`` once, across restarts. A symbol whose IB position
disagrees with the strategies' books is not traded until they agree or IB's position is adopted
(:mod:`~copilot_quant.live.position_guard`, :meth:`adopt_broker_positions`). A failed journal write engages
the kill switch. Engine events are journaled, kept in :attr:`events` and emitted on ``engine.on.event``.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from copilot_quant.backtest.books import check_capital
from copilot_quant.backtest.rolls import check_roll_days
from copilot_quant.backtest.strategy import Strategy
from copilot_quant.brokers.config import check_live_confirmed, live_confirmed, resolve_connection
from copilot_quant.brokers.connection import IBConnection
from copilot_quant.brokers.live_broker_adapter import LiveBrokerAdapter
from copilot_quant.brokers.live_data_adapter import LiveDataFeedAdapter
from copilot_quant.brokers.market_hours import OutsideHours
from copilot_quant.brokers.order_tracking import OrderRecord
from copilot_quant.brokers.reconnect import ConnectionState
from copilot_quant.errors import (
    ConfigError,
    JournalError,
    NotConnectedError,
    StrategyError,
)
from copilot_quant.journal import ReconcileReport, TradeJournal
from copilot_quant.live.engine_start import EngineStart
from copilot_quant.live.engine_stop import EngineStop
from copilot_quant.live.gc_policy import BetweenBarsGc
from copilot_quant.live.position_watch import PositionWatch
from copilot_quant.live.strategy_slot import StrategySlot, claims
from copilot_quant.live.wiring import EngineHooks, EngineOptions, build_parts
from copilot_quant.model.orders import Order
from copilot_quant.risk import KillSwitch, RiskLimits

__all__ = ["LiveStrategyEngine"]

log = logging.getLogger(__name__)

EventCallback = Callable[[str, str], Any]


class LiveStrategyEngine(EngineStart, EngineStop):
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
        adopt_broker_positions: at :meth:`start`, take IB's positions as the truth where the journal's books
            disagree with them: journal adjusting records so that the books equal IB (see
            :meth:`adopt_broker_positions`). Default: such a symbol is blocked until they agree.
        inline_dispatch: run each completed bar's pipeline (fills to ``on_fill``, ``on_data``, risk, the
            journal's intent, ``placeOrder``) on ib_async's loop thread, in its bar handler, instead of
            handing it to the worker thread and back (default ``True``: the shortest path from a bar to its
            orders; the worker still runs the rails, reconciliation and the periodic step, and takes any
            bar the loop cannot — see :mod:`copilot_quant.live.inline`). ``False``: the worker runs all.
        gc_between_bars: while the engine runs, Python's garbage collector runs on ib_async's loop thread
            between bars instead of inside a bar's handler, on the path to its orders (``gc.freeze()`` at
            start, a higher young threshold, restored at stop; see :mod:`copilot_quant.live.gc_policy`).
            ``False`` leaves the interpreter's collector alone.
        roll_days, auto_roll: a continuous future (``"MES"``) trades its front contract until ``roll_days``
            weekdays before its last trade date; ``auto_roll`` moves the positions into the next contract at
            each roll — as in a backtest (see :mod:`copilot_quant.live.continuous`).

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
        roll_days: int = 5,
        auto_roll: bool = False,
        adopt_broker_positions: bool = False,
        inline_dispatch: bool = True,
        gc_between_bars: bool = True,
    ) -> None:
        check_live_confirmed(paper_trading, confirm_live)
        self._gc = BetweenBarsGc(gc_between_bars)
        self.roll_days = check_roll_days(roll_days)
        self.auto_roll = bool(auto_roll)
        if not isinstance(adopt_broker_positions, bool):
            raise ConfigError(
                f"adopt_broker_positions must be True or False, got {adopt_broker_positions!r}; to put the "
                "difference on one strategy's book call engine.adopt_broker_positions(strategy=NAME)"
            )
        self._adopt_at_start = adopt_broker_positions
        options = EngineOptions.checked(
            update_interval=update_interval,
            outside_hours=outside_hours,
            risk_limits=risk_limits,
            max_errors=max_errors,
            max_logged_errors=max_logged_errors,
            max_disconnect_s=max_disconnect_s,
            max_stale_data_s=max_stale_data_s,
            kill_switch_file=kill_switch_file,
            inline_dispatch=inline_dispatch,
        )
        settings = resolve_connection(paper_trading, host, port, client_id, use_gateway)
        self.paper_trading = paper_trading
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
        self._journal_arg = journal
        self.journal: TradeJournal | None = journal if isinstance(journal, TradeJournal) else None
        self._owns_journal = False
        self._slots: list[StrategySlot] = []
        self.symbols: list[str] = []
        #: What the engine streams and subscribes: the symbols, a continuous future's contracts in its place.
        self._data_symbols: list[str] = []
        self.data_interval = "1d"
        self._state_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._running = False
        self._finished = True
        hooks = EngineHooks(
            journal=lambda: self.journal,
            running=lambda: self._running,
            slots=lambda: self._slots,
            claims=self._claims,
            adopted=self._adopted,
            refresh_account=self._refresh_and_watch,
            on_journal_failure=self._on_journal_failure,
            finish=self._finish,
            adjusted=self._adjusted,
            price_of=self._price_of,
        )
        parts = build_parts(self.connection, self.data_feed, self.broker, options, hooks)
        self._wake, self._stop = parts.wake, parts.stop
        #: The engine's named events (eventkit): ``on.event(kind, detail)``, ``on.error(kind, message)``.
        self.on = parts.on
        self._errors, self._events = parts.errors, parts.events
        self.clock, self.account = parts.clock, parts.account
        self.risk = parts.risk
        self.kill_switch: KillSwitch = parts.risk.kill_switch
        self.safety, self.router, self.dispatcher = parts.safety, parts.router, parts.fills
        self.reconciler, self.worker = parts.reconciler, parts.worker
        self._position_watch = PositionWatch(
            reconciler=self.reconciler, slots=lambda: self._slots, account=self.account
        )
        #: Bars and fills on ib_async's loop thread (``inline_dispatch``): ``inline.bars`` delivered there,
        #: ``inline.handed_over`` why others went to the worker, ``inline.off_reason`` if it was turned off.
        self.inline = parts.inline
        self.checkpointer = parts.checkpointer  # its thread ends with the run (engine_stop.py)
        self.reactions = parts.reactions  # alerts on what real IB does (ib_reactions.py)
        self.broker.register_error_callback(self._on_order_error)
        self.connection.machine.state_changed += self._on_connection_change
        self.connection.restored += self._on_restored

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

    def disconnect(self) -> None:
        """Stop (if running), close the journal this engine opened, and close the connection. Idempotent."""
        self.stop()
        self.checkpointer.close()
        journal = self.journal
        if journal is not None and self._owns_journal and not self._running:
            self._close_journal(None)  # nothing IB reported before this is lost (engine_stop.py)
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

    def reconcile(self, reason: str = "manual") -> ReconcileReport:
        """Compare the journal with IB's orders, executions and positions; repair what can be repaired.

        Fills that happened while the engine was away are journaled and delivered to ``on_fill`` exactly
        once; orders that reached IB are never sent again (they are recognised by their ``orderRef``) and
        working ones are tracked again; orders placed outside the engine are reported, not adopted (IB's cash
        is shown, not compared); a symbol whose IB position the journal's fills do not explain is blocked
        until they agree (:attr:`blocked_symbols`, :meth:`adopt_broker_positions`). The
        findings are logged, journaled and emitted as a ``reconcile`` event. Raises ``JournalError`` if the
        journal cannot be written (then the caller halts trading).
        """
        return self.reconciler.run(reason)

    def adopt_broker_positions(self, strategy: str | None = None) -> None:
        """Take IB's positions as the truth where the journal's books disagree with them (a symbol blocked
        by a position mismatch): the next reconciliation, made due now, journals adjusting records — an
        order tagged ``adjustment`` with one fill each, never a rewrite — so that the books equal IB, and
        the symbol trades again.

        Whose is the difference: a position IB holds *beside* what the strategies' books hold belongs to no
        strategy (no strategy ever sees or trades it); where IB holds *less* than the books (closed by hand,
        a fresh account), the strategies' books come down, never past zero — to zero when IB is flat or on
        the other side (what IB holds is then no strategy's), to IB's position when one strategy holds the
        symbol. Several strategies holding it while IB holds part: ``strategy`` names the one whose book
        takes the whole reduction; without it that symbol is not adopted (an error says so) and stays
        blocked. Any thread; the engine's worker carries it out (call :meth:`reconcile` to do it now from
        your thread).
        """
        if strategy is not None and strategy not in {s.name for s in self._slots}:
            names = ", ".join(repr(s.name) for s in self._slots) or "none"
            raise ConfigError(
                f"adopt_broker_positions(strategy={strategy!r}): no such strategy; it has {names}"
            )
        self.reconciler.adopt(strategy)
        self._wake.set()

    def _adjusted(self, strategy: str, symbol: str, quantity: float, price: float) -> None:
        """An adjustment adopting IB's position: book it into the running strategy of that name."""
        for slot in self._slots:
            if slot.name == strategy:
                slot.book.apply(symbol, quantity, price)
                slot.book.fill_count -= 1  # no fill at IB: the summary's fills stay IB's

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
        """Each strategy's positions by its own book (the kill switch splits by them)."""
        return claims(self._slots)

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

    def _on_order_error(self, record: OrderRecord, message: str) -> None:
        order = record.order
        self._record_error(
            f"order {order.order_id} {order.side} {order.quantity:g} {order.symbol}: {message}", "order"
        )

    def _record_error(self, message: str, kind: str, *, quiet: bool = False) -> None:
        self._errors.record(message, kind, quiet=quiet)

    # ------------------------------------------------------------------ reporting (also engine_report.py)
    def __repr__(self) -> str:
        name = self.strategy.name if self.strategy is not None else None
        return f"LiveStrategyEngine(strategy={name}, running={self._running}, {self.connection.settings.describe()})"
