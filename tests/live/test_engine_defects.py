"""Defects found running the live engine as a trader would; each test failed on the engine before the fix."""

from __future__ import annotations

import logging

import pytest
from copilot_quant.backtest.orders import Order, OrderStatus
from copilot_quant.live import reconciler as reconciler_module
from copilot_quant.live.reconciler import ReconcileState
from copilot_quant.live.strategy_slot import StrategySlot

from .conftest import Scripted, wait_until

pytestmark = [pytest.mark.network, pytest.mark.timeout(90)]

ACCOUNT = "DU1234567"


class BuysEveryBar(Scripted):
    def on_data(self, timestamp, data):
        self.bars += 1
        return [Order("AAPL", 1, "market", "buy")]


def test_a_reconciliation_that_fails_after_a_reconnect_is_retried_and_blocks_orders_until_it_succeeds(
    make_engine, gateway, monkeypatch
):
    strategy = BuysEveryBar()
    engine = make_engine(fill_timeout=0.2)
    engine.add_strategy(strategy)
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL"], lookback_days=5)
    real_fetch = reconciler_module.fetch_broker_state
    failures = {"left": 2}

    def flaky_fetch(ib, account):
        if failures["left"] > 0:
            failures["left"] -= 1
            raise ConnectionError("IB did not answer reqExecutions")
        return real_fetch(ib, account)

    monkeypatch.setattr(reconciler_module, "fetch_broker_state", flaky_fetch)
    sent_before = len(gateway.broker.open_orders()) + len(gateway.broker.completed_orders())
    gateway.drop_all()
    gateway.clock.step(1)  # a bar closes while the books are not reconciled
    assert wait_until(lambda: failures["left"] == 1, timeout=20)
    assert engine.reconciler.state in (ReconcileState.FAILED, ReconcileState.DUE, ReconcileState.FETCHING)
    # not one order went out unreconciled
    assert len(gateway.broker.open_orders()) + len(gateway.broker.completed_orders()) == sent_before
    assert strategy.bars == 0
    assert wait_until(lambda: engine.reconciler.reconciled, timeout=30)  # retried, then it succeeded
    assert failures["left"] == 0
    failed = [e["error"] for e in engine.errors if e["type"] == "reconcile"]
    assert len(failed) == 2
    assert "no orders are sent until it succeeds" in failed[0]
    # and trading carries on: the bar that waited reaches the strategy, its order reaches IB
    assert wait_until(lambda: strategy.bars == 1)
    assert wait_until(
        lambda: len(gateway.broker.open_orders()) + len(gateway.broker.completed_orders()) == sent_before + 1
    )


def test_stop_with_a_market_order_working_is_prompt_and_says_what_is_still_working_at_ib(
    make_engine, gateway, caplog
):
    # The order never fills (the paused market does not move) and the engine would wait an hour for it.
    strategy = Scripted({1: [Order("AAPL", 10, "market", "buy")]})
    engine = make_engine(fill_timeout=3600)
    engine.add_strategy(strategy)
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL"], lookback_days=5)
    gateway.clock.step(1)
    assert wait_until(lambda: len(gateway.broker.open_orders()) == 1)
    with caplog.at_level(logging.INFO, logger="copilot_quant.live"):
        engine.stop()  # returns at once: before, the worker sat in the fill wait (here: an hour)
    assert not engine.is_running()
    stop = [e for e in engine.events if e["kind"] == "stop"][-1]
    assert "1 order(s) still working at IB" in stop["detail"]
    assert "buy 10 AAPL market (day)" in stop["detail"]
    assert any(
        "still working at IB" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records
    )


def test_fills_that_happened_while_the_engine_was_down_are_news_not_alarms(make_engine, gateway, caplog):
    first = Scripted({1: [Order("AAPL", 10, "market", "buy")]})
    engine = make_engine(fill_timeout=0.0)
    engine.add_strategy(first)
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL"], lookback_days=5)
    gateway.clock.step(1)
    assert wait_until(lambda: len(gateway.broker.open_orders()) == 1)
    engine.disconnect()  # stopped with the order working
    gateway.clock.step(1)  # it fills while no engine runs
    assert wait_until(lambda: len(gateway.broker.executions()) == 1)

    second = Scripted()
    restarted = make_engine()
    restarted.add_strategy(second)
    with caplog.at_level(logging.INFO, logger="copilot_quant.live"):
        assert restarted.connect(timeout=5)
        assert restarted.start(["AAPL"], lookback_days=5)
    assert wait_until(lambda: len(second.fills) == 1)
    said = [r for r in caplog.records if "reconcile" in r.getMessage()]
    text = " ".join(r.getMessage() for r in said)
    assert "missing fill" not in text
    assert "is filled at the broker" not in text
    assert "while the engine was not running, IB filled Scripted's order" in text
    assert "recorded in the journal and passed to on_fill; nothing to do" in text
    assert "needs attention" not in text
    assert all(r.levelno < logging.WARNING for r in said)
    assert restarted.reconciler.state is ReconcileState.CLEAN


def test_a_strategy_slot_keeps_its_working_orders_and_a_bounded_history():
    slot = StrategySlot(BuysEveryBar(), history=50)
    working = Order("AAPL", 1, "limit", "buy", limit_price=1.0)
    working.status = OrderStatus.SUBMITTED
    slot.add(working)
    for _ in range(10_000):
        done = Order("AAPL", 1, "market", "buy")
        done.status = OrderStatus.FILLED
        slot.add(done)
    assert len(slot.orders) <= 2 * 50 + 1  # before: one entry per order of the session, for ever
    assert slot.orders[0] is working
    assert slot.open_orders() == [working]
    assert slot.find(done.order_id) is done  # the recent history is still there
