"""Order message codecs, checked against ib_async's own encoder (requests) and decoder (replies)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from copilot_quant.gateway.account import MarginImpact
from copilot_quant.gateway.contracts import ContractInfo
from copilot_quant.gateway.messages.orders import (
    commission_report,
    completed_order,
    completed_orders_end,
    exec_details,
    exec_details_end,
    format_ib_time,
    open_order,
    open_order_end,
    order_status,
    parse_cancel_order,
    parse_executions_request,
    parse_place_order,
)
from copilot_quant.gateway.orders import (
    ExecutionRecord,
    IbAction,
    IbOrderType,
    IbStatus,
    SimOrder,
    TimeInForceCode,
)
from copilot_quant.gateway.wire import FieldReader, fmt
from ib_async import (
    IB,
    ExecutionFilter,
    LimitOrder,
    MarketOrder,
    Order,
    PriceCondition,
    Stock,
    StopLimitOrder,
    StopOrder,
    TagValue,
    TimeCondition,
    VolumeCondition,
)
from ib_async.client import Client
from ib_async.decoder import Decoder

AAPL = ContractInfo.for_symbol("AAPL")
T0 = datetime(2024, 1, 5, 15, 0, 1, tzinfo=UTC)


def captured(send) -> list[str]:
    """The fields ib_async's Client (at server version 178) sends for ``send(client)``."""
    client = Client(IB().wrapper)
    client._serverVersion = 178
    messages: list[str] = []
    client.isConnected = lambda: True  # type: ignore[method-assign]
    client.sendMsg = messages.append  # type: ignore[method-assign]
    try:
        send(client)
    finally:
        del client.isConnected, client.sendMsg
    assert len(messages) == 1
    return messages[0].split("\0")[:-1]


def reader_after_id(fields: list[str]) -> FieldReader:
    return FieldReader(fields[1:])


def place(order: Order, contract=None, order_id: int = 7):
    fields = captured(lambda c: c.placeOrder(order_id, contract or Stock("AAPL", "SMART", "USD"), order))
    assert fields[0] == "3"
    reader = reader_after_id(fields)
    req = parse_place_order(reader)
    assert reader.remaining == 0, "placeOrder parser must consume the frame exactly"
    return req


class TestParsePlaceOrder:
    def test_market_order(self):
        req = place(MarketOrder("BUY", 100))
        assert (req.order_id, req.action, req.total_quantity, req.order_type) == (7, "BUY", 100.0, "MKT")
        assert req.lmt_price is None
        assert req.aux_price is None
        assert req.contract.symbol == "AAPL"
        assert req.contract.exchange == "SMART"
        assert req.transmit
        assert not req.what_if
        assert req.tif == "DAY"

    def test_limit_order_with_gtc_and_order_ref(self):
        order = LimitOrder("SELL", 25, 187.25, tif="GTC", orderRef="take-profit", account="DU1234567")
        req = place(order)
        assert (req.action, req.order_type, req.lmt_price, req.tif) == ("SELL", "LMT", 187.25, "GTC")
        assert req.order_ref == "take-profit"
        assert req.account == "DU1234567"

    def test_stop_order(self):
        req = place(StopOrder("SELL", 10, 95.5))
        assert (req.order_type, req.aux_price, req.lmt_price) == ("STP", 95.5, None)

    def test_stop_limit_order(self):
        req = place(StopLimitOrder("BUY", 10, 101.0, 100.0))
        assert (req.order_type, req.lmt_price, req.aux_price) == ("STP LMT", 101.0, 100.0)

    def test_what_if_flag(self):
        order = MarketOrder("BUY", 5)
        order.whatIf = True
        assert place(order).what_if

    def test_algo_params(self):
        order = LimitOrder("BUY", 5, 10.0)
        order.algoStrategy = "Adaptive"
        order.algoParams = [TagValue("adaptivePriority", "Urgent"), TagValue("x", "y")]
        req = place(order)
        assert req.algo_strategy == "Adaptive"
        assert req.algo_params == (("adaptivePriority", "Urgent"), ("x", "y"))

    def test_conditions_are_read_field_by_field(self):
        order = LimitOrder("BUY", 5, 10.0)
        order.conditions = [
            PriceCondition(price=100.0, conId=265598, exch="SMART"),
            TimeCondition(time="20240105 10:00:00 US/Eastern"),
            VolumeCondition(volume=1000, conId=265598, exch="SMART"),
        ]
        req = place(order)
        assert [c[0] for c in req.conditions] == ["1", "3", "6"]
        assert req.conditions[1][-1] == "20240105 10:00:00 US/Eastern"

    def test_optional_groups_delta_neutral_scale_hedge(self):
        order = LimitOrder("BUY", 5, 10.0)
        order.deltaNeutralOrderType = "LMT"
        order.scalePriceIncrement = 0.5
        order.hedgeType = "D"
        order.hedgeParam = "0.5"
        req = place(order)
        assert req.lmt_price == 10.0

    def test_parent_id_and_transmit(self):
        order = LimitOrder("SELL", 5, 10.0, parentId=3, transmit=False)
        req = place(order)
        assert req.parent_id == 3
        assert req.transmit is False

    def test_peg_mid_tail(self):
        order = Order(
            action="BUY", totalQuantity=1, orderType="PEG MID", midOffsetAtWhole=0.01, midOffsetAtHalf=0.005
        )
        req = place(order)
        assert req.order_type == "PEG MID"

    def test_truncated_frame_is_a_frame_error(self):
        from copilot_quant.gateway.wire import FrameError

        fields = captured(lambda c: c.placeOrder(1, Stock("AAPL", "SMART", "USD"), MarketOrder("BUY", 1)))
        with pytest.raises(FrameError):
            parse_place_order(FieldReader(fields[1:40]))


def test_parse_cancel_order():
    fields = captured(lambda c: c.cancelOrder(42, ""))
    req = parse_cancel_order(reader_after_id(fields))
    assert req.order_id == 42


def test_parse_executions_request():
    flt = ExecutionFilter(
        clientId=3, acctCode="DU1234567", time="20240105 09:30:00", symbol="AAPL", side="BUY"
    )
    fields = captured(lambda c: c.reqExecutions(9, flt))
    req = parse_executions_request(reader_after_id(fields))
    assert req.req_id == 9
    assert (req.filter.client_id, req.filter.account, req.filter.symbol, req.filter.side) == (
        3,
        "DU1234567",
        "AAPL",
        "BUY",
    )
    assert req.filter.since() == datetime(2024, 1, 5, 9, 30, tzinfo=ZoneInfo("America/New_York"))


# ----- encoders through ib_async's decoder -------------------------------------------------------------
def record(**changes) -> SimOrder:
    base = {
        "client_id": 1,
        "order_id": 7,
        "perm_id": 1_000_123,
        "contract": AAPL,
        "action": IbAction.BUY,
        "quantity": 100.0,
        "order_type": IbOrderType.LMT,
        "lmt_price": 150.5,
        "aux_price": None,
        "tif": TimeInForceCode.DAY,
        "account": "DU1234567",
        "submitted_at": T0,
        "status": IbStatus.SUBMITTED,
    }
    base.update(changes)
    return SimOrder(**base)


def execution(**changes) -> ExecutionRecord:
    base = {
        "exec_id": "000f427b.00000001.01.01",
        "client_id": 1,
        "order_id": 7,
        "perm_id": 1_000_123,
        "contract": AAPL,
        "side": "BOT",
        "shares": 100.0,
        "price": 150.25,
        "time": T0,
        "cum_qty": 100.0,
        "avg_price": 150.25,
        "account": "DU1234567",
        "commission": 1.0,
    }
    base.update(changes)
    return ExecutionRecord(**base)


@pytest.fixture
def ib():
    ib = IB()
    return ib


def feed(ib: IB, *messages: list[object]) -> None:
    decoder = Decoder(ib.wrapper, 178)
    for fields in messages:
        decoder.interpret([fmt(f) for f in fields])


def test_open_order_has_127_fields_and_creates_the_trade(ib):
    fields = open_order(record())
    assert len(fields) == 127
    feed(ib, fields, order_status(record()))
    [trade] = ib.trades()
    assert trade.order.permId == 1_000_123
    assert trade.order.clientId == 1
    assert trade.order.orderId == 7
    assert trade.order.lmtPrice == 150.5
    assert trade.order.totalQuantity == 100
    assert trade.contract.conId == AAPL.con_id
    assert trade.contract.symbol == "AAPL"
    assert trade.orderStatus.status == "Submitted"
    assert trade.orderStatus.remaining == 100


def test_market_order_prices_decode_as_unset(ib):
    from ib_async.util import UNSET_DOUBLE

    feed(ib, open_order(record(order_type=IbOrderType.MKT, lmt_price=None)))
    [trade] = ib.trades()
    assert trade.order.orderType == "MKT"
    assert trade.order.lmtPrice == UNSET_DOUBLE


def test_partial_then_full_fill_sequence(ib):
    live = record()
    partial = record(filled=40.0, avg_fill_price=150.25, last_fill_price=150.25)
    full = record(filled=100.0, avg_fill_price=150.1, last_fill_price=150.0, status=IbStatus.FILLED)
    ex1 = execution(shares=40.0, cum_qty=40.0)
    ex2 = execution(
        exec_id="000f427b.00000002.01.01", shares=60.0, price=150.0, cum_qty=100.0, avg_price=150.1
    )
    feed(ib, open_order(live), order_status(live))
    feed(ib, exec_details(-1, ex1), order_status(partial), commission_report(ex1))
    [trade] = ib.trades()
    assert trade.orderStatus.status == "Submitted"
    assert trade.orderStatus.filled == 40
    feed(ib, exec_details(-1, ex2), open_order(full), order_status(full), commission_report(ex2))
    assert trade.orderStatus.status == "Filled"
    assert trade.orderStatus.remaining == 0
    assert trade.orderStatus.avgFillPrice == pytest.approx(150.1)
    assert [f.execution.shares for f in trade.fills] == [40, 60]
    assert [f.commissionReport.commission for f in trade.fills] == [1.0, 1.0]
    assert trade.fills[1].execution.price == 150.0
    assert trade.fills[1].execution.side == "BOT"
    assert trade.fills[0].execution.time == T0  # the zone survives the round trip


def test_exec_details_layout(ib):
    fields = exec_details(5, execution())
    assert len(fields) == 32
    assert fields[15] == "20240105 10:00:01 US/Eastern"  # wall-clock time in the zone it names


def test_commission_report_has_8_fields_and_unset_realized_pnl_for_opening_trades(ib):
    opening = commission_report(execution())
    closing = commission_report(execution(realized_pnl=123.5))
    assert len(opening) == len(closing) == 8
    feed(ib, open_order(record()), exec_details(-1, execution()), opening)
    [fill] = ib.fills()
    assert fill.commissionReport.commission == 1.0
    assert fill.commissionReport.realizedPNL == 0.0
    assert closing[5] == 123.5


def test_cancelled_status(ib):
    feed(ib, open_order(record()), order_status(record()))
    cancelled = record(status=IbStatus.CANCELLED)
    feed(ib, order_status(cancelled))
    assert ib.trades()[0].orderStatus.status == "Cancelled"


def test_end_markers():
    assert open_order_end() == [53, 1]
    assert exec_details_end(4) == [55, 1, 4]
    assert completed_orders_end() == [102]


def _run_request(ib: IB, key, *messages: list[object]):
    async def go():
        future = ib.wrapper.startReq(key)
        feed(ib, *messages)
        return await asyncio.wait_for(future, 1)

    return asyncio.run(go())


def test_completed_orders_decode(ib):
    done = record(status=IbStatus.FILLED, filled=100.0, completed_at=T0, completed_status="Filled")
    cancelled = record(
        order_id=8,
        perm_id=1_000_124,
        status=IbStatus.CANCELLED,
        completed_at=T0,
        completed_status="Cancelled by client",
    )
    assert len(completed_order(done)) == 96
    trades = _run_request(
        ib, "completedOrders", completed_order(done), completed_order(cancelled), completed_orders_end()
    )
    assert [t.orderStatus.status for t in trades] == ["Filled", "Cancelled"]
    assert trades[0].order.permId == 1_000_123
    assert trades[0].order.filledQuantity == 100


def test_what_if_open_order_carries_numeric_margins(ib):
    impact = MarginImpact(0.0, 0.0, 1e6, 15_050.0, 15_050.0, -1.0, 15_050.0, 15_050.0, 999_999.0, 1.0)
    state = _run_request(ib, 7, open_order(record(perm_id=0), what_if=impact))
    assert float(state.initMarginChange) == 15_050.0
    assert float(state.equityWithLoanAfter) == 999_999.0
    assert state.commission == 1.0


def test_execution_time_format_is_new_york_wall_clock():
    assert format_ib_time(datetime(2024, 7, 1, 13, 30, tzinfo=UTC)) == "20240701 09:30:00 US/Eastern"
