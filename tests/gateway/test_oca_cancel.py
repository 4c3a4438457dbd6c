"""Cancelling one member of an OCA group at the simulated gateway, with plain ib_async: IB cancels the
other members ("If, after transmission of the orders, any separate order within the OCA is canceled by the
user, the remaining working order(s) will automatically be sent cancellation requests" — IB's description
of OCA orders; a live IB Gateway trace in deepentropy/ibx#343: "cancelling oid=9401 ... oid=9402 Cancelled
← sibling went with it"). Each is reported Cancelled, so no client believes a member still works."""

from __future__ import annotations

import pytest
from ib_async import LimitOrder

from .conftest import wait_until
from .test_orders_e2e import aapl, connect, gateway_factory  # noqa: F401 - fixtures

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]


@pytest.mark.parametrize("oca_type", [1, 2, 3])
def test_cancelling_a_member_cancels_the_rest_of_its_group(gateway_factory, connect, oca_type):  # noqa: F811
    gw = gateway_factory()
    ib = connect(gw)
    contract = aapl(ib)
    trades = [
        ib.placeOrder(contract, LimitOrder("BUY", 10, price, tif="GTC", ocaGroup="pick", ocaType=oca_type))
        for price in (1.0, 2.0, 3.0)
    ]
    other = ib.placeOrder(contract, LimitOrder("BUY", 10, 1.5, tif="GTC"))  # in no group
    assert wait_until(ib, lambda: all(t.orderStatus.status == "Submitted" for t in [*trades, other]))
    ib.cancelOrder(trades[1].order)
    assert wait_until(ib, lambda: all(t.orderStatus.status == "Cancelled" for t in trades))
    ib.sleep(0.1)
    assert other.orderStatus.status == "Submitted"
    [working] = gw.call(gw.broker.open_orders)
    assert working.order_id == other.order.orderId
    record = gw.call(gw.broker.order, 1, trades[0].order.orderId)
    assert f"order {trades[1].order.orderId} of OCA group 'pick' was cancelled" in record.completed_status
