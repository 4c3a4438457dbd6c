"""The order tracker never drops an execution whose id was already reported for a *different* order.

IB's execution ids never repeat; a broker that reuses one (the simulated gateway restarted without its
state did) must not make a real fill vanish as a "duplicate". A repeat for the same order stays one.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from copilot_quant.backtest.orders import Order
from copilot_quant.brokers.order_tracking import OrderTracker, PendingExecution

NOW = datetime(2024, 1, 5, 15, tzinfo=UTC)


def _execution(exec_id: str = "000f4241.00000001.01.01", shares: float = 10) -> PendingExecution:
    return PendingExecution(exec_id, shares, 100.0, NOW)


def test_an_exec_id_reported_for_another_order_becomes_that_orders_fill_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tracker = OrderTracker()
    first = tracker.add(Order("AAPL", 10, "market", "buy"), "ref-a")
    second = tracker.add(Order("AAPL", 10, "market", "buy"), "ref-b")
    assert tracker.add_execution(first, _execution())
    assert tracker.settle(first, "000f4241.00000001.01.01", 1.0) is not None
    with caplog.at_level(logging.ERROR, logger="copilot_quant.brokers.order_tracking"):
        assert tracker.add_execution(second, _execution())
    assert "000f4241.00000001.01.01" in caplog.text
    assert "ref-a" in caplog.text
    fill = tracker.settle(second, "000f4241.00000001.01.01", 1.0)
    assert fill is not None
    assert fill.order is second.order
    assert second.filled_quantity == 10
    assert tracker.other_orders("000f4241.00000001.01.01", second) == [first]
    assert tracker.other_orders("000f4241.00000001.01.01", first) == [second]


def test_seen_answers_per_order_when_given_one() -> None:
    tracker = OrderTracker()
    first = tracker.add(Order("AAPL", 10, "market", "buy"), "ref-a")
    second = tracker.add(Order("AAPL", 10, "market", "buy"), "ref-b")
    tracker.add_execution(first, _execution("e1"))
    assert tracker.seen("e1")
    assert tracker.seen("e1", first)
    assert not tracker.seen("e1", second)
    assert not tracker.seen("e2")
    assert tracker.other_orders("e1", first) == []


def test_a_repeat_for_the_same_order_is_still_a_duplicate_even_on_a_new_record() -> None:
    tracker = OrderTracker()
    order = Order("AAPL", 10, "market", "buy")
    record = tracker.add(order, "ref-a")
    assert tracker.add_execution(record, _execution("e1", 4))
    assert not tracker.add_execution(record, _execution("e1", 4))  # a reconnect replay
    adopted = tracker.add(Order("AAPL", 10, "market", "buy"), "ref-a")  # the same order after a restart
    assert not tracker.add_execution(adopted, _execution("e1", 4))
    assert tracker.seen("e1", adopted)
    # Without journal refs the order object decides: the same Order, re-tracked, is the same order.
    plain = tracker.add(Order("MSFT", 5, "market", "buy"))
    assert tracker.add_execution(plain, _execution("e2", 5))
    again = tracker.add(plain.order)
    assert not tracker.add_execution(again, _execution("e2", 5))
