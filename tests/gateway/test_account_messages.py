"""Account message codecs, decoded by ib_async's own Decoder into a real IB wrapper."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from copilot_quant.gateway.account import PnL, PnLSingle, PortfolioItem, PositionItem
from copilot_quant.gateway.contracts import ContractInfo
from copilot_quant.gateway.messages.account import (
    account_download_end,
    account_summary,
    account_summary_end,
    account_update_multi,
    account_update_multi_end,
    account_update_time,
    account_value,
    parse_account_summary_request,
    parse_account_updates_multi_request,
    parse_account_updates_request,
    parse_pnl_request,
    parse_pnl_single_request,
    parse_positions_multi_request,
    pnl,
    pnl_single,
    portfolio_value,
    position,
    position_end,
    position_multi,
    position_multi_end,
)
from copilot_quant.gateway.wire import FieldReader, fmt
from ib_async import IB
from ib_async import PnL as IbPnL
from ib_async import PnLSingle as IbPnLSingle
from ib_async.client import Client
from ib_async.decoder import Decoder

ACCOUNT = "DU1234567"
AAPL = ContractInfo.for_symbol("AAPL")
IBM = ContractInfo.for_symbol("IBM")


@pytest.fixture
def ib():
    return IB()


def feed(ib: IB, *messages: list[object]) -> None:
    decoder = Decoder(ib.wrapper, 178)
    for fields in messages:
        decoder.interpret([fmt(f) for f in fields])


def test_position_has_16_fields_and_lands_in_positions(ib):
    fields = position(ACCOUNT, PositionItem(AAPL, 100.0, 150.25))
    assert len(fields) == 16
    feed(ib, fields, position(ACCOUNT, PositionItem(IBM, -20.0, 180.0)), position_end())
    by_symbol = {p.contract.symbol: p for p in ib.positions()}
    assert by_symbol["AAPL"].position == 100
    assert by_symbol["AAPL"].avgCost == 150.25
    assert by_symbol["AAPL"].contract.conId == AAPL.con_id
    assert by_symbol["AAPL"].account == ACCOUNT
    assert by_symbol["IBM"].position == -20


def test_position_zero_removes_it(ib):
    feed(
        ib,
        position(ACCOUNT, PositionItem(AAPL, 100.0, 150.0)),
        position(ACCOUNT, PositionItem(AAPL, 0.0, 0.0)),
    )
    assert ib.positions() == []


def test_update_portfolio_has_20_fields_with_primary_exchange(ib):
    item = PortfolioItem(AAPL, 100.0, 151.0, 15_100.0, 150.0, 100.0, -1.0)
    fields = portfolio_value(ACCOUNT, item)
    assert len(fields) == 20
    assert fields[9] == "NASDAQ"
    feed(ib, fields)
    [got] = ib.portfolio()
    assert got.contract.primaryExchange == "NASDAQ"
    assert got.contract.symbol == "AAPL"
    assert (got.position, got.marketPrice, got.marketValue, got.averageCost) == (100, 151.0, 15_100.0, 150.0)
    assert (got.unrealizedPNL, got.realizedPNL, got.account) == (100.0, -1.0, ACCOUNT)


def test_account_values_time_and_download_end(ib):
    feed(
        ib,
        account_value(ACCOUNT, "NetLiquidation", "1000000.00", "USD"),
        account_value(ACCOUNT, "AccountCode", ACCOUNT, ""),
        account_update_time(datetime(2024, 1, 5, 15, 0, tzinfo=UTC)),
        account_download_end(ACCOUNT),
    )
    values = {(v.tag, v.currency): v.value for v in ib.accountValues()}
    assert values[("NetLiquidation", "USD")] == "1000000.00"
    assert values[("AccountCode", "")] == ACCOUNT
    assert account_update_time(datetime(2024, 1, 5, 15, 0, tzinfo=UTC)) == [8, 1, "10:00"]


def test_account_summary(ib):
    feed(
        ib,
        account_summary(3, ACCOUNT, "BuyingPower", "999000.00", "USD"),
        account_summary(3, ACCOUNT, "AccountType", "INDIVIDUAL", ""),
        account_summary_end(3),
    )
    got = {v.tag: v.value for v in ib.wrapper.acctSummary.values()}
    assert got == {"BuyingPower": "999000.00", "AccountType": "INDIVIDUAL"}


def test_account_update_multi(ib):
    feed(
        ib, account_update_multi(4, ACCOUNT, "", "NetLiquidation", "5.00", "USD"), account_update_multi_end(4)
    )
    [value] = ib.accountValues()
    assert (value.tag, value.value, value.modelCode) == ("NetLiquidation", "5.00", "")


def test_position_multi_has_18_fields(ib):
    fields = position_multi(5, ACCOUNT, PositionItem(AAPL, 3.0, 10.0))
    assert len(fields) == 18
    feed(ib, fields, position_multi_end(5))  # decoded without an error (the conftest checks the log)


def test_pnl_and_pnl_single(ib):
    ib.wrapper.reqId2PnL[11] = IbPnL(ACCOUNT, "")
    ib.wrapper.reqId2PnlSingle[12] = IbPnLSingle(ACCOUNT, "", AAPL.con_id)
    feed(ib, pnl(11, PnL(12.5, 100.0, -1.0)), pnl_single(12, PnLSingle(100.0, 12.5, 100.0, -1.0, 15_100.0)))
    got = ib.wrapper.reqId2PnL[11]
    assert (got.dailyPnL, got.unrealizedPnL, got.realizedPnL) == (12.5, 100.0, -1.0)
    single = ib.wrapper.reqId2PnlSingle[12]
    assert (single.position, single.dailyPnL, single.value) == (100, 12.5, 15_100.0)


def captured(send) -> list[str]:
    client = Client(IB().wrapper)
    client._serverVersion = 178
    messages: list[str] = []
    client.isConnected = lambda: True  # type: ignore[method-assign]
    client.sendMsg = messages.append  # type: ignore[method-assign]
    try:
        send(client)
    finally:
        del client.isConnected, client.sendMsg
    return messages[0].split("\0")[:-1]


def after_id(fields: list[str]) -> FieldReader:
    return FieldReader(fields[1:])


def test_request_parsers_read_what_ib_async_sends():
    upd = parse_account_updates_request(after_id(captured(lambda c: c.reqAccountUpdates(True, ACCOUNT))))
    assert (upd.subscribe, upd.account) == (True, ACCOUNT)
    summ = parse_account_summary_request(
        after_id(captured(lambda c: c.reqAccountSummary(7, "All", "NetLiquidation,BuyingPower")))
    )
    assert (summ.req_id, summ.group, summ.tags) == (7, "All", ("NetLiquidation", "BuyingPower"))
    multi = parse_account_updates_multi_request(
        after_id(captured(lambda c: c.reqAccountUpdatesMulti(8, ACCOUNT, "", False)))
    )
    assert (multi.req_id, multi.account, multi.ledger_and_nlv) == (8, ACCOUNT, False)
    pos = parse_positions_multi_request(after_id(captured(lambda c: c.reqPositionsMulti(9, ACCOUNT, ""))))
    assert (pos.req_id, pos.account) == (9, ACCOUNT)
    p = parse_pnl_request(after_id(captured(lambda c: c.reqPnL(10, ACCOUNT, ""))))
    assert (p.req_id, p.account) == (10, ACCOUNT)
    ps = parse_pnl_single_request(after_id(captured(lambda c: c.reqPnLSingle(11, ACCOUNT, "", AAPL.con_id))))
    assert (ps.req_id, ps.con_id) == (11, AAPL.con_id)
