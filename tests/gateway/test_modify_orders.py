"""Modifying orders at the simulated gateway as a user would with plain ib_async: ``placeOrder`` again with
the same order (the same orderId) and changed fields. IB modifies the price, the size and the time in
force; the order keeps its id and IB acknowledges (openOrder + orderStatus, which ib_async labels
"Modified"). A filled order is 104, a changed side 105, a changed order type 329, a cancelled order 103,
and a refused modification leaves the order working with its earlier terms."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from ib_async import IB, LimitOrder, Order, StopOrder

from .conftest import wait_until
from .test_orders_e2e import aapl, connect, gateway_factory  # noqa: F401 - fixtures

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]


def _errors(ib: IB) -> list[tuple[int, int]]:
    seen: list[tuple[int, int]] = []
    ib.errorEvent += lambda req_id, code, *_: seen.append((req_id, code))
    return seen


def test_a_limit_modified_with_plain_ib_async_keeps_its_id_and_is_acknowledged(gateway_factory, connect):  # noqa: F811
    gw = gateway_factory()
    ib = connect(gw)
    contract = aapl(ib)
    trade = ib.placeOrder(contract, LimitOrder("BUY", 10, 1.0, tif="DAY"))
    assert wait_until(ib, lambda: trade.orderStatus.status == "Submitted")
    order_id = trade.order.orderId
    trade.order.lmtPrice = 2.0
    trade.order.totalQuantity = 20
    trade.order.tif = "GTC"
    assert ib.placeOrder(contract, trade.order) is trade
    assert trade.log[-1].message == "Modify"
    assert wait_until(ib, lambda: trade.orderStatus.remaining == 20)  # IB's answer, for the same order id
    (held,) = gw.call(gw.broker.open_orders)
    assert (held.order_id, held.lmt_price, held.quantity, held.tif.value) == (order_id, 2.0, 20, "GTC")
    assert [t.order.orderId for t in ib.reqOpenOrders()] == [order_id]  # one order, not two
    gw.call(gw.broker.end_session)
    assert gw.call(gw.broker.open_orders)  # GTC now: the session's end does not expire it


def test_refused_modifications_name_ibs_codes_and_keep_the_order(gateway_factory, connect):  # noqa: F811
    gw = gateway_factory()
    ib = connect(gw)
    contract = aapl(ib)
    errors = _errors(ib)
    trade = ib.placeOrder(contract, StopOrder("SELL", 10, 1.0, tif="GTC"))
    assert wait_until(ib, lambda: trade.orderStatus.status == "PreSubmitted")
    order_id = trade.order.orderId
    changed_side = Order(
        orderId=order_id, action="BUY", totalQuantity=10, orderType="STP", auxPrice=1.0, tif="GTC"
    )
    ib.client.placeOrder(order_id, contract, changed_side)  # ib_async's own placeOrder would log a Modify
    assert wait_until(ib, lambda: (order_id, 105) in errors)
    changed_type = Order(
        orderId=order_id, action="SELL", totalQuantity=10, orderType="LMT", lmtPrice=1.0, tif="GTC"
    )
    ib.client.placeOrder(order_id, contract, changed_type)
    assert wait_until(ib, lambda: (order_id, 329) in errors)
    (held,) = gw.call(gw.broker.open_orders)
    assert (held.order_type.value, held.aux_price, held.action.value) == ("STP", 1.0, "SELL")
    ib.cancelOrder(trade.order)
    assert wait_until(ib, lambda: trade.orderStatus.status == "Cancelled")
    ib.client.placeOrder(order_id, contract, changed_side)
    assert wait_until(ib, lambda: (order_id, 103) in errors)  # a cancelled order is not modified


def test_a_filled_order_is_104_and_a_quantity_below_the_fill_is_refused(gateway_factory, connect):  # noqa: F811
    gw = gateway_factory(partial_fill_size=4)
    ib = connect(gw)
    contract = aapl(ib)
    errors = _errors(ib)
    price = gw.broker.last_price("AAPL")
    trade = ib.placeOrder(contract, LimitOrder("BUY", 10, round(price * 1.5, 2), tif="GTC"))
    assert wait_until(ib, lambda: trade.orderStatus.status == "Submitted")
    gw.call(lambda: gw.broker.on_price("AAPL", price))  # 4 of 10 fill
    assert wait_until(ib, lambda: trade.orderStatus.filled == 4)
    order_id = trade.order.orderId
    smaller = Order(
        orderId=order_id,
        action="BUY",
        totalQuantity=3,
        orderType="LMT",
        lmtPrice=trade.order.lmtPrice,
        tif="GTC",
    )
    ib.client.placeOrder(order_id, contract, smaller)
    assert wait_until(ib, lambda: (order_id, 201) in errors)
    (held,) = gw.call(gw.broker.open_orders)
    assert (held.quantity, held.filled) == (10, 4)  # refused: it keeps working as it was
    for _ in range(2):
        gw.call(lambda: gw.broker.on_price("AAPL", price))
    assert wait_until(ib, lambda: trade.orderStatus.status == "Filled")
    ib.client.placeOrder(order_id, contract, smaller)
    assert wait_until(ib, lambda: (order_id, 104) in errors)


def test_a_good_till_date_can_be_moved(gateway_factory, connect):  # noqa: F811
    gw = gateway_factory()
    ib = connect(gw)
    contract = aapl(ib)
    now = gw.call(gw.broker._clock)  # the gateway's market time
    soon = (now + timedelta(hours=1)).astimezone(UTC)
    later = (now + timedelta(days=30)).astimezone(UTC)
    trade = ib.placeOrder(
        contract, LimitOrder("BUY", 10, 1.0, tif="GTD", goodTillDate=f"{soon:%Y%m%d %H:%M:%S} UTC")
    )
    assert wait_until(ib, lambda: trade.orderStatus.status == "Submitted")
    trade.order.goodTillDate = f"{later:%Y%m%d %H:%M:%S} UTC"
    ib.placeOrder(contract, trade.order)
    assert wait_until(ib, lambda: trade.log[-1].message == "Modified")  # acknowledged, status unchanged
    (held,) = gw.call(gw.broker.open_orders)
    assert held.good_till == later.replace(microsecond=0)
    gw.call(lambda: gw.broker.expire_good_till(soon + timedelta(minutes=5)))
    assert gw.call(gw.broker.open_orders)  # the earlier date no longer ends it
    assert isinstance(now, datetime)
