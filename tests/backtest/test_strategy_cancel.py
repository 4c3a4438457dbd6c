"""Strategy.open_orders() and Strategy.cancel() in a backtest, on the pandas path and the fast path.

Timing contract under test: a cancel is immediate — an order cancelled in on_data for bar t (or in
on_fill) can never fill on bar t+1 or later; it ends CANCELLED, "cancelled by the strategy", and stays in
result.orders.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from copilot_quant.backtest.engine import BacktestEngine
from copilot_quant.backtest.orders import Fill, Order, OrderStatus
from copilot_quant.backtest.strategy import CANCELLED_BY_STRATEGY, FastStrategy, Strategy
from copilot_quant.errors import StrategyError

from tests.backtest.engine_helpers import daily_bars

#: ``act(strategy, bar)`` -> orders for that bar (0-based); it may call strategy.cancel()/open_orders().
Act = Callable[[Any, int], list[Order] | None]

QUIET = (100.0, 101.0, 99.0, 100.0)
CRASH = (100.0, 100.0, 80.0, 85.0)  # trades through any buy limit at or above 80


class PandasScript(Strategy):
    def __init__(self, act: Act, on_fill: Callable[[Any, Fill], None] | None = None) -> None:
        super().__init__()
        self.act, self.fill_hook = act, on_fill
        self.bar = -1
        self.fills: list[Fill] = []
        self.log: list[Any] = []

    def on_data(self, timestamp, data):
        self.bar += 1
        return self.act(self, self.bar)

    def on_fill(self, fill):
        self.fills.append(fill)
        if self.fill_hook is not None:
            self.fill_hook(self, fill)


class FastScript(FastStrategy):
    def __init__(self, act: Act, on_fill: Callable[[Any, Fill], None] | None = None) -> None:
        super().__init__()
        self.act, self.fill_hook = act, on_fill
        self.bar = -1
        self.fills: list[Fill] = []
        self.log: list[Any] = []

    def indicators(self, data):
        return {"close": data["Close"]}

    def on_bar(self, timestamp, close):
        self.bar += 1
        return self.act(self, self.bar)

    def on_fill(self, fill):
        self.fills.append(fill)
        if self.fill_hook is not None:
            self.fill_hook(self, fill)


KINDS = {"pandas": PandasScript, "fast": FastScript}


@pytest.fixture(params=sorted(KINDS))
def make(request: pytest.FixtureRequest) -> Callable[..., Any]:
    return KINDS[request.param]


def run(strategy: Strategy, rows, **engine_args: Any):
    engine = BacktestEngine(10_000, commission=0, slippage=0, **engine_args)
    engine.add_strategy(strategy)
    return engine.run(data=daily_bars(rows), symbols=["X"])


def limit_buy(price: float = 90.0, tif: str = "gtc") -> Order:
    return Order("X", 10, "limit", "buy", limit_price=price, time_in_force=tif)


def place_then_cancel(place_bar: int, cancel_bar: int | None) -> tuple[Act, list[Order]]:
    placed: list[Order] = []

    def act(strategy, bar):
        if bar == place_bar:
            placed.append(limit_buy())
            return [placed[-1]]
        if bar == cancel_bar:
            strategy.cancel(placed[0])
        return None

    return act, placed


# --------------------------------------------------------------------------- the timing contract
def test_a_cancelled_limit_never_fills_even_when_a_later_bar_trades_through_it(make):
    rows = [QUIET] * 5 + [CRASH, QUIET]
    act, _ = place_then_cancel(place_bar=1, cancel_bar=None)
    control = run(make(act), rows)
    assert len(control.fills) == 1  # without the cancel, bar 5 fills it
    assert control.fills[0].timestamp == daily_bars(rows).index[5]

    act, placed = place_then_cancel(place_bar=1, cancel_bar=3)
    strategy = make(act)
    result = run(strategy, rows)
    (order,) = placed
    assert result.fills == []
    assert strategy.fills == []
    assert order.status is OrderStatus.CANCELLED
    assert order.reject_reason == CANCELLED_BY_STRATEGY == "cancelled by the strategy"
    assert result.orders == [order]
    assert result.final_value == pytest.approx(10_000)
    assert result.errors == []


@pytest.mark.parametrize("fill_at", ["next_open", "close"])
def test_a_cancel_on_bar_t_prevents_the_fill_bar_t_plus_1_would_give(make, fill_at):
    rows = [QUIET, QUIET, QUIET, CRASH, QUIET]
    act, _ = place_then_cancel(place_bar=1, cancel_bar=None)
    control = run(make(act), rows, fill_at=fill_at)
    assert [f.timestamp for f in control.fills] == [daily_bars(rows).index[3]]

    act, placed = place_then_cancel(place_bar=1, cancel_bar=2)  # bar 3 is the one that would fill it
    result = run(make(act), rows, fill_at=fill_at)
    assert result.fills == []
    assert placed[0].status is OrderStatus.CANCELLED


def test_a_cancel_by_order_id_works_like_one_by_order(make):
    placed: list[Order] = []

    def act(strategy, bar):
        if bar == 0:
            placed.append(limit_buy())
            return placed[:]
        if bar == 1:
            strategy.cancel(placed[0].order_id)
        return None

    result = run(make(act), [QUIET, QUIET, CRASH])
    assert result.fills == []
    assert placed[0].status is OrderStatus.CANCELLED


# --------------------------------------------------------------------------- open_orders()
def test_open_orders_lists_exactly_the_working_orders_as_they_change(make):
    orders: dict[str, Order] = {}

    def act(strategy, bar):
        strategy.log.append([o.tag for o in strategy.open_orders()])
        if bar == 0:
            orders["a"] = Order("X", 1, "limit", "buy", limit_price=90, time_in_force="gtc", tag="a")
            orders["b"] = Order("X", 1, "limit", "buy", limit_price=70, time_in_force="gtc", tag="b")
            orders["c"] = Order("X", 1, "market", "buy", tag="c")
            orders["d"] = Order("X", 1, "limit", "buy", limit_price=50, tag="d")  # DAY: expires at bar 1
            return list(orders.values())
        if bar == 2:
            orders["e"] = Order("X", 1, "limit", "buy", limit_price=60, time_in_force="gtc", tag="e")
            strategy.cancel(orders["b"])
            strategy.log.append([o.tag for o in strategy.open_orders()])  # the cancel shows at once
            return [orders["e"]]
        return None

    strategy = make(act)
    result = run(strategy, [QUIET, QUIET, QUIET, CRASH, QUIET])
    assert strategy.log == [
        [],  # bar 0: nothing submitted yet
        ["a", "b"],  # bar 1: c filled at the open, d expired with the session
        ["a", "b"],  # bar 2, before the cancel
        ["a"],  # bar 2, right after cancelling b
        ["e"],  # bar 3 (CRASH, low 80): a filled, e (60) still works
        ["e"],
    ]
    statuses = {o.tag: o.status for o in result.orders}
    assert statuses == {
        "a": OrderStatus.FILLED,
        "b": OrderStatus.CANCELLED,
        "c": OrderStatus.FILLED,
        "d": OrderStatus.EXPIRED,
        "e": OrderStatus.CANCELLED,  # still working when the data ended
    }
    assert orders["e"].reject_reason != CANCELLED_BY_STRATEGY  # the engine's end-of-data cancel, not ours


def test_each_strategy_sees_and_cancels_only_its_own_orders():
    mine: list[Order] = []
    theirs: list[Order] = []
    seen: dict[str, list[list[str]]] = {"mine": [], "theirs": []}
    refused: list[str] = []

    def act_for(name: str, book: list[Order]) -> Act:
        def act(strategy, bar):
            seen[name].append([o.order_id for o in strategy.open_orders()])
            if bar == 0:
                book.append(limit_buy())
                return book[:]
            if bar == 1 and name == "mine":
                try:
                    strategy.cancel(theirs[0])
                except StrategyError as exc:
                    refused.append(str(exc))
            return None

        return act

    engine = BacktestEngine(10_000, commission=0, slippage=0)
    engine.add_strategy(PandasScript(act_for("mine", mine)))
    engine.add_strategy(PandasScript(act_for("theirs", theirs)))
    engine.run(data=daily_bars([QUIET] * 3), symbols=["X"])
    assert seen["mine"][1] == [mine[0].order_id]
    assert seen["theirs"][1] == [theirs[0].order_id]
    assert len(refused) == 1
    assert "unknown order" in refused[0]
    assert "belongs to" in refused[0]
    assert theirs[0].status is OrderStatus.CANCELLED  # by the end of the data, not by the other strategy
    assert theirs[0].reject_reason != CANCELLED_BY_STRATEGY


# --------------------------------------------------------------------------- no-ops and errors
def test_cancelling_a_filled_order_is_a_logged_no_op(make, caplog):
    placed: list[Order] = []

    def act(strategy, bar):
        if bar == 0:
            placed.append(Order("X", 10, "market", "buy"))
            return placed[:]
        if bar == 2:
            strategy.cancel(placed[0])
            strategy.cancel(placed[0].order_id)
        return None

    with caplog.at_level(logging.INFO, logger="copilot_quant.backtest.engine"):
        result = run(make(act), [QUIET] * 4)
    assert placed[0].status is OrderStatus.FILLED
    assert placed[0].reject_reason == ""
    assert len(result.fills) == 1
    assert result.errors == []
    notes = [r.getMessage() for r in caplog.records if "nothing to cancel" in r.getMessage()]
    assert len(notes) == 2
    assert "already filled" in notes[0]


def test_cancelling_twice_is_a_no_op_the_second_time(make):
    placed: list[Order] = []

    def act(strategy, bar):
        if bar == 0:
            placed.append(limit_buy())
            return placed[:]
        if bar in (1, 2):
            strategy.cancel(placed[0])
        return None

    result = run(make(act), [QUIET, QUIET, QUIET, CRASH])
    assert result.errors == []
    assert placed[0].status is OrderStatus.CANCELLED
    assert placed[0].reject_reason == CANCELLED_BY_STRATEGY


def test_cancelling_an_unknown_id_raises_a_strategy_error(make):
    caught: list[StrategyError] = []

    def act(strategy, bar):
        if bar == 0:
            return [limit_buy()]
        if bar == 1:
            for what in ("O-nope", Order("X", 1)):  # an id never used; an order never returned
                try:
                    strategy.cancel(what)
                except StrategyError as exc:
                    caught.append(exc)
        if bar == 2:
            strategy.cancel("O-nope")  # uncaught: the engine records it like any strategy error
        return None

    result = run(make(act), [QUIET] * 4)
    assert len(caught) == 2
    assert "'O-nope'" in str(caught[0])
    assert "unknown order" in str(caught[0])
    assert "unknown order" in str(caught[1])
    assert [e["type"] for e in result.errors] == ["StrategyError"]
    assert result.orders[0].status is OrderStatus.CANCELLED  # still working at the end of the data
    assert result.orders[0].reject_reason != CANCELLED_BY_STRATEGY


def test_outside_an_engine_there_are_no_orders_and_cancel_says_why():
    strategy = PandasScript(lambda s, bar: None)
    assert strategy.open_orders() == []
    with pytest.raises(StrategyError, match="not running in an engine"):
        strategy.cancel("O1")
    with pytest.raises(StrategyError, match="takes an Order or its order_id"):
        strategy.cancel(42)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- cancels from on_fill
@pytest.mark.parametrize("tif", ["day", "gtc"])
@pytest.mark.parametrize("second_limit", [90.0, 70.0, 50.0])
def test_a_cancel_from_on_fill_stops_the_other_leg(make, tif, second_limit, caplog):
    """One-cancels-other: when the first leg fills, on_fill cancels the second. It never fills: not in
    the same bar (limit 90: that bar trades through both) and not in a later one (limit 70: the next bar
    does); it ends CANCELLED by the strategy, not EXPIRED by the DAY rule nor cancelled at the data's end
    (limit 50: no bar reaches it).
    """
    legs: list[Order] = []

    def act(strategy, bar):
        if bar == 0:
            legs.append(Order("X", 10, "limit", "buy", limit_price=95, time_in_force=tif))
            legs.append(Order("X", 10, "limit", "buy", limit_price=second_limit, time_in_force=tif))
            return legs[:]
        return None

    def one_cancels_other(strategy, fill):
        for order in strategy.open_orders():
            strategy.cancel(order)

    rows = [QUIET, CRASH, (85.0, 86.0, 60.0, 65.0), QUIET]
    control = run(make(act), rows)
    # a DAY leg at 70 expires before the deep bar; no bar reaches 50
    both_fill = second_limit == 90.0 or (second_limit == 70.0 and tif == "gtc")
    assert len(control.fills) == (2 if both_fill else 1)
    legs.clear()

    strategy = make(act, on_fill=one_cancels_other)
    with caplog.at_level(logging.WARNING):
        result = run(strategy, rows)
    assert [f.order for f in result.fills] == [legs[0]]
    assert legs[0].status is OrderStatus.FILLED
    assert legs[1].status is OrderStatus.CANCELLED
    assert legs[1].reject_reason == CANCELLED_BY_STRATEGY
    assert result.orders == legs
    assert result.errors == []
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]  # never offered to the broker


def test_on_fill_sees_open_orders_without_the_order_just_filled(make):
    seen: list[list[str]] = []

    def act(strategy, bar):
        if bar == 0:
            return [
                Order("X", 1, "market", "buy", tag="mkt"),
                Order("X", 1, "limit", "buy", limit_price=50, time_in_force="gtc", tag="rest"),
            ]
        return None

    run(make(act, on_fill=lambda s, fill: seen.append([o.tag for o in s.open_orders()])), [QUIET] * 3)
    assert seen == [["rest"]]
