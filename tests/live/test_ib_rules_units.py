"""Pure rules behind the real-IB behaviours: the tick grid, execution-correction ids, farm names, code
classes, bar-stream liveness, and the tracker's permId keying and corrections."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from copilot_quant.backtest.orders import Order, OrderStatus
from copilot_quant.brokers.exec_corrections import exec_id_base, supersedes
from copilot_quant.brokers.farms import LinkHealth, farm_name
from copilot_quant.brokers.ib_codes import is_informational, refuses_modification, rejection_reason
from copilot_quant.brokers.order_tracking import OrderTracker, PendingExecution
from copilot_quant.brokers.stream_health import BarStreamWatch
from copilot_quant.brokers.tick_rules import US_STOCK_RULE, PriceRule, rule_for_min_tick
from copilot_quant.errors import OrderValidationError
from hypothesis import given
from hypothesis import strategies as st

NOW = datetime(2024, 3, 1, 15, tzinfo=UTC)


@given(st.floats(min_value=0.0001, max_value=100_000, allow_nan=False), st.booleans())
def test_rounded_prices_are_on_the_grid_and_never_worse_for_the_trader(price, buy):
    limit = US_STOCK_RULE.limit_price(price, buy=buy)
    stop = US_STOCK_RULE.stop_price(price, buy=buy)
    for rounded in (limit, stop):
        units = Decimal(repr(rounded)) / Decimal(repr(US_STOCK_RULE.increment(rounded)))
        assert units == units.to_integral_value()  # on IB's grid at its own price level
    slack = 1e-9
    if buy:
        assert limit <= price + slack  # a buy never pays more than asked
        assert stop >= price - slack  # a buy stop never triggers earlier
    else:
        assert limit >= price - slack  # a sell never receives less
        assert stop <= price + slack


def test_the_tick_rule_by_price_level_and_min_tick():
    assert US_STOCK_RULE.increment(0.5) == 0.0001
    assert US_STOCK_RULE.increment(1.0) == 0.01
    assert US_STOCK_RULE.limit_price(100.129, buy=True) == 100.12
    assert rule_for_min_tick(0.01) is US_STOCK_RULE
    assert rule_for_min_tick(0.05).limit_price(10.07, buy=False) == pytest.approx(10.10)
    with pytest.raises(OrderValidationError, match="positive increments"):
        PriceRule(((0.0, 0.0),))


def test_execution_corrections_differ_only_after_the_last_period():
    assert exec_id_base("0000e1a2.65b8d1f6.01.01") == "0000e1a2.65b8d1f6.01"
    assert supersedes("0000e1a2.65b8d1f6.01.02", "0000e1a2.65b8d1f6.01.01")
    assert not supersedes("0000e1a2.65b8d1f6.01.01", "0000e1a2.65b8d1f6.01.02")  # an older version
    assert not supersedes("0000e1a2.65b8d1f7.01.02", "0000e1a2.65b8d1f6.01.01")  # another execution
    assert not supersedes("abc", "abc")


def test_farm_names_come_from_tws_texts():
    assert farm_name(2104, "Market data farm connection is OK:usfarm.nj") == "usfarm.nj"
    assert (
        farm_name(2108, "Market data farm connection is inactive but should be available upon demand.usfarm")
        == "usfarm"
    )
    assert farm_name(2106, "") == "hmds"
    health = LinkHealth()
    health.on_code(2110, "Connectivity between Trader Workstation and server is broken.")
    assert not health.healthy
    health.on_code(2104, "Market data farm connection is OK:usfarm")
    assert health.healthy


def test_code_classes():
    assert is_informational(10349)
    assert is_informational(2109)
    assert not is_informational(201)
    assert not is_informational(321)  # a rejection of a new order, with a named reason
    assert "read-only" in (rejection_reason(321, "x") or "").lower()
    assert rejection_reason(201, "x") is None


def test_which_codes_refuse_an_outstanding_modification():
    for code in (103, 104, 105, 110, 201, 321, 329):  # the order keeps working with its earlier terms
        assert refuses_modification(code), code
    for code in (202, 161, 10147, 10148, 10349, 399, 2109):  # about the order, a cancel, or a note
        assert not refuses_modification(code), code


def test_a_bar_stream_is_stalled_only_while_ticks_keep_coming():
    watch = BarStreamWatch(limit=5.0)
    watch.bar("AAPL", 0.0)
    assert watch.stalled(100.0) == []  # no ticks either: a quiet market, not a dead stream
    watch.tick("AAPL", 4.0)
    assert watch.stalled(100.0) == []  # the ticks stopped too
    watch.tick("AAPL", 6.0)
    assert watch.stalled(6.5) == ["AAPL"]
    assert watch.restarted("AAPL", 6.5) == 1
    assert watch.stalled(7.0) == []


def test_the_tracker_never_matches_a_reused_order_id_with_another_perm_id():
    tracker = OrderTracker()
    old = tracker.add(Order("AAPL", 1, "limit", "buy", limit_price=1.0), "ref-old")
    tracker.bind(old, 7, object())
    assert tracker.find(7, perm_id=1001) is old  # IB's first report gives the perm id
    new = tracker.add(Order("AAPL", 2, "limit", "buy", limit_price=1.0), "ref-new")
    displaced = tracker.bind(new, 7, object())  # IB reissued id 7
    assert displaced is old
    assert tracker.find(7, perm_id=2002, order_ref="ref-new") is new
    assert tracker.find(0, perm_id=1001) is old
    assert tracker.mark_lost(old, "lost: gone")
    assert old.order.status is OrderStatus.CANCELLED
    assert old.lost
    assert old.ib_order is None
    assert old not in tracker.reachable_records()


def test_a_correction_replaces_the_fill_and_reports_the_difference():
    tracker = OrderTracker()
    record = tracker.add(Order("AAPL", 5, "market", "sell"))
    assert tracker.add_execution(record, PendingExecution("t.1.01.01", 5, 100.0, NOW))
    tracker.settle(record, "t.1.01.01", 1.0)
    assert tracker.corrected_exec_id(record, "t.1.01.02") == "t.1.01.01"
    correction = tracker.correct(record, PendingExecution("t.1.01.02", 4, 100.5, NOW), "t.1.01.01")
    assert correction is not None
    assert correction.signed_quantity_delta == pytest.approx(1.0)  # a sell of one share fewer
    assert record.filled_quantity == 4
    assert record.order.status is OrderStatus.PARTIALLY_FILLED
    assert not tracker.add_execution(record, PendingExecution("t.1.01.01", 5, 100.0, NOW))  # old version
