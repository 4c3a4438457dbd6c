"""The live half of a parity run (:mod:`copilot_quant.parity`): the strategies in a
:class:`~copilot_quant.backtest.live_engine.LiveStrategyEngine` against an in-process simulated gateway replaying
the same bars, stepped one bar at a time and waited on until the engine and the gateway agree (see the
:mod:`copilot_quant.parity` docstring, step 3), summarised per account and per strategy.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

from copilot_quant.backtest.costs import CommissionModel, SlippageModel
from copilot_quant.backtest.live_engine import LiveStrategyEngine
from copilot_quant.backtest.order_outcomes import OrderOutcome
from copilot_quant.errors import GatewayError
from copilot_quant.gateway.server import GatewayConfig, GatewayServer
from copilot_quant.live.bar_clock import BAR_SETTLE_NS
from copilot_quant.model.instruments import AssetClass, InstrumentRegistry
from copilot_quant.parity_replay import ReplayFeed
from copilot_quant.parity_report import ParityStrategy, RunSummary
from copilot_quant.parity_rows import build_strategy, fill_row, merged_watches, order_row
from copilot_quant.parity_watch import Watch, bar_of

__all__ = ["live_parts", "live_run", "wait_until"]


#: Seconds the replay's clock passes after each bar: the live engine's settle margin for quote-only bars.
_SETTLE_SECONDS = BAR_SETTLE_NS / 1e9 + 1.0


_LIVE_CLIENT_ID = 7


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.001
    while not condition():
        if time.monotonic() >= deadline:
            raise GatewayError(f"parity run: timed out after {timeout:g}s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.02)


def live_run(
    specs: Sequence[ParityStrategy],
    frames: Mapping[str, pd.DataFrame],
    names: list[str],
    stamps: pd.DatetimeIndex,
    *,
    capital: float,
    commission: CommissionModel,
    slippage: SlippageModel,
    interval: str,
    step_timeout: float,
    volume_limit: float | None,
    roll_days: int = 5,
    auto_roll: bool = False,
) -> tuple[RunSummary, dict[str, RunSummary]]:
    symbols = sorted(frames)
    config = GatewayConfig(
        port=0,
        data=ReplayFeed(frames),
        symbols=symbols,
        cash=capital,
        bar_interval=interval,
        # At the first bar's close: that bar is the live engine's history (IB serves no empty history).
        start=stamps[0],
        commission=commission,
        slippage=slippage,
        volume_limit=volume_limit,
    )
    summary = RunSummary("live")
    watches = [Watch(stamps) for _ in specs]
    # A journal of its own: the run must not resume (or pollute) the user's journal of the paper account.
    with (
        GatewayServer(config) as gateway,
        tempfile.TemporaryDirectory(prefix="cq-parity-") as scratch,
    ):
        engine = LiveStrategyEngine(
            paper_trading=True,
            host="127.0.0.1",
            port=gateway.port,
            client_id=_LIVE_CLIENT_ID,
            update_interval=0.05,
            enable_reconnect=False,
            fill_timeout=0.0,
            stale_after=None,
            # The backtest cancels what still works when the data ends; stop() does the same live.
            cancel_on_stop=True,
            journal=f"{scratch}/journal.sqlite",
            max_logged_errors=1,  # one traceback, as for the backtest; the rest are counted (and at DEBUG)
            roll_days=roll_days,
            auto_roll=auto_roll,
        )
        # Orders rest until the next bar; never block the worker waiting for them to fill.
        engine.broker.ack_timeout = 0.0
        # Every order of the run is compared with the backtest's: the tracker keeps them all (a bounded replay).
        engine.broker.tracker.keep_recent = None
        for spec, watch in zip(specs, watches, strict=True):
            engine.add_strategy(build_strategy(spec, watch, skip_first=False), capital=spec.capital)
        try:
            if not engine.connect(timeout=10, retry_count=1):
                raise GatewayError(
                    f"parity run: could not connect to the simulated gateway on {gateway.port}"
                )
            lookback = max(1, (stamps[-1] - stamps[0]).days + 2)
            if not engine.start(names, lookback_days=lookback, data_interval=interval):
                raise GatewayError(f"parity run: the live engine did not start: {list(engine.errors)}")
            broker = gateway.broker

            def sent() -> int:
                return sum(1 for r in engine.broker.tracker.records() if r.ib_order_id)

            def gateway_orders() -> int:
                return int(
                    gateway.call(
                        lambda: (
                            len(broker.open_orders(_LIVE_CLIENT_ID))
                            + len(broker.completed_orders(_LIVE_CLIENT_ID))
                        )
                    )
                )

            def cancels_confirmed() -> bool:
                # a cancel IB refused (the order had filled) ends with the order's fill: done as well
                return all(r.is_done for r in engine.broker.tracker.records() if r.cancel_requested)

            def modifications_answered() -> bool:
                # a modification (strategy.modify) is in force before the next bar, as in the backtest
                return all(r.modifying is None or r.is_done for r in engine.broker.tracker.records())

            def gateway_fills() -> int:
                return int(gateway.call(lambda: len(broker.executions(_LIVE_CLIENT_ID))))

            # a pair's bars have no trades: the live engine takes one as final once IB's clock is past its
            # close by its settle margin, so with pairs time passes after each close, as at IB (only then:
            # an immediate fill would otherwise be stamped after the close it happened at)
            quotes_only = any(InstrumentRegistry().resolve(s).kind is AssetClass.FOREX for s in frames)
            settle = _SETTLE_SECONDS if quotes_only else 0.0
            for stamp in stamps[1:]:
                gateway.clock.step(then_idle=settle)

                def processed(s: pd.Timestamp = stamp) -> bool:
                    last = engine._last_bar
                    return last is not None and last >= s

                wait_until(
                    processed,
                    step_timeout,
                    f"the live engine to process the bar of {stamp}",
                )
                wait_until(
                    lambda: gateway_orders() >= sent(), step_timeout, "the gateway to acknowledge orders"
                )
                wait_until(cancels_confirmed, step_timeout, "the gateway to confirm the strategy's cancels")
                wait_until(
                    modifications_answered, step_timeout, "the gateway to answer the strategy's modifications"
                )
                wait_until(
                    lambda: len(engine.fills) >= gateway_fills(), step_timeout, "fills to reach the strategy"
                )
            engine.stop()
            wait_until(
                lambda: all(r.is_done for r in engine.broker.tracker.records() if r.ib_order_id),
                step_timeout,
                "the orders still working at the end to be cancelled",
            )
            executions = gateway.call(lambda: list(broker.executions(_LIVE_CLIENT_ID)))
            exec_bar = {e.exec_id: bar_of(e.time, stamps) for e in executions}
            summary.fills = [
                fill_row(f, exec_bar.get(f.fill_id or "", bar_of(f.timestamp, stamps))) for f in engine.fills
            ]
            records = engine.broker.tracker.records()
            summary.orders = [order_row(r.order) for r in records]
            summary.outcomes = [OrderOutcome.of(r.order) for r in records]
            summary.final_equity = float(gateway.call(lambda: broker.account.net_liquidation))
            # every currency's balance in USD (forex trades hold EUR too), as the backtest's cash curve
            summary.final_cash = float(gateway.call(lambda: broker.account.total_cash_value))
            summary.errors = [str(e["error"]) for e in list(engine.errors)]
            summary.bars_given, summary.strategy_errors = merged_watches(watches)
            parts = live_parts(engine, watches, summary.fills, records)
        finally:
            engine.disconnect()
    return summary, parts


def live_parts(
    engine: LiveStrategyEngine,
    watches: Sequence[Watch],
    fill_rows: list[tuple[Any, ...]],
    records: Sequence[Any],
) -> dict[str, RunSummary]:
    """Each strategy's share of the live run: the orders it returned, those the engine made for it (the
    automatic roll's, which the backtest books to it too), and their fills."""
    mine_of = [
        {id(o) for o in watch.orders} | {id(o) for o in slot.orders}
        for slot, watch in zip(engine.strategy_slots, watches, strict=True)
    ]
    books = engine.get_performance_summary()["strategies"]
    parts: dict[str, RunSummary] = {}
    for k, (slot, watch) in enumerate(zip(engine.strategy_slots, watches, strict=True)):
        ids = mine_of[k]
        mine = [r for r in records if id(r.order) in ids]
        part = RunSummary("live", bars_given=watch.bars, strategy_errors=list(watch.failures))
        part.orders = [order_row(r.order) for r in mine]
        part.outcomes = [OrderOutcome.of(r.order) for r in mine]
        part.fills = [row for row, f in zip(fill_rows, engine.fills, strict=True) if id(f.order) in ids]
        part.final_equity = float(books[slot.name]["equity"])
        part.final_cash = float(slot.book.cash)
        part.errors = [str(e["error"]) for e in list(engine.errors) if e.get("strategy") == slot.name]
        parts[slot.name] = part
    return parts
