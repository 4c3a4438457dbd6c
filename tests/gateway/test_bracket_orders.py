"""Bracket (attached) orders at the simulated gateway: IB's parentId/transmit, SimBroker's rule, a restart,
and plain ib_async ``bracketOrder`` + ``placeOrder`` against a running gateway."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from copilot_quant.backtest.costs import ZeroCommission
from copilot_quant.gateway.broker import OrderErrorEvent, OrderUpdated, SimBroker
from copilot_quant.gateway.contracts import ContractInfo, ContractRequest
from copilot_quant.gateway.orders import IbStatus, PlaceOrderRequest
from copilot_quant.gateway.server import GatewayConfig, GatewayServer
from ib_async import IB, Stock

from .conftest import wait_until

AAPL = ContractInfo.for_symbol("AAPL")
T0 = datetime(2024, 1, 5, 15, 0, tzinfo=UTC)


def req(
    order_id: int,
    action: str,
    kind: str,
    *,
    lmt=None,
    aux=None,
    qty=100.0,
    parent=0,
    transmit=True,
    tif="GTC",
):
    return PlaceOrderRequest(
        order_id,
        ContractRequest(symbol="AAPL"),
        action,
        qty,
        kind,
        lmt,
        aux,
        tif,
        parent_id=parent,
        transmit=transmit,
    )


def make_broker(**kw) -> SimBroker:
    b = SimBroker(clock=lambda: T0, commission=ZeroCommission(), **kw)
    b.seen = []  # type: ignore[attr-defined]
    b.events += b.seen.append  # type: ignore[attr-defined]
    return b


def place_bracket(
    broker: SimBroker, entry: float | None = 95.0, take: float = 110.0, stop: float = 90.0
) -> None:
    """As ib_async's bracketOrder sends it: parent and take-profit with transmit=False, the stop-loss last."""
    parent = (
        req(1, "BUY", "LMT", lmt=entry, transmit=False) if entry else req(1, "BUY", "MKT", transmit=False)
    )
    broker.place_order(1, parent, AAPL)
    broker.place_order(1, req(2, "SELL", "LMT", lmt=take, parent=1, transmit=False), AAPL)
    broker.place_order(1, req(3, "SELL", "STP", aux=stop, parent=1), AAPL)


def statuses(broker: SimBroker) -> list[IbStatus]:
    return [broker.order(1, k).status for k in (1, 2, 3)]


def test_untransmitted_orders_wait_silently_until_the_last_child_transmits_the_group():
    broker = make_broker()
    broker.place_order(1, req(1, "BUY", "LMT", lmt=95.0, transmit=False), AAPL)
    broker.place_order(1, req(2, "SELL", "LMT", lmt=110.0, parent=1, transmit=False), AAPL)
    assert broker.order(1, 1) is None
    assert not broker.seen  # type: ignore[attr-defined]
    broker.place_order(1, req(3, "SELL", "STP", aux=90.0, parent=1), AAPL)
    assert statuses(broker) == [IbStatus.SUBMITTED, IbStatus.PRE_SUBMITTED, IbStatus.PRE_SUBMITTED]
    assert [broker.order(1, k).parent_id for k in (1, 2, 3)] == [0, 1, 1]
    updated = [e.record.order_id for e in broker.seen if isinstance(e, OrderUpdated)]  # type: ignore[attr-defined]
    assert updated == [1, 2, 3]  # the parent first


def test_children_activate_on_the_fill_and_the_take_profit_cancels_the_stop():
    broker = make_broker()
    place_bracket(broker)
    broker.on_price("AAPL", 100.0, T0, gap=True)
    broker.on_price("AAPL", 112.0, T0)  # no entry yet: the take-profit's price is not for it
    assert broker.order(1, 2).filled == 0
    broker.on_price("AAPL", 94.0, T0, gap=True)  # the entry fills
    assert statuses(broker) == [IbStatus.FILLED, IbStatus.SUBMITTED, IbStatus.PRE_SUBMITTED]
    broker.on_price("AAPL", 111.0, T0)
    assert statuses(broker) == [IbStatus.FILLED, IbStatus.FILLED, IbStatus.CANCELLED]
    assert "other bracket exit filled" in broker.order(1, 3).completed_status
    assert broker.account.quantity("AAPL") == 0


def test_entry_and_stop_on_one_move_the_stop_fills_at_that_price_not_better():
    broker = make_broker()
    place_bracket(broker)
    broker.on_price("AAPL", 100.0, T0, gap=True)
    broker.on_price("AAPL", 88.0, T0)  # crosses the entry (95) then the stop (90) on one move
    assert broker.order(1, 1).avg_fill_price == 95.0
    assert broker.order(1, 3).status is IbStatus.FILLED
    assert broker.order(1, 3).avg_fill_price == 88.0  # offered the price after the entry, as a gap
    assert broker.order(1, 2).status is IbStatus.CANCELLED
    assert broker.account.quantity("AAPL") == 0


def test_a_partial_entry_fill_arms_the_exits_for_the_filled_part():
    broker = make_broker(partial_fill_size=40)
    place_bracket(broker)
    broker.on_price("AAPL", 94.0, T0, gap=True)  # 40 bought
    broker.on_price("AAPL", 111.0, T0)  # the take-profit sells those 40; the entry does not trade here
    assert (broker.order(1, 1).filled, broker.order(1, 2).filled) == (40, 40)
    assert broker.account.quantity("AAPL") == 0
    assert broker.order(1, 3).status is IbStatus.PRE_SUBMITTED  # still protecting what comes next


def test_cancelling_an_unfilled_parent_cancels_its_children():
    broker = make_broker()
    place_bracket(broker)
    broker.cancel_order(1, 1)
    assert statuses(broker) == [IbStatus.CANCELLED] * 3
    assert "ended without a fill" in broker.order(1, 2).completed_status


def test_a_child_without_a_known_parent_or_on_the_parents_side_is_refused_with_201():
    broker = make_broker()
    broker.place_order(1, req(5, "SELL", "STP", aux=90.0, parent=4), AAPL)
    broker.place_order(1, req(6, "BUY", "LMT", lmt=95.0), AAPL)
    broker.place_order(1, req(7, "BUY", "STP", aux=120.0, parent=6), AAPL)
    errors = [(e.order_id, e.code, e.message) for e in broker.seen if isinstance(e, OrderErrorEvent)]  # type: ignore[attr-defined]
    assert [(o, c) for o, c, _ in errors] == [(5, 201), (7, 201)]
    assert "parent order 4 is not known" in errors[0][2]
    assert "other side of its parent" in errors[1][2]


def test_a_restart_keeps_children_held_until_the_parent_fills(tmp_path):
    path = tmp_path / "state.json"
    broker = make_broker(state_file=path)
    place_bracket(broker)
    again = make_broker(state_file=path)
    again.on_price("AAPL", 112.0, T0, gap=True)  # no entry: nothing sells
    assert again.account.quantity("AAPL") == 0
    again.on_price("AAPL", 94.0, T0, gap=True)
    again.on_price("AAPL", 89.0, T0)
    assert [again.order(1, k).status for k in (1, 2, 3)] == [
        IbStatus.FILLED,
        IbStatus.CANCELLED,
        IbStatus.FILLED,
    ]


# ------------------------------------------------------------------ plain ib_async against a running gateway
@pytest.fixture
def gateway() -> Iterator[GatewayServer]:
    server = GatewayServer(GatewayConfig(port=0, data="synthetic", symbols=["AAPL"])).start()
    yield server
    server.stop()


@pytest.fixture
def connect() -> Iterator[Callable[[GatewayServer, int], IB]]:
    clients: list[IB] = []

    def open_client(server: GatewayServer, client_id: int = 1) -> IB:
        ib = IB()
        ib.connect("127.0.0.1", server.port, clientId=client_id, timeout=5)
        clients.append(ib)
        return ib

    yield open_client
    for ib in clients:
        ib.disconnect()


@pytest.mark.network
@pytest.mark.timeout(60)
def test_ib_async_bracket_order_works_against_the_gateway(gateway, connect):
    ib = connect(gateway)
    [contract] = ib.qualifyContracts(Stock("AAPL", "SMART", "USD"))
    price = gateway.broker.last_price("AAPL")
    # an entry that fills at once, a take-profit far away, a stop the drill moves the market to
    bracket = ib.bracketOrder("BUY", 10, round(price * 1.05, 2), round(price * 1.5, 2), round(price * 0.5, 2))
    for order in bracket:
        order.tif = "GTC"  # a step is a daily bar: DAY orders would expire at its session's end
    trades = [ib.placeOrder(contract, order) for order in bracket]
    assert wait_until(
        ib, lambda: [t.orderStatus.status for t in trades] == ["Submitted", "PreSubmitted", "PreSubmitted"]
    )
    gateway.clock.step()
    assert wait_until(ib, lambda: trades[0].orderStatus.status == "Filled")
    assert wait_until(
        ib, lambda: trades[1].orderStatus.status == "Submitted"
    )  # the take-profit is active now
    assert trades[2].orderStatus.status == "PreSubmitted"  # a stop waits for its trigger
    # another client sees the links (openOrder and orderStatus carry parentId)
    watcher = connect(gateway, 2)
    seen = {t.order.permId: t for t in watcher.reqAllOpenOrders()}
    assert seen[trades[2].order.permId].order.parentId == trades[0].order.orderId
    gateway.call(lambda: gateway.broker.on_price("AAPL", round(price * 0.4, 2)))  # through the stop
    assert wait_until(ib, lambda: [t.orderStatus.status for t in trades[1:]] == ["Cancelled", "Filled"])
    assert wait_until(ib, lambda: not ib.positions() or ib.positions()[0].position == 0)


def test_modifying_a_held_child_keeps_it_held_until_the_parent_fills():
    broker = make_broker()
    place_bracket(broker)
    broker.place_order(1, req(2, "SELL", "LMT", lmt=105.0, parent=1), AAPL)  # a new take-profit price
    broker.on_price("AAPL", 106.0, T0, gap=True)  # above it, but the entry has not filled: nothing sells
    assert broker.account.quantity("AAPL") == 0
    assert broker.order(1, 2).lmt_price == 105.0
    broker.on_price("AAPL", 94.0, T0, gap=True)
    broker.on_price("AAPL", 106.0, T0)
    assert statuses(broker) == [IbStatus.FILLED, IbStatus.FILLED, IbStatus.CANCELLED]
