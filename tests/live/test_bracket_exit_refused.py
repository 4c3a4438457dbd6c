"""A bracket whose exit cannot be placed is refused whole, live as in a backtest: never an entry left behind.

The entry goes to IB with ``transmit=False`` and the last exit transmits the group. When that exit is
refused (by IB, or here before it is sent), TWS keeps the entry untransmitted for ever and the journal
showed it submitted. Now the entry and the other exit are cancelled at IB and the whole bracket is
REJECTED with the reason: on the strategy's orders, in the journal and in the engine's errors.
Against the simulated gateway with the real ib_async client.
"""

from __future__ import annotations

from typing import Any

import pytest
from copilot_quant.backtest.orders import Order, OrderStatus
from copilot_quant.brokers.live_broker_adapter import LiveBrokerAdapter
from copilot_quant.errors import BrokerError
from copilot_quant.gateway.server import GatewayServer
from copilot_quant.journal import JournalOrderState

from .conftest import wait_until
from .test_engine_brackets import Bracketer, _started

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]


def test_an_exit_refused_by_ib_refuses_the_bracket_whole(make_engine: Any, gateway: GatewayServer) -> None:
    strategy = Bracketer(entry_at=0.6)  # a resting entry: it would wait untransmitted at IB
    engine = _started(make_engine, strategy)
    gateway.reject_next_order("stop price refused by the risk desk")  # the stop-loss, which transmits
    gateway.clock.step(1)
    assert wait_until(lambda: len(strategy.sent) == 3)
    entry, take_profit, stop_loss = strategy.sent
    assert wait_until(lambda: all(o.status is OrderStatus.REJECTED for o in strategy.sent))
    assert "stop price refused by the risk desk" in stop_loss.reject_reason
    for order in (entry, take_profit):
        assert f"bracket {entry.order_id} rejected whole" in order.reject_reason
        assert f"its exit {stop_loss.order_id} could not be placed" in order.reject_reason
        assert "stop price refused by the risk desk" in order.reject_reason
    # nothing is left at IB: no working order, none held untransmitted
    assert wait_until(lambda: not gateway.broker.untransmitted_orders())
    assert not gateway.broker.open_orders()
    held = [o for o in gateway.broker.completed_orders() if "untransmitted" in o.completed_status]
    assert len(held) == 2  # the entry and the take-profit, discarded
    journal = engine.journal
    assert journal is not None
    assert wait_until(
        lambda: (
            engine.broker.flush_journal(5)
            and all(o.state is JournalOrderState.REJECTED for o in journal.orders())
        )
    )
    rows = {o.order_id: o for o in journal.orders()}
    assert f"bracket {entry.order_id} rejected whole" in rows[entry.order_id].reason
    assert any("rejected whole" in str(e) for e in engine.errors)  # the strategy's run reports it
    gateway.clock.step(1)  # the market moves through the entry price: nothing fills
    assert not strategy.fills


def test_an_exit_that_fails_before_it_is_sent_cancels_the_held_entry(gateway: GatewayServer) -> None:
    broker = LiveBrokerAdapter(port=gateway.port, client_id=57, ack_timeout=0.3, fill_timeout=2)
    assert broker.connect(timeout=5)
    real_place = broker._place

    async def place(record: Any, check_price: float, **kw: Any) -> float:
        if record.order.order_type.value == "stop":  # a failure on the client's side (e.g. the connection)
            raise BrokerError("connection lost while sending the stop-loss")
        return await real_place(record, check_price, **kw)

    broker._place = place  # type: ignore[method-assign]
    try:
        price = gateway.broker.last_price("AAPL")
        assert price is not None
        orders = Order.bracket(
            "AAPL", 5, "buy", limit_price=round(price * 0.6, 2), take_profit=round(price * 2, 2),
            stop_loss=round(price * 0.5, 2),
        )  # fmt: skip
        placed = broker.place_orders([(o, price, "") for o in orders])
        assert placed == [True, True, False]
        assert all(o.status is OrderStatus.REJECTED for o in orders)
        assert "connection lost while sending the stop-loss" in orders[2].reject_reason
        assert "rejected whole" in orders[0].reject_reason
        assert wait_until(lambda: not gateway.broker.untransmitted_orders())
        assert not gateway.broker.open_orders()
        assert not broker.orders_ib_may_hold() or wait_until(lambda: not broker.orders_ib_may_hold())
    finally:
        broker.disconnect()
