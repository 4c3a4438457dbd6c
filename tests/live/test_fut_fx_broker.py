"""The live broker adapter trades a futures contract and a forex pair at the simulated gateway (#14)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from copilot_quant.backtest.orders import Order, OrderStatus
from copilot_quant.brokers.ib_contracts import (
    bar_kind,
    ib_contract_for,
    instrument_key,
    traded_instrument,
    unit_avg_cost,
)
from copilot_quant.brokers.live_broker_adapter import LiveBrokerAdapter
from copilot_quant.brokers.tick_rules import rule_for_min_tick
from copilot_quant.gateway.server import GatewayServer
from copilot_quant.gateway.testing import running_gateway
from copilot_quant.model.instruments import InstrumentRegistry
from ib_async import Contract, Forex, Future

from tests.gateway.fut_fx_feed import FutFxFeed

from .conftest import Stepper

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]

NOW = datetime(2026, 11, 2, 16, tzinfo=UTC)


@pytest.fixture
def broker(fut_fx_gateway: GatewayServer) -> Iterator[LiveBrokerAdapter]:
    b = LiveBrokerAdapter(
        paper_trading=True, port=fut_fx_gateway.port, client_id=51, fill_timeout=10, ack_timeout=1
    )
    assert b.connect(timeout=5)
    yield b
    b.disconnect()


def test_symbols_map_to_ib_contracts_and_back() -> None:
    registry = InstrumentRegistry(reference=date(2026, 11, 2))
    mes = ib_contract_for(traded_instrument("MESZ6", registry, date(2026, 11, 2)))
    assert isinstance(mes, Future)
    assert (mes.symbol, mes.lastTradeDateOrContractMonth, mes.exchange) == ("MES", "202612", "CME")
    assert not mes.includeExpired  # orders: a listed contract only
    # data: an expired contract's details and history only come with IB's includeExpired
    expired = ib_contract_for(registry.resolve("MESZ6"), include_expired=True)
    assert expired.includeExpired
    assert expired.lastTradeDateOrContractMonth == "202612"
    # a continuous future trades its contract of the day: December until its roll, then March
    assert traded_instrument("MES", registry, date(2026, 12, 4)).symbol == "MESZ6"
    assert traded_instrument("MES", registry, date(2026, 12, 14)).symbol == "MESH7"
    # crude's January contract is named by its month, though it stops trading in December
    clf7 = ib_contract_for(traded_instrument("CL=F", registry, date(2026, 11, 2)))
    assert clf7.lastTradeDateOrContractMonth == "202612"
    eur = ib_contract_for(traded_instrument("EUR.USD", registry, date(2026, 11, 2)))
    assert isinstance(eur, Forex)
    assert (eur.symbol, eur.currency, eur.exchange) == ("EUR", "USD", "IDEALPRO")
    assert instrument_key(Contract(secType="FUT", symbol="MES", localSymbol="MESZ6")) == "MESZ6"
    assert (
        instrument_key(Contract(secType="CASH", symbol="EUR", currency="USD", localSymbol="EUR.USD"))
        == "EUR.USD"
    )
    assert instrument_key(Contract(secType="STK", symbol="aapl")) == "AAPL"
    assert unit_avg_cost(Contract(secType="FUT", multiplier="5"), 25_000.0) == 5_000.0
    assert unit_avg_cost(Contract(secType="STK"), 150.0) == 150.0
    assert bar_kind(Contract(secType="CASH")) == "MIDPOINT"
    assert bar_kind(Contract(secType="FUT")) == "TRADES"


def test_futures_and_forex_prices_keep_their_own_tick() -> None:
    assert rule_for_min_tick(0.00005, stock=False).limit_price(1.084437, buy=True) == pytest.approx(1.0844)
    assert rule_for_min_tick(0.25, stock=False).limit_price(5000.1, buy=True) == 5000.0
    assert rule_for_min_tick(0.00005).limit_price(150.123, buy=True) == 150.12  # stocks keep the cent


def test_the_broker_adapter_trades_mes_and_eur_usd(
    broker: LiveBrokerAdapter, fut_fx_gateway: GatewayServer
) -> None:
    mes = Order("MESZ6", 2, "market", "buy")
    with Stepper(fut_fx_gateway):
        fill = broker.execute_order(mes, 5000.0, NOW)
    assert fill is not None
    assert mes.status is OrderStatus.FILLED
    assert fill.commission == pytest.approx(2 * 0.62)
    eur = Order("EUR.USD", 20_000, "market", "buy")
    with Stepper(fut_fx_gateway):
        fx_fill = broker.execute_order(eur, 1.0, NOW)
    assert fx_fill is not None
    assert fx_fill.commission == pytest.approx(2.0)
    assert broker.await_positions(5)
    positions = broker.get_positions()
    assert set(positions) == {"MESZ6", "EUR.USD"}
    assert positions["MESZ6"].quantity == 2
    assert positions["MESZ6"].avg_entry_price == pytest.approx(fill.fill_price)  # a price, not x5
    assert positions["EUR.USD"].quantity == 20_000
    assert positions["EUR.USD"].avg_entry_price == pytest.approx(fx_fill.fill_price)


def test_a_limit_off_the_futures_tick_is_put_on_it(broker: LiveBrokerAdapter) -> None:
    order = Order("MESZ6", 1, "limit", "buy", limit_price=100.1, time_in_force="gtc")
    assert broker.execute_order(order, 5000.0, NOW) is None
    assert order.status is OrderStatus.SUBMITTED  # rounded to 100.00 (IB would refuse 100.10 with 110)


def test_a_continuous_future_trades_the_contract_of_the_brokers_day() -> None:
    # IB's clock (the replay's) says 2 September 2026: MES is the September contract, whatever today is
    with running_gateway(data=FutFxFeed(), start="2026-09-02 17:00") as gw:
        b = LiveBrokerAdapter(paper_trading=True, port=gw.port, client_id=52, fill_timeout=10, ack_timeout=1)
        assert b.connect(timeout=5)
        try:
            order = Order("MES", 1, "market", "buy")
            with Stepper(gw):
                assert b.execute_order(order, 2000.0, NOW) is not None
            assert (order.symbol, order.routed_from) == ("MESU6", "MES")  # routed, as in a backtest
            assert b.await_positions(5)
            assert set(b.get_positions()) == {"MESU6"}
        finally:
            b.disconnect()
