"""The one-cancels-all rule shared by the backtest and the gateway (copilot_quant.model.oca): a partial
execution takes its quantity off the other members (ocaType 2, 3) or cancels them (1); a member that
completes cancels them whatever the type (IB's TWS Users' Guide, One Cancels Other)."""

from __future__ import annotations

import pytest
from copilot_quant.errors import OrderValidationError
from copilot_quant.model.oca import OcaExecutions, OcaType, completes, oca_remaining, parse_oca_type
from hypothesis import given
from hypothesis import strategies as st


def test_cancel_type_leaves_nothing_once_another_member_executed():
    assert oca_remaining(OcaType.CANCEL_WITH_BLOCK, 100, 1, True) == 0
    assert oca_remaining(OcaType.CANCEL_WITH_BLOCK, 100, 0, True) == 100  # nothing executed: untouched


def test_reduce_types_take_the_executed_quantity_off_whatever_the_members_size():
    assert oca_remaining(OcaType.REDUCE_WITH_BLOCK, 300, 40, True) == 260  # not 300 x (1 - 40/100)
    assert oca_remaining(OcaType.REDUCE_NON_BLOCK, 60, 40, True) == 20
    assert oca_remaining(OcaType.REDUCE_NON_BLOCK, 3, 1.5, True) == 1  # whole shares round down
    assert oca_remaining(OcaType.REDUCE_NON_BLOCK, 3, 1.5, False) == 1.5
    assert oca_remaining(OcaType.REDUCE_WITH_BLOCK, 40, 130, True) == 0


def test_a_member_that_completes_cancels_the_others_whatever_the_type():
    for oca_type in OcaType:
        executions = OcaExecutions()
        executions.add("a", 40, complete=True)  # a 40-share member filled all of it
        assert executions.left_for("b", oca_type, 260, True) == 0
        assert executions.left_for("a", oca_type, 0, True) == 0


def test_a_member_is_not_reduced_by_its_own_execution():
    executions = OcaExecutions()
    executions.add("a", 30, complete=False)
    assert executions.left_for("a", OcaType.CANCEL_WITH_BLOCK, 70, True) == 70  # the filler keeps working
    assert executions.left_for("b", OcaType.CANCEL_WITH_BLOCK, 100, True) == 0
    assert executions.left_for("b", OcaType.REDUCE_WITH_BLOCK, 100, True) == 70


def test_without_a_block_each_member_loses_what_the_others_executed_at_the_price():
    executions = OcaExecutions()
    executions.add("a", 30, complete=False)
    executions.add("b", 20, complete=False)
    assert executions.left_for("a", OcaType.REDUCE_NON_BLOCK, 70, True) == 50
    assert executions.left_for("b", OcaType.REDUCE_NON_BLOCK, 80, True) == 50
    assert executions.left_for("c", OcaType.REDUCE_NON_BLOCK, 100, True) == 50


def test_completes_needs_a_fill():
    assert completes(10, 10)
    assert not completes(0, 0)
    assert not completes(9, 10)


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
def test_a_blocking_group_never_fills_more_than_its_largest_member(sizes, fills, oca_type):
    """Fill members one execution at a time, applying each to the others (a blocking group): what the
    group bought never passes its largest member's size (no overfill), and no member goes negative."""
    left = [float(s) for s in sizes]
    total = 0.0
    for pick, want in fills:
        who = pick % len(sizes)
        qty = min(want, left[who])
        if qty <= 0:
            continue
        left[who] -= qty
        total += qty
        executions = OcaExecutions()
        executions.add(who, qty, complete=left[who] <= 0)
        left = [executions.left_for(i, oca_type, x, True) for i, x in enumerate(left)]
        assert total <= max(sizes)
        assert all(x >= 0 for x in left)
