"""Forex margin has one source (``model.instruments.FOREX_MARGIN_RATE``): the simulated gateway's account
and the backtest's ask the same margin of a pair's position (before: the gateway asked its full value /
leverage, 100 % by default, the backtest 3 %), and a leveraged forex order is accepted alike."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from copilot_quant.backtest.accounts import InstrumentAccounts
from copilot_quant.backtest.orders import Order, OrderStatus
from copilot_quant.brokers.live_broker_adapter import LiveBrokerAdapter
from copilot_quant.gateway.account import Account
from copilot_quant.gateway.instrument_contracts import contract_for
from copilot_quant.gateway.server import GatewayServer
from copilot_quant.gateway.testing import running_gateway
from copilot_quant.model.instruments import FOREX_MARGIN_RATE, InstrumentRegistry

from tests.gateway.fut_fx_feed import FutFxFeed
from tests.live.conftest import Stepper

REGISTRY = InstrumentRegistry(reference=date(2026, 11, 2))


@pytest.mark.parametrize(("pair", "units", "price"), [("EUR.USD", 200_000, 1.10), ("USD.JPY", 50_000, 150.0)])
def test_the_gateway_and_the_backtest_margin_a_pair_alike(pair: str, units: float, price: float) -> None:
    inst = REGISTRY.resolve(pair)
    account = Account(cash=100_000.0)
    account.price_source = lambda symbol: price if symbol == pair else None
    account.apply_fill(contract_for(inst), units, price, 2.0)
    account.mark(pair, price)
    backtest = InstrumentAccounts(REGISTRY)
    backtest.observe(pair, price)
    expected = backtest.requirement(inst, units, price)
    assert expected == pytest.approx(units * (1.0 if pair == "USD.JPY" else price) * FOREX_MARGIN_RATE)
    assert account.init_margin == pytest.approx(expected)
    assert account.maint_margin == pytest.approx(expected)
    fresh = Account(cash=100_000.0)
    fresh.price_source = account.price_source
    assert fresh.margin_impact(contract_for(inst), units, price, 0.0).init_change == pytest.approx(expected)


@pytest.fixture
def gateway() -> Iterator[GatewayServer]:
    with running_gateway(data=FutFxFeed(), start="2026-11-02 16:00", cash=100_000.0) as gw:
        yield gw


@pytest.mark.network
@pytest.mark.timeout(60)
def test_a_leveraged_forex_order_is_accepted_live_as_in_a_backtest(gateway: GatewayServer) -> None:
    # 500,000 EUR (about 540,000 USD) on 100,000 USD: 3 % margin is about 16,000, well within the funds
    broker = LiveBrokerAdapter(paper_trading=True, port=gateway.port, client_id=59, fill_timeout=10)
    assert broker.connect(timeout=5)
    try:
        order = Order("EUR.USD", 500_000, "market", "buy")
        with Stepper(gateway):
            fill = broker.execute_order(order, 1.08, datetime(2026, 11, 2, 16, tzinfo=UTC))
        assert fill is not None, order.reject_reason
        assert order.status is OrderStatus.FILLED
        too_big = Order("EUR.USD", 5_000_000, "market", "buy")  # about 160,000 of margin: refused
        assert broker.execute_order(too_big, 1.08, datetime(2026, 11, 2, 16, tzinfo=UTC)) is None
        assert too_big.status is OrderStatus.REJECTED
        assert "margin" in too_big.reject_reason
    finally:
        broker.disconnect()
