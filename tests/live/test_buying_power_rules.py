"""The pre-check's reservations (:mod:`copilot_quant.brokers.buying_power`) as pure rules: what an order
keeps reserved while it works, after fills, after IB's account update; and the invariant that the check is
never looser than IB's own figure."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from copilot_quant.backtest.orders import Order, OrderStatus
from copilot_quant.brokers.buying_power import Commitments, headroom
from copilot_quant.brokers.order_tracking import PendingExecution, TrackedOrder
from hypothesis import given
from hypothesis import strategies as st

T0 = datetime(2026, 1, 5, 15, tzinfo=UTC)


def _working(quantity: float = 100.0) -> TrackedOrder:
    record = TrackedOrder(Order("AAPL", quantity, "market", "buy"))
    record.order.status = OrderStatus.SUBMITTED
    return record


def _fill(record: TrackedOrder, shares: float) -> None:
    """An execution with its commission report: the order's filled quantity grows (done when complete)."""
    record.order.filled_quantity += shares
    done = record.order.filled_quantity >= record.order.quantity
    record.order.status = OrderStatus.FILLED if done else OrderStatus.PARTIALLY_FILLED


def test_a_working_order_reserves_what_it_was_checked_for() -> None:
    book = Commitments()
    book.reserve(_working(100), 10_010.0)
    assert book.total() == pytest.approx(10_010.0)
    book.account_updated()  # IB's values never include a working order
    assert book.total() == pytest.approx(10_010.0)


def test_a_fill_stays_reserved_until_ib_updates_the_account() -> None:
    book = Commitments()
    order = _working(100)
    book.reserve(order, 10_000.0)
    _fill(order, 100)
    assert book.total() == pytest.approx(10_000.0)  # spent, but IB's BuyingPower does not show it yet
    book.account_updated()
    assert book.total() == 0.0
    assert len(book) == 0


def test_a_partial_fill_counted_by_ib_leaves_the_rest_reserved() -> None:
    book = Commitments()
    order = _working(100)
    book.reserve(order, 10_000.0)
    _fill(order, 40)
    book.account_updated()  # the 40 are in IB's figure now
    assert book.total() == pytest.approx(6_000.0)
    _fill(order, 60)
    assert book.total() == pytest.approx(6_000.0)  # filled since: still not in IB's figure
    book.account_updated()
    assert book.total() == 0.0


def test_an_execution_waiting_for_its_commission_report_counts_as_filled() -> None:
    book = Commitments()
    order = _working(100)
    book.reserve(order, 10_000.0)
    order.pending["e1"] = PendingExecution("e1", 100.0, 100.0, T0)
    order.order.status = OrderStatus.FILLED
    book.account_updated()
    assert book.total() == 0.0


def test_a_cancelled_order_frees_its_reservation_at_once_but_keeps_its_fills_until_the_update() -> None:
    book = Commitments()
    untouched, partly = _working(100), _working(100)
    book.reserve(untouched, 10_000.0)
    book.reserve(partly, 10_000.0)
    _fill(partly, 30)
    untouched.order.status = partly.order.status = OrderStatus.CANCELLED
    assert book.total() == pytest.approx(3_000.0)  # the 30 shares bought, not yet in IB's figure
    book.account_updated()
    assert book.total() == 0.0


def test_a_modification_that_grows_a_working_order_grows_its_reservation() -> None:
    book = Commitments()
    order = _working(100)
    book.reserve(order, 10_000.0)
    order.order.quantity = 150
    assert book.total() == pytest.approx(15_000.0)


def test_an_order_that_reserves_nothing_is_not_kept() -> None:
    book = Commitments()
    book.reserve(_working(100), 0.0)  # a sale that only reduces a position
    assert len(book) == 0


def test_headroom_is_ib_figure_less_the_reservations() -> None:
    assert headroom(50_000.0, 20_000.0) == 30_000.0
    assert headroom(50_000.0, 0.0) == 50_000.0
    assert headroom(-5.0, 0.0) == -5.0


_steps = st.lists(
    st.one_of(
        st.tuples(st.just("reserve"), st.integers(1, 500), st.floats(0, 1e6)),
        st.tuples(st.just("fill"), st.integers(0, 20), st.integers(1, 500)),
        st.tuples(st.just("cancel"), st.integers(0, 20), st.just(0)),
        st.tuples(st.just("update"), st.just(0), st.just(0)),
    ),
    max_size=40,
)


@given(steps=_steps, ib_value=st.floats(-1e6, 1e7))
def test_the_check_is_never_looser_than_ibs_figure_and_working_orders_stay_reserved(
    steps: list[tuple[str, int, float]], ib_value: float
) -> None:
    book = Commitments()
    orders: list[tuple[TrackedOrder, float]] = []
    for action, a, b in steps:
        if action == "reserve":
            order = _working(a)
            book.reserve(order, b)
            orders.append((order, b / a))
        elif action == "update":
            book.account_updated()
        elif orders:
            order, _ = orders[a % len(orders)]
            if order.is_done:
                continue
            if action == "fill":
                _fill(order, min(b, order.order.quantity - order.order.filled_quantity))
            else:
                order.order.status = OrderStatus.CANCELLED
        reserved = book.total()
        assert reserved >= 0
        assert headroom(ib_value, reserved) <= ib_value
        # what is still to be filled is never in IB's figure: it stays reserved, whatever IB updated
        unfilled = sum(
            per_unit * (o.order.quantity - o.order.filled_quantity) for o, per_unit in orders if not o.is_done
        )
        assert reserved >= unfilled - 1e-6 * max(1.0, unfilled)
    for order, _ in orders:
        order.order.status = OrderStatus.CANCELLED
    book.account_updated()
    assert book.total() == 0.0  # every order finished and counted: nothing is held back for ever
    assert len(book) == 0
