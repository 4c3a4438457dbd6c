"""Cancelling one exit of a bracket at the simulated gateway, with plain ib_async.

At IB a bracket's exits are one OCA group, and cancelling a member of an OCA group cancels the other
members ("If, after transmission of the orders, any separate order within the OCA is canceled by the user,
the remaining working order(s) will automatically be sent cancellation requests" — IB's OCA description; a
live IB Gateway trace in deepentropy/ibx#343 shows the sibling reported Cancelled). The entry is not
touched: that would need ``autoCancelParent``, off by default (and refused by the simulated gateway).
Every order whose state changed gets its orderStatus, so a client is never left believing an exit works.
"""

from __future__ import annotations

import pytest
from ib_async import IB, Stock

from .conftest import wait_until
from .test_bracket_orders import connect, gateway  # noqa: F401 - fixtures

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]


def _bracket(ib: IB, gateway, entry_factor: float):  # noqa: F811
    [contract] = ib.qualifyContracts(Stock("AAPL", "SMART", "USD"))
    price = gateway.broker.last_price("AAPL")
    orders = ib.bracketOrder(
        "BUY", 10, round(price * entry_factor, 2), round(price * 1.5, 2), round(price * 0.5, 2)
    )
    for order in orders:
        order.tif = "GTC"
    trades = [ib.placeOrder(contract, order) for order in orders]
    assert wait_until(
        ib, lambda: [t.orderStatus.status for t in trades] == ["Submitted", "PreSubmitted", "PreSubmitted"]
    )
    return trades


@pytest.mark.parametrize("cancelled", [1, 2], ids=["take-profit", "stop-loss"])
def test_cancelling_one_exit_of_a_filled_bracket_cancels_the_other(gateway, connect, cancelled):  # noqa: F811
    ib = connect(gateway)
    trades = _bracket(ib, gateway, 1.05)  # the entry fills at the next price
    gateway.clock.step()
    assert wait_until(ib, lambda: trades[0].orderStatus.status == "Filled")
    other = 3 - cancelled
    ib.cancelOrder(trades[cancelled].order)
    assert wait_until(ib, lambda: trades[cancelled].orderStatus.status == "Cancelled")
    assert wait_until(ib, lambda: trades[other].orderStatus.status == "Cancelled")  # its OCA sibling
    assert trades[other].orderStatus.filled == 0
    assert trades[0].orderStatus.status == "Filled"  # the entry is done; the position stays, unprotected
    assert gateway.call(gateway.broker.open_orders) == []
    assert [p.position for p in ib.positions()] == [10.0]
    watcher = connect(gateway, 2)  # another client's view agrees: nothing works at IB
    assert watcher.reqAllOpenOrders() == []


def test_cancelling_an_exit_before_the_entry_fills_keeps_the_entry_working(gateway, connect):  # noqa: F811
    ib = connect(gateway)
    trades = _bracket(ib, gateway, 0.5)  # an entry far below the market: it waits
    ib.cancelOrder(trades[2].order)
    assert wait_until(ib, lambda: [t.orderStatus.status for t in trades[1:]] == ["Cancelled", "Cancelled"])
    ib.sleep(0.1)
    assert trades[0].orderStatus.status == "Submitted"  # no autoCancelParent: the entry keeps working
    [working] = gateway.call(gateway.broker.open_orders)
    assert working.order_id == trades[0].order.orderId
