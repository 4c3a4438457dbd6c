"""A modified OCA member's quantity at the simulated gateway, driven by plain ib_async: the group's
reduction (ocaType 2, 3) takes the other members' fills off the quantity the client last gave it (placeOrder
again with the same orderId), and a member that completes cancels the others."""

from __future__ import annotations

import pytest
from ib_async import LimitOrder

from .conftest import wait_until
from .test_orders_e2e import aapl, connect, gateway_factory  # noqa: F401 - fixtures

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]


def _marketable(gw) -> float:
    """A buy limit well above AAPL's last price: it fills at the next price."""
    return round(gw.call(gw.broker.last_price, "AAPL") * 1.5, 2)


def _one_price(gw) -> None:
    """One price update at AAPL's last price (a clock step walks a whole bar: several)."""
    gw.call(gw.broker.on_price, "AAPL", gw.call(gw.broker.last_price, "AAPL"))


def _member(quantity: float, price: float, oca_type: int) -> LimitOrder:
    return LimitOrder("BUY", quantity, price, tif="GTC", ocaGroup="pick", ocaType=oca_type)


@pytest.mark.parametrize("oca_type", [2, 3])
def test_a_member_lowered_then_filled_completes_the_group(gateway_factory, connect, oca_type):  # noqa: F811
    gw = gateway_factory()
    ib = connect(gw)
    contract = aapl(ib)
    first = ib.placeOrder(contract, _member(100, 1.0, oca_type))
    second = ib.placeOrder(contract, _member(100, 1.0, oca_type))
    assert wait_until(ib, lambda: second.orderStatus.status == "Submitted")
    first.order.totalQuantity = 50  # the client now wants 50: filling them is the whole member
    first.order.lmtPrice = _marketable(gw)  # and marketable
    ib.placeOrder(contract, first.order)
    assert wait_until(ib, lambda: first.orderStatus.remaining == 50)
    gw.clock.step()
    assert wait_until(ib, lambda: first.orderStatus.status == "Filled")
    assert wait_until(ib, lambda: second.orderStatus.status == "Cancelled")  # the group is done
    assert second.orderStatus.filled == 0
    assert wait_until(ib, lambda: [p.position for p in ib.positions()] == [50.0])


def test_a_raised_member_is_reduced_from_its_new_quantity(gateway_factory, connect):  # noqa: F811
    """100 and 100 in a group; the second is raised to 400 before anything fills. The first fills 50 of
    its 100: the second is reduced by those 50 from its 400 (IB: "by the partially filled quantity")."""
    gw = gateway_factory(partial_fill_size=50)
    ib = connect(gw)
    contract = aapl(ib)
    first = ib.placeOrder(contract, _member(100, 1.0, 2))
    second = ib.placeOrder(contract, _member(100, 1.0, 2))
    assert wait_until(ib, lambda: second.orderStatus.status == "Submitted")
    second.order.totalQuantity = 400
    ib.placeOrder(contract, second.order)
    assert wait_until(ib, lambda: second.orderStatus.remaining == 400)
    first.order.lmtPrice = price = _marketable(gw)
    ib.placeOrder(contract, first.order)
    assert wait_until(ib, lambda: first.log[-1].message == "Modify")
    assert wait_until(ib, lambda: gw.call(gw.broker.order, 1, first.order.orderId).lmt_price == price)
    _one_price(gw)
    assert wait_until(ib, lambda: first.orderStatus.filled == 50)
    assert wait_until(ib, lambda: second.order.totalQuantity == 350)  # IB reports the reduced size
    (held,) = [o for o in gw.call(gw.broker.open_orders) if o.order_id == second.order.orderId]
    assert held.quantity == 350


def test_a_price_only_modification_after_a_reduction_keeps_the_members_size(gateway_factory, connect):  # noqa: F811
    """ib_async resends the reduced totalQuantity with a new price: that is no new size."""
    gw = gateway_factory(partial_fill_size=50)
    ib = connect(gw)
    contract = aapl(ib)
    first = ib.placeOrder(contract, _member(100, _marketable(gw), 2))
    second = ib.placeOrder(contract, _member(100, 1.0, 2))
    assert wait_until(ib, lambda: second.orderStatus.status == "Submitted")
    _one_price(gw)  # the first fills 50: the second is reduced to 50
    assert wait_until(ib, lambda: second.order.totalQuantity == 50)
    second.order.lmtPrice = 2.0
    ib.placeOrder(contract, second.order)
    assert wait_until(ib, lambda: second.order.lmtPrice == 2.0 and second.orderStatus.remaining == 50)
    _one_price(gw)  # the first fills its last 50: the group is done, the second cancelled
    assert wait_until(ib, lambda: first.orderStatus.status == "Filled")
    assert wait_until(ib, lambda: second.orderStatus.status == "Cancelled")
