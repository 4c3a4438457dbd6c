"""Stops on the tick grid: a stop's level may be off the grid (a trailing stop's usually is; IB refuses a
plain stop price off the grid with error 110, the backtest takes one), but trades print on it, so the trade
that triggers a sell stop is the first grid price at or below its level, a buy stop's at or above. Both the
backtest's rule (model.fill_rules) and the gateway's matching engine fill there, never on the wrong side of
the level. Found by the accounting-invariants hypothesis test: a sell stop at 4.8677 filled at 4.87."""

from __future__ import annotations

from copilot_quant.gateway.matching import FillIntent, MatchingEngine, WorkingOrder
from copilot_quant.gateway.orders import IbOrderType
from copilot_quant.model.fill_rules import locate_order, match_stop
from copilot_quant.model.orders import Order, OrderSide
from copilot_quant.model.spread import limit_on_grid, on_tick, stop_trade_at
from hypothesis import given
from hypothesis import strategies as st

SELL, BUY = OrderSide.SELL, OrderSide.BUY


def test_the_trade_that_triggers_an_off_grid_stop_is_beyond_its_level():
    assert stop_trade_at(4.8677, SELL, 1) == 4.86
    assert stop_trade_at(4.8677, BUY, 1) == 4.87
    assert stop_trade_at(4.86, SELL, 1) == 4.86  # on the grid: itself
    assert stop_trade_at(6000.1, SELL, 1, tick=0.25) == 6000.0
    assert stop_trade_at(4.8677, SELL, 0) == 4.8677  # no spread, no grid: the level itself


def test_the_sell_stop_the_invariants_test_found():
    execution = match_stop(SELL, 4.8677, (5.0, 5.0, 4.7, 4.7), width=1)
    assert execution is not None
    assert execution.price == 4.86  # the bid of the trade at 4.86 (one tick: the bid is the last)


cents = st.integers(400, 600).map(lambda c: c / 100)
paths = st.lists(cents, min_size=1, max_size=6).map(tuple)


@given(
    path=paths,
    side=st.sampled_from([SELL, BUY]),
    level=st.floats(4.0, 6.0, allow_nan=False).filter(lambda x: abs(x * 100 - round(x * 100)) > 1e-6),
    width=st.integers(1, 4),
    limit=st.booleans(),
)
def test_a_stop_never_fills_on_the_wrong_side_of_its_level_and_both_engines_agree(
    path, side, level, width, limit
):
    """For any off-grid level and any path of trades on the grid: a stop's fill (at the touch, no slippage)
    is at or beyond its level, and the backtest's rule and the gateway's engine fill at the same price."""
    kind = "stop_limit" if limit else "stop"
    limit_price = (level - 0.05 if side is SELL else level + 0.05) if limit else None
    order = Order("X", 10, kind, side.value, stop_price=level, limit_price=limit_price)
    _, execution, _ = locate_order(order, path, False, width)
    engine = MatchingEngine()
    engine.add(
        WorkingOrder(
            (1, 1),
            "X",
            side,
            IbOrderType.STP_LMT if limit else IbOrderType.STP,
            10,
            stop=level,
            limit=limit_price,
        )
    )
    gateway = None
    for k, price in enumerate(path):
        fills = [e for e in engine.on_price("X", price, gap=k == 0, width=width) if isinstance(e, FillIntent)]
        if fills:
            gateway = fills[0].price
            break
    booked = None  # as the broker books it: a limit's price onto the grid within the limit
    if execution is not None:
        booked = on_tick(execution.price) if execution.slippage else limit_on_grid(execution.price, side)
    assert booked == gateway
    if booked is not None and not limit:
        assert booked <= level if side is SELL else booked >= level
