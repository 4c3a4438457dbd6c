"""TRAIL and TRAIL LIMIT at the simulated gateway: SimBroker's matching, refusals and restart."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from copilot_quant.backtest.costs import ZeroCommission
from copilot_quant.gateway.broker import OrderErrorEvent, SimBroker
from copilot_quant.gateway.contracts import ContractInfo, ContractRequest
from copilot_quant.gateway.orders import IbStatus, PlaceOrderRequest

AAPL = ContractInfo.for_symbol("AAPL")
T0 = datetime(2024, 1, 5, 15, 0, tzinfo=UTC)


def trail(order_id: int, kind: str = "TRAIL", *, aux=None, **kw) -> PlaceOrderRequest:
    return PlaceOrderRequest(order_id, ContractRequest(symbol="AAPL"), "SELL", 10, kind, None, aux, **kw)


def make_broker(**kw) -> SimBroker:
    b = SimBroker(clock=lambda: T0, commission=ZeroCommission(), **kw)
    b.seen = []  # type: ignore[attr-defined]
    b.events += b.seen.append  # type: ignore[attr-defined]
    return b


def errors(broker) -> list[tuple[int, str]]:
    return [(e.code, e.message) for e in broker.seen if isinstance(e, OrderErrorEvent)]


def test_trail_starts_below_the_last_price_follows_it_up_and_fills_where_crossed():
    broker = make_broker()
    broker.on_price("AAPL", 100.0, T0, gap=True)
    broker.place_order(1, trail(1, aux=2.0), AAPL)
    assert broker.order(1, 1).trail_stop_price == 98.0
    assert broker.order(1, 1).status is IbStatus.PRE_SUBMITTED
    for price in (104.0, 107.0, 106.0):
        broker.on_price("AAPL", price, T0)
    assert broker.order(1, 1).trail_stop_price == 105.0  # kept current for openOrder and the state file
    broker.on_price("AAPL", 103.0, T0)
    record = broker.order(1, 1)
    assert record.status is IbStatus.FILLED
    assert record.avg_fill_price == 105.0


def test_trail_limit_by_percent_from_a_given_start():
    broker = make_broker()
    broker.place_order(
        1, trail(1, "TRAIL LIMIT", trailing_percent=10.0, trail_stop_price=90.0, lmt_price_offset=1.0), AAPL
    )
    broker.on_price("AAPL", 100.0, T0, gap=True)
    broker.on_price("AAPL", 88.5, T0, gap=True)  # gaps through the stop (90) and the limit (89): no fill
    record = broker.order(1, 1)
    assert record.status is IbStatus.SUBMITTED  # triggered: working as a limit at 89
    broker.on_price("AAPL", 89.5, T0)
    assert broker.order(1, 1).avg_fill_price == 89.0  # rose through the limit: filled at it


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({}, "exactly one of a trailing amount"),
        ({"aux": 1.0, "trailing_percent": 2.0}, "exactly one"),
        ({"trailing_percent": 150.0}, "between 0 and 100"),
        ({"aux": 1.0, "kind": "TRAIL LIMIT"}, "needs lmtPriceOffset"),
    ],
)
def test_incomplete_trailing_orders_are_refused_with_201(fields, reason):
    broker = make_broker()
    kind = fields.pop("kind", "TRAIL")
    broker.place_order(1, trail(1, kind, **fields), AAPL)
    [(code, message)] = errors(broker)
    assert code == 201
    assert reason in message


def test_a_restart_keeps_the_stop_where_it_had_trailed_to(tmp_path):
    state = tmp_path / "state.json"
    broker = make_broker(state_file=state)
    broker.on_price("AAPL", 100.0, T0, gap=True)
    broker.place_order(1, trail(1, aux=2.0), AAPL)
    broker.on_price("AAPL", 110.0, T0)
    broker.on_price("AAPL", 109.0, T0)
    broker.save()
    resumed = make_broker(state_file=state)
    assert resumed.order(1, 1).trail_stop_price == 108.0
    resumed.on_price("AAPL", 107.5, T0, gap=True)
    assert resumed.order(1, 1).avg_fill_price == 107.5
