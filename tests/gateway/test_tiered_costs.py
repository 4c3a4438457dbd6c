"""IBKR Tiered at the simulated gateway and in the backtest broker: the same model, each account its own
month's volume, the total in commissionReport, the volume kept across a restart with a state file."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from copilot_quant.backtest.broker import SimpleBroker
from copilot_quant.gateway.broker import CommissionReported, SimBroker
from copilot_quant.gateway.contracts import ContractInfo, ContractRequest
from copilot_quant.gateway.orders import PlaceOrderRequest
from copilot_quant.model.costs import PerShareCommission
from copilot_quant.model.orders import Order, OrderSide
from copilot_quant.model.tiered import TieredCommission

AAPL = ContractInfo.for_symbol("AAPL")
MARCH = datetime(2024, 3, 28, 15, 0, tzinfo=UTC)
APRIL = datetime(2024, 4, 2, 15, 0, tzinfo=UTC)
TIERED = TieredCommission()


def req(order_id: int, action: str = "BUY", qty: float = 100.0) -> PlaceOrderRequest:
    return PlaceOrderRequest(order_id, ContractRequest(symbol="AAPL"), action, qty, "MKT", None, None)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _trade(broker: SimBroker, clock: Clock, order_id: int, action: str, qty: float, *, at: float) -> float:
    """Place a market order, fill it at ``price`` and return the commission its executions reported."""
    seen: list = []
    broker.events += seen.append
    broker.place_order(1, req(order_id, action, qty), AAPL)
    broker.on_price("AAPL", at, clock.now)
    broker.events -= seen.append
    return sum(e.execution.commission for e in seen if isinstance(e, CommissionReported))


def test_the_gateway_reports_ibs_commission_plus_fees_by_the_months_volume():
    clock = Clock(MARCH)
    broker = SimBroker(cash=1e9, commission=TIERED, clock=clock)
    first = _trade(broker, clock, 1, "BUY", 300_000, at=10.0)
    assert first == pytest.approx(TIERED.order_costs(10.0, 300_000, OrderSide.BUY, 0).total)
    # the month's 300,000 shares are behind it: the next order is in the second tier
    second = _trade(broker, clock, 2, "SELL", 1_000, at=10.0)
    assert second == pytest.approx(TIERED.order_costs(10.0, 1_000, OrderSide.SELL, 300_000).total)
    assert second < TIERED.order_costs(10.0, 1_000, OrderSide.SELL, 0).total
    clock.now = APRIL  # a new month: back to the first tier
    third = _trade(broker, clock, 3, "SELL", 1_000, at=10.0)
    assert third == pytest.approx(TIERED.order_costs(10.0, 1_000, OrderSide.SELL, 0).total)


def test_a_partly_filled_order_pays_what_the_whole_order_costs():
    clock = Clock(MARCH)
    broker = SimBroker(cash=1e9, commission=TIERED, partial_fill_size=70, clock=clock)
    broker.place_order(1, req(1, "SELL", 200), AAPL)
    for price in (20.0, 21.0, 22.0):
        broker.on_price("AAPL", price, clock.now)
    executions = broker.executions()
    assert [e.shares for e in executions] == [70, 70, 60]
    vwap = sum(e.shares * e.price for e in executions) / 200
    whole = TIERED.order_costs(vwap, 200, OrderSide.SELL, 0).total
    assert sum(e.commission for e in executions) == pytest.approx(whole)


def test_a_restarted_gateway_keeps_the_months_volume(tmp_path):
    clock = Clock(MARCH)
    path = tmp_path / "state.json"
    first = SimBroker(cash=1e9, commission=TIERED, clock=clock, state_file=path)
    _trade(first, clock, 1, "BUY", 400_000, at=10.0)
    first.save()
    again = SimBroker(cash=1e9, commission=TIERED, clock=clock, state_file=path)
    paid = _trade(again, clock, 2, "SELL", 1_000, at=10.0)
    assert paid == pytest.approx(TIERED.order_costs(10.0, 1_000, OrderSide.SELL, 400_000).total)


def test_two_accounts_sharing_the_model_count_their_own_volume():
    """A sweep hands one model object to every run: the volume is each broker's own."""
    busy, quiet = (
        SimpleBroker(1e9, commission=TIERED, slippage=0),
        SimpleBroker(1e9, commission=TIERED, slippage=0),
    )
    busy.execute_order(Order("AAPL", 400_000), 10.0, MARCH)
    busy_fill = busy.execute_order(Order("AAPL", 1_000), 10.0, MARCH)
    quiet_fill = quiet.execute_order(Order("AAPL", 1_000), 10.0, MARCH)
    assert busy_fill is not None
    assert quiet_fill is not None
    assert busy_fill.commission < quiet_fill.commission
    assert quiet_fill.commission == pytest.approx(TIERED.order_costs(10.0, 1_000, OrderSide.BUY, 0).total)
    assert busy.costs.month_volume(MARCH) == 401_000
    assert quiet.costs.month_volume(MARCH) == 1_000


def test_a_backtest_fill_carries_its_fees_apart():
    broker = SimpleBroker(1e6, commission="ibkr-tiered", slippage=0)
    broker.execute_order(Order("AAPL", 1_000), 50.0, MARCH)
    fill = broker.execute_order(Order("AAPL", 1_000, side="sell"), 50.0, MARCH)
    assert fill is not None
    costs = TIERED.order_costs(50.0, 1_000, OrderSide.SELL, 1_000)
    assert fill.commission == pytest.approx(costs.total)
    assert fill.fees == pytest.approx(costs.fees)
    assert broker.cash == pytest.approx(1e6 - sum(f.commission for f in broker.fills))


def test_the_gateway_config_takes_a_commission_name():
    from copilot_quant.errors import ConfigError
    from copilot_quant.gateway.server import GatewayConfig, GatewayServer

    server = GatewayServer(GatewayConfig(port=0, data="sample", commission="ibkr-tiered"))
    assert server.broker.costs.model == TieredCommission()
    assert GatewayServer(GatewayConfig(port=0, data="sample")).broker.costs.model == PerShareCommission()
    with pytest.raises(ConfigError, match="ibkr-tiered"):
        GatewayConfig(port=0, commission="tiered").validate()
