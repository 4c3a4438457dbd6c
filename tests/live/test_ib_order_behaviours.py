"""What real IB does to orders that a well-behaved gateway never showed (docs/ib-behaviours.md), each one
driven by a gateway drill against the real ib_async client and the broker adapter.

Every test here failed on the code before issue 15: the order ended REJECTED while IB kept working it,
a lost order stayed SUBMITTED and its cancel hit the new order that reused its id, a correction counted
as a second fill, 321 left an order submitted forever, 110 cancelled it silently.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from copilot_quant.backtest.orders import Order, OrderStatus
from copilot_quant.brokers.live_broker_adapter import LiveBrokerAdapter
from copilot_quant.gateway.orders import IbStatus
from copilot_quant.journal import TradeJournal

from .conftest import wait_until

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]

NOW = datetime(2024, 3, 1, tzinfo=UTC)
#: A buy limit far above the market: marketable, so it fills at the next price the (paused) gateway makes.
MARKETABLE = 10_000.0
#: A buy limit far below the market: it rests and never fills.
RESTING = 1.0


@pytest.fixture
def broker(gateway):
    b = LiveBrokerAdapter(
        port=gateway.port, client_id=60, ack_timeout=0.3, fill_timeout=2, commission_timeout=1.0
    )
    errors: list[str] = []
    b.register_error_callback(lambda record, message: errors.append(message))
    b.test_errors = errors  # type: ignore[attr-defined]
    assert b.connect(timeout=5)
    yield b
    b.disconnect()


def _resting(broker, quantity=5, limit=MARKETABLE):
    order = Order("AAPL", quantity, "limit", "buy", limit_price=limit, time_in_force="gtc")
    assert broker.execute_order(order, 100.0, NOW) is None  # paused market: it rests
    assert order.status is OrderStatus.SUBMITTED
    return order


def _at_gateway(gateway, order):
    return gateway.call(gateway.broker.find_order, order.broker_order_id)


def test_an_informational_code_never_rejects_a_working_order(broker, gateway):
    order = _resting(broker)
    gateway.faults.order_message(
        order.broker_order_id, 10349, "Order TIF was set to DAY based on order preset."
    )
    record = broker.tracker.record_for(order)
    assert wait_until(lambda: any("10349" in n for n in record.notes))
    assert order.status is OrderStatus.SUBMITTED  # ib_async cancelled its Trade; IB did not
    assert order in broker.get_open_orders()
    assert broker.test_errors == []
    gateway.clock.step()
    assert wait_until(lambda: order.status is OrderStatus.FILLED)
    assert order.filled_quantity == 5


def test_an_order_accepted_with_an_informational_answer_keeps_working(broker, gateway):
    gateway.faults.answer_next_order(
        10349, "Order TIF was set to DAY based on order preset.", keeps_working=True
    )
    order = _resting(broker, limit=RESTING)
    assert wait_until(lambda: broker.tracker.record_for(order).notes)
    assert order.status is OrderStatus.SUBMITTED
    assert broker.cancel_order(order)
    assert wait_until(lambda: order.status is OrderStatus.CANCELLED)
    assert _at_gateway(gateway, order).status is IbStatus.CANCELLED


def test_an_inactive_order_waiting_for_a_locate_stays_open_and_can_fill(broker, gateway):
    order = _resting(broker)
    gateway.faults.hold_order(order.broker_order_id, "locate")
    record = broker.tracker.record_for(order)
    assert wait_until(lambda: record.ib_status == "Inactive")
    assert record.why_held == "locate"
    assert order.status is OrderStatus.SUBMITTED
    assert order in broker.get_open_orders()  # risk counts it, the kill switch reaches it
    assert any("inactive" in e and "locate" in e for e in broker.test_errors)
    gateway.clock.step()
    assert wait_until(lambda: order.status is OrderStatus.FILLED)
    assert order.filled_quantity == 5


def test_a_reactivated_order_is_working_again(broker, gateway):
    order = _resting(broker, limit=RESTING)
    gateway.faults.hold_order(order.broker_order_id, "locate")
    record = broker.tracker.record_for(order)
    assert wait_until(lambda: record.ib_status == "Inactive")
    gateway.faults.reactivate_order(order.broker_order_id)
    assert wait_until(lambda: record.ib_status == "Submitted")
    assert record.why_held == ""
    assert order.status is OrderStatus.SUBMITTED


def test_an_order_rejected_by_an_error_code_alone_stays_reachable_and_reopens_on_a_fill(broker, gateway):
    order = _resting(broker)
    gateway.faults.order_message(order.broker_order_id, 201, "Order rejected - reason: held for review")
    assert wait_until(lambda: order.status is OrderStatus.REJECTED)
    assert order in broker.orders_ib_may_hold()  # IB never said the order was finished
    gateway.clock.step()  # ... and indeed it fills
    assert wait_until(lambda: order.status is OrderStatus.FILLED)
    assert order.filled_quantity == 5
    assert any("believed rejected" in e for e in broker.test_errors)


def test_the_kill_switch_cancel_reaches_an_order_rejected_by_an_error_code_alone(broker, gateway):
    order = _resting(broker, limit=RESTING)
    gateway.faults.order_message(order.broker_order_id, 201, "Order rejected - reason: held for review")
    assert wait_until(lambda: order.status is OrderStatus.REJECTED)
    assert broker.get_open_orders() == []
    assert broker.cancel_all_orders("kill switch") == 1
    assert wait_until(lambda: _at_gateway(gateway, order).status is IbStatus.CANCELLED)


def test_a_read_only_api_rejects_the_order_with_a_named_error(broker, gateway):
    gateway.faults.answer_next_order(321, "API interface is currently in Read-Only mode.")
    order = Order("AAPL", 5, "limit", "buy", limit_price=RESTING)
    assert broker.execute_order(order, 100.0, NOW) is None
    assert wait_until(lambda: order.status is OrderStatus.REJECTED)
    assert "read-only" in order.reject_reason.lower()
    assert any("321" in e for e in broker.test_errors)
    assert broker.get_open_orders() == []


def test_a_price_off_the_tick_grid_rejects_the_order_with_a_named_error(broker, gateway):
    gateway.faults.answer_next_order(110, "The price does not conform to the minimum price variation.")
    order = Order("AAPL", 5, "limit", "buy", limit_price=RESTING)
    assert broker.execute_order(order, 100.0, NOW) is None
    assert wait_until(lambda: order.status is OrderStatus.REJECTED)
    assert "tick" in order.reject_reason
    assert any("110" in e for e in broker.test_errors)


@pytest.mark.parametrize(
    ("side", "asked", "sent"),
    [("buy", 100.123, 100.12), ("sell", 100.121, 100.13), ("buy", 0.123456, 0.1234)],
)
def test_prices_are_put_on_ibs_tick_grid_in_the_traders_favour(broker, gateway, side, asked, sent):
    order = Order("AAPL", 1, "limit", side, limit_price=asked, time_in_force="gtc")
    broker.execute_order(order, 100.0, NOW)
    assert _at_gateway(gateway, order).lmt_price == pytest.approx(sent, abs=1e-9)


def test_an_execution_correction_replaces_the_fill_instead_of_adding_one(broker, gateway, tmp_path):
    journal = TradeJournal(tmp_path / "j.sqlite", account=gateway.broker.account_id)
    broker.journal = journal
    fills, corrections = [], []
    broker.register_fill_callback(fills.append)
    broker.register_correction_callback(corrections.append)
    order = Order("AAPL", 5, "limit", "buy", limit_price=MARKETABLE, time_in_force="gtc")
    ref = journal.record_intent(order)
    broker.execute_order(order, 100.0, NOW, order_ref=ref)
    gateway.clock.step()
    assert wait_until(lambda: len(fills) == 1 and order.status is OrderStatus.FILLED)
    first = fills[0]
    new_id = gateway.faults.correct_execution(shares=6, price=first.fill_price + 0.05)
    assert new_id.endswith(".02")
    assert wait_until(lambda: len(corrections) == 1)
    correction = corrections[0]
    assert (correction.replaced_exec_id, correction.exec_id) == (first.fill_id, new_id)
    assert correction.signed_quantity_delta == pytest.approx(1)
    assert order.filled_quantity == 6  # replaced, not 11
    assert order.avg_fill_price == pytest.approx(first.fill_price + 0.05)
    assert len(fills) == 1  # never a second fill
    assert any("corrected" in e for e in broker.test_errors)
    assert broker.flush_journal()
    assert any("corrected" in e.detail for e in journal.events(kind="alert"))
    assert sum(f.quantity for f in journal.fills(order_ref=ref)) == pytest.approx(6)
    broker.journal = None
    journal.close()


def test_a_zero_commission_is_real_not_replaced_by_the_estimate(broker, gateway):
    gateway.faults.commission_reports("zero")
    fills = []
    broker.register_fill_callback(fills.append)
    _resting(broker)
    gateway.clock.step()
    assert wait_until(lambda: len(fills) == 1)
    assert fills[0].commission == 0.0


def test_a_late_commission_report_is_estimated_then_journaled_for_real(broker, gateway, tmp_path):
    journal = TradeJournal(tmp_path / "j.sqlite", account=gateway.broker.account_id)
    broker.journal = journal
    gateway.faults.commission_reports("late")
    fills = []
    broker.register_fill_callback(fills.append)
    order = Order("AAPL", 5, "limit", "buy", limit_price=MARKETABLE, time_in_force="gtc")
    ref = journal.record_intent(order)
    broker.execute_order(order, 100.0, NOW, order_ref=ref)
    gateway.clock.step()
    assert wait_until(lambda: len(fills) == 1)  # after commission_timeout, with the model's estimate
    assert fills[0].commission == pytest.approx(broker.calculate_commission(fills[0].fill_price, 5))
    assert gateway.faults.commission_reports("release") == 1
    assert wait_until(
        lambda: broker.flush_journal() and journal.fills(order_ref=ref)[0].commission == pytest.approx(1.0)
    )
    broker.journal = None
    journal.close()


def test_a_gateway_reset_that_loses_orders_marks_them_lost_and_never_cancels_a_reused_id(broker, gateway):
    lost = [_resting(broker, quantity=1 + i, limit=RESTING) for i in range(3)]
    assert gateway.faults.reset_losing_orders(3) == 3  # ids rolled back, clients dropped
    assert wait_until(lambda: all(o.status is OrderStatus.CANCELLED for o in lost), timeout=20)
    assert all(o.reject_reason.startswith("lost") for o in lost)
    assert all(broker.tracker.record_for(o).lost for o in lost)
    assert any("lost" in e for e in broker.test_errors)
    fresh = [_resting(broker, quantity=10 + i, limit=RESTING) for i in range(3)]
    reused = {o.broker_order_id for o in fresh} & {o.broker_order_id for o in lost}
    assert reused  # IB reissued the lost orders' ids
    assert not any(broker.cancel_order(o) for o in lost)
    for order in fresh:
        assert _at_gateway(gateway, order).status is not IbStatus.CANCELLED
        assert order.status is OrderStatus.SUBMITTED


def test_missed_executions_are_caught_up_after_1102(broker, gateway):
    fills = []
    broker.register_fill_callback(fills.append)
    order = _resting(broker)
    gateway.withhold_executions(True)  # IB never sends these execDetails (they are lost around 1100)
    gateway.connectivity_lost()
    gateway.clock.step()
    assert wait_until(lambda: gateway.call(lambda: gateway.broker.withheld) == 2)
    gateway.connectivity_restored(data_lost=False)  # 1102: "data maintained"
    assert wait_until(lambda: order.status is OrderStatus.FILLED and len(fills) == 1)
    assert fills[0].fill_quantity == 5


def test_fills_older_than_the_executions_window_are_named_in_the_broker_state(broker, gateway):
    from copilot_quant.brokers.reconciliation import fetch_broker_state
    from copilot_quant.brokers.reconnect import ConnectionState

    order = Order("AAPL", 5, "limit", "buy", limit_price=MARKETABLE, time_in_force="gtc")
    broker.execute_order(order, 100.0, NOW, order_ref="cq-window-1")
    gateway.clock.step()
    assert wait_until(lambda: order.status is OrderStatus.FILLED)
    gateway.clock.step(2)  # two market days later ...
    gateway.faults.executions_today_only(True)  # ... IB's reqExecutions no longer returns that fill
    gateway.drop_all()  # a reconnect: ib_async forgets the session's fills and asks IB again
    assert wait_until(lambda: broker.connection.state is ConnectionState.RECONNECTING, timeout=5)
    assert wait_until(lambda: broker.connection.state is ConnectionState.CONNECTED, timeout=20)
    state = broker.connection.run(fetch_broker_state(broker.connection.ib, broker.account), timeout=30)
    assert not [e for e in state.executions if e.order_ref == "cq-window-1"]
    (gap,) = [g for g in state.unseen_fills if g.order_ref == "cq-window-1"]
    assert (gap.symbol, gap.side, gap.quantity) == ("AAPL", "buy", pytest.approx(5.0))


def test_throttled_account_values_lag_a_fill_but_the_pnl_stream_does_not(broker, gateway):
    before_cash = broker.get_cash_balance()
    before_pnl = broker.account_pnl()
    # IB refreshes account values every 3 minutes of market time; on this gateway's daily bars every step
    # is a refresh, so the drill stretches the cycle past the test's bars to show the lag
    gateway.faults.throttle_account_updates(30 * 86_400)
    order = Order("AAPL", 50, "limit", "buy", limit_price=MARKETABLE, time_in_force="gtc")
    broker.execute_order(order, 100.0, NOW)
    gateway.clock.step()
    assert wait_until(lambda: order.status is OrderStatus.FILLED)
    assert wait_until(lambda: broker.account_pnl().unrealized != before_pnl.unrealized)  # P&L flows
    assert broker.get_cash_balance() == before_cash  # the account values lag the fill, as at IB
    gateway.faults.throttle_account_updates(None)  # back to the 3-minute cycle: a daily step refreshes
    gateway.clock.step()
    assert wait_until(lambda: broker.get_cash_balance() < before_cash)


def test_a_reconnect_never_relabels_a_rejected_order_as_lost(broker, gateway):
    from copilot_quant.brokers.reconnect import ConnectionState

    gateway.reject_next_order("risk desk says no")
    order = Order("AAPL", 5, "limit", "buy", limit_price=RESTING)
    assert broker.execute_order(order, 100.0, NOW) is None
    assert wait_until(lambda: order.status is OrderStatus.REJECTED)
    reason = order.reject_reason
    errors = len(broker.test_errors)
    gateway.drop_all()
    assert wait_until(lambda: broker.connection.state is ConnectionState.RECONNECTING, timeout=5)
    assert wait_until(lambda: broker.connection.state is ConnectionState.CONNECTED, timeout=20)
    assert wait_until(lambda: not broker.tracker.record_for(order).may_be_at_ib)  # IB lists it as finished
    assert order.status is OrderStatus.REJECTED
    assert order.reject_reason == reason
    assert len(broker.test_errors) == errors  # no "lost" alert
