"""How the live engine's parts are built and connected, in one place.

Each part gets only what it needs: the IB connection and adapters, its siblings, and a few callbacks into
the engine (:class:`EngineHooks`) for the state the engine owns (the journal it opens at start, whether it
runs, its strategy slots). :func:`build_parts` returns them as :class:`EngineParts`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from copilot_quant.brokers.connection import IBConnection
from copilot_quant.brokers.live_broker_adapter import LiveBrokerAdapter
from copilot_quant.brokers.live_data_adapter import LiveDataFeedAdapter
from copilot_quant.brokers.market_hours import OutsideHours
from copilot_quant.errors import ConfigError, JournalError
from copilot_quant.journal import TradeJournal
from copilot_quant.live.account_view import AccountState
from copilot_quant.live.bar_clock import BarClock
from copilot_quant.live.checkpoints import Checkpointer
from copilot_quant.live.events import EngineEvents, ErrorLog, EventLog
from copilot_quant.live.fills import FillDispatcher
from copilot_quant.live.ib_reactions import IbReactions
from copilot_quant.live.inline import InlineDispatch
from copilot_quant.live.order_router import OrderRouter
from copilot_quant.live.position_guard import PositionGuard
from copilot_quant.live.reconciler import Reconciler
from copilot_quant.live.safety import Safety
from copilot_quant.live.strategy_slot import StrategySlot
from copilot_quant.live.worker import Worker
from copilot_quant.model.orders import Order
from copilot_quant.risk import LivenessGuard, RiskLimits, RiskManager

__all__ = ["EngineHooks", "EngineOptions", "EngineParts", "build_parts"]


@dataclass(frozen=True, slots=True)
class EngineHooks:
    """The engine's state and duties the parts call back into."""

    journal: Callable[[], TradeJournal | None]
    running: Callable[[], bool]
    slots: Callable[[], Sequence[StrategySlot]]
    claims: Callable[[], Mapping[str, Mapping[str, float]]]
    adopted: Callable[[str, Order], None]
    refresh_account: Callable[[float], None]
    on_journal_failure: Callable[[JournalError], None]
    finish: Callable[[str], None]
    #: Book an adjustment (adopting IB's position) into the running strategy of that name.
    adjusted: Callable[[str, str, float, float], None] = lambda strategy, symbol, quantity, price: None
    #: IB's average cost of a position (or a recent price), to price one adopted beside the strategies'.
    price_of: Callable[[str], float | None] = lambda symbol: None


@dataclass(frozen=True, slots=True)
class EngineOptions:
    """The engine's keyword settings the parts use, checked once (:meth:`checked`)."""

    update_interval: float
    outside_hours: OutsideHours
    risk_limits: RiskLimits | None
    max_errors: int
    max_logged_errors: int | None
    max_disconnect_s: float | None
    max_stale_data_s: float | None
    kill_switch_file: Path | None
    inline_dispatch: bool = True

    @classmethod
    def checked(
        cls,
        *,
        update_interval: float,
        outside_hours: OutsideHours | str,
        risk_limits: RiskLimits | None,
        max_errors: int,
        max_logged_errors: int | None,
        max_disconnect_s: float | None,
        max_stale_data_s: float | None,
        kill_switch_file: str | Path | None,
        inline_dispatch: bool = True,
    ) -> EngineOptions:
        """Refuse a bad setting with a :class:`ConfigError` that says what to pass instead."""
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
        if not isinstance(inline_dispatch, bool):
            raise ConfigError(f"inline_dispatch must be True or False, got {inline_dispatch!r}")
        return cls(
            float(update_interval),
            outside,
            risk_limits,
            max_errors,
            max_logged_errors,
            max_disconnect_s,
            max_stale_data_s,
            Path(kill_switch_file) if kill_switch_file is not None else None,
            inline_dispatch,
        )


@dataclass(frozen=True, slots=True)
class EngineParts:
    """The engine's parts, built and connected by :func:`build_parts`."""

    wake: threading.Event
    stop: threading.Event
    on: EngineEvents
    errors: ErrorLog
    events: EventLog
    clock: BarClock
    account: AccountState
    risk: RiskManager
    safety: Safety
    router: OrderRouter
    fills: FillDispatcher
    reconciler: Reconciler
    worker: Worker
    reactions: IbReactions
    inline: InlineDispatch
    checkpointer: Checkpointer


def build_parts(
    connection: IBConnection,
    feed: LiveDataFeedAdapter,
    broker: LiveBrokerAdapter,
    options: EngineOptions,
    hooks: EngineHooks,
) -> EngineParts:
    """Build every part of the engine and connect them to each other and to IB's events."""
    wake, stop = threading.Event(), threading.Event()
    feed.bars_changed = wake  # bar updates wake the worker directly
    on = EngineEvents()
    errors = ErrorLog(on, options.max_errors, options.max_logged_errors)
    events = EventLog(on, hooks.journal, hooks.on_journal_failure)
    clock, account = BarClock(feed), AccountState()
    liveness = LivenessGuard(options.max_disconnect_s, options.max_stale_data_s)
    risk = RiskManager(options.risk_limits, liveness=liveness)
    safety = Safety(
        connection=connection,
        broker=broker,
        risk=risk,
        liveness=liveness,
        clock=clock,
        events=events,
        errors=errors,
        journal=hooks.journal,
        wake=wake,
        running=hooks.running,
        kill_switch_file=options.kill_switch_file,
        claims=hooks.claims,
    )
    fills = FillDispatcher(
        broker=broker, journal=hooks.journal, account=account, errors=errors, wake=wake, slots=hooks.slots
    )
    guard = PositionGuard(events=events, errors=errors)
    reconciler = Reconciler(
        connection=connection,
        broker=broker,
        journal=hooks.journal,
        events=events,
        errors=errors,
        deliver=fills.recovered,
        adopted=hooks.adopted,
        guard=guard,
        adjusted=hooks.adjusted,
        price_of=hooks.price_of,
        unjournaled=fills.take_unjournaled,
    )
    router = OrderRouter(
        broker=broker,
        feed=feed,
        risk=risk,
        safety=safety,
        clock=clock,
        account=account,
        errors=errors,
        journal=hooks.journal,
        outside_hours=options.outside_hours,
        reconciled=lambda: reconciler.reconciled,
        stopping=stop,
        blocked=guard.refusal,
    )
    worker = Worker(
        stop=stop,
        wake=wake,
        update_interval=options.update_interval,
        connection=connection,
        broker=broker,
        clock=clock,
        account=account,
        safety=safety,
        reconciler=reconciler,
        router=router,
        fills=fills,
        errors=errors,
        slots=hooks.slots,
        refresh_account=hooks.refresh_account,
        on_journal_failure=hooks.on_journal_failure,
        finish=hooks.finish,
        checkpointer=(checkpointer := Checkpointer(hooks.journal)),
    )
    worker.wants_pnl = lambda: risk.limits.max_daily_loss is not None
    inline = InlineDispatch(
        runtime=lambda: connection.runtime,
        worker=worker,
        clock=clock,
        safety=safety,
        reconciler=reconciler,
        broker=broker,
        router=router,
        fills=fills,
        slots=hooks.slots,
        wake=wake,
        stop=stop,
        running=hooks.running,
    )
    inline.enabled = options.inline_dispatch
    if options.inline_dispatch:  # bars and fills go to the loop thread's inline dispatch first
        feed.bar_listener = inline.on_bars
        fills.notify = inline.fills_arrived
        broker.commit_fills_on_loop = True  # the bar right behind a fill need not wait for the writer
    # kept on the parts: eventkit holds bound-method handlers weakly
    reactions = IbReactions(connection=connection, feed=feed, broker=broker, events=events, fills=fills)
    broker.register_fill_callback(fills.live, thread_safe=True)  # it only queues the fill for the worker
    broker.register_journal_failure_callback(hooks.on_journal_failure)
    connection.machine.state_changed += safety.on_connection_change
    connection.ib_error += safety.on_ib_message
    return EngineParts(
        wake,
        stop,
        on,
        errors,
        events,
        clock,
        account,
        risk,
        safety,
        router,
        fills,
        reconciler,
        worker,
        reactions,
        inline,
        checkpointer,
    )
