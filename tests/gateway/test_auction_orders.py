"""MOC, LOC and OPG at the simulated gateway: filled at the session's close or open price, or not at all."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from copilot_quant.backtest.costs import PercentSlippage, ZeroCommission
from copilot_quant.gateway.broker import OrderErrorEvent, SimBroker
from copilot_quant.gateway.contracts import ContractInfo, ContractRequest
from copilot_quant.gateway.orders import IbStatus, PlaceOrderRequest

AAPL = ContractInfo.for_symbol("AAPL")
T0 = datetime(2024, 1, 5, 15, 0, tzinfo=UTC)


def req(order_id: int, kind: str, lmt=None, tif="DAY") -> PlaceOrderRequest:
    return PlaceOrderRequest(order_id, ContractRequest(symbol="AAPL"), "BUY", 10, kind, lmt, None, tif=tif)


@pytest.fixture
def broker() -> SimBroker:
    b = SimBroker(clock=lambda: T0, commission=ZeroCommission(), slippage=PercentSlippage(0.01))
    b.seen = []  # type: ignore[attr-defined]
    b.events += b.seen.append  # type: ignore[attr-defined]
    return b


def session(broker: SimBroker, *prices: float) -> None:
    """One session: its prices (the first opens it), then its close."""
    for k, price in enumerate(prices):
        broker.on_price("AAPL", price, T0, gap=k == 0)
    broker.end_session(T0)


def test_market_and_limit_on_close_fill_at_the_sessions_last_price(broker):
    broker.place_order(1, req(1, "MOC"), AAPL)
    broker.place_order(1, req(2, "LOC", 105.0), AAPL)
    broker.place_order(1, req(3, "LOC", 104.0), AAPL)
    broker.on_price("AAPL", 101.0, T0, gap=True)
    broker.on_price("AAPL", 99.0, T0)  # below every limit: auction orders do not trade on the way
    assert all(broker.order(1, k).status is IbStatus.SUBMITTED for k in (1, 2, 3))
    broker.on_price("AAPL", 105.0, T0)
    broker.end_session(T0)
    assert [broker.order(1, k).avg_fill_price for k in (1, 2)] == [105.0, 105.0]  # no slippage
    assert broker.order(1, 3).status is IbStatus.CANCELLED
    assert broker.order(1, 3).completed_status.startswith("Expired")


def test_opg_orders_fill_at_the_next_sessions_open_or_are_cancelled(broker):
    session(broker, 100.0, 102.0)
    broker.place_order(1, req(1, "MKT", tif="OPG"), AAPL)
    broker.place_order(1, req(2, "LMT", 101.0, tif="OPG"), AAPL)
    broker.place_order(1, req(3, "LMT", 100.0, tif="OPG"), AAPL)
    session(broker, 101.0, 99.0, 103.0)  # opens at 101; 99 later does not count for order 3
    assert [broker.order(1, k).avg_fill_price for k in (1, 2)] == [101.0, 101.0]
    assert broker.order(1, 3).status is IbStatus.CANCELLED
    assert "opening auction" in broker.order(1, 3).completed_status


def test_an_opg_order_placed_during_a_session_waits_for_the_next_open(broker):
    broker.on_price("AAPL", 100.0, T0, gap=True)
    broker.place_order(1, req(1, "MKT", tif="OPG"), AAPL)
    broker.on_price("AAPL", 100.5, T0, gap=True)  # a new bar, the same session
    assert broker.order(1, 1).status is IbStatus.SUBMITTED
    broker.end_session(T0)
    broker.on_price("AAPL", 98.0, T0, gap=True)
    assert broker.order(1, 1).avg_fill_price == 98.0


@pytest.mark.parametrize(
    ("kind", "tif", "reason"),
    [
        ("STP", "OPG", "takes MKT or LMT"),
        ("MOC", "GTC", "must be DAY"),
        ("LOC", "DAY", "limit price"),
        ("STP", "IOC", "takes MKT or LMT"),
        ("MKT", "FOK", "not supported"),
    ],
)
def test_impossible_combinations_are_refused_with_201(broker, kind, tif, reason):
    request = PlaceOrderRequest(1, ContractRequest(symbol="AAPL"), "BUY", 10, kind, None, 5.0, tif=tif)
    broker.place_order(1, request, AAPL)
    [error] = [e for e in broker.seen if isinstance(e, OrderErrorEvent)]
    assert error.code == 201
    assert reason in error.message


def test_ioc_fills_at_the_current_price_and_cancels_the_rest():
    broker = SimBroker(clock=lambda: T0, commission=ZeroCommission(), partial_fill_size=4)
    broker.on_price("AAPL", 100.0, T0, gap=True)
    broker.place_order(1, req(1, "LMT", 100.5, tif="IOC"), AAPL)
    broker.place_order(1, req(2, "LMT", 99.0, tif="IOC"), AAPL)
    partly = broker.order(1, 1)
    assert (partly.status, partly.filled, partly.avg_fill_price) == (IbStatus.CANCELLED, 4, 100.0)
    assert (broker.order(1, 2).status, broker.order(1, 2).filled) == (IbStatus.CANCELLED, 0)
    broker.on_price("AAPL", 98.0, T0)  # nothing is left working to fill later
    assert broker.account.quantity("AAPL") == 4


def test_gtd_orders_expire_when_the_clock_reaches_their_date(broker):
    broker.on_price("AAPL", 100.0, T0, gap=True)
    gtd = PlaceOrderRequest(
        1,
        ContractRequest(symbol="AAPL"),
        "BUY",
        10,
        "LMT",
        90.0,
        None,
        tif="GTD",
        good_till_date="20240105 11:00:00",
    )
    broker.place_order(1, gtd, AAPL)
    assert broker.order(1, 1).good_till == datetime(2024, 1, 5, 16, 0, tzinfo=UTC)  # New York time
    broker.expire_good_till(datetime(2024, 1, 5, 15, 59, tzinfo=UTC))
    assert broker.order(1, 1).status is IbStatus.SUBMITTED
    broker.expire_good_till(datetime(2024, 1, 5, 16, 0, tzinfo=UTC))
    assert broker.order(1, 1).status is IbStatus.CANCELLED
    assert broker.order(1, 1).completed_status.startswith("Expired: GTD")


@pytest.mark.parametrize(
    ("text", "reason"), [("", "needs goodTillDate"), ("20240105 09:00:00", "has passed")]
)
def test_gtd_without_a_future_date_is_refused(broker, text, reason):
    request = PlaceOrderRequest(
        1, ContractRequest(symbol="AAPL"), "BUY", 10, "LMT", 90.0, None, tif="GTD", good_till_date=text
    )
    broker.place_order(1, request, AAPL)
    [error] = [e for e in broker.seen if isinstance(e, OrderErrorEvent)]
    assert reason in error.message


def test_an_auction_fill_cancels_the_rest_of_its_oca_group(broker):
    moc = PlaceOrderRequest(
        1, ContractRequest(symbol="AAPL"), "BUY", 10, "MOC", None, None, oca_group="g", oca_type=1
    )
    lmt = PlaceOrderRequest(
        2, ContractRequest(symbol="AAPL"), "BUY", 10, "LMT", 90.0, None, tif="GTC", oca_group="g", oca_type=1
    )
    broker.place_order(1, moc, AAPL)
    broker.place_order(1, lmt, AAPL)
    session(broker, 100.0, 101.0)
    assert broker.order(1, 1).status is IbStatus.FILLED
    assert broker.order(1, 2).status is IbStatus.CANCELLED
    assert broker.account.quantity("AAPL") == 10
