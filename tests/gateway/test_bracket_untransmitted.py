"""The simulated gateway's untransmitted groups, as TWS keeps them: the order that would transmit a bracket
is checked before anything goes out, and a held order can be cancelled (discarded, reported Cancelled)."""

from __future__ import annotations

from copilot_quant.gateway.broker import OrderErrorEvent, OrderUpdated
from copilot_quant.gateway.orders import IbStatus

from .test_bracket_orders import AAPL, make_broker, req


def test_a_refused_transmitting_exit_sends_nothing_and_the_group_stays_held() -> None:
    broker = make_broker()
    broker.place_order(1, req(1, "BUY", "LMT", lmt=95.0, transmit=False), AAPL)
    broker.place_order(1, req(2, "SELL", "LMT", lmt=110.0, parent=1, transmit=False), AAPL)
    broker._reject_queue.append("risk desk says no")  # what FaultInjector.reject_next_order queues
    broker.place_order(1, req(3, "SELL", "STP", aux=90.0, parent=1), AAPL)
    assert broker.order(1, 1) is None
    assert broker.order(1, 2) is None
    assert broker.order(1, 3).status is IbStatus.CANCELLED
    assert "risk desk says no" in broker.order(1, 3).completed_status
    assert sorted(broker.untransmitted_orders()) == [(1, 1), (1, 2)]
    errors = [e for e in broker.seen if isinstance(e, OrderErrorEvent)]  # type: ignore[attr-defined]
    assert [(e.order_id, e.code) for e in errors] == [(3, 201)]


def test_cancelling_a_held_parent_discards_its_held_group() -> None:
    broker = make_broker()
    broker.place_order(1, req(1, "BUY", "LMT", lmt=95.0, transmit=False), AAPL)
    broker.place_order(1, req(2, "SELL", "LMT", lmt=110.0, parent=1, transmit=False), AAPL)
    broker.cancel_order(1, 1)
    assert not broker.untransmitted_orders()
    assert [broker.order(1, k).status for k in (1, 2)] == [IbStatus.CANCELLED, IbStatus.CANCELLED]
    assert not broker.open_orders()
    updated = [e.record.order_id for e in broker.seen if isinstance(e, OrderUpdated)]  # type: ignore[attr-defined]
    assert updated == [1, 2]
    codes = [(e.order_id, e.code) for e in broker.seen if isinstance(e, OrderErrorEvent)]  # type: ignore[attr-defined]
    assert codes == [(1, 202), (2, 202)]  # no 10147 "not found"


def test_cancelling_a_held_child_keeps_the_rest_of_its_group() -> None:
    broker = make_broker()
    broker.place_order(1, req(1, "BUY", "LMT", lmt=95.0, transmit=False), AAPL)
    broker.place_order(1, req(2, "SELL", "LMT", lmt=110.0, parent=1, transmit=False), AAPL)
    broker.cancel_order(1, 2)
    assert broker.untransmitted_orders() == [(1, 1)]
    broker.place_order(1, req(3, "SELL", "STP", aux=90.0, parent=1), AAPL)
    assert broker.order(1, 1).status is IbStatus.SUBMITTED
    assert broker.order(1, 3).status is IbStatus.PRE_SUBMITTED
    assert broker.order(1, 2).status is IbStatus.CANCELLED
