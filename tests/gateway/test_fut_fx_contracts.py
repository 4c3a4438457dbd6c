"""Futures and forex contracts at the simulated gateway, asked for by the unmodified ib_async client."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from copilot_quant.gateway.instrument_contracts import contract_for
from copilot_quant.gateway.server import GatewayServer
from copilot_quant.gateway.testing import connected_ib, running_gateway
from copilot_quant.model.instruments import InstrumentRegistry
from ib_async import IB, ContFuture, Contract, Forex, Future, Stock

from tests.gateway.fut_fx_feed import FutFxFeed

# The replay starts on Monday 2026-11-02: the December 2026 contracts are the front month.
START = "2026-11-02 16:00"


@pytest.fixture(scope="module")
def fx_gateway() -> Iterator[GatewayServer]:
    with running_gateway(data=FutFxFeed(), start=START) as gw:
        yield gw


@pytest.fixture
def ib(fx_gateway: GatewayServer) -> Iterator[IB]:
    with connected_ib(fx_gateway, client_id=7) as client:
        yield client


def test_a_future_qualifies_with_ib_terms(ib: IB) -> None:
    [mes] = ib.qualifyContracts(Future("MES", "202612", "CME"))
    assert mes is not None
    assert (mes.symbol, mes.secType, mes.localSymbol, mes.tradingClass) == ("MES", "FUT", "MESZ6", "MES")
    assert mes.lastTradeDateOrContractMonth == "20261218"  # the third Friday of December
    assert mes.multiplier == "5"
    assert (mes.exchange, mes.currency) == ("CME", "USD")
    assert mes.conId > 0


def test_contract_details_of_a_future(ib: IB) -> None:
    [details] = ib.reqContractDetails(Future(localSymbol="MESZ6", exchange="CME"))
    assert details.minTick == 0.25
    assert details.contractMonth == "202612"
    assert details.realExpirationDate == "20261218"
    assert details.timeZoneId == "US/Central"
    # CME Globex: Sunday evening to Friday 16:00 Chicago, the daily break between 16:00 and 17:00
    assert "20261102:1700-20261103:1600" in details.tradingHours
    assert "20261107:CLOSED" in details.tradingHours
    assert details.underSymbol == "MES"


def test_a_root_lists_its_chain_and_is_ambiguous_for_qualification(ib: IB) -> None:
    chain = ib.reqContractDetails(Future("MES", exchange="CME"))
    months = [d.contract.lastTradeDateOrContractMonth for d in chain]
    assert months == ["20261218", "20270319", "20270618", "20270917", "20271217"]
    assert len({d.contract.conId for d in chain}) == 5
    assert ib.qualifyContracts(Future("MES", exchange="CME")) == [None]


def test_conids_are_stable_and_resolve_back(ib: IB, fx_gateway: GatewayServer) -> None:
    [first] = ib.qualifyContracts(Future("MES", "202612", "CME"))
    with running_gateway(data=FutFxFeed(), start=START) as other, connected_ib(other, client_id=1) as ib2:
        [again] = ib2.qualifyContracts(Contract(conId=first.conId))
    assert again is not None
    assert (again.secType, again.localSymbol) == ("FUT", "MESZ6")
    assert again.conId == first.conId


def test_an_expired_contract_needs_include_expired(ib: IB) -> None:
    assert ib.reqContractDetails(Future("MES", "202609", "CME")) == []
    old = Future("MES", "202609", "CME", includeExpired=True)
    [details] = ib.reqContractDetails(old)
    assert details.contract.lastTradeDateOrContractMonth == "20260918"


def test_an_expired_contracts_history_needs_include_expired(ib: IB) -> None:
    """As at IB: the history of a future past its last trade date is served only to a request whose
    contract sets ``includeExpired`` (else error 200, as for an unknown contract); the live contract's
    history does not need it."""
    [old] = ib.qualifyContracts(Future("MES", "202609", "CME", includeExpired=True))
    assert old is not None
    old.includeExpired = True  # ib_async copies IB's answer over the contract, the flag included
    last_days = datetime(2026, 9, 18, 21, tzinfo=UTC)  # its last trading days
    bars = ib.reqHistoricalData(old, last_days, "5 D", "1 day", "TRADES", True)
    assert bars
    assert all(bar.close > 0 for bar in bars)
    assert ib.reqHeadTimeStamp(old, "TRADES", True)

    errors: list[int] = []
    ib.errorEvent += lambda req_id, code, *_: errors.append(code)
    plain = Contract(conId=old.conId, secType="FUT", exchange="CME")  # the same contract, without the flag
    assert list(ib.reqHistoricalData(plain, last_days, "5 D", "1 day", "TRADES", True)) == []
    assert errors == [200]
    assert not ib.reqHeadTimeStamp(plain, "TRADES", True)
    assert errors == [200, 200]
    [live] = ib.qualifyContracts(Future("MES", "202612", "CME"))
    assert ib.reqHistoricalData(live, "", "5 D", "1 day", "TRADES", True)
    assert errors == [200, 200]


def test_a_continuous_future_is_its_front_contract(ib: IB) -> None:
    [cont] = ib.qualifyContracts(ContFuture("MES", "CME"))
    [front] = ib.qualifyContracts(Future("MES", "202612", "CME"))
    assert cont is not None
    assert cont.secType == "CONTFUT"
    assert cont.conId == front.conId  # as at IB: the CONTFUT carries the front contract's conId
    assert cont.localSymbol == "MESZ6"


def test_crude_oil_is_named_by_contract_month_and_last_trade_date(ib: IB) -> None:
    [by_month] = ib.qualifyContracts(Future("CL", "202701", "NYMEX"))
    assert by_month is not None
    # CL's January contract stops trading in December
    assert by_month.lastTradeDateOrContractMonth.startswith("202612")
    [by_day] = ib.qualifyContracts(Future("CL", by_month.lastTradeDateOrContractMonth, "NYMEX"))
    assert by_day is not None
    assert by_day.conId == by_month.conId
    assert by_day.localSymbol == "CLF7"


def test_a_forex_pair_qualifies_on_idealpro(ib: IB) -> None:
    [eur] = ib.qualifyContracts(Forex("EURUSD"))
    assert eur is not None
    assert (eur.symbol, eur.secType, eur.currency, eur.exchange) == ("EUR", "CASH", "USD", "IDEALPRO")
    assert eur.localSymbol == "EUR.USD"
    assert eur.conId == 12087792  # IB's real conId of EUR.USD
    [details] = ib.reqContractDetails(eur)
    assert details.minTick == 0.00005
    assert details.timeZoneId == "US/Eastern"


def test_pairs_ib_does_not_list_and_wrong_secTypes_are_unknown(ib: IB) -> None:
    assert ib.reqContractDetails(Forex("USDEUR")) == []  # IB lists EUR.USD, not its inverse
    assert ib.reqContractDetails(Future("XYZ", "202612", "CME")) == []
    assert ib.reqContractDetails(Future("MES", "202611", "CME")) == []  # MES lists quarterly months only
    assert ib.reqContractDetails(Future("MES", "202612", "NYMEX")) == []
    assert ib.reqContractDetails(Stock("MESZ6", "SMART", "USD")) == []  # a futures contract is no stock
    assert ib.reqContractDetails(Stock("AAPL", "SMART", "USD"))[0].contract.secType == "STK"


def test_a_gateway_offering_a_root_and_a_pair_serves_the_roots_contracts() -> None:
    """``copilot-quant gateway --symbols MES EUR.USD``: MES stands for its front contract and its chain."""
    with (
        running_gateway(data=FutFxFeed(), symbols=["MES", "EUR.USD"], start=START) as gw,
        connected_ib(gw, client_id=2) as ib,
    ):
        assert gw.core.registry.symbols == ["EUR.USD", "MESZ6"]
        assert ib.qualifyContracts(Future("MES", "202703", "CME"))[0] is not None
        assert ib.qualifyContracts(Forex("EURUSD"))[0] is not None
        assert ib.reqContractDetails(Forex("GBPUSD")) == []  # not offered
        assert ib.reqContractDetails(Stock("AAPL", "SMART", "USD")) == []


def test_trading_hours_follow_the_exchange_calendar() -> None:
    registry = InstrumentRegistry(reference=date(2026, 11, 2))
    mes = contract_for(registry.resolve("MESZ6"), date(2026, 11, 23))
    # Thanksgiving week: CME Globex closes early at 12:00 Chicago on the 26th and 27th
    assert "20261125:1700-20261126:1200" in mes.trading_hours
    assert "20261126:0830-20261126:1200" in mes.liquid_hours
    assert "20261128:CLOSED" in mes.trading_hours
    eur = contract_for(registry.resolve("EUR.USD"), date(2026, 11, 23))
    assert eur.trading_hours.startswith("20261122:1715-20261123:1700")
