"""``Fill._booked``, the broker's cheap fill builder: the same fill as the constructor, the same errors."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from copilot_quant.errors import OrderValidationError
from copilot_quant.model.orders import Fill, Order, OrderSide
from hypothesis import given
from hypothesis import strategies as st

WHEN = datetime(2024, 1, 2, 15, 30, tzinfo=UTC)


@given(
    price=st.floats(min_value=1e-6, max_value=1e9),
    quantity=st.floats(min_value=1e-6, max_value=1e9),
    commission=st.floats(min_value=0.0, max_value=1e6),
    share=st.floats(min_value=0.0, max_value=1.0),
)
def test_booked_fill_equals_the_constructed_one(
    price: float, quantity: float, commission: float, share: float
) -> None:
    order = Order("AAPL", 10)
    fees = commission * share
    booked = Fill._booked(order, price, quantity, commission, WHEN, fees)
    assert booked == Fill(order, price, quantity, commission, WHEN, None, fees)
    assert booked.fill_id is None
    assert booked.order is order


@pytest.mark.parametrize(
    ("price", "quantity", "commission", "fees", "message"),
    [
        (0.0, 1.0, 0.0, 0.0, "fill_price must be positive"),
        (float("nan"), 1.0, 0.0, 0.0, "fill_price must be positive"),
        (1.0, float("inf"), 0.0, 0.0, "fill_quantity must be positive"),
        (1.0, 1.0, -0.5, 0.0, "commission must be zero or positive"),
        (1.0, 1.0, 1.0, 2.0, "fees are the third-party part"),
        ("abc", 1.0, 0.0, 0.0, "fill_price must be a number"),
    ],
)
def test_booked_fill_refuses_what_the_constructor_refuses(
    price: object, quantity: float, commission: float, fees: float, message: str
) -> None:
    order = Order("AAPL", 10)
    with pytest.raises(OrderValidationError, match=message):
        Fill._booked(order, price, quantity, commission, WHEN, fees)  # type: ignore[arg-type]
    with pytest.raises(OrderValidationError, match=message):
        Fill(order, price, quantity, commission, WHEN, None, fees)  # type: ignore[arg-type]


def test_booked_fill_normalises_numbers_like_the_constructor() -> None:
    order = Order("AAPL", 10)
    booked = Fill._booked(order, np.float64(10.5), 3, 1, WHEN)  # type: ignore[arg-type]
    assert type(booked.fill_price) is float
    assert type(booked.fill_quantity) is float
    assert booked == Fill(order, 10.5, 3.0, 1.0, WHEN)


def test_side_and_signed_quantity_parse_a_side_set_as_a_string_after_construction() -> None:
    order = Order("AAPL", 10)
    order.side = "sell"  # the quick path takes the parsed enum; a plain string still reads as the enum
    fill = Fill._booked(order, 10.0, 4.0, 0.0, WHEN)
    assert fill.side is OrderSide.SELL
    assert fill.signed_quantity == -4.0
    assert order.signed_quantity == -10.0
