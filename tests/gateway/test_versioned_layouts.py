"""Each served API version's layouts, checked message by message against ib_async's own codec at that
version (the end-to-end suite with every real client is test_client_compat.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from copilot_quant.gateway.contracts import ContractInfo
from copilot_quant.gateway.messages.contracts import contract_details
from copilot_quant.gateway.messages.errors import error
from copilot_quant.gateway.messages.orders import completed_order, exec_details, open_order, parse_place_order
from copilot_quant.gateway.orders import (
    ExecutionRecord,
    IbAction,
    IbOrderType,
    IbStatus,
    SimOrder,
    TimeInForceCode,
)
from copilot_quant.gateway.testing import decode_with_ib_async
from copilot_quant.gateway.wire import FieldReader
from ib_async import IB, LimitOrder, MarketOrder, Stock
from ib_async.client import Client

AAPL = ContractInfo.for_symbol("AAPL")
T0 = datetime(2024, 1, 5, 15, 0, 1, tzinfo=UTC)
# Both sides of every gate in the served range (ib_async reads duration from 159, IB from 158: 158 is left
# to the end-to-end test with IB's own client).
VERSIONS = [157, 159, 160, 161, 162, 163, 164, 165, 166, 169, 170, 175, 176, 177, 178]


def record(status: IbStatus = IbStatus.SUBMITTED) -> SimOrder:
    return SimOrder(
        client_id=1,
        order_id=7,
        perm_id=1_000_123,
        contract=AAPL,
        action=IbAction.BUY,
        quantity=100,
        order_type=IbOrderType.LMT,
        lmt_price=101.5,
        aux_price=None,
        tif=TimeInForceCode.GTC,
        account="DU1234567",
        submitted_at=T0,
        order_ref="ref-1",
        status=status,
    )


def placed_fields(version: int, order) -> list[str]:
    client = Client(IB().wrapper)
    client._serverVersion = version
    sent: list[str] = []
    client.isConnected = lambda: True  # type: ignore[method-assign]
    client.sendMsg = sent.append  # type: ignore[method-assign]
    client.placeOrder(7, Stock("AAPL", "SMART", "USD"), order)
    return sent[0].split("\0")[:-1]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("order", [MarketOrder("BUY", 100), LimitOrder("SELL", 5, 99.25, tif="GTC")])
def test_place_order_of_each_version_is_read_exactly(version, order):
    fields = placed_fields(version, order)
    reader = FieldReader(fields[1:])
    request = parse_place_order(reader, version)
    assert reader.remaining == 0
    assert (request.action, request.total_quantity, request.order_type) == (
        order.action,
        order.totalQuantity,
        order.orderType,
    )
    assert request.tif == (order.tif or "DAY")


@pytest.mark.parametrize("version", VERSIONS)
def test_open_order_of_each_version_decodes_with_its_fields(version):
    result = decode_with_ib_async(open_order(record(), version=version), version)
    assert result.errors == []
    _, contract, order, state = result.only("openOrder")
    assert (order.orderId, order.permId, order.clientId, order.lmtPrice) == (7, 1_000_123, 1, 101.5)
    assert (order.tif, order.orderRef, state.status) == ("GTC", "ref-1", "Submitted")
    assert contract.symbol == "AAPL"
    # the last field read is in place: nothing shifted by a missing or extra faProfile
    assert order.autoCancelParent in (False, 0, "0", "")


@pytest.mark.parametrize("version", VERSIONS)
def test_completed_order_of_each_version_decodes(version):
    done = record(IbStatus.FILLED)
    result = decode_with_ib_async(completed_order(done, version), version)
    assert result.errors == []
    _, order, state = result.only("completedOrder")
    assert (order.permId, order.lmtPrice, state.status) == (1_000_123, 101.5, "Filled")


@pytest.mark.parametrize("version", VERSIONS)
def test_exec_details_of_each_version_decodes(version):
    execution = ExecutionRecord(
        exec_id="0000e0d5.6581a6b7.01.01",
        client_id=1,
        order_id=7,
        perm_id=1_000_123,
        contract=AAPL,
        time=T0,
        account="DU1234567",
        side="BOT",
        shares=100,
        price=101.5,
        cum_qty=100,
        avg_price=101.5,
        order_ref="ref-1",
        commission=1.0,
        currency="USD",
        realized_pnl=None,
    )
    fields = exec_details(-1, execution, version)
    assert len(fields) == (32 if version >= 178 else 31)
    result = decode_with_ib_async(fields, version)
    assert result.errors == []
    _, _, execution_seen = result.only("execDetails")
    assert (execution_seen.execId, execution_seen.shares, execution_seen.price) == (
        execution.exec_id,
        100,
        101.5,
    )


@pytest.mark.parametrize("version", VERSIONS)
def test_contract_details_and_errors_of_each_version_decode(version):
    details = decode_with_ib_async(contract_details(9, AAPL, version), version)
    assert details.errors == []
    _, cd = details.only("contractDetails")
    assert (cd.contract.conId, cd.minTick, cd.longName) == (265598, 0.01, "APPLE INC")
    failure = error(7, 201, "Order rejected - reason:test", version)
    assert len(failure) == (6 if version >= 166 else 5)
    decoded = decode_with_ib_async(failure, version)
    assert decoded.errors == []
    assert decoded.only("error")[:3] == (7, 201, "Order rejected - reason:test")
