"""The live engine's reactions to what real IB does (docs/ib-behaviours.md), each driven by a gateway drill
against the real ib_async client. Each test failed on the engine before it was wired to the IB edge: the
kill switch missed an order an error code alone "rejected", risk did not count it, a correction never
reached the books or the strategy, stalls/permissions/outages/unseen fills raised no alert, a broken
forex farm stopped trading, and a broken needed farm stopped it without a halt saying why."""

from __future__ import annotations

from typing import Any

import pytest
from copilot_quant.backtest.live_engine import LiveStrategyEngine
from copilot_quant.backtest.orders import Fill, Order, OrderStatus
from copilot_quant.backtest.strategy import Strategy
from copilot_quant.brokers.reconnect import Backoff, ConnectionState
from copilot_quant.gateway.orders import IbStatus
from copilot_quant.gateway.server import GatewayServer
from copilot_quant.risk import RiskLimits

from .conftest import Stepper, wait_until

pytestmark = [pytest.mark.network, pytest.mark.timeout(90)]

#: A buy limit far below the market: it rests and never fills.
RESTING = 1.0
#: A buy limit far above the market: it fills at the next price the (paused) gateway makes.
MARKETABLE = 10_000.0


class Scripted(Strategy):
    """Returns the orders scripted for its n-th bar (1-based); records fills and corrections."""

    def __init__(self, script: dict[int, list[Order]] | None = None, name: str = "scripted") -> None:
        super().__init__()
        self.name = name
        self.script = script or {}
        self.bars = 0
        self.fills: list[Fill] = []
        self.corrections: list[Any] = []

    def on_data(self, timestamp, data):
        self.bars += 1
        orders = self.script.get(self.bars)
        return [o.copy() for o in orders] if orders else None

    def on_fill(self, fill):
        self.fills.append(fill)

    def on_correction(self, correction):
        self.corrections.append(correction)


def _limit(price: float, quantity: float = 5) -> Order:
    return Order("AAPL", quantity, "limit", "buy", limit_price=price, time_in_force="gtc")


def _started(make_engine, strategy: Strategy, **kwargs: Any) -> LiveStrategyEngine:
    engine = make_engine(**kwargs)
    engine.add_strategy(strategy)
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL"], lookback_days=5)
    return engine


def _alerts(engine: LiveStrategyEngine, text: str) -> list[str]:
    return [e["detail"] for e in engine.events if e["kind"] == "alert" and text in e["detail"]]


def _working_at_gateway(gateway: GatewayServer) -> list[Any]:
    return gateway.call(gateway.broker.open_orders)


def _rejected_by_code_alone(engine, gateway) -> Order:
    """Bar 1's resting order, then IB's 201 without a status change: REJECTED here, working at IB."""
    gateway.clock.step(1)
    assert wait_until(lambda: len(_working_at_gateway(gateway)) == 1)
    (sim,) = _working_at_gateway(gateway)
    gateway.faults.order_message(sim.order_id, 201, "Order rejected - reason: held for review")
    assert wait_until(
        lambda: any(o.status is OrderStatus.REJECTED for o in engine.broker.orders_ib_may_hold())
    )
    (order,) = engine.broker.orders_ib_may_hold()
    assert order not in engine.broker.get_open_orders()
    return order


def test_the_engine_kill_switch_cancels_an_order_rejected_by_an_error_code_alone(make_engine, gateway):
    engine = _started(make_engine, Scripted({1: [_limit(RESTING)]}))
    _rejected_by_code_alone(engine, gateway)
    engine.kill("drill")
    assert wait_until(lambda: not _working_at_gateway(gateway))
    assert all(o.status is IbStatus.CANCELLED for o in gateway.call(gateway.broker.completed_orders))


def test_risk_counts_an_order_rejected_by_an_error_code_alone(make_engine, gateway):
    strategy = Scripted({1: [_limit(RESTING)], 2: [_limit(RESTING)]})
    engine = _started(make_engine, strategy, risk_limits=RiskLimits(max_position_per_symbol=7))
    _rejected_by_code_alone(engine, gateway)
    gateway.clock.step(1)
    assert wait_until(lambda: strategy.bars == 2)
    assert wait_until(lambda: any("max_position_per_symbol" in e["error"] for e in engine.errors))
    assert len(_working_at_gateway(gateway)) == 1  # the second order never went out


def test_an_execution_correction_reaches_the_books_the_strategy_and_the_journal(make_engine, gateway):
    strategy = Scripted({1: [_limit(MARKETABLE)]})
    engine = _started(make_engine, strategy)
    gateway.clock.step(1)
    assert wait_until(lambda: len(_working_at_gateway(gateway)) == 1)
    gateway.clock.step(1)
    assert wait_until(lambda: len(strategy.fills) == 1)
    first = strategy.fills[0]
    gateway.faults.correct_execution(shares=6, price=first.fill_price + 0.05)
    gateway.clock.step(1)  # wakes the worker with a bar as well
    assert wait_until(lambda: len(strategy.corrections) == 1)
    correction = strategy.corrections[0]
    assert correction.signed_quantity_delta == pytest.approx(1)
    assert len(strategy.fills) == 1  # a correction is never a second fill
    assert len(engine.fills) == 1
    book = engine.strategy_slots[0].book
    assert book.quantity("AAPL") == pytest.approx(6)
    assert book.fill_count == 1
    assert book.cash_flow == pytest.approx(-6 * (first.fill_price + 0.05) - first.commission)
    assert engine.account.ledger.positions["AAPL"].quantity == pytest.approx(6)
    assert _alerts(engine, "corrected")
    assert engine.broker.flush_journal()
    assert any("corrected" in e.detail for e in engine.journal.events(kind="alert"))


def test_a_bar_stream_stall_and_a_market_data_problem_are_alerts(make_engine, gateway):
    engine = make_engine()
    engine.add_strategy(Scripted())
    engine.data_feed._bars._watch.limit = 0.6  # the drill cannot wait the 60 s default
    engine.connection.stale_only_in_session = False  # the drill runs at any wall-clock hour
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL"], lookback_days=5)
    with Stepper(gateway, interval=0.1):
        assert wait_until(lambda: engine.data_feed.last_bar_time("AAPL") is not None)
        assert gateway.faults.stall_bar_streams("AAPL") == 1
        assert wait_until(lambda: _alerts(engine, "AAPL bar stream"), timeout=15)
    gateway.faults.market_data_permission(10167, "AAPL")
    assert wait_until(lambda: _alerts(engine, "IB 10167"))
    assert "AAPL" in engine.get_performance_summary()["market_data_problems"]
    assert engine.is_running()
    assert any("AAPL bar stream" in e.detail for e in engine.journal.events(kind="alert"))


def test_a_long_outage_is_alerted_and_the_engine_keeps_running_and_reconnects(make_engine, gateway):
    strategy = Scripted({1: [_limit(RESTING)]})
    engine = _started(make_engine, strategy)
    gateway.clock.step(1)
    assert wait_until(lambda: len(_working_at_gateway(gateway)) == 1)  # a GTC order works at IB
    engine.connection.backoff = Backoff(initial=0.1, maximum=0.2, jitter=0.0)
    engine.connection.outage_alert_after = 0.5
    gateway.faults.outage(2.5)
    assert wait_until(lambda: _alerts(engine, "still reconnecting"), timeout=10)
    assert engine.is_running()
    assert wait_until(lambda: engine.connection.state is ConnectionState.CONNECTED, timeout=20)
    assert wait_until(lambda: engine.reconciler.reconciled, timeout=20)
    assert engine.is_running()


def test_fills_older_than_the_executions_window_are_alerted_at_start(make_engine, gateway):
    first = _started(make_engine, Scripted({1: [_limit(MARKETABLE)]}))
    gateway.clock.step(1)
    assert wait_until(lambda: len(_working_at_gateway(gateway)) == 1)
    first.disconnect()  # the GTC order keeps working at IB ...
    gateway.clock.step(1)  # ... and fills while no engine runs
    assert wait_until(lambda: not _working_at_gateway(gateway))
    gateway.clock.step(2)  # two market days later
    gateway.faults.executions_today_only(True)  # IB's reqExecutions no longer returns that fill
    second = _started(make_engine, Scripted())
    (alert,) = _alerts(second, "without the execution")
    assert "5 AAPL buy" in alert
    second.reconcile("manual")
    assert len(_alerts(second, "without the execution")) == 1  # once, not at every reconciliation


def test_a_live_fill_already_journaled_is_no_unseen_fill_alert(make_engine, gateway):
    strategy = Scripted({1: [_limit(MARKETABLE)]})
    engine = _started(make_engine, strategy)
    gateway.clock.step(1)
    assert wait_until(lambda: len(_working_at_gateway(gateway)) == 1)
    gateway.clock.step(1)
    assert wait_until(lambda: len(strategy.fills) == 1)
    gateway.clock.step(2)
    gateway.faults.executions_today_only(True)
    gateway.drop_all()  # a reconnect: ib_async forgets the session's fills, IB no longer returns this one
    assert wait_until(lambda: engine.connection.state is ConnectionState.RECONNECTING, timeout=5)
    assert wait_until(lambda: engine.reconciler.reconciled and engine.connection.is_connected(), timeout=20)
    assert any(e["kind"] == "reconcile" and "reconnect" in e["detail"] for e in engine.events)
    assert not _alerts(engine, "without the execution")  # the journal holds that fill


def test_a_broken_forex_farm_never_stops_trading_but_a_broken_us_farm_halts_saying_why(make_engine, gateway):
    strategy = Scripted()
    engine = _started(make_engine, strategy)
    gateway.faults.farm(2103, "cashfarm")
    assert wait_until(lambda: engine.connection.state is ConnectionState.DEGRADED)
    gateway.clock.step(1)
    assert wait_until(lambda: strategy.bars == 1)  # trading goes on: the engine needs no forex farm
    assert engine.halted is None
    summary = engine.get_performance_summary()
    assert summary["connection_problems"] == ["data farm cashfarm broken"]
    gateway.faults.farm(2105, "ushmds")
    assert wait_until(lambda: engine.halted is not None)
    assert "ushmds" in engine.halted
    assert _alerts(engine, "data farm ushmds broken")
    gateway.clock.step(1)
    gateway.faults.farm(2106, "ushmds")
    assert wait_until(lambda: engine.halted is None)
    assert wait_until(lambda: strategy.bars == 2)


def test_an_order_believed_rejected_that_fills_reaches_the_strategy_with_an_alert(make_engine, gateway):
    strategy = Scripted({1: [_limit(MARKETABLE)]})
    engine = _started(make_engine, strategy)
    order = _rejected_by_code_alone(engine, gateway)
    gateway.clock.step(1)  # IB never finished it: it fills
    assert wait_until(lambda: len(strategy.fills) == 1)
    assert order.status is OrderStatus.FILLED
    assert strategy.fills[0].fill_quantity == pytest.approx(5)
    assert engine.strategy_slots[0].book.quantity("AAPL") == pytest.approx(5)
    assert _alerts(engine, "working again at IB")


def test_orders_lost_in_a_gateway_reset_are_alerted_and_never_cancelled_by_the_kill_switch(
    make_engine, gateway
):
    engine = _started(make_engine, Scripted({1: [_limit(RESTING, 1), _limit(RESTING, 2)]}))
    gateway.clock.step(1)
    assert wait_until(lambda: len(_working_at_gateway(gateway)) == 2)
    assert gateway.faults.reset_losing_orders(2) == 2  # ids rolled back, clients dropped
    assert wait_until(lambda: len(_alerts(engine, "lost")) == 2, timeout=20)
    assert wait_until(lambda: engine.reconciler.reconciled and engine.connection.is_connected(), timeout=20)
    assert not engine.broker.orders_ib_may_hold()
    engine.kill("drill")  # nothing to cancel: no request goes out under an id IB may have reissued
    assert engine.journal is not None
    assert engine.broker.flush_journal()
    assert len([e for e in engine.journal.events(kind="alert") if "lost" in e.detail]) == 2
