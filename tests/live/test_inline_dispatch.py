"""Inline dispatch (copilot_quant.live.inline): bars and fills handled on ib_async's loop thread, against the
simulated gateway with a real ib_async client — and the worker taking over whenever the loop may not."""

from __future__ import annotations

import logging
import threading
import time

import pandas as pd
import pytest
from copilot_quant.backtest.live_engine import LiveStrategyEngine
from copilot_quant.backtest.orders import Fill, Order, OrderStatus
from copilot_quant.backtest.strategy import Strategy
from copilot_quant.errors import ConfigError
from copilot_quant.live.inline import INLINE_BUDGET_S

from .conftest import wait_until

pytestmark = [pytest.mark.network, pytest.mark.timeout(90)]


class Trader(Strategy):
    """Buys then sells one share on alternate bars; records which thread ran each hook, in order."""

    def __init__(self, *, slow_on_bar: int | None = None, raise_on_bar: int | None = None) -> None:
        super().__init__()
        self.events: list[tuple[str, int, str]] = []  # (hook, bar number, thread name)
        self.fills: list[Fill] = []
        self.slow_on_bar = slow_on_bar
        self.raise_on_bar = raise_on_bar
        self.bars = 0
        self.stop_on_bar: int | None = None
        self.engine: LiveStrategyEngine | None = None

    def on_data(self, timestamp, data):
        self.bars += 1
        self.events.append(("data", self.bars, threading.current_thread().name))
        if self.slow_on_bar is not None and self.bars >= self.slow_on_bar:
            time.sleep(INLINE_BUDGET_S * 2)
        if self.bars == self.raise_on_bar:
            raise RuntimeError("boom inline")
        if self.bars == self.stop_on_bar and self.engine is not None:
            self.engine.stop()
            return None
        return [Order("AAPL", 1, "market", "buy" if self.bars % 2 else "sell")]

    def on_fill(self, fill):
        self.fills.append(fill)
        self.events.append(("fill", self.bars, threading.current_thread().name))

    def threads(self, hook: str) -> set[str]:
        return {name for kind, _, name in self.events if kind == hook}


def _run(make_engine, strategy: Strategy, **options) -> LiveStrategyEngine:
    engine = make_engine(fill_timeout=0.0, **options)
    engine.broker.ack_timeout = 0.0
    engine.add_strategy(strategy)
    assert engine.connect(timeout=10, retry_count=1)
    assert engine.start(["AAPL"], lookback_days=10)
    return engine


def _step(gateway, engine: LiveStrategyEngine, strategy: Trader, bars: int) -> None:
    """Publish ``bars`` bars, each once the orders of the one before reached the gateway (so that each
    order fills as the next bar is published, as in a backtest)."""
    for _ in range(bars):
        seen = strategy.bars
        gateway.clock.step(1)
        assert wait_until(lambda s=seen: strategy.bars > s), "the bar reached on_data"
        sent = sum(len(slot.orders) for slot in engine.strategy_slots)
        assert wait_until(lambda n=sent: _orders_at_gateway(gateway) >= n), "the orders reached the gateway"
    # the last bar's order is at the gateway: its fill reaches on_fill once the next bar comes, or now
    assert wait_until(lambda: len(engine.fills) >= _executions(gateway))


def _orders_at_gateway(gateway) -> int:
    return gateway.call(lambda: len(gateway.broker.open_orders()) + len(gateway.broker.completed_orders()))


def _executions(gateway) -> int:
    return gateway.call(lambda: len(gateway.broker.executions()))


def test_bars_and_fills_run_on_the_ib_loop_thread_and_orders_reach_the_gateway(make_engine, gateway):
    strategy = Trader()
    engine = _run(make_engine, strategy)
    _step(gateway, engine, strategy, 4)
    loop_thread = engine.connection.runtime._thread
    assert loop_thread is not None
    # (the first bar may come while the worker's first round, right after start, holds the step lock)
    assert {name for kind, n, name in strategy.events if kind == "data" and n > 1} == {loop_thread.name}
    assert strategy.threads("fill") == {loop_thread.name}
    assert engine.inline.bars >= 3
    assert engine.inline.off_reason is None
    assert gateway.call(lambda: len(gateway.broker.executions())) >= 3
    journal = engine.journal
    assert journal is not None
    assert all(o.status is OrderStatus.FILLED for o in engine.strategy_slots[0].orders[:3])


def test_each_fill_reaches_on_fill_before_the_next_bar_reaches_on_data(make_engine, gateway):
    strategy = Trader()
    engine = _run(make_engine, strategy)
    _step(gateway, engine, strategy, 5)
    # bar n's order fills as bar n+1 is published: its on_fill comes between on_data n and on_data n+1
    order = [(kind, n) for kind, n, _ in strategy.events]
    for n in range(1, 5):
        assert ("fill", n) in order, order
        assert order.index(("fill", n)) < order.index(("data", n + 1)), order
    assert len(strategy.fills) >= 4


def test_inline_dispatch_false_runs_every_bar_on_the_worker(make_engine, gateway):
    strategy = Trader()
    engine = _run(make_engine, strategy, inline_dispatch=False)
    _step(gateway, engine, strategy, 3)
    assert strategy.threads("data") == {"copilot-quant-engine"}
    assert engine.inline.bars == 0
    assert engine.broker.commit_fills_on_loop is False


def test_inline_dispatch_must_be_a_bool(make_engine):
    with pytest.raises(ConfigError, match="inline_dispatch"):
        make_engine(inline_dispatch="yes")


def test_a_slow_strategy_hands_later_bars_to_the_worker(make_engine, gateway, caplog):
    strategy = Trader(slow_on_bar=2)  # from its second bar on, on_data takes twice the budget
    engine = _run(make_engine, strategy)
    with caplog.at_level(logging.WARNING, logger="copilot_quant.live.inline"):
        _step(gateway, engine, strategy, 5)
    assert engine.inline.off_reason is not None
    assert "Trader.on_data" in engine.inline.off_reason
    assert any("budget" in r.getMessage() for r in caplog.records)
    threads = [name for kind, n, name in strategy.events if kind == "data"]
    # the first slow bar run on the loop turns inline dispatch off: every later bar is the worker's
    slow_inline = next(k for k in range(1, 5) if threads[k] != "copilot-quant-engine")
    assert threads[slow_inline + 1 :] == ["copilot-quant-engine"] * (4 - slow_inline)
    assert engine.inline.handed_over["off"] >= 1


def test_a_strategy_exception_inline_is_counted_and_the_loop_goes_on(make_engine, gateway):
    strategy = Trader(raise_on_bar=2)
    engine = _run(make_engine, strategy)
    _step(gateway, engine, strategy, 4)
    assert engine.total_errors == 1
    assert engine.errors[-1]["type"] == "strategy"
    assert "boom inline" in engine.errors[-1]["error"]
    loop = engine.connection.runtime._thread
    assert loop is not None
    later = [name for kind, n, name in strategy.events if kind == "data" and n > 2]
    assert later == [loop.name, loop.name]  # bars 3 and 4 still came inline: ib_async's loop lives on
    assert engine.is_connected()


def test_while_the_worker_holds_the_step_lock_the_bar_waits_for_the_worker(make_engine, gateway):
    strategy = Trader()
    engine = _run(make_engine, strategy)
    _step(gateway, engine, strategy, 1)
    with engine.worker.lock:  # the worker's round (or anyone holding the lock) owns the strategies
        gateway.clock.step(1)
        assert wait_until(lambda: engine.inline.handed_over["worker busy"] >= 1)
        time.sleep(0.1)
        assert strategy.bars == 1  # not delivered beside the lock's holder
    assert wait_until(lambda: strategy.bars == 2)
    assert strategy.events[-1][2] == "copilot-quant-engine"  # the worker took it


def test_no_order_goes_out_inline_while_the_kill_switch_is_engaged(make_engine, gateway):
    strategy = Trader()
    engine = _run(make_engine, strategy)
    _step(gateway, engine, strategy, 1)
    engine.kill("test halt")
    sent = gateway.call(lambda: len(gateway.broker.open_orders()) + len(gateway.broker.completed_orders()))
    seen = strategy.bars
    gateway.clock.step(1)
    assert wait_until(lambda: strategy.bars > seen)
    order = engine.strategy_slots[0].orders[-1]
    assert wait_until(lambda: order.status is OrderStatus.REJECTED)
    assert "halted" in (order.reject_reason or "")
    after = gateway.call(lambda: len(gateway.broker.open_orders()) + len(gateway.broker.completed_orders()))
    assert after == sent


def test_an_unreconciled_engine_routes_nothing_inline(make_engine, gateway):
    strategy = Trader()
    engine = _run(make_engine, strategy)
    _step(gateway, engine, strategy, 1)
    engine.reconciler.request("test")  # books not reconciled: the bar goes to the worker, which reconciles
    _step(gateway, engine, strategy, 1)
    assert engine.inline.handed_over["reconcile"] >= 1
    assert (
        strategy.events[-1][2] == "copilot-quant-engine" or strategy.events[-2][2] == "copilot-quant-engine"
    )
    assert engine.reconciler.reconciled


def test_stop_from_a_strategy_on_the_loop_thread_does_not_deadlock(make_engine, gateway):
    strategy = Trader()
    engine = _run(make_engine, strategy)
    strategy.engine, strategy.stop_on_bar = engine, 2
    _step(gateway, engine, strategy, 1)
    gateway.clock.step(1)
    assert wait_until(lambda: not engine.is_running(), timeout=15)
    assert engine.connection.runtime.is_running  # the loop came back from the strategy's stop()


class Recorder(Strategy):
    """Keeps a copy of every window it is handed, then scribbles over the window (its own to change)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[pd.Timestamp, pd.DataFrame]] = []
        self.bars = 0

    def on_data(self, timestamp, data):
        self.bars += 1
        self.seen.append((timestamp, data.copy(deep=True)))
        data["Close"] = -1.0
        data.iloc[0, 0] = -1.0


def test_each_window_built_ahead_holds_exactly_the_bars_closed_by_its_bar(make_engine, gateway, monkeypatch):
    """The window is built after the bar before (LiveBars.prepare) and handed out with the new bar's values
    copied in: it must equal the bars the store holds up to the bar, every value final, nothing later."""
    from copilot_quant.brokers.live_bars import LiveBars

    handed: list[int] = []
    take = LiveBars._take_ready

    def spy(self, n):
        frame = take(self, n)
        if frame is not None:
            handed.append(n)
        return frame

    monkeypatch.setattr(LiveBars, "_take_ready", spy)
    strategy = Recorder()
    engine = _run(make_engine, strategy)
    for n in range(1, 7):
        gateway.clock.step(1)
        assert wait_until(lambda n=n: strategy.bars >= n)
        # the next bar comes once this one's follow-up built its window (live, bars are seconds apart; the
        # follow-up runs a millisecond after the bar's orders: inline.AFTER_ORDERS_S)
        assert wait_until(engine.clock.prepared)
    store = engine.data_feed._bars.store("AAPL")
    assert store is not None
    held = store.frame()
    assert len(handed) >= 4  # every bar after the first few came from a window built ahead
    for timestamp, window in strategy.seen:
        assert window.index[-1] == timestamp
        pd.testing.assert_frame_equal(window, held.loc[:timestamp])
