"""BrokerMarks: marking only what changed, and only when it is read, leaves the broker exactly as re-marking
every symbol before every fill did."""

from __future__ import annotations

from datetime import UTC, datetime
from unittest.mock import patch

import numpy as np
from copilot_quant.backtest import marking
from copilot_quant.backtest.broker import SimpleBroker
from copilot_quant.backtest.marking import BrokerMarks
from copilot_quant.backtest.orders import Order, OrderSide
from hypothesis import given, settings
from hypothesis import strategies as st

SYMBOLS = ["A", "B", "C", "D"]
INDEX = {s: k for k, s in enumerate(SYMBOLS)}
NOW = datetime(2024, 1, 2, tzinfo=UTC)

fills = st.lists(
    st.tuples(
        st.integers(0, 1),  # rows advance by 0 or 1 between fills
        st.sampled_from(SYMBOLS),
        st.sampled_from([-300.0, -100.0, 100.0, 300.0]),
        st.floats(20.0, 200.0),  # the fill's price
    ),
    max_size=40,
)


def _state(broker: SimpleBroker) -> dict[str, tuple[float, float, float]]:
    """The open positions with their marks (a flat position's mark values nothing: quantity 0)."""
    return {
        s: (p.quantity, p.last_price, p.unrealized_pnl) for s, p in broker._positions.items() if p.quantity
    }


@settings(max_examples=150, deadline=None)
@given(steps=fills, seed=st.integers(0, 2**32 - 1), late=st.sampled_from(SYMBOLS))
def test_the_broker_sees_the_same_marks_and_makes_the_same_decisions_as_with_a_full_re_mark(
    steps, seed, late
):
    _same_as_full_re_mark(steps, seed, late)


@settings(max_examples=60, deadline=None)
@given(steps=fills, seed=st.integers(0, 2**32 - 1), late=st.sampled_from(SYMBOLS))
def test_marking_a_whole_row_at_once_gives_the_same_marks(steps, seed, late):
    with patch.object(marking, "_ROW_AT_ONCE", 0):  # the path large portfolios take
        _same_as_full_re_mark(steps, seed, late)


@settings(max_examples=100, deadline=None)
@given(steps=fills, seed=st.integers(0, 2**32 - 1), late=st.sampled_from(SYMBOLS), at_once=st.booleans())
def test_leaving_the_trading_symbol_to_its_booking_ends_with_the_same_marks_and_decisions(
    steps, seed, late, at_once
):
    with patch.object(marking, "_ROW_AT_ONCE", 0 if at_once else marking._ROW_AT_ONCE):
        _same_as_full_re_mark(steps, seed, late, trading=True)


@settings(max_examples=100, deadline=None)
@given(steps=fills, seed=st.integers(0, 2**32 - 1), trading=st.booleans())
def test_a_run_on_one_stock_alone_ends_with_the_same_marks_and_decisions(steps, seed, trading):
    # the "solo" case: only that stock is in the run (a position in B is held from an earlier run)
    _same_as_full_re_mark(
        [(a, "A", q, p) for a, _, q, p in steps], seed, "A", trading=trading, index={"A": 0}
    )


@settings(max_examples=100, deadline=None)
@given(steps=fills, seed=st.integers(0, 2**32 - 1))
def test_a_solo_run_needs_no_call_per_fill_but_the_rejected_trades_row(steps, seed):
    # what the engine does in a solo run: no before_fill/filled, rejected(row) after a refused trade
    _same_as_full_re_mark(
        [(a, "A", q, p) for a, _, q, p in steps], seed, "A", trading=True, index={"A": 0}, solo_calls=True
    )


def _same_as_full_re_mark(steps, seed, late, *, trading=False, index=INDEX, solo_calls=False):
    marks = np.random.default_rng(seed).uniform(10.0, 300.0, (30, len(index)))
    marks[:3, index[late]] = np.nan  # a symbol that has no price yet at the start
    full, incremental = (SimpleBroker(20_000.0, commission=0.0, slippage=0.0) for _ in range(2))
    for broker in (full, incremental):  # a position held from an earlier run
        broker.fill(Order("B", 50, side=OrderSide.BUY), 90.0, NOW, slippage=False)
    marker = BrokerMarks(incremental, marks, index)
    assert marker.solo is (len(index) == 1)
    row = 0
    for advance, symbol, quantity, price in steps:
        row = min(row + advance, len(marks) - 1)
        side = OrderSide.BUY if quantity > 0 else OrderSide.SELL
        for symbol_k, k in index.items():  # what the engine did before: every symbol, before every fill
            full.mark(symbol_k, marks.item(row, k))
        if not solo_calls:
            marker.mark(row, symbol if trading else None)
        before_full, before_incremental = _state(full), _state(incremental)
        if trading:  # the trading symbol's own mark may wait for its booking
            before_full.pop(symbol, None)
            before_incremental.pop(symbol, None)
        assert before_incremental == before_full
        done_full = full.fill(Order(symbol, abs(quantity), side=side), price, NOW, slippage=False)
        done_incremental = incremental.fill(
            Order(symbol, abs(quantity), side=side), price, NOW, slippage=False
        )
        assert (done_full is None) == (done_incremental is None)
        if solo_calls:
            if done_incremental is None:
                marker.rejected(row)
        elif done_incremental is not None:
            marker.filled(symbol, index[symbol], done_incremental.fill_price)
        else:
            marker.rejected()
        assert _state(incremental) == _state(full)
        assert incremental.cash == full.cash


def test_before_the_first_close_nothing_is_marked():
    broker = SimpleBroker(10_000.0, commission=0.0, slippage=0.0)
    broker.fill(Order("A", 10, side=OrderSide.BUY), 100.0, NOW, slippage=False)
    marker = BrokerMarks(broker, np.array([[120.0, 5.0]]), {"A": 0, "B": 1})
    marker.mark(-1)
    assert broker._positions["A"].last_price == 100.0
    marker.mark(0)
    assert broker._positions["A"].last_price == 120.0


@settings(max_examples=150, deadline=None)
@given(
    steps=fills,
    seed=st.integers(0, 2**32 - 1),
    late=st.sampled_from(SYMBOLS),
    observed=st.lists(st.booleans(), min_size=40, max_size=40),
    at_once=st.booleans(),
)
def test_owed_marks_are_paid_before_any_read_and_at_the_end(steps, seed, late, observed, at_once):
    """Fills that read no mark owe them; the broker makes the same decisions, sees the same marks whenever
    its check (or an observed on_fill) could read them, and ends as if every fill had been marked."""
    marks = np.random.default_rng(seed).uniform(10.0, 300.0, (30, 4))
    marks[:3, INDEX[late]] = np.nan
    full, owing = (SimpleBroker(20_000.0, commission=0.001, slippage=0.0) for _ in range(2))
    for broker in (full, owing):
        broker.fill(Order("B", 50, side=OrderSide.BUY), 90.0, NOW, slippage=False)
    marker = BrokerMarks(owing, marks, INDEX)
    row = 0
    with patch.object(marking, "_ROW_AT_ONCE", 0 if at_once else 8):
        for step, (advance, symbol, quantity, price) in enumerate(steps):
            row = min(row + advance, len(marks) - 1)
            side = OrderSide.BUY if quantity > 0 else OrderSide.SELL
            for symbol_k, k in INDEX.items():
                full.mark(symbol_k, marks.item(row, k))
            order = Order(symbol, abs(quantity), side=side)
            reads = observed[step] or bool(full._shorts) or full.position_quantity(symbol) + quantity < 0
            marker.before_fill(row, order, None, observed[step])
            if reads:  # all but the trading symbol's own mark, which may wait for its booking
                before_full, before_owing = _state(full), _state(owing)
                before_full.pop(symbol, None)
                before_owing.pop(symbol, None)
                assert before_owing == before_full
            done_full = full.fill(Order(symbol, abs(quantity), side=side), price, NOW, slippage=False)
            done_owing = owing.fill(order, price, NOW, slippage=False)
            assert (done_full is None) == (done_owing is None)
            if done_owing is not None:
                marker.filled(symbol, INDEX[symbol], done_owing.fill_price)
                if observed[step]:  # what on_fill reads: the account as eager marking left it
                    assert _state(owing) == _state(full)
                    assert owing.get_account_value() == full.get_account_value()
            else:
                marker.rejected()
                if reads:
                    assert _state(owing) == _state(full)
            assert owing.cash == full.cash
    marker.settle()
    assert _state(owing) == _state(full)
    assert owing.get_account_value() == full.get_account_value()


def test_a_long_only_account_owes_its_marks_until_the_end():
    marks = np.array([[100.0, 50.0], [110.0, 55.0], [120.0, 60.0]])
    broker = SimpleBroker(100_000.0, commission=0.0, slippage=0.0)
    marker = BrokerMarks(broker, marks, {"A": 0, "B": 1})
    for row, symbol in enumerate(["A", "B", "B"]):
        order = Order(symbol, 10, side=OrderSide.BUY)
        marker.before_fill(row, order, None, observed=False)
        fill = broker.fill(order, 1.0 + row, NOW, slippage=False)
        assert fill is not None
        marker.filled(symbol, {"A": 0, "B": 1}[symbol], fill.fill_price)
    assert broker._positions["A"].last_price == 1.0  # owed: still at its fill price
    marker.settle()
    assert broker._positions["A"].last_price == 120.0  # marked at the last fill's row
    assert broker._positions["B"].last_price == 3.0  # the last fill marked its own position after


def test_a_sale_that_opens_a_short_pays_the_owed_marks_first():
    marks = np.array([[100.0, 50.0], [110.0, 55.0]])
    broker = SimpleBroker(100_000.0, commission=0.0, slippage=0.0)
    marker = BrokerMarks(broker, marks, {"A": 0, "B": 1})
    order = Order("A", 10, side=OrderSide.BUY)
    marker.before_fill(0, order, None, observed=False)
    marker.filled("A", 0, broker.fill(order, 100.0, NOW, slippage=False).fill_price)
    marker.before_fill(1, Order("B", 5, side=OrderSide.SELL), None, observed=False)
    assert broker._positions["A"].last_price == 110.0


def test_owed_marks_keep_no_history_of_earlier_rows():
    """A long run that owes its marks remembers the fills of the current row at most (bounded memory)."""
    marks = np.full((100, 2), 50.0)
    broker = SimpleBroker(1e9, commission=0.0, slippage=0.0)
    marker = BrokerMarks(broker, marks, {"A": 0, "B": 1})
    for row in range(100):
        for symbol in ("A", "B"):
            order = Order(symbol, 1, side=OrderSide.BUY)
            marker.before_fill(row, order, None, observed=False)
            marker.filled(
                symbol, {"A": 0, "B": 1}[symbol], broker.fill(order, 50.0, NOW, slippage=False).fill_price
            )
    assert len(marker._moved) <= 2
