"""The one-cancels-all rule shared by the backtest and the gateway (copilot_quant.model.oca)."""

from __future__ import annotations

import pytest
from copilot_quant.errors import OrderValidationError
from copilot_quant.model.oca import (
    OcaType,
    group_done_fraction,
    oca_remaining,
    parse_oca_type,
    resized_member,
)
from hypothesis import given
from hypothesis import strategies as st


def test_cancel_type_leaves_nothing():
    assert oca_remaining(OcaType.CANCEL_WITH_BLOCK, 100, 0.01, 100, True) == 0


def test_reduce_types_leave_the_size_times_what_the_group_has_not_done():
    assert oca_remaining(OcaType.REDUCE_WITH_BLOCK, 200, 0.4, 200, True) == 120
    assert oca_remaining(OcaType.REDUCE_NON_BLOCK, 3, 0.5, 3, True) == 1  # whole shares round down
    assert oca_remaining(OcaType.REDUCE_NON_BLOCK, 3, 0.5, 3, False) == 1.5
    assert oca_remaining(OcaType.REDUCE_WITH_BLOCK, 100, 1.3, 40, True) == 0


def test_the_block_flag():
    assert OcaType.CANCEL_WITH_BLOCK.blocks
    assert OcaType.REDUCE_WITH_BLOCK.blocks
    assert not OcaType.REDUCE_NON_BLOCK.blocks


@pytest.mark.parametrize("value", [1, "2", OcaType.REDUCE_NON_BLOCK, "cancel_with_block"])
def test_parse_accepts_ib_numbers_and_names(value):
    assert parse_oca_type(value) in tuple(OcaType)


@pytest.mark.parametrize("value", [0, 4, "x", None])
def test_parse_refuses_anything_else_by_name(value):
    with pytest.raises(OrderValidationError, match="unknown oca_type"):
        parse_oca_type(value)


@given(
    sizes=st.lists(st.integers(1, 1000), min_size=2, max_size=5),
    fills=st.lists(st.tuples(st.integers(0, 4), st.integers(1, 1000)), max_size=30),
    oca_type=st.sampled_from([OcaType.REDUCE_WITH_BLOCK, OcaType.CANCEL_WITH_BLOCK]),
)
def test_a_blocking_group_never_fills_more_than_one_members_worth(sizes, fills, oca_type):
    """Fill members one execution at a time, reducing the others after each (a blocking group): the
    group's done fraction never passes 1, i.e. no overfill."""
    filled = [0.0] * len(sizes)
    left = [float(s) for s in sizes]
    for pick, want in fills:
        who = pick % len(sizes)
        qty = min(want, left[who])
        if qty <= 0:
            continue
        filled[who] += qty
        left[who] -= qty
        done = group_done_fraction(zip(filled, sizes, strict=True))
        for other in range(len(sizes)):
            if other != who or oca_type is not OcaType.CANCEL_WITH_BLOCK:  # a filler keeps its remainder
                left[other] = oca_remaining(oca_type, sizes[other], done, left[other], True)
        assert group_done_fraction(zip(filled, sizes, strict=True)) <= 1 + 1e-9
        assert all(x >= 0 for x in left)


@given(
    size=st.integers(1, 500),
    filled=st.integers(0, 500),
    others=st.floats(0.0, 0.95),
    quantity=st.integers(1, 1000),
)
def test_a_resized_member_may_fill_exactly_its_new_quantity(size, filled, others, quantity):
    filled = min(filled, size, quantity)
    done = others + filled / size
    new_size, new_done = resized_member(size, filled, done, quantity)
    assert new_done == pytest.approx(others + filled / new_size)
    # what it may still fill after the resize is what the client asked for, less its fills
    left = oca_remaining(OcaType.REDUCE_WITH_BLOCK, new_size, new_done, quantity - filled, False)
    assert left == pytest.approx(quantity - filled)


def test_resending_the_size_a_reduction_left_keeps_the_member_as_it_was():
    # two of 100; the other filled 30 (30 % done), so this one was reduced to 70: 70 again is no change
    assert resized_member(100, 0, 0.3, 70) == pytest.approx((100, 0.3))
    assert resized_member(100, 0, 0.0, 250) == (250, 0.0)  # before any execution: the new quantity
