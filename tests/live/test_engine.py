"""LiveStrategyEngine end to end against the simulated gateway: bars in, orders out, real fills back."""

from __future__ import annotations

import logging
import threading
import time

import pandas as pd
import pytest
from copilot_quant.backtest.live_engine import LiveStrategyEngine
from copilot_quant.backtest.orders import Fill, Order
from copilot_quant.backtest.strategy import Strategy
from copilot_quant.errors import ConfigError, NotConnectedError

from .conftest import Stepper, wait_until

pytestmark = [pytest.mark.network, pytest.mark.timeout(90)]


class Recorder(Strategy):
    """Records every call; optionally buys once, or raises on a chosen bar."""

    def __init__(self, buy_on_bar: int | None = None, raise_on_bar: int | None = None) -> None:
        super().__init__()
        self.calls: list[tuple[pd.Timestamp, pd.DataFrame]] = []
        self.fills: list[Fill] = []
        self.lifecycle: list[str] = []
        self.buy_on_bar = buy_on_bar
        self.raise_on_bar = raise_on_bar
        self.thread_ids: set[int] = set()

    def initialize(self) -> None:
        self.lifecycle.append("initialize")

    def on_data(self, timestamp, data):
        self.thread_ids.add(threading.get_ident())
        self.calls.append((timestamp, data))
        n = len(self.calls)
        if n == self.raise_on_bar:
            raise RuntimeError("boom in on_data")
        if n == self.buy_on_bar:
            return [Order("AAPL", 10, "market", "buy")]
        return None

    def on_fill(self, fill):
        self.fills.append(fill)

    def on_stop(self):
        self.lifecycle.append("on_stop")

    def finalize(self):
        self.lifecycle.append("finalize")


@pytest.fixture
def engine(gateway):
    e = LiveStrategyEngine(paper_trading=True, port=gateway.port, client_id=60, update_interval=3600)
    yield e
    e.disconnect()


def test_start_refuses_without_strategy_connection_or_twice(engine):
    assert engine.start(["AAPL"]) is False  # no strategy
    engine.add_strategy(Recorder())
    assert engine.start(["AAPL"]) is False  # not connected
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL"], lookback_days=10)
    assert engine.start(["AAPL"]) is False  # already running


def test_data_and_execution_share_one_connection(engine, gateway):
    engine.add_strategy(Recorder())
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL", "MSFT"], lookback_days=10)
    assert list(gateway.core.sessions) == [60]  # one socket, one client id: no error 326


def test_each_completed_bar_reaches_on_data_once_in_backtest_shape(engine, gateway, feed):
    strategy = Recorder()
    engine.add_strategy(strategy)
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL"], lookback_days=20)
    assert strategy.calls == []  # history is context, not new bars
    for _ in range(3):
        gateway.clock.step(1)
    assert wait_until(lambda: len(strategy.calls) == 3)
    stamps = [ts for ts, _ in strategy.calls]
    expected = feed.get_historical_data("AAPL", "2024-03-01", "2024-03-05")
    assert stamps == list(expected.index)
    for ts, data in strategy.calls:
        assert isinstance(ts, pd.Timestamp)
        assert str(ts.tz) == "UTC"
        assert data.index[-1] == ts  # no look-ahead: the window ends at the bar just closed
        assert list(data.columns) == ["Open", "High", "Low", "Close", "Volume"]
        assert str(data.index.tz) == "UTC"
    last = strategy.calls[-1][1]
    pd.testing.assert_frame_equal(last.loc[expected.index], expected, rtol=1e-6)
    assert len(last) > 10  # lookback history plus the live bars


def test_several_symbols_get_metric_symbol_columns(engine, gateway):
    strategy = Recorder()
    engine.add_strategy(strategy)
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL", "MSFT"], lookback_days=10)
    gateway.clock.step(1)
    assert wait_until(lambda: len(strategy.calls) == 1)
    ts, data = strategy.calls[0]
    assert data.columns.names == ["Metric", "Symbol"]
    assert not pd.isna(data.loc[ts, ("Close", "AAPL")])
    assert not pd.isna(data.loc[ts, ("Close", "MSFT")])


def test_orders_fill_for_real_and_reach_on_fill_and_engine_fills(engine, gateway):
    strategy = Recorder(buy_on_bar=1)
    engine.add_strategy(strategy)
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL"], lookback_days=5)
    with Stepper(gateway, interval=0.1):
        assert wait_until(lambda: len(strategy.fills) == 1)
    fill = strategy.fills[0]
    assert engine.fills == [fill]
    assert fill.commission == pytest.approx(1.0)  # IB's, not the 0.1% model
    summary = engine.get_performance_summary()
    assert summary["positions"] == {"AAPL": 10.0}
    assert summary["total_fills"] == 1
    assert isinstance(summary["account_value"], float)
    assert summary["is_running"]
    assert summary["is_connected"]
    assert len(strategy.thread_ids) == 1
    assert threading.get_ident() not in strategy.thread_ids


def test_strategy_errors_are_recorded_and_the_engine_keeps_going(engine, gateway):
    strategy = Recorder(raise_on_bar=1)
    engine.add_strategy(strategy)
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL"], lookback_days=5)
    gateway.clock.step(1)
    gateway.clock.step(1)
    assert wait_until(lambda: len(strategy.calls) == 2)
    assert engine.get_performance_summary()["total_errors"] == 1
    error = next(iter(engine.errors))
    assert {"timestamp", "error", "type"} <= set(error)  # the guide's keys; a strategy error also names whose
    assert error["strategy"] == strategy.name
    assert "boom" in error["error"]
    assert error["type"] == "strategy"
    assert error["timestamp"].tzinfo is not None


def test_order_rejections_are_recorded_as_errors(engine, gateway):
    strategy = Recorder(buy_on_bar=1)
    engine.add_strategy(strategy)
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL"], lookback_days=5)
    gateway.reject_next_order("no trading today")
    gateway.clock.step(1)
    assert wait_until(lambda: engine.total_errors == 1)
    assert engine.errors[0]["type"] == "order"
    assert "no trading today" in engine.errors[0]["error"]


def test_stop_is_prompt_idempotent_and_runs_the_hooks_once(engine, gateway):
    strategy = Recorder()
    engine.add_strategy(strategy)
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL"], lookback_days=5)  # update_interval is an hour
    worker = engine._thread
    engine.stop()
    engine.stop()
    assert worker is not None
    assert not worker.is_alive()
    assert strategy.lifecycle == ["initialize", "on_stop", "finalize"]
    assert not engine.is_running()
    assert engine.data_feed.subscribed_symbols() == []


def test_the_main_thread_can_sleep_while_the_engine_trades(gateway_factory):
    server = gateway_factory(speed=20)  # the market runs by itself
    engine = LiveStrategyEngine(port=server.port, client_id=61, update_interval=60)
    strategy = Recorder(buy_on_bar=1)
    engine.add_strategy(strategy)
    try:
        assert engine.connect(timeout=5)
        assert engine.start(["AAPL"], lookback_days=5)
        time.sleep(1.5)  # the guide's loop: nothing in this thread drives ib_async
        assert len(strategy.calls) > 3
        assert wait_until(lambda: len(strategy.fills) == 1)
    finally:
        engine.disconnect()


def test_a_dropped_connection_reconnects_and_the_strategy_sees_no_gap(engine, gateway, feed):
    strategy = Recorder()
    engine.add_strategy(strategy)
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL"], lookback_days=5)
    gateway.clock.step(1)
    assert wait_until(lambda: len(strategy.calls) == 1)
    gateway.drop_all()
    gateway.clock.step(1)  # bars that close while we are away
    gateway.clock.step(1)
    assert wait_until(lambda: len(strategy.calls) == 3, timeout=20)
    gateway.clock.step(1)
    assert wait_until(lambda: len(strategy.calls) == 4)
    stamps = [ts for ts, _ in strategy.calls]
    assert stamps == list(feed.get_historical_data("AAPL", "2024-03-01", "2024-03-06").index)
    assert engine.is_connected()
    assert engine.data_feed.subscribed_symbols() == ["AAPL"]
    states = [c.new.value for c in engine.connection.machine.history]
    assert "reconnecting" in states
    assert states[-1] == "connected"


def test_without_reconnect_a_drop_stops_the_engine_cleanly(gateway):
    engine = LiveStrategyEngine(port=gateway.port, client_id=62, update_interval=3600, enable_reconnect=False)
    strategy = Recorder()
    engine.add_strategy(strategy)
    try:
        assert engine.connect(timeout=5)
        assert engine.start(["AAPL"], lookback_days=5)
        gateway.drop_all()
        assert wait_until(lambda: not engine.is_running())
        assert strategy.lifecycle == ["initialize", "on_stop", "finalize"]
        assert any(e["type"] == "connection" for e in engine.errors)
    finally:
        engine.disconnect()


class BuyEveryBar(Strategy):
    def on_data(self, timestamp, data):
        return [Order("AAPL", 1, "limit", "buy", limit_price=1.0, time_in_force="gtc")]


def test_outside_hours_reject_policy_rejects_and_records(gateway):
    engine = LiveStrategyEngine(port=gateway.port, client_id=63, update_interval=3600, outside_hours="reject")
    engine.add_strategy(Recorder(buy_on_bar=1))
    try:
        assert engine.connect(timeout=5)
        assert engine.start(["AAPL"], lookback_days=5)
        gateway.clock.step(1)  # daily bars: the broker's clock is then at the 16:00 close, market closed
        assert wait_until(lambda: engine.total_errors == 1)
        assert "market closed" in engine.errors[0]["error"]
        assert engine.broker.get_open_orders() == []
    finally:
        engine.disconnect()


def test_outside_hours_hold_policy_keeps_the_order_back(gateway):
    engine = LiveStrategyEngine(port=gateway.port, client_id=64, update_interval=3600, outside_hours="hold")
    strategy = Recorder(buy_on_bar=1)
    engine.add_strategy(strategy)
    try:
        assert engine.connect(timeout=5)
        assert engine.start(["AAPL"], lookback_days=5)
        gateway.clock.step(1)
        assert wait_until(lambda: len(strategy.calls) == 1)
        # on_data returned its order; the engine holds it (sent once the session opens), never sends it
        assert wait_until(lambda: len(engine.strategy_slots[0].held) == 1)
        assert engine.fills == []
        assert engine.total_errors == 0
    finally:
        engine.disconnect()


def test_stop_can_cancel_working_orders(gateway):
    engine = LiveStrategyEngine(port=gateway.port, client_id=65, update_interval=3600, cancel_on_stop=True)
    engine.add_strategy(BuyEveryBar())
    try:
        assert engine.connect(timeout=5)
        assert engine.start(["AAPL"], lookback_days=5)
        gateway.clock.step(1)
        assert wait_until(lambda: len(engine.broker.get_open_orders()) == 1)
        order = engine.broker.get_open_orders()[0]
        engine.stop()
        assert wait_until(lambda: order.status.value == "cancelled")
        assert order.reject_reason == "engine stopped (cancel_on_stop=True)"
    finally:
        engine.disconnect()


def _started_with_a_strategy_that_always_raises(gateway, **options) -> LiveStrategyEngine:
    engine = LiveStrategyEngine(port=gateway.port, update_interval=3600, **options)
    strategy = Recorder(raise_on_bar=None)
    strategy.on_data = lambda timestamp, data: 1 / 0  # type: ignore[method-assign]
    engine.add_strategy(strategy)
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL"], lookback_days=5)
    return engine


def test_the_error_log_is_bounded_but_the_count_is_not(gateway):
    engine = _started_with_a_strategy_that_always_raises(gateway, client_id=66, max_errors=2)
    try:
        for _ in range(4):
            gateway.clock.step(1)
        assert wait_until(lambda: engine.total_errors == 4)
        assert len(engine.errors) == 2
        assert all("ZeroDivisionError" in e["error"] for e in engine.errors)
        last = engine.errors[-5:]  # slices like the list it is (it was a deque: TypeError)
        assert isinstance(last, list)
        assert last == list(engine.errors)
        assert engine.errors[-1]["timestamp"] >= engine.errors[0]["timestamp"]
    finally:
        engine.disconnect()


def test_max_logged_errors_keeps_one_traceback_and_counts_every_error(gateway, caplog):
    engine = _started_with_a_strategy_that_always_raises(gateway, client_id=67, max_logged_errors=1)
    try:
        with caplog.at_level(logging.DEBUG, logger="copilot_quant.live.events"):
            for _ in range(3):
                gateway.clock.step(1)
            assert wait_until(lambda: engine.total_errors == 3)
        failures = [r for r in caplog.records if "failed in on_data" in r.getMessage()]
        assert [r.levelno for r in failures] == [logging.ERROR, logging.DEBUG, logging.DEBUG]
        assert [bool(r.exc_info) for r in failures] == [True, False, False]
        assert len(engine.errors) == 3
    finally:
        engine.disconnect()
    with pytest.raises(ConfigError, match="max_logged_errors"):
        LiveStrategyEngine(max_logged_errors=-1)


def test_identical_orders_are_both_executed(gateway):
    """An earlier implementation rejected legitimate identical orders as duplicates."""
    engine = LiveStrategyEngine(port=gateway.port, client_id=67, update_interval=3600)

    class Twice(Strategy):
        def on_data(self, timestamp, data):
            if len(engine.fills) == 0 and not engine.broker.get_open_orders():
                return [Order("AAPL", 2, "market", "buy"), Order("AAPL", 2, "market", "buy")]
            return None

    engine.add_strategy(Twice())
    try:
        assert engine.connect(timeout=5)
        assert engine.start(["AAPL"], lookback_days=5)
        with Stepper(gateway, 0.05):
            assert wait_until(lambda: len(engine.fills) == 2)
        assert engine.get_performance_summary()["positions"] == {"AAPL": 4.0}
    finally:
        engine.disconnect()


def test_an_engine_can_run_again_after_disconnecting(gateway):
    engine = LiveStrategyEngine(port=gateway.port, client_id=68, update_interval=3600)
    strategy = Recorder()
    engine.add_strategy(strategy)
    try:
        assert engine.connect(timeout=5)
        assert engine.start(["AAPL"], lookback_days=5)
        engine.disconnect()
        assert engine.connect(timeout=5)  # a new ib_async session: handlers must be installed again
        assert engine.start(["AAPL"], lookback_days=5)
        gateway.clock.step(1)
        assert wait_until(lambda: len(strategy.calls) == 1)
        assert strategy.lifecycle == ["initialize", "on_stop", "finalize", "initialize"]
    finally:
        engine.disconnect()


def test_start_fails_cleanly_for_an_unknown_symbol(engine, tmp_path):
    engine.add_strategy(Recorder())
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL", "NOPE"], lookback_days=5) is False
    assert not engine.is_running()
    assert "NOPE" in engine.errors[-1]["error"]
    assert engine.errors[-1]["type"] == "symbol"  # bad input, told apart from a runtime failure
    assert "check the ticker symbol" in engine.errors[-1]["error"]
    assert not (tmp_path / "journal").exists()  # checked before the journal is opened or data is loaded


def test_the_with_block_connects_and_disconnects_like_the_adapters(gateway):
    with LiveStrategyEngine(port=gateway.port, client_id=161, update_interval=3600) as engine:
        assert engine.is_connected()
        assert list(gateway.core.sessions) == [161]
        engine.add_strategy(Recorder())
        assert engine.start(["AAPL"], lookback_days=5)
    assert not engine.is_running()
    assert not engine.is_connected()
    assert wait_until(lambda: not gateway.core.sessions)


def test_the_with_block_raises_when_nothing_listens():
    engine = LiveStrategyEngine(port=1, client_id=162)
    with pytest.raises(NotConnectedError, match="could not connect"), engine:
        pass
    assert not engine.is_connected()


def test_intraday_bars_reach_the_strategy_stamped_at_bar_end(gateway_factory):
    server = gateway_factory(bar_interval="1h", start="2024-03-04 09:30")
    engine = LiveStrategyEngine(port=server.port, client_id=69, update_interval=3600)
    strategy = Recorder()
    engine.add_strategy(strategy)
    try:
        assert engine.connect(timeout=5)
        assert engine.start(["AAPL"], lookback_days=3, data_interval="1h")
        server.clock.step(2)
        assert wait_until(lambda: len(strategy.calls) == 2)
        stamps = [ts for ts, _ in strategy.calls]
        # IB's clock hours (data/bar_grid.py): 09:30-10:00 EST, then 10:00-11:00
        assert stamps == [
            pd.Timestamp("2024-03-04 15:00", tz="UTC"),
            pd.Timestamp("2024-03-04 16:00", tz="UTC"),
        ]
        assert all(data.index[-1] == ts for ts, data in strategy.calls)
    finally:
        engine.disconnect()
