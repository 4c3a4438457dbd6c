"""IB's netted position against the strategies' books: which gaps block trading, and how adopting IB's
position fills them (adjusting records, never a rewrite)."""

from __future__ import annotations

import pytest
from copilot_quant.errors import ConfigError
from copilot_quant.journal import BrokerExecution, TradeJournal
from copilot_quant.journal.adjustments import is_adjustment, record_adjustments
from copilot_quant.journal.positions import PositionGap, adoption_plan, position_gaps
from copilot_quant.journal.records import FillRecord
from copilot_quant.model.orders import OrderSide
from hypothesis import given
from hypothesis import strategies as st

from tests.journal.support import T0, buy, sell


def _filled(journal: TradeJournal, order, strategy: str | None, exec_id: str, price: float = 100.0) -> None:
    ref = journal.record_intent(order, strategy)
    journal.record_submitted(ref, abs(hash(exec_id)) % 10_000 + 1)
    journal.record_fill(ref, exec_id, order.symbol, order.side, order.quantity, price, T0)


def _gaps(journal: TradeJournal, broker, outside=()):
    return position_gaps(journal.orders(), journal.fills(), broker, outside)


def test_books_that_add_up_to_ibs_position_have_no_gap(journal: TradeJournal) -> None:
    _filled(journal, buy("AAPL", 100), "fast", "e1")
    _filled(journal, sell("AAPL", 40), "slow", "e2")
    assert _gaps(journal, {"AAPL": 60}) == ()


def test_an_old_journal_on_a_fresh_account_blocks_each_claimed_symbol(journal: TradeJournal) -> None:
    _filled(journal, buy("AAPL", 100), "fast", "e1")
    _filled(journal, buy("AAPL", 50), "slow", "e2")
    (gap,) = _gaps(journal, {})
    assert gap == PositionGap("AAPL", 0.0, (("fast", 100.0), ("slow", 50.0)), 0.0, 0.0)
    assert gap.difference == -150
    assert not gap.covered
    assert not gap.explained
    assert gap.claimant("slow")
    assert not gap.claimant("other")


def test_a_position_closed_by_hand_today_is_not_explained_by_ibs_execution(journal: TradeJournal) -> None:
    _filled(journal, buy("AAPL", 100), "fast", "e1")
    by_hand = BrokerExecution("m1", None, "AAPL", "sell", 100, 99.0, T0)
    (gap,) = _gaps(journal, {}, [by_hand])
    assert gap.outside == -100
    assert gap.difference == -100
    assert not gap.explained  # the strategy still believes it is long: it would sell what is not there


def test_a_position_bought_by_hand_today_beside_the_strategies_is_explained(journal: TradeJournal) -> None:
    _filled(journal, buy("AAPL", 100), "fast", "e1")
    by_hand = BrokerExecution("m1", None, "AAPL", "buy", 30, 99.0, T0)
    (gap,) = _gaps(journal, {"AAPL": 130}, [by_hand])
    assert gap.explained
    (older,) = _gaps(journal, {"AAPL": 130})  # the next day IB no longer reports the execution
    assert not older.explained


def test_adopting_a_position_beside_the_strategies_goes_to_no_strategy() -> None:
    gap = PositionGap("MSFT", 5.0, (("fast", 2.0),))
    assert adoption_plan(gap) == ((None, 3.0),)


def test_adopting_ibs_flat_position_closes_every_book_and_the_unowned_part() -> None:
    gap = PositionGap("AAPL", 0.0, (("fast", 100.0), ("slow", -40.0)), 7.0)
    assert adoption_plan(gap) == (("fast", -100.0), ("slow", 40.0), (None, -7.0))


def test_adopting_a_smaller_position_cuts_the_single_strategys_book_to_it() -> None:
    gap = PositionGap("AAPL", 30.0, (("fast", 100.0),))
    assert adoption_plan(gap) == (("fast", -70.0),)
    flipped = PositionGap("AAPL", -20.0, (("fast", 100.0),))
    # never past zero: the short IB holds is no strategy's, not a short the strategy never opened
    assert adoption_plan(flipped) == (("fast", -100.0), (None, -20.0))


def test_the_several_holders_error_says_the_reduction_as_a_trader_would() -> None:
    gap = PositionGap("AAPL", 120.0, (("fast", 100.0), ("slow", 50.0)))
    with pytest.raises(ConfigError) as refused:
        adoption_plan(gap)
    said = str(refused.value)
    assert "takes the whole reduction of 30 (from the books' long 150 to IB's long 120)" in said
    assert "-30" not in said
    short = PositionGap("AAPL", -20.0, (("fast", -40.0), ("slow", -10.0)))
    with pytest.raises(ConfigError, match=r"reduction of 30 \(from the books' short 50 to IB's short 20\)"):
        adoption_plan(short)
    with pytest.raises(ConfigError, match=r"idle's book is flat: it holds none of that short position"):
        adoption_plan(short, strategy="idle")


def test_adopting_a_smaller_position_shared_by_several_strategies_needs_a_name() -> None:
    gap = PositionGap("AAPL", 80.0, (("fast", 100.0), ("slow", 50.0)), 4.0)
    with pytest.raises(
        ConfigError, match=r"several strategies.*fast long 100, slow long 50.*IB holds long 80"
    ):
        adoption_plan(gap)
    assert adoption_plan(gap, strategy="fast") == (("fast", -70.0), (None, -4.0))
    with pytest.raises(ConfigError, match=r"slow's book is long 50: a reduction of 70 would turn it short"):
        adoption_plan(gap, strategy="slow")
    # a name changes nothing where the engine knows whose the difference is
    beside = PositionGap("AAPL", 200.0, gap.claims)
    assert adoption_plan(beside, strategy="slow") == adoption_plan(beside) == ((None, 50.0),)


@given(
    claims=st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(-50, 50)), max_size=4),
    unowned=st.integers(-20, 20),
    broker=st.integers(-200, 200),
    named=st.sampled_from([None, "a", "b"]),
)
def test_an_adoption_makes_the_books_equal_ib_and_leaves_no_book_beyond_it(
    claims, unowned, broker, named
) -> None:
    merged: dict[str, float] = {}
    for name, q in claims:
        merged[name] = merged.get(name, 0.0) + q
    gap = PositionGap("AAPL", float(broker), tuple((n, q) for n, q in merged.items() if q), float(unowned))
    try:
        plan = adoption_plan(gap, named)
    except ConfigError:
        assert len(gap.claims) > 1
        assert not gap.covered
        assert broker != 0
        return
    assert abs(sum(q for _, q in plan) - gap.difference) < 1e-9
    after = dict(gap.claims)
    for owner, q in plan:
        if owner is not None:
            after[owner] = after.get(owner, 0.0) + q
    claimed = sum(after.values())
    # afterwards IB covers the strategies' books: none is left believing it holds what IB does not
    assert abs(claimed) < 1e-9 or (claimed * broker > 0 and abs(broker) >= abs(claimed) - 1e-9)
    for owner, q in plan:  # and no book crossed zero: a reduction never turns a long into a short
        before = dict(gap.claims).get(owner or "", 0.0)
        if owner is not None and before:
            assert before * (before + q) >= -1e-9


def test_adjustments_are_visible_records_that_close_the_gap(journal: TradeJournal) -> None:
    _filled(journal, buy("AAPL", 100), "fast", "e1", price=180.0)
    _filled(journal, buy("MSFT", 10), "fast", "e2", price=400.0)
    gaps = _gaps(journal, {"MSFT": 15})
    assert [g.symbol for g in gaps] == ["AAPL", "MSFT"]
    for gap in gaps:
        record_adjustments(journal, gap.symbol, adoption_plan(gap), "adopted IB's position", price=410.0)
    assert _gaps(journal, {"MSFT": 15}) == ()
    adjusting = [f for f in journal.fills() if is_adjustment(f.exec_id)]
    assert [(f.symbol, f.side.value, f.quantity, f.price) for f in adjusting] == [
        ("AAPL", "sell", 100.0, 180.0),  # the strategy's book closed at its own cost: no invented P&L
        ("MSFT", "buy", 5.0, 410.0),  # beside the strategy's, at IB's average cost
    ]
    orders = {o.order_ref: o for o in journal.orders()}
    aapl, msft = (orders[f.order_ref] for f in adjusting if f.order_ref)
    assert (aapl.strategy, aapl.tag, aapl.state.value, aapl.reason) == (
        "fast",
        "adjustment",
        "filled",
        "adopted IB's position",
    )
    assert msft.strategy is None
    assert len(journal.events(kind="adjustment")) == 2
    assert len(journal.orders("active")) == 0  # nothing for the reconciliation to look for at IB


def test_position_gaps_ignore_fills_of_no_strategy_as_claims() -> None:
    fills = [FillRecord("x1", None, "TSLA", OrderSide.BUY, 5, 10.0, T0, None, None, T0)]
    (gap,) = position_gaps([], fills, {})
    assert gap.claims == ()
    assert gap.unowned == 5
    assert gap.covered


def test_executions_of_our_orders_not_journaled_yet_count_for_their_strategy(journal: TradeJournal) -> None:
    ref = journal.record_intent(buy("AAPL", 10), "fast")
    journal.record_submitted(ref, 7)
    landing = BrokerExecution("e9", ref, "AAPL", "buy", 10, 100.0, T0, 7)
    assert position_gaps(journal.orders(), journal.fills(), {"AAPL": 10}, unjournaled=[landing]) == ()
    (gap,) = position_gaps(journal.orders(), journal.fills(), {"AAPL": 10})
    assert gap.difference == 10
