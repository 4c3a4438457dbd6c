"""SimBroker: order lifecycle, rejections with IB's codes, faults, and the events the sessions relay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from copilot_quant.backtest.costs import PerShareCommission, ZeroCommission
from copilot_quant.gateway.broker import (
    AccountChanged,
    CommissionReported,
    ExecutionReported,
    OrderErrorEvent,
    OrderUpdated,
    SimBroker,
    WhatIfReported,
)
from copilot_quant.gateway.contracts import ContractInfo, ContractRequest
from copilot_quant.gateway.orders import ExecutionFilter, IbStatus, PlaceOrderRequest
from hypothesis import given
from hypothesis import strategies as st

AAPL = ContractInfo.for_symbol("AAPL")
T0 = datetime(2024, 1, 5, 15, 0, tzinfo=UTC)


def req(order_id: int, action="BUY", qty=100.0, kind="MKT", lmt=None, aux=None, **kw) -> PlaceOrderRequest:  # noqa: PLR0917
    return PlaceOrderRequest(order_id, ContractRequest(symbol="AAPL"), action, qty, kind, lmt, aux, **kw)


@pytest.fixture
def broker():
    b = SimBroker(clock=lambda: T0)
    b.seen = []  # type: ignore[attr-defined]
    b.events += b.seen.append  # type: ignore[attr-defined]
    return b


def kinds(events) -> list[str]:
    return [type(e).__name__ for e in events]


def errors(events) -> list[tuple[int, int]]:
    return [(e.order_id, e.code) for e in events if isinstance(e, OrderErrorEvent)]


def test_market_order_lifecycle_and_event_order(broker):
    broker.place_order(1, req(1), AAPL)
    assert kinds(broker.seen) == ["OrderUpdated"]
    assert broker.seen[0].record.status is IbStatus.SUBMITTED
    broker.on_price("AAPL", 100.0, T0)
    assert kinds(broker.seen[1:]) == [
        "ExecutionReported",
        "OrderUpdated",
        "CommissionReported",
        "AccountChanged",
    ]
    rec = broker.order(1, 1)
    assert rec.status is IbStatus.FILLED
    assert rec.filled == 100
    assert rec.avg_fill_price == 100.0
    [ex] = broker.executions()
    assert (ex.side, ex.shares, ex.price, ex.commission, ex.realized_pnl) == ("BOT", 100.0, 100.0, 1.0, None)
    assert broker.account.cash == 1_000_000 - 10_000 - 1.0
    assert broker.open_orders() == []
    assert broker.completed_orders() == [rec]
    changed = broker.seen[-1]
    assert isinstance(changed, AccountChanged)
    assert changed.items[0].position == 100


def test_partial_fills_report_cumulative_quantities():
    broker = SimBroker(partial_fill_size=40, clock=lambda: T0)
    seen: list = []
    broker.events += seen.append
    broker.place_order(1, req(1), AAPL)
    for p in (100.0, 101.0, 102.0):
        broker.on_price("AAPL", p, T0)
    updates = [e.record for e in seen if isinstance(e, OrderUpdated)]
    assert [(u.status.value, u.filled) for u in updates] == [
        ("Submitted", 0),
        ("Submitted", 40),
        ("Submitted", 80),
        ("Filled", 100),
    ]
    assert [e.execution.cum_qty for e in seen if isinstance(e, ExecutionReported)] == [40, 80, 100]
    assert broker.order(1, 1).avg_fill_price == pytest.approx((40 * 100 + 40 * 101 + 20 * 102) / 100)


def test_stop_waits_presubmitted_until_triggered(broker):
    broker.place_order(1, req(1, "SELL", 10, "STP", aux=95.0), AAPL)
    assert broker.order(1, 1).status is IbStatus.PRE_SUBMITTED
    broker.on_price("AAPL", 100.0, T0, gap=True)
    broker.on_price("AAPL", 94.0, T0)
    statuses = [e.record.status.value for e in broker.seen if isinstance(e, OrderUpdated)]
    assert statuses == ["PreSubmitted", "Submitted", "Filled"]
    assert broker.executions()[0].price == 95.0


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        (req(1, qty=0), "quantity must be positive"),
        (req(1, kind="LMT"), "needs a positive limit price"),
        (req(1, kind="STP"), "needs a positive stop price"),
        (req(1, kind="STP LMT", lmt=10.0), "needs a positive stop price"),
        (req(1, kind="PEG MID"), "not supported"),
        (req(1, action="SHORT"), "unknown action"),
        (req(1, tif="FOK"), "time in force"),
        (req(1, kind="LMT", lmt=20_000.0), "insufficient buying power"),
        (req(1, action="SELL", parent_id=3), "parent order 3 is not known"),
        (req(1, account="DU999"), "not managed"),
    ],
)
def test_rejections_are_201_with_a_reason_and_recorded(broker, request_, reason):
    broker.place_order(1, request_, AAPL)
    [event] = broker.seen
    assert isinstance(event, OrderErrorEvent)
    assert event.code == 201
    assert event.message.startswith("Order rejected - reason:")
    assert reason in event.message
    [done] = broker.completed_orders()
    assert done.status is IbStatus.CANCELLED
    assert done.completed_status.startswith("Rejected:")


def test_buying_power_counts_leverage_and_allows_shorts():
    broker = SimBroker(cash=10_000, leverage=2, commission=ZeroCommission())
    seen: list = []
    broker.events += seen.append
    broker.place_order(1, req(1, "SELL", 300, "LMT", lmt=100.0), AAPL)  # a 30k short needs 15k of 10k
    broker.place_order(1, req(2, "SELL", 150, "LMT", lmt=100.0), AAPL)  # a 15k short needs 7.5k: fine
    assert errors(seen) == [(1, 201)]
    broker.on_price("AAPL", 100.0, T0)
    assert broker.account.quantity("AAPL") == -150
    broker.place_order(1, req(3, "BUY", 50, "LMT", lmt=100.0), AAPL)  # reducing a position is always allowed
    broker.place_order(1, req(4, "SELL", 60, "LMT", lmt=100.0), AAPL)  # 6k more short: 3k margin > 2.5k free
    assert errors(seen) == [(1, 201), (4, 201)]
    assert broker.account.buying_power == pytest.approx(2 * (10_000 - 15_000 / 2))


def test_duplicate_and_reused_ids(broker):
    broker.place_order(1, req(5), AAPL)
    broker.place_order(1, req(4), AAPL)  # below an id this client already used
    assert errors(broker.seen) == [(4, 103)]
    broker.place_order(2, req(4), AAPL)  # ids are per client
    assert errors(broker.seen) == [(4, 103)]
    broker.on_price("AAPL", 100.0, T0)
    broker.place_order(1, req(5, qty=50), AAPL)  # modify of a filled order
    assert errors(broker.seen)[-1] == (5, 104)


def test_next_order_id_is_per_client_and_increasing(broker):
    assert broker.next_order_id(1) == 1
    broker.place_order(1, req(10), AAPL)
    broker.place_order(1, req(11, qty=0), AAPL)  # rejected ids are used up too
    assert broker.next_order_id(1) == 12
    assert broker.next_order_id(2) == 1


def test_modify_changes_price_and_keeps_working(broker):
    broker.place_order(1, req(1, kind="LMT", lmt=90.0), AAPL)
    broker.place_order(1, req(1, kind="LMT", lmt=95.0, qty=50), AAPL)
    rec = broker.order(1, 1)
    assert (rec.lmt_price, rec.quantity, rec.status) == (95.0, 50, IbStatus.SUBMITTED)
    broker.on_price("AAPL", 94.0, T0)
    assert broker.order(1, 1).filled == 50
    broker.place_order(1, req(1, "SELL", kind="LMT", lmt=95.0), AAPL)
    assert errors(broker.seen)[-1] == (1, 104)


def test_modify_mismatch_is_105(broker):
    broker.place_order(1, req(1, kind="LMT", lmt=90.0), AAPL)
    broker.place_order(1, req(1, "SELL", kind="LMT", lmt=90.0), AAPL)
    assert errors(broker.seen) == [(1, 105)]


def test_cancel_paths(broker):
    broker.place_order(1, req(1, kind="LMT", lmt=90.0), AAPL)
    broker.cancel_order(1, 1)
    assert kinds(broker.seen[-2:]) == ["OrderUpdated", "OrderErrorEvent"]
    assert broker.seen[-2].record.status is IbStatus.CANCELLED
    assert errors(broker.seen) == [(1, 202)]
    broker.cancel_order(1, 1)
    broker.cancel_order(1, 99)
    broker.place_order(1, req(2), AAPL)
    broker.on_price("AAPL", 100.0, T0)
    broker.cancel_order(1, 2)
    assert errors(broker.seen)[1:] == [(1, 161), (99, 10147), (2, 10148)]
    broker.on_price("AAPL", 80.0, T0)
    assert broker.order(1, 1).filled == 0  # a cancelled order never fills


def test_global_cancel_and_day_expiry(broker):
    broker.place_order(1, req(1, kind="LMT", lmt=90.0), AAPL)
    broker.place_order(2, req(1, kind="LMT", lmt=90.0, tif="GTC"), AAPL)
    broker.end_session(T0)
    assert [r.key for r in broker.open_orders()] == [(2, 1)]
    assert broker.order(1, 1).completed_status.startswith("Expired")
    broker.global_cancel()
    assert broker.open_orders() == []
    assert errors(broker.seen) == [(1, 202)]


def test_reject_next_fault(broker):
    broker.reject_next("simulated outage")
    broker.place_order(1, req(1), AAPL)
    broker.place_order(1, req(2), AAPL)
    assert errors(broker.seen) == [(1, 201)]
    assert "simulated outage" in broker.seen[0].message
    assert broker.order(1, 2).status is IbStatus.SUBMITTED


def test_withheld_executions_are_released_later_and_always_queryable(broker):
    broker.withhold_executions(True)
    broker.place_order(1, req(1), AAPL)
    broker.on_price("AAPL", 100.0, T0)
    assert not any(isinstance(e, ExecutionReported | CommissionReported) for e in broker.seen)
    assert broker.withheld == 2
    assert len(broker.executions(1)) == 1
    broker.withhold_executions(False)
    assert kinds(broker.seen[-2:]) == ["ExecutionReported", "CommissionReported"]


def test_executions_filter(broker):
    broker.place_order(1, req(1), AAPL)
    broker.place_order(2, req(1, "SELL", 50), AAPL)
    broker.on_price("AAPL", 100.0, T0)
    assert len(broker.executions()) == 2
    assert [e.client_id for e in broker.executions(2)] == [2]
    assert [e.side for e in broker.executions(flt=ExecutionFilter(side="SELL"))] == ["SLD"]
    later = (T0 + timedelta(hours=1)).strftime("%Y%m%d %H:%M:%S") + " UTC"
    assert broker.executions(flt=ExecutionFilter(time=later)) == []


def test_closing_trade_reports_realized_pnl_net_of_commission(broker):
    broker.place_order(1, req(1), AAPL)
    broker.on_price("AAPL", 100.0, T0)
    broker.place_order(1, req(2, "SELL"), AAPL)
    broker.on_price("AAPL", 110.0, T0)
    closing = broker.executions()[-1]
    assert closing.realized_pnl == pytest.approx(1000.0 - 1.0)
    assert broker.positions() == []
    assert len(broker.positions(include_flat=True)) == 1
    assert broker.account.realized_pnl == pytest.approx(1000.0 - 2.0)


def test_what_if_reports_margin_without_keeping_the_order(broker):
    broker.place_order(1, req(1, kind="LMT", lmt=100.0, what_if=True), AAPL)
    [event] = broker.seen
    assert isinstance(event, WhatIfReported)
    assert event.impact.init_change == pytest.approx(10_000.0)
    assert event.impact.commission == 1.0
    assert broker.open_orders() == []
    assert broker.next_order_id(1) == 1


def test_live_account_flag():
    assert SimBroker().account_id == "DU1234567"
    assert not SimBroker().is_live_account
    live = SimBroker(live_account=True)
    assert live.account_id == "U1234567"
    assert live.is_live_account


def test_ignores_bad_prices(broker):
    broker.place_order(1, req(1), AAPL)
    broker.on_price("AAPL", float("nan"), T0)
    broker.on_price("AAPL", -1.0, T0)
    assert broker.executions() == []


@given(
    orders=st.lists(
        st.tuples(st.sampled_from(["BUY", "SELL"]), st.integers(1, 500), st.sampled_from(["MKT", "LMT"])),
        min_size=1,
        max_size=8,
    ),
    path=st.lists(st.floats(5.0, 200.0, allow_nan=False), min_size=1, max_size=12),
)
def test_cash_moves_by_exactly_price_times_qty_and_commission(orders, path):
    broker = SimBroker(
        cash=10_000_000, commission=PerShareCommission(), partial_fill_size=120, clock=lambda: T0
    )
    for i, (action, qty, kind) in enumerate(orders, start=1):
        broker.place_order(3, req(i, action, float(qty), kind, lmt=100.0 if kind == "LMT" else None), AAPL)
    for price in path:
        before = broker.account.cash
        n = len(broker.executions())
        broker.on_price("AAPL", price, T0)
        new = broker.executions()[n:]
        expected = sum(-e.signed_shares * e.price - e.commission for e in new)
        assert broker.account.cash == pytest.approx(before + expected)
    for rec in broker.open_orders() + broker.completed_orders():
        assert rec.filled <= rec.quantity + 1e-9
        assert rec.filled == pytest.approx(
            sum(e.shares for e in broker.executions() if e.order_id == rec.order_id)
        )
    ids = [e.exec_id for e in broker.executions()]
    assert len(ids) == len(set(ids))


def test_market_order_beyond_buying_power_is_rejected_before_the_first_tick():
    """Before this broker saw a tick, the market's quote is the reference price (IB checks at once)."""
    broker = SimBroker(cash=1_000_000, commission=ZeroCommission())
    broker.price_source = {"AAPL": 180.0}.get
    seen: list = []
    broker.events += seen.append
    broker.place_order(1, req(1, "BUY", 1_000_000), AAPL)  # 180M of stock on a 1M cash account
    broker.place_order(1, req(2, "BUY", 5_000), AAPL)  # 900k: affordable
    assert errors(seen) == [(1, 201)]
    rejection = next(e for e in seen if isinstance(e, OrderErrorEvent))
    assert "insufficient buying power" in rejection.message
    broker.on_price("AAPL", 180.0, T0, gap=True)
    assert broker.account.quantity("AAPL") == 5_000
    assert broker.order(1, 1).status is IbStatus.CANCELLED


def test_gateway_rejects_a_market_buy_beyond_buying_power_over_the_wire():
    from copilot_quant.gateway.server import GatewayConfig, GatewayServer
    from ib_async import IB, MarketOrder, Stock

    with GatewayServer(GatewayConfig(port=0, data="sample", cash=1_000_000)) as gateway:
        ib = IB()
        ib.connect("127.0.0.1", gateway.port, clientId=31, timeout=10)
        try:
            contract = Stock("AAPL", "SMART", "USD")
            ib.qualifyContracts(contract)
            trade = ib.placeOrder(contract, MarketOrder("BUY", 1_000_000))
            ib.sleep(0.3)
            gateway.clock.step()
            ib.sleep(0.3)
            assert trade.orderStatus.status == "Cancelled"
            assert trade.fills == []
            assert any(entry.errorCode == 201 for entry in trade.log)
            assert gateway.call(lambda: gateway.broker.account.quantity("AAPL")) == 0
        finally:
            ib.disconnect()
