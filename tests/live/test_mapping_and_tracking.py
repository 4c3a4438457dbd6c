"""IB translation tables and order tracking (pure logic): bar stamps, orders, statuses, execId dedupe."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import pandas as pd
import pytest
from copilot_quant.backtest.orders import Order, OrderStatus
from copilot_quant.brokers.ib_mapping import (
    bars_to_frame,
    check_interval,
    duration_string,
    ib_status,
    to_ib_order,
)
from copilot_quant.brokers.order_tracking import OrderTracker, PendingExecution
from copilot_quant.errors import DataError
from hypothesis import given
from hypothesis import strategies as st
from ib_async import LimitOrder, MarketOrder, StopOrder


@dataclass
class Bar:
    date: object
    open: float
    high: float
    low: float
    close: float
    volume: float


def test_daily_ib_bars_are_stamped_at_the_session_close_in_utc():
    frame = bars_to_frame(
        [Bar(date(2024, 1, 5), 1, 2, 0.5, 1.5, 100), Bar(date(2024, 7, 3), 1, 2, 0.5, 1.5, float("nan"))],
        "1d",
    )
    assert str(frame.index.tz) == "UTC"
    assert frame.index[0] == pd.Timestamp("2024-01-05 21:00", tz="UTC")
    assert frame.index[1] == pd.Timestamp("2024-07-03 17:00", tz="UTC")  # early close 13:00 EDT
    assert list(frame.columns) == ["Open", "High", "Low", "Close", "Volume"]
    assert frame.dtypes.eq("float64").all()
    assert pd.isna(frame["Volume"].iloc[1])  # a missing size never drops the bar


def test_intraday_ib_bars_move_from_bar_start_to_bar_end():
    start = datetime(2024, 1, 5, 14, 30, tzinfo=UTC)  # 09:30 New York
    frame = bars_to_frame([Bar(start, 1, 1, 1, 1, 1)], "5m")
    assert frame.index[0] == pd.Timestamp("2024-01-05 14:35", tz="UTC")
    last_hour = datetime(2024, 1, 5, 20, 30, tzinfo=UTC)  # 15:30 bar of an hourly series ends at 16:00
    assert bars_to_frame([Bar(last_hour, 1, 1, 1, 1, 1)], "1h").index[0] == pd.Timestamp(
        "2024-01-05 21:00", tz="UTC"
    )


def test_weekly_bars_are_built_from_daily_bars():
    days = [Bar(date(2024, 1, d), d, d + 1, d - 1, d + 0.5, 10) for d in (2, 3, 4, 5, 8)]
    frame = bars_to_frame(days, "1wk")
    assert len(frame) == 2
    assert frame["Open"].iloc[0] == 2
    assert frame["Close"].iloc[0] == 5.5
    assert frame["Volume"].iloc[0] == 40
    assert frame.index[0] == pd.Timestamp("2024-01-05 21:00", tz="UTC")


@pytest.mark.parametrize("interval", ["3d", "1s", "", "daily"])
def test_unsupported_intervals_raise(interval):
    with pytest.raises(DataError, match="unsupported interval"):
        check_interval(interval)


def test_duration_strings_cover_the_range():
    end = pd.Timestamp("2024-06-01", tz="UTC")
    assert duration_string(pd.Timestamp("2024-05-01", tz="UTC"), end, "1d") == "32 D"
    assert duration_string(pd.Timestamp("2022-01-01", tz="UTC"), end, "1d") == "3 Y"
    assert duration_string(end - pd.Timedelta(hours=2), end, "5m") == "7260 S"
    assert duration_string(None, end, "1d") == "1 Y"


def test_orders_translate_to_ib_orders_with_our_id_as_order_ref():
    lmt = to_ib_order(Order("AAPL", 10, "limit", "sell", limit_price=101.5, time_in_force="gtc"), "DU1")
    assert (lmt.action, lmt.totalQuantity, lmt.orderType, lmt.lmtPrice, lmt.tif, lmt.account) == (
        "SELL",
        10.0,
        "LMT",
        101.5,
        "GTC",
        "DU1",
    )
    mkt = to_ib_order(Order("AAPL", 3, "market", "buy", order_id="X1"), None)
    assert (mkt.action, mkt.orderType, mkt.orderRef, mkt.tif) == ("BUY", "MKT", "X1", "DAY")
    stp = to_ib_order(Order("AAPL", 1, "stop_limit", "buy", limit_price=11, stop_price=10), None)
    assert (stp.orderType, stp.lmtPrice, stp.auxPrice) == ("STP LMT", 11, 10)
    assert (stp.ocaGroup, stp.ocaType) == ("", 0)  # outside any group: ib_async's defaults


@pytest.mark.parametrize(
    ("order", "built"),
    [
        (Order("AAPL", 3, "market", "buy"), lambda: MarketOrder("BUY", 3.0)),
        (Order("AAPL", 2, "limit", "sell", limit_price=101.5), lambda: LimitOrder("SELL", 2.0, 101.5)),
        (Order("AAPL", 1, "stop", "sell", stop_price=95.0), lambda: StopOrder("SELL", 1.0, 95.0)),
    ],
    ids=["market", "limit", "stop"],
)
def test_an_ib_order_built_from_defaults_is_the_one_ib_asyncs_constructor_builds(order, built):
    """to_ib_order copies ib_async's defaults instead of running the ~140-field __init__ (the path from a
    bar to its order): the same type and fields, and lists of its own."""
    ours, theirs = to_ib_order(order, None), built()
    theirs.tif, theirs.orderRef = ours.tif, ours.orderRef
    assert type(ours) is type(theirs)
    assert vars(ours) == vars(theirs)
    assert list(vars(ours)) == list(vars(theirs))  # field order too (ib_async's repr and wire format)
    again = to_ib_order(order, None)
    again.conditions.append("x")
    again.algoParams.append("y")
    assert ours.conditions == []
    assert ours.algoParams == []
    assert ours.softDollarTier is not again.softDollarTier


def test_auction_and_trailing_orders_go_to_ib_in_its_vocabulary():
    moc = to_ib_order(Order("AAPL", 5, "market_on_close", "buy"), None)
    loc = to_ib_order(Order("AAPL", 5, "limit_on_close", "sell", limit_price=101.0), None)
    opg = to_ib_order(Order("AAPL", 5, "limit", "buy", limit_price=99.0, time_in_force="opg"), None)
    assert (moc.orderType, moc.tif) == ("MOC", "DAY")
    assert (loc.orderType, loc.lmtPrice) == ("LOC", 101.0)
    assert (opg.orderType, opg.tif) == ("LMT", "OPG")
    trail = to_ib_order(
        Order("AAPL", 5, "trailing_stop_limit", "sell", trail_percent=2.0, limit_offset=0.1), None
    )
    assert (trail.orderType, trail.trailingPercent, trail.lmtPriceOffset) == ("TRAIL LIMIT", 2.0, 0.1)


def test_an_oca_group_goes_to_ib_as_oca_group_and_type():
    exits = Order.one_cancels_all(
        [
            Order("AAPL", 10, "limit", "sell", limit_price=110),
            Order("AAPL", 10, "stop", "sell", stop_price=90),
        ],
        "exit-1",
        2,
    )
    assert [(o.ocaGroup, o.ocaType) for o in (to_ib_order(e, None) for e in exits)] == [("exit-1", 2)] * 2


def test_ib_statuses_map_to_ours():
    assert ib_status("Submitted", 0, 10) is OrderStatus.SUBMITTED
    assert ib_status("Submitted", 4, 6) is OrderStatus.PARTIALLY_FILLED
    assert ib_status("Filled", 10, 0) is OrderStatus.FILLED
    assert ib_status("Cancelled", 0, 10) is OrderStatus.CANCELLED
    assert ib_status("Inactive", 0, 10) is OrderStatus.SUBMITTED  # held, not final: it can still fill


NOW = datetime(2024, 1, 5, 15, tzinfo=UTC)


def test_an_execution_becomes_one_fill_when_its_commission_arrives():
    tracker = OrderTracker()
    order = Order("AAPL", 10, "market", "buy")
    record = tracker.add(order)
    tracker.bind(record, 7, None)
    assert tracker.find(ib_order_id=7) is record
    assert tracker.add_execution(record, PendingExecution("e1", 4, 100.0, NOW))
    assert not tracker.add_execution(record, PendingExecution("e1", 4, 100.0, NOW))  # duplicate report
    assert not record.settled
    fill = tracker.settle(record, "e1", 1.25)
    assert fill is not None
    assert fill.fill_quantity == 4
    assert fill.commission == 1.25
    assert fill.fill_id == "e1"
    assert tracker.settle(record, "e1", 1.25) is None
    assert order.status is OrderStatus.PARTIALLY_FILLED
    assert order.filled_quantity == 4
    tracker.add_execution(record, PendingExecution("e2", 6, 101.0, NOW))
    tracker.settle(record, "e2", 1.0)
    assert order.status is OrderStatus.FILLED
    assert record.settled
    agg = record.aggregate_fill()
    assert agg is not None
    assert agg.fill_quantity == 10
    assert agg.commission == 2.25
    assert agg.fill_price == pytest.approx((4 * 100 + 6 * 101) / 10)


def test_record_for_finds_the_very_order_when_ids_repeat():
    tracker = OrderTracker()
    adopted = Order("AAPL", 5, "limit", "buy", limit_price=1.0, order_id="O3")
    new = Order("AAPL", 7, "limit", "buy", limit_price=2.0, order_id="O3")
    first = tracker.add(adopted, "ref-a")
    second = tracker.add(new, "ref-b")
    assert tracker.get("O3") is second  # by id: the latest
    assert tracker.record_for(adopted) is first
    assert tracker.record_for(new) is second
    assert tracker.record_for(Order("AAPL", 1, order_id="O3")) is None  # same id, never tracked


def test_a_done_order_keeps_its_final_status():
    tracker = OrderTracker()
    record = tracker.add(Order("AAPL", 1, "market", "buy"))
    assert tracker.set_status(record, OrderStatus.REJECTED, reason="IB error 201: no")
    assert not tracker.set_status(record, OrderStatus.SUBMITTED)
    assert record.order.reject_reason == "IB error 201: no"
    assert tracker.wait(record, 0.01)  # done and nothing pending: settled at once


@given(st.lists(st.tuples(st.integers(0, 20), st.floats(0.5, 50)), min_size=1, max_size=30))
def test_no_execution_is_ever_counted_twice_and_fills_never_exceed_what_ib_reported(reports):
    tracker = OrderTracker()
    record = tracker.add(Order("AAPL", 10_000, "market", "buy"))
    unique: dict[str, float] = {}
    for n, shares in reports:
        exec_id = f"e{n}"
        if tracker.add_execution(record, PendingExecution(exec_id, shares, 10.0, NOW)):
            unique[exec_id] = shares
        tracker.settle(record, exec_id, 0.5)
    assert len(record.fills) == len(unique)
    assert record.filled_quantity == pytest.approx(sum(unique.values()))
