"""The gateway's volume participation limit: the backtest's rule, applied to replayed bars tick by tick."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
from copilot_quant.backtest.costs import ZeroCommission
from copilot_quant.backtest.orders import OrderSide
from copilot_quant.errors import ConfigError
from copilot_quant.gateway.broker import SimBroker
from copilot_quant.gateway.contracts import ContractInfo, ContractRequest
from copilot_quant.gateway.matching import FillIntent, MatchingEngine, WorkingOrder
from copilot_quant.gateway.orders import IbOrderType, IbStatus, PlaceOrderRequest
from copilot_quant.gateway.server import GatewayServer
from copilot_quant.gateway.testing import connected_ib, running_gateway
from ib_async import MarketOrder, Stock

from .conftest import wait_until

BUY, SELL = OrderSide.BUY, OrderSide.SELL
AAPL = ContractInfo.for_symbol("AAPL")
T0 = datetime(2024, 1, 5, 15, 0, tzinfo=UTC)


def order(
    key=1, *, side=BUY, kind=IbOrderType.MKT, qty=100.0, limit=None, stop=None, whole=True
) -> WorkingOrder:
    return WorkingOrder((1, key), "AAPL", side, kind, qty, limit, stop, whole_shares=whole)


def bar(engine: MatchingEngine, ohlc: tuple[float, float, float, float], volume: float) -> list:
    """Feed one bar as the market does: its path, the open a gap that carries the bar's volume."""
    o, h, low, c = ohlc
    middle = [low, h] if c >= o else [h, low]
    events = engine.on_price("AAPL", o, gap=True, bar_volume=volume)
    for price in (*middle, c):
        events += engine.on_price("AAPL", price)
    return events


def fills(events) -> list[tuple[tuple[int, int], float, float]]:
    return [(e.key, e.price, e.quantity) for e in events if isinstance(e, FillIntent)]


# ------------------------------------------------------------------------------------------- matching engine
def test_a_big_market_order_fills_the_allowance_at_each_bars_open():
    engine = MatchingEngine(volume_limit=0.1)
    engine.add(order(qty=1_000))
    per_bar = [
        fills(bar(engine, (p, p + 1, p - 1, p), v))
        for p, v in [(11, 1_000), (12, 2_000), (13, 3_000), (14, 5_000)]
    ]
    assert per_bar == [
        [((1, 1), 11, 100)],
        [((1, 1), 12, 200)],
        [((1, 1), 13, 300)],
        [((1, 1), 14, 400)],
    ]
    assert len(engine) == 0


def test_orders_at_the_same_tick_share_the_bar_in_submission_order():
    engine = MatchingEngine(volume_limit=0.1)
    engine.add(order(1, qty=300))
    engine.add(order(2, qty=200))
    assert fills(bar(engine, (11, 11, 11, 11), 4_000)) == [((1, 1), 11, 300), ((1, 2), 11, 100)]
    assert fills(bar(engine, (12, 12, 12, 12), 4_000)) == [((1, 2), 12, 100)]


def test_an_order_filling_earlier_in_the_bar_draws_first():
    engine = MatchingEngine(volume_limit=0.1)
    engine.add(order(1, kind=IbOrderType.LMT, qty=300, limit=9.5))  # placed first, touched at the low
    engine.add(order(2, qty=300))
    assert fills(bar(engine, (10, 10.5, 9, 10.2), 4_000)) == [((1, 2), 10, 300), ((1, 1), 9.5, 100)]


def test_a_limit_remainder_waits_for_a_marketable_bar():
    engine = MatchingEngine(volume_limit=0.1)
    engine.add(order(kind=IbOrderType.LMT, qty=500, limit=9.5))
    assert fills(bar(engine, (10, 10.1, 9, 9.8), 2_000)) == [((1, 1), 9.5, 200)]
    assert fills(bar(engine, (9.8, 10.2, 9.7, 10), 100_000)) == []
    assert fills(bar(engine, (9, 9.4, 8.9, 9.2), 100_000)) == [((1, 1), 9, 300)]


def test_a_triggered_stop_remainder_works_as_a_market_order():
    engine = MatchingEngine(volume_limit=0.1)
    engine.add(order(kind=IbOrderType.STP, qty=500, stop=10.5))
    assert fills(bar(engine, (10, 11, 9.9, 10.8), 2_000)) == [((1, 1), 10.5, 200)]
    assert fills(bar(engine, (10, 10.2, 9.8, 10.1), 100_000)) == [((1, 1), 10, 300)]


def test_a_bar_without_volume_fills_nothing():
    engine = MatchingEngine(volume_limit=0.5)
    engine.add(order(qty=10))
    assert fills(bar(engine, (10, 10, 10, 10), 0)) == []
    assert fills(bar(engine, (10, 10, 10, 10), math.nan)) == []
    assert fills(bar(engine, (10, 10, 10, 10), 4)) == [((1, 1), 10, 2)]


def test_prices_outside_a_bar_fill_nothing_under_a_limit():
    engine = MatchingEngine(volume_limit=0.5)
    engine.add(order(qty=10))
    assert engine.on_price("AAPL", 10.0) == []  # no bar opened: no volume to take part in
    assert engine.on_price("AAPL", 10.0, gap=True) == []  # a gap whose bar volume is unknown


def test_fractional_orders_take_fractions_and_whole_orders_whole_shares():
    engine = MatchingEngine(volume_limit=0.1)
    engine.add(order(1, qty=10.5, whole=False))
    assert fills(bar(engine, (10, 10, 10, 10), 72.5)) == [((1, 1), 10, pytest.approx(7.25))]
    engine.add(order(2, qty=10))
    assert fills(bar(engine, (10, 10, 10, 10), 72.5)) == [((1, 1), 10, pytest.approx(3.25)), ((1, 2), 10, 4)]


def test_partial_fill_size_and_the_volume_limit_both_apply():
    engine = MatchingEngine(volume_limit=0.1, partial_fill_size=30)
    engine.add(order(qty=100))
    # 30 a tick, until the bar's 70 are used up: 30, 30, 10
    assert [q for *_, q in fills(bar(engine, (10, 11, 9, 10.5), 700))] == [30, 30, 10]


def test_without_a_limit_the_gateway_fills_everything_at_once():
    engine = MatchingEngine()
    engine.add(order(qty=1_000_000))
    assert fills(bar(engine, (10, 10, 10, 10), 50_000)) == [((1, 1), 10, 1_000_000)]


@pytest.mark.parametrize("bad", [0, -1, 1.5, math.nan])
def test_a_bad_limit_is_a_config_error(bad):
    with pytest.raises(ConfigError, match="0 < volume_limit <= 1"):
        MatchingEngine(volume_limit=bad)


# ------------------------------------------------------------------------------------------- broker
def place(broker: SimBroker, order_id: int, qty: float, tif: str = "DAY") -> None:
    request = PlaceOrderRequest(
        order_id, ContractRequest(symbol="AAPL"), "BUY", qty, "MKT", None, None, tif=tif
    )
    broker.place_order(1, request, AAPL)


def test_the_broker_reports_partial_fills_and_expires_the_rest_at_the_session_end():
    broker = SimBroker(commission=ZeroCommission(), volume_limit=0.1, clock=lambda: T0)
    place(broker, 1, 1_000)
    broker.on_price("AAPL", 10.0, T0, gap=True, bar_volume=3_000)
    broker.on_price("AAPL", 10.5, T0)
    record = broker.order(1, 1)
    assert (record.status, record.filled, record.remaining) == (IbStatus.SUBMITTED, 300, 700)
    broker.on_price("AAPL", 11.0, T0, gap=True, bar_volume=2_000)
    assert [(e.shares, e.price, e.cum_qty) for e in broker.executions()] == [
        (300, 10.0, 300),
        (200, 11.0, 500),
    ]
    broker.end_session(T0)
    record = broker.order(1, 1)
    assert record.status is IbStatus.CANCELLED
    assert record.filled == 500
    assert [p.position for p in broker.positions()] == [500]
    assert broker.account.cash == pytest.approx(1_000_000 - 300 * 10 - 200 * 11)


def test_a_bad_gateway_setting_is_refused_before_it_starts():
    with pytest.raises(ConfigError, match="volume_limit must be"):
        GatewayServer(port=0, data="sample", volume_limit=1.01)


# ------------------------------------------------------------------------------------------- end to end
@pytest.mark.timeout(60)
def test_replayed_bars_limit_what_an_ib_async_market_order_fills(sample_feed):
    limit = 0.0002
    with (
        running_gateway(data=sample_feed, symbols=["AAPL"], volume_limit=limit) as gw,
        connected_ib(gw) as ib,
    ):
        [contract] = ib.qualifyContracts(Stock("AAPL", "SMART", "USD"))
        trade = ib.placeOrder(contract, MarketOrder("BUY", 2_000, tif="GTC"))
        assert wait_until(ib, lambda: trade.orderStatus.status == "Submitted")
        expected: list[float] = []
        for _ in range(3):
            gw.clock.step()  # past the sample data: generated bars with their own volumes
            volume = gw.call(lambda: gw.core.market.generated_bars("AAPL")[-1].volume)
            expected.append(min(math.floor(limit * volume), 2_000 - sum(expected)))
            assert wait_until(ib, lambda: sum(f.execution.shares for f in trade.fills) == sum(expected))
        assert 0 < sum(expected) < 2_000  # the limit bit: the order is still working
        assert [f.execution.shares for f in trade.fills] == [q for q in expected if q]
        assert trade.orderStatus.status == "Submitted"
        assert trade.orderStatus.filled == sum(expected)
