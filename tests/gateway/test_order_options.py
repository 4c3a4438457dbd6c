"""placeOrder's execution-changing fields: each is read from its exact position at every served version and
refused with a 201 naming it unless it is at its default (or honoured: triggerMethod 0 and 2)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import fields

import ibapi.client
import ibapi.contract
import ibapi.order
import ibapi.wrapper
import pytest
from copilot_quant.gateway.messages import versions as sv
from copilot_quant.gateway.messages.order_requests import parse_place_order
from copilot_quant.gateway.order_checks import execution_problem
from copilot_quant.gateway.order_options import ExecutionOptions, ib_field_name, unsupported_option
from copilot_quant.gateway.orders import PlaceOrderRequest
from copilot_quant.gateway.server import GatewayConfig, GatewayServer
from copilot_quant.gateway.wire import FieldReader
from ib_async import IB, Contract, LimitOrder, MarketOrder, Order, Stock, StopLimitOrder, StopOrder
from ib_async.client import Client

from .conftest import wait_until

VERSIONS = list(range(sv.MIN_SERVER_VERSION, sv.SERVER_VERSION + 1))
#: The first version that sends a field (the others are sent at every served version).
FIRST_VERSION = {
    "duration": sv.DURATION,
    "post_to_ats": sv.POST_TO_ATS,
    "auto_cancel_parent": sv.AUTO_CANCEL_PARENT,
}
#: The last version that sends it.
LAST_VERSION = {"fa_profile": sv.FA_PROFILE_DESUPPORT - 1}


def parsed(version: int, order: Order, contract: Contract | None = None) -> PlaceOrderRequest:
    """What the gateway reads from ib_async's own placeOrder at ``version``; the frame must be used up."""
    client = Client(IB().wrapper)
    client._serverVersion = version
    sent: list[str] = []
    client.isConnected = lambda: True  # type: ignore[method-assign]
    client.sendMsg = sent.append  # type: ignore[method-assign]
    client.placeOrder(7, contract or Stock("AAPL", "SMART", "USD"), order)
    reader = FieldReader(sent[0].split("\0")[1:-1])
    request = parse_place_order(reader, version)
    assert reader.remaining == 0
    return request


def parsed_ibapi(version: int, order: ibapi.order.Order) -> PlaceOrderRequest:
    """The same with IB's own client, which writes unset numbers as IB's sentinels, not empty fields."""
    client = ibapi.client.EClient(ibapi.wrapper.EWrapper())
    client.serverVersion_ = version
    sent: list[str] = []
    client.isConnected = lambda: True  # type: ignore[method-assign]
    client.sendMsg = lambda _id, msg: sent.append(msg)  # type: ignore[method-assign]
    contract = ibapi.contract.Contract()
    contract.symbol, contract.secType, contract.exchange, contract.currency = "AAPL", "STK", "SMART", "USD"
    client.placeOrder(7, contract, order)
    reader = FieldReader(sent[0].split("\0")[:-1])
    request = parse_place_order(reader, version)
    assert reader.remaining == 0
    return request


DEFAULT_ORDERS: list[Callable[[], Order]] = [
    lambda: Order(action="BUY", totalQuantity=1, orderType="MKT"),
    lambda: MarketOrder("BUY", 100),
    lambda: LimitOrder("SELL", 5, 99.25, tif="GTC"),
    lambda: StopOrder("SELL", 5, 90.0),
    lambda: StopLimitOrder("BUY", 5, 101.0, 100.0),
]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("make", DEFAULT_ORDERS)
def test_every_default_of_ib_async_passes_at_every_version(version, make):
    request = parsed(version, make())
    assert request.options.asked() == {}
    assert request.trigger_method == 0
    assert execution_problem(request) is None


@pytest.mark.parametrize("version", VERSIONS)
def test_every_default_of_ibs_own_client_passes(version):
    order = ibapi.order.Order()
    order.action, order.totalQuantity, order.orderType, order.lmtPrice = "BUY", 100, "LMT", 10.0
    request = parsed_ibapi(version, order)
    assert request.options.asked() == {}
    assert (request.trigger_method, request.lmt_price) == (0, 10.0)
    assert execution_problem(request) is None


def _set_value(name: str) -> object:
    """A value that asks for something, of the field's type."""
    kind = {spec.name: spec.type for spec in fields(ExecutionOptions)}[name]
    if kind == "bool":
        return True
    if "int" in str(kind):
        return 5
    if "float" in str(kind):
        return 0.5
    return "D"


OPTION_NAMES = [
    spec.name
    for spec in fields(ExecutionOptions)
    if spec.name not in ("delta_neutral_contract", "min_trade_qty")
]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", OPTION_NAMES)
def test_each_option_is_read_from_its_own_position_and_refused_by_name(version, name):
    value = _set_value(name)
    order = LimitOrder("BUY", 10, 100.0)
    if name == "volatility":
        order.orderType = "VOL"  # ib_async clears volatility on any other order type
    setattr(order, ib_field_name(name), value)
    request = parsed(version, order)
    sent = FIRST_VERSION.get(name, 0) <= version <= LAST_VERSION.get(name, 999)
    assert request.options.asked() == ({ib_field_name(name): value} if sent else {})
    assert (request.lmt_price_offset, request.cash_qty) == (None, None)  # nothing shifted into neighbours
    if sent:
        reason = unsupported_option(request.options) or ""
        assert reason.startswith(ib_field_name(name))
        assert reason.endswith("is not supported by the simulated gateway; send the order without it")


def test_the_delta_neutral_contract_and_an_ats_minimum_are_read_too():
    from ib_async import DeltaNeutralContract

    contract = Stock("AAPL", "SMART", "USD")
    contract.deltaNeutralContract = DeltaNeutralContract(conId=1, delta=0.5, price=10.0)
    assert parsed(178, MarketOrder("BUY", 1), contract).options.asked() == {"deltaNeutralContract": True}
    order = MarketOrder("BUY", 1)
    order.minTradeQty = 100
    request = parsed(178, order, Stock("AAPL", "IBKRATS", "USD"))
    assert request.options.asked() == {"minTradeQty": 100}


@pytest.mark.parametrize("method", [0, 2])
def test_trigger_methods_on_trades_are_honoured(method):
    request = parsed(178, StopOrder("SELL", 5, 90.0, triggerMethod=method))
    assert request.trigger_method == method
    assert execution_problem(request) is None


@pytest.mark.parametrize("method", [1, 3, 4, 7, 8])
def test_other_trigger_methods_are_refused(method):
    reason = execution_problem(parsed(178, StopOrder("SELL", 5, 90.0, triggerMethod=method)))
    assert (reason or "").startswith(f"triggerMethod={method} is not supported")


def test_good_after_time_and_ib_algos_are_refused_by_name():
    later = parsed(178, LimitOrder("BUY", 1, 10.0, goodAfterTime="20240105 10:00:00 US/Eastern"))
    assert (execution_problem(later) or "").startswith("goodAfterTime='20240105 10:00:00 US/Eastern' is not")
    algo = parsed(178, LimitOrder("BUY", 1, 10.0, algoStrategy="Adaptive"))
    assert (execution_problem(algo) or "").startswith("algoStrategy='Adaptive' (an IB algo) is not")


# ----- end to end: the real ib_async client against the gateway ------------------------------------------


@pytest.fixture
def gw() -> Iterator[GatewayServer]:
    server = GatewayServer(GatewayConfig(port=0, data="synthetic", symbols=["AAPL"])).start()
    yield server
    server.stop()


@pytest.fixture
def client(gw) -> Iterator[IB]:
    client = IB()
    client.connect("127.0.0.1", gw.port, clientId=1, timeout=5)
    yield client
    client.disconnect()


def _adjustable_stop() -> Order:
    order = StopOrder("SELL", 10, 1.0)
    order.adjustedOrderType = "STP"
    order.triggerPrice = 2.0
    order.adjustedStopPrice = 1.5
    return order


def _scale_order() -> Order:
    order = LimitOrder("BUY", 100, 1.0)
    order.scaleInitLevelSize = 10
    order.scaleSubsLevelSize = 10
    order.scalePriceIncrement = 0.05
    return order


REFUSED: list[tuple[str, Callable[[], Order]]] = [
    ("displaySize=100", lambda: LimitOrder("BUY", 200, 1.0, displaySize=100)),
    ("triggerMethod=7", lambda: StopOrder("SELL", 10, 1.0, triggerMethod=7)),
    ("sweepToFill", lambda: LimitOrder("BUY", 10, 1.0, sweepToFill=True)),
    ("hidden", lambda: LimitOrder("BUY", 10, 1.0, hidden=True)),
    ("adjustedOrderType='STP'", _adjustable_stop),
    ("scaleInitLevelSize=10", _scale_order),
    ("goodAfterTime=", lambda: MarketOrder("BUY", 10, goodAfterTime="20991231 10:00:00 US/Eastern")),
]


@pytest.mark.network
@pytest.mark.timeout(60)
@pytest.mark.parametrize(("field", "make"), REFUSED, ids=[name for name, _ in REFUSED])
def test_an_unmodelled_field_is_refused_with_201_and_no_order_exists(gw, client, field, make):
    ib = client
    errors: list[tuple[int, str]] = []
    ib.errorEvent += lambda req_id, code, message, contract: errors.append((code, message))
    [contract] = ib.qualifyContracts(Stock("AAPL", "SMART", "USD"))
    trade = ib.placeOrder(contract, make())
    assert wait_until(ib, lambda: trade.orderStatus.status == "Cancelled")
    [message] = [text for code, text in errors if code == 201]
    assert message.startswith(f"Order rejected - reason:{field}")
    assert "send the order without it" in message
    gw.clock.step()
    assert gw.broker.open_orders() == []
    assert gw.broker.portfolio() == []
    assert trade.fills == []


@pytest.mark.network
@pytest.mark.timeout(60)
def test_a_stop_triggered_on_last_trades_and_a_default_order_work(gw, client):
    ib = client
    [contract] = ib.qualifyContracts(Stock("AAPL", "SMART", "USD"))
    default = ib.placeOrder(contract, Order(action="BUY", totalQuantity=10, orderType="MKT"))
    stop = ib.placeOrder(contract, StopOrder("BUY", 10, 1.0, triggerMethod=2))  # triggers on the next trade
    assert wait_until(ib, lambda: default.orderStatus.status == "Submitted")
    assert wait_until(ib, lambda: stop.orderStatus.status == "PreSubmitted")
    watcher = IB()  # another client sees the order as the gateway holds it
    watcher.connect("127.0.0.1", gw.port, clientId=2, timeout=5)
    try:
        [seen] = [t for t in watcher.reqAllOpenOrders() if t.order.orderType == "STP"]
    finally:
        watcher.disconnect()
    assert seen.order.triggerMethod == 2
    gw.clock.step()
    assert wait_until(ib, lambda: default.orderStatus.status == stop.orderStatus.status == "Filled")
    assert [f.execution.side for f in stop.fills] == ["BOT"]
