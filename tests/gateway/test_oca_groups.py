"""One-cancels-all groups at the simulated gateway: SimBroker's rule, its refusals, and a restart."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from copilot_quant.backtest.costs import ZeroCommission
from copilot_quant.gateway.broker import OrderErrorEvent, SimBroker
from copilot_quant.gateway.contracts import ContractInfo, ContractRequest
from copilot_quant.gateway.orders import IbStatus, PlaceOrderRequest

AAPL = ContractInfo.for_symbol("AAPL")
MSFT = ContractInfo.for_symbol("MSFT")
T0 = datetime(2024, 1, 5, 15, 0, tzinfo=UTC)


def lmt(order_id: int, price: float, *, qty: float = 100, action: str = "BUY", symbol: str = "AAPL", **kw):
    return PlaceOrderRequest(order_id, ContractRequest(symbol=symbol), action, qty, "LMT", price, None, **kw)


def make_broker(**kw) -> SimBroker:
    b = SimBroker(clock=lambda: T0, commission=ZeroCommission(), **kw)
    b.seen = []  # type: ignore[attr-defined]
    b.events += b.seen.append  # type: ignore[attr-defined]
    return b


def errors(broker: SimBroker) -> list[tuple[int, int, str]]:
    return [(e.order_id, e.code, e.message) for e in broker.seen if isinstance(e, OrderErrorEvent)]  # type: ignore[attr-defined]


def test_type_1_a_fill_cancels_the_other_members_even_at_the_same_price():
    broker = make_broker()
    broker.place_order(1, lmt(1, 101.0, oca_group="g", oca_type=1), AAPL)
    broker.place_order(1, lmt(2, 102.0, oca_group="g", oca_type=1), AAPL)
    broker.on_price("AAPL", 100.0, T0, gap=True)  # both are marketable here: only the first fills
    assert broker.order(1, 1).status is IbStatus.FILLED
    second = broker.order(1, 2)
    assert second.status is IbStatus.CANCELLED
    assert second.filled == 0
    assert "OCA group 'g'" in second.completed_status
    assert broker.account.quantity("AAPL") == 100


def test_type_1_spans_symbols():
    broker = make_broker()
    broker.place_order(1, lmt(1, 90.0, oca_group="pick-one", oca_type=1), AAPL)
    broker.place_order(1, lmt(2, 200.0, symbol="MSFT", oca_group="pick-one", oca_type=1), MSFT)
    broker.on_price("MSFT", 190.0, T0, gap=True)
    assert broker.order(1, 2).status is IbStatus.FILLED
    assert broker.order(1, 1).status is IbStatus.CANCELLED
    broker.on_price("AAPL", 80.0, T0, gap=True)
    assert broker.account.quantity("AAPL") == 0


def test_type_2_reduces_the_rest_by_the_filled_quantity_with_block():
    broker = make_broker(partial_fill_size=30)
    broker.place_order(1, lmt(1, 101.0, oca_group="g", oca_type=2), AAPL)
    broker.place_order(1, lmt(2, 101.0, oca_group="g", oca_type=2), AAPL)
    broker.on_price("AAPL", 100.0, T0, gap=True)
    # 1 fills 30: 2 is reduced by 30 to 70, fills 30: 1 is reduced by 30 (40 left of its 70)
    assert (broker.order(1, 1).filled, broker.order(1, 1).quantity) == (30, 70)
    assert (broker.order(1, 2).filled, broker.order(1, 2).quantity) == (30, 70)
    broker.on_price("AAPL", 100.0, T0)
    # 1 fills 30: 2 has 10 left, fills them and completes: 1 is cancelled
    assert broker.order(1, 1).status is IbStatus.CANCELLED
    assert broker.order(1, 1).filled == 60
    assert broker.order(1, 2).status is IbStatus.FILLED
    assert broker.order(1, 2).filled == 40
    assert broker.account.quantity("AAPL") == 100  # never more than one member's worth


def test_type_2_takes_the_filled_quantity_off_a_larger_member_and_a_complete_member_cancels_it():
    """IB's TWS Users' Guide: the others are reduced "by the partially filled quantity"; "if an order
    completely fills, other orders in the group are canceled" (not reduced in proportion to their size)."""
    broker = make_broker(partial_fill_size=40)
    broker.place_order(1, lmt(1, 101.0, qty=100, oca_group="g", oca_type=2), AAPL)
    broker.place_order(1, lmt(2, 90.0, qty=300, oca_group="g", oca_type=2), AAPL)
    broker.on_price("AAPL", 100.0, T0, gap=True)  # 1 fills 40 of its 100
    assert broker.order(1, 2).quantity == 260  # 300 - 40 (in proportion it would be 180)
    broker.on_price("AAPL", 100.0, T0)  # 40 more
    assert broker.order(1, 2).quantity == 220
    broker.on_price("AAPL", 100.0, T0)  # its last 20: 1 is complete
    assert broker.order(1, 1).status is IbStatus.FILLED
    assert broker.order(1, 2).status is IbStatus.CANCELLED  # not left with 200
    assert broker.account.quantity("AAPL") == 100


def test_type_3_reduces_after_the_price_update_so_the_group_can_overfill():
    broker = make_broker(partial_fill_size=30)
    broker.place_order(1, lmt(1, 101.0, oca_group="g", oca_type=3), AAPL)
    broker.place_order(1, lmt(2, 101.0, oca_group="g", oca_type=3), AAPL)
    broker.on_price("AAPL", 100.0, T0, gap=True)  # both fill 30, then each loses the other's 30: 40 left
    assert [broker.order(1, k).quantity for k in (1, 2)] == [70, 70]
    broker.on_price("AAPL", 100.0, T0)  # both fill 30 again, then lose 30 more: both cancelled, 120 bought
    assert [broker.order(1, k).status for k in (1, 2)] == [IbStatus.CANCELLED, IbStatus.CANCELLED]
    assert broker.account.quantity("AAPL") == 120


@pytest.mark.parametrize("oca_type", [0, 4, -1])
def test_an_unsupported_oca_type_is_refused_with_201_naming_it(oca_type):
    broker = make_broker()
    broker.place_order(1, lmt(1, 101.0, oca_group="g", oca_type=oca_type), AAPL)
    [(order_id, code, message)] = errors(broker)
    assert (order_id, code) == (1, 201)
    assert f"ocaType {oca_type} is not supported" in message
    assert broker.order(1, 1).status is IbStatus.CANCELLED


def test_members_of_one_group_need_the_same_oca_type():
    broker = make_broker()
    broker.place_order(1, lmt(1, 90.0, oca_group="g", oca_type=1), AAPL)
    broker.place_order(1, lmt(2, 90.0, oca_group="g", oca_type=2), AAPL)
    [(order_id, code, message)] = errors(broker)
    assert (order_id, code) == (2, 201)
    assert "same ocaType" in message


def test_a_group_with_executions_takes_no_new_member():
    broker = make_broker()
    broker.place_order(1, lmt(1, 101.0, oca_group="g", oca_type=1), AAPL)
    broker.on_price("AAPL", 100.0, T0, gap=True)
    broker.place_order(1, lmt(2, 90.0, oca_group="g", oca_type=1), AAPL)
    [(order_id, code, message)] = errors(broker)
    assert (order_id, code) == (2, 201)
    assert "already has executions" in message


def test_modifying_the_group_is_refused_and_the_order_keeps_working():
    broker = make_broker()
    broker.place_order(1, lmt(1, 90.0, oca_group="g", oca_type=1), AAPL)
    broker.place_order(1, lmt(1, 91.0, oca_group="other", oca_type=1), AAPL)
    [(_, code, message)] = errors(broker)
    assert code == 201
    assert message.endswith("OCA group revision is not allowed")
    assert broker.order(1, 1).lmt_price == 90.0
    broker.place_order(1, lmt(1, 91.0, oca_group="g", oca_type=1), AAPL)  # a price change is fine
    assert broker.order(1, 1).lmt_price == 91.0
    assert broker.order(1, 1).oca_group == "g"


def test_a_restart_keeps_the_reduced_members_of_a_group(tmp_path):
    state = tmp_path / "state.json"
    broker = make_broker(partial_fill_size=30, state_file=state)
    broker.place_order(1, lmt(1, 101.0, oca_group="g", oca_type=2), AAPL)
    broker.place_order(1, lmt(2, 90.0, oca_group="g", oca_type=2), AAPL)
    broker.on_price("AAPL", 100.0, T0, gap=True)  # 1 fills 30: 2 is reduced to 70
    assert broker.order(1, 2).quantity == 70
    resumed = make_broker(state_file=state)  # no partial fill size now: 1 fills its 70 at once
    assert resumed.order(1, 2).oca_group == "g"
    resumed.on_price("AAPL", 85.0, T0, gap=True)
    assert resumed.order(1, 1).filled == 100
    assert resumed.order(1, 2).status is IbStatus.CANCELLED  # 1 completed: 2 did not fill its 70
    assert resumed.account.quantity("AAPL") == 100
