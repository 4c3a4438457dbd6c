"""The matching engine's fill rules (shared with the backtest): gaps, crossings, stops, partial fills."""

from __future__ import annotations

import pytest
from copilot_quant.backtest.costs import FixedSlippage
from copilot_quant.backtest.orders import OrderSide
from copilot_quant.errors import ConfigError
from copilot_quant.gateway.matching import (
    FillIntent,
    MatchingEngine,
    StopTriggered,
    WorkingOrder,
    limit_fill_price,
    stop_trigger_price,
)
from copilot_quant.gateway.orders import IbOrderType
from hypothesis import given
from hypothesis import strategies as st

BUY, SELL = OrderSide.BUY, OrderSide.SELL


def order(key=1, *, side=BUY, kind=IbOrderType.MKT, qty=100.0, limit=None, stop=None) -> WorkingOrder:
    if (
        kind.is_trailing
    ):  # a trailing order as the broker builds it: a trail of 1, a limit 0.5 beyond the stop
        return WorkingOrder((1, key), "AAPL", side, kind, qty, None, stop, trail_amount=1.0, limit_offset=0.5)
    if kind.on_close:  # as the broker builds it: it trades only in the closing auction
        return WorkingOrder((1, key), "AAPL", side, kind, qty, limit, None, auction="close")
    return WorkingOrder((1, key), "AAPL", side, kind, qty, limit, stop)


def bar_path(o: float, h: float, low: float, c: float) -> list[tuple[float, bool]]:
    """A bar as the market feeds it: (price, gap) with the open a gap, per the shared path rule."""
    middle = [low, h] if c >= o else [h, low]
    return [(o, True), (middle[0], False), (middle[1], False), (c, False)]


def run(engine: MatchingEngine, *bars: tuple[float, float, float, float]) -> list:
    events = []
    for bar in bars:
        for price, gap in bar_path(*bar):
            events += engine.on_price("AAPL", price, gap=gap)
    return events


def fills(events) -> list[tuple[float, float]]:
    return [(e.price, e.quantity) for e in events if isinstance(e, FillIntent)]


class TestPriceRules:
    def test_limit_buy_crossing_fills_at_the_limit(self):
        assert limit_fill_price(BUY, 99.0, 100.0, 98.0) == 99.0

    def test_limit_buy_after_a_gap_fills_at_the_better_price(self):
        assert limit_fill_price(BUY, 99.0, None, 97.0) == 97.0

    def test_limit_buy_above_limit_does_not_fill(self):
        assert limit_fill_price(BUY, 99.0, 98.0, 99.5) is None

    def test_limit_sell_mirrors(self):
        assert limit_fill_price(SELL, 101.0, 100.0, 102.0) == 101.0
        assert limit_fill_price(SELL, 101.0, None, 103.0) == 103.0
        assert limit_fill_price(SELL, 101.0, 100.0, 100.5) is None

    def test_stop_buy_triggers_at_stop_or_at_the_gap(self):
        assert stop_trigger_price(BUY, 105.0, 100.0, 106.0) == 105.0
        assert stop_trigger_price(BUY, 105.0, None, 107.0) == 107.0
        assert stop_trigger_price(BUY, 105.0, 100.0, 104.0) is None

    def test_stop_sell_mirrors(self):
        assert stop_trigger_price(SELL, 95.0, 100.0, 94.0) == 95.0
        assert stop_trigger_price(SELL, 95.0, None, 90.0) == 90.0


class TestEngine:
    def test_market_order_fills_at_the_next_price_with_slippage(self):
        engine = MatchingEngine(FixedSlippage(0.05))
        engine.add(order())
        assert fills(run(engine, (100, 102, 99, 101))) == [(100.05, 100.0)]
        assert len(engine) == 0

    def test_limit_buy_fills_at_limit_inside_a_bar(self):
        engine = MatchingEngine()
        engine.add(order(kind=IbOrderType.LMT, limit=99.0))
        # up bar: open 100 → low 98 → high 102 → close 101; the low crosses 99 continuously
        assert fills(run(engine, (100, 102, 98, 101))) == [(99.0, 100.0)]

    def test_limit_buy_fills_at_the_open_when_the_bar_gaps_below(self):
        engine = MatchingEngine()
        engine.add(order(kind=IbOrderType.LMT, limit=99.0))
        events = run(engine, (100, 101, 100, 100.5), (97, 98, 96, 97.5))
        assert fills(events) == [(97.0, 100.0)]

    def test_limit_never_touched_keeps_working(self):
        engine = MatchingEngine()
        engine.add(order(kind=IbOrderType.LMT, limit=90.0))
        assert fills(run(engine, (100, 102, 98, 101))) == []
        assert len(engine) == 1

    def test_stop_sell_triggers_reports_and_fills_with_slippage(self):
        engine = MatchingEngine(FixedSlippage(0.1))
        engine.add(order(side=SELL, kind=IbOrderType.STP, stop=95.0))
        events = run(engine, (100, 101, 94, 96))  # down bar: open → high → low: crosses 95
        assert StopTriggered((1, 1)) in events
        assert fills(events) == [(94.9, 100.0)]

    def test_stop_buy_gap_fills_at_the_open(self):
        engine = MatchingEngine()
        engine.add(order(kind=IbOrderType.STP, stop=105.0))
        assert fills(run(engine, (100, 101, 99, 100), (108, 110, 107, 109))) == [(108.0, 100.0)]

    def test_stop_limit_triggers_then_works_as_a_limit(self):
        engine = MatchingEngine()
        # buy stop 105 limit 106: the bar gaps to 108 (triggered, limit not met), later falls back through 106
        engine.add(order(kind=IbOrderType.STP_LMT, stop=105.0, limit=106.0))
        events = run(engine, (100, 101, 99, 100), (108, 109, 104, 104.5))
        assert StopTriggered((1, 1)) in events
        assert fills(events) == [(106.0, 100.0)]

    def test_stop_limit_crossing_fills_at_the_stop(self):
        engine = MatchingEngine()
        engine.add(order(kind=IbOrderType.STP_LMT, stop=105.0, limit=106.0))
        assert fills(run(engine, (100, 107, 99, 106.5))) == [(105.0, 100.0)]

    def test_partial_fills_take_at_most_the_size_per_price(self):
        engine = MatchingEngine(partial_fill_size=30)
        engine.add(order(qty=100))
        events = run(engine, (100, 102, 99, 101))
        assert fills(events) == [(100, 30), (99, 30), (102, 30), (101, 10)]
        assert len(engine) == 0

    def test_orders_fill_in_submission_order_and_other_symbols_are_untouched(self):
        engine = MatchingEngine()
        engine.add(order(key=1))
        engine.add(order(key=2, side=SELL))
        engine.add(WorkingOrder((1, 3), "MSFT", BUY, IbOrderType.MKT, 5))
        events = engine.on_price("AAPL", 100.0, gap=True)
        assert [e.key for e in events] == [(1, 1), (1, 2)]
        assert (1, 3) in engine

    def test_remove_and_invalid_partial_size(self):
        engine = MatchingEngine()
        engine.add(order())
        assert engine.remove((1, 1)) is not None
        assert engine.remove((1, 1)) is None
        with pytest.raises(ConfigError, match="partial_fill_size"):
            MatchingEngine(partial_fill_size=0)


prices = st.floats(min_value=1.0, max_value=500.0, allow_nan=False)


@given(
    path=st.lists(st.tuples(prices, st.booleans()), min_size=1, max_size=40),
    qty=st.integers(1, 1000),
    size=st.none() | st.integers(1, 300),
    kind=st.sampled_from(list(IbOrderType)),
    side=st.sampled_from([BUY, SELL]),
    limit=prices,
    stop=prices,
)
def test_never_fills_beyond_quantity_and_only_at_allowed_prices(path, qty, size, kind, side, limit, stop):  # noqa: PLR0917
    engine = MatchingEngine(partial_fill_size=size)
    engine.add(order(side=side, kind=kind, qty=float(qty), limit=limit, stop=stop))
    seen: list[float] = []
    events = []
    for price, gap in path:
        events += engine.on_price("AAPL", price, gap=gap)
        seen.append(price)
    done = fills(events)
    assert sum(q for _, q in done) <= qty + 1e-9
    for price, _ in done:
        lo, hi = min(seen), max(seen)
        # a crossing fills at the level (a trailing order's level moved: it fills within the prices seen)
        assert lo - 1e-9 <= price <= hi + 1e-9 or price in (limit, stop)
        if kind is IbOrderType.LMT:
            assert price <= limit + 1e-9 if side is BUY else price >= limit - 1e-9
