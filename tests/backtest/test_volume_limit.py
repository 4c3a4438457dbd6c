"""BacktestEngine(volume_limit=...): orders fill at most a fraction of each bar's volume; the rest keeps working."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest
from copilot_quant.backtest.engine import BacktestEngine
from copilot_quant.backtest.orders import Fill, Order, OrderStatus
from copilot_quant.backtest.strategy import FastStrategy
from copilot_quant.errors import ConfigError, DataError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.backtest.engine_helpers import Scripted, daily_bars

Bar = tuple[float, float, float, float]


def bars(rows: Sequence[Bar], volumes: Sequence[float]) -> pd.DataFrame:
    frame = daily_bars(rows)
    frame["Volume"] = np.asarray(volumes, dtype=float)
    return frame


def flat(prices: Sequence[float], volumes: Sequence[float]) -> pd.DataFrame:
    return bars([(p, p, p, p) for p in prices], volumes)


def run(strategy, frame, *, volume_limit=0.1, capital=100_000.0, commission=0.0, **kwargs):
    # the bars' own prices (spread off): these tests do the fill arithmetic by hand; the spread's own tests
    # are tests/model/test_spread*.py and tests/backtest/test_spread_fills.py
    kwargs.setdefault("spread", None)
    engine = BacktestEngine(capital, commission=commission, slippage=0.0, volume_limit=volume_limit, **kwargs)
    engine.add_strategy(strategy)
    symbols = ["AAPL"] if not isinstance(frame.columns, pd.MultiIndex) else None
    return engine.run(data=frame, symbols=symbols or list(frame.columns.get_level_values(1).unique()))


def fills_of(result) -> list[tuple[int, float, float]]:
    """(bar number, quantity, price) of every fill."""
    stamps = list(result.equity_curve.index)
    return [(stamps.index(pd.Timestamp(f.timestamp)), f.fill_quantity, f.fill_price) for f in result.fills]


class Recorder(Scripted):
    """Scripted, also recording the order's state as each fill reaches on_fill."""

    def __init__(self, script) -> None:
        super().__init__(script)
        self.seen_at_fill: list[tuple[float, str, float]] = []

    def on_fill(self, fill: Fill) -> None:
        super().on_fill(fill)
        order = fill.order
        self.seen_at_fill.append((fill.fill_quantity, order.status.value, order.filled_quantity))


# ------------------------------------------------------------------------------------------- market orders
def test_a_big_market_order_fills_over_several_bars_at_each_bars_open():
    frame = flat([10, 11, 12, 13, 14, 15], [0, 1_000, 2_000, 3_000, 5_000, 9_000])
    order = Order("AAPL", 1_000, time_in_force="gtc")
    strategy = Recorder({0: lambda: [order]})
    result = run(strategy, frame, commission=0.001)

    # floor(0.1 x volume) per bar: 100, 200, 300, then the last 400 of a 500-share allowance
    assert fills_of(result) == [(1, 100, 11.0), (2, 200, 12.0), (3, 300, 13.0), (4, 400, 14.0)]
    assert strategy.seen_at_fill == [
        (100, "partially_filled", 100),
        (200, "partially_filled", 300),
        (300, "partially_filled", 600),
        (400, "filled", 1_000),
    ]
    assert order.status is OrderStatus.FILLED
    assert order.filled_quantity == 1_000
    assert order.avg_fill_price == pytest.approx((100 * 11 + 200 * 12 + 300 * 13 + 400 * 14) / 1_000)
    notional = 100 * 11 + 200 * 12 + 300 * 13 + 400 * 14
    commissions = sum(0.001 * q * p for _, q, p in fills_of(result))
    assert [f.commission for f in result.fills] == pytest.approx(
        [0.001 * q * p for _, q, p in fills_of(result)]
    )
    assert result.cash_curve.iloc[-1] == pytest.approx(100_000 - notional - commissions, abs=1e-9)
    assert result.positions["AAPL"].quantity == 1_000
    # the equity curve holds exactly what was filled by each bar, marked at that bar's close
    held = np.cumsum([0, 100, 200, 300, 400, 0])
    cash = result.cash_curve.to_numpy()
    assert result.equity_curve.to_numpy() == pytest.approx(cash + held * frame["Close"].to_numpy())


def test_the_one_million_share_order_on_a_thin_bar_fills_fifty_thousand_times_the_limit():
    frame = flat([100, 100, 100], [50_000, 50_000, 50_000])
    result = run(Scripted({0: lambda: [Order("AAPL", 1_000_000)]}), frame, volume_limit=0.25, capital=1e9)
    (fill,) = result.fills  # a DAY order on daily bars: one bar, then it expires
    assert fill.fill_quantity == 12_500
    assert result.orders[0].status is OrderStatus.EXPIRED


def test_without_a_limit_the_whole_order_fills_on_one_bar_as_before():
    frame = flat([100, 100, 100], [50_000, 50_000, 50_000])
    result = run(Scripted({0: lambda: [Order("AAPL", 1_000_000)]}), frame, volume_limit=None, capital=1e9)
    assert [(f.fill_quantity, f.fill_price) for f in result.fills] == [(1_000_000, 100.0)]
    assert result.orders[0].status is OrderStatus.FILLED


def test_a_limit_of_one_with_enough_volume_changes_nothing():
    frame = flat([10, 11, 12], [1_000, 1_000, 1_000])
    script = {0: lambda: [Order("AAPL", 500), Order("AAPL", 300, side="sell")]}
    capped = run(Scripted(script), frame, volume_limit=1.0)
    free = run(Scripted(script), frame, volume_limit=None)
    assert fills_of(capped) == fills_of(free)
    pd.testing.assert_series_equal(capped.equity_curve, free.equity_curve)


# ------------------------------------------------------------------------------------------- sharing a bar
def test_two_orders_share_one_bars_allowance_in_submission_order():
    frame = flat([10, 11, 12, 13], [0, 4_000, 4_000, 4_000])
    first = Order("AAPL", 300, time_in_force="gtc")
    second = Order("AAPL", 200, time_in_force="gtc")
    result = run(Scripted({0: lambda: [first, second]}), frame)
    assert [(f.order.order_id, f.fill_quantity, f.fill_price) for f in result.fills] == [
        (first.order_id, 300, 11.0),
        (second.order_id, 100, 11.0),  # what the first left of the 400
        (second.order_id, 100, 12.0),
    ]


def test_sells_and_buys_draw_on_the_same_allowance():
    frame = flat([10, 11, 12], [0, 1_000, 1_000])
    buy = Order("AAPL", 80, time_in_force="gtc")
    sell = Order("AAPL", 50, side="sell", time_in_force="gtc")
    result = run(Scripted({0: lambda: [buy, sell]}), frame)
    assert [(f.order.order_id, f.fill_quantity) for f in fills_of_bar(result, 1)] == [
        (buy.order_id, 80),
        (sell.order_id, 20),
    ]


def fills_of_bar(result, bar: int) -> list[Fill]:
    stamp = result.equity_curve.index[bar]
    return [f for f in result.fills if pd.Timestamp(f.timestamp) == stamp]


def test_an_order_executing_earlier_on_the_bar_draws_first():
    # bar 1 is an up bar: open 10 -> low 9 -> high 10.5 -> close 10.2
    frame = bars([(10, 10, 10, 10), (10, 10.5, 9, 10.2), (10, 10, 10, 10)], [0, 4_000, 0])
    limit = Order("AAPL", 300, "limit", limit_price=9.5, time_in_force="gtc")  # placed first, fills at 9.5
    market = Order("AAPL", 300, time_in_force="gtc")  # placed second, fills at the open
    result = run(Scripted({0: lambda: [limit, market]}), frame)
    assert [(f.order.order_id, f.fill_quantity, f.fill_price) for f in result.fills] == [
        (market.order_id, 300, 10.0),
        (limit.order_id, 100, 9.5),
    ]


def test_symbols_have_allowances_of_their_own():
    a = flat([10, 10, 10], [0, 1_000, 0])
    b = flat([20, 20, 20], [0, 5_000, 0])
    frame = pd.concat({"AAPL": a, "MSFT": b}, axis=1).swaplevel(axis=1).sort_index(axis=1)
    script = {0: lambda: [Order("AAPL", 400, time_in_force="gtc"), Order("MSFT", 400, time_in_force="gtc")]}
    result = run(Scripted(script), frame)
    assert sorted((f.symbol, f.fill_quantity) for f in result.fills) == [("AAPL", 100), ("MSFT", 400)]


# ------------------------------------------------------------------------------------------- other order types
def test_a_limit_remainder_waits_for_a_bar_where_the_limit_is_marketable():
    frame = bars(
        [
            (10.0, 10.0, 10.0, 10.0),
            (10.0, 10.1, 9.0, 9.8),  # reaches 9.5: 200 of 2,000 fill at the limit
            (9.8, 10.2, 9.7, 10.0),  # never at or below 9.5, plenty of volume: nothing
            (9.0, 9.4, 8.9, 9.2),  # opens below the limit: the rest fills at the open
            (9.0, 9.0, 9.0, 9.0),
        ],
        [0, 2_000, 100_000, 100_000, 100_000],
    )
    order = Order("AAPL", 500, "limit", limit_price=9.5, time_in_force="gtc")
    result = run(Scripted({0: lambda: [order]}), frame)
    assert fills_of(result) == [(1, 200, 9.5), (3, 300, 9.0)]
    assert order.status is OrderStatus.FILLED


def test_a_triggered_stop_remainder_works_as_a_market_order():
    frame = bars(
        [
            (10.0, 10.0, 10.0, 10.0),
            (10.0, 11.0, 9.9, 10.8),  # the buy stop at 10.5 triggers: 200 fill at 10.5
            (10.0, 10.2, 9.8, 10.1),  # below the stop, but the order has triggered: the rest at the open
            (10.0, 10.0, 10.0, 10.0),
        ],
        [0, 2_000, 100_000, 0],
    )
    order = Order("AAPL", 500, "stop", stop_price=10.5, time_in_force="gtc")
    result = run(Scripted({0: lambda: [order]}), frame)
    assert fills_of(result) == [(1, 200, 10.5), (2, 300, 10.0)]


def test_a_triggered_stop_limit_remainder_works_as_a_limit():
    frame = bars(
        [
            (10.0, 10.0, 10.0, 10.0),
            (
                10.0,
                10.6,
                9.9,
                10.4,
            ),  # up bar: 10 -> 9.9 -> 10.6 -> 10.4; stop 10.5 triggers, limit 10.55 fills
            (10.7, 10.9, 10.6, 10.8),  # entirely above the limit: nothing
            (10.5, 10.6, 10.3, 10.4),  # opens below the limit: the rest at the open
        ],
        [0, 1_000, 100_000, 100_000],
    )
    order = Order("AAPL", 300, "stop_limit", stop_price=10.5, limit_price=10.55, time_in_force="gtc")
    result = run(Scripted({0: lambda: [order]}), frame)
    assert fills_of(result) == [(1, 100, 10.5), (3, 200, 10.5)]


# ------------------------------------------------------------------------------------------- volume and time
def test_bars_with_zero_or_missing_volume_fill_nothing():
    frame = flat([10, 11, 12, 13, 14], [0, 0, math.nan, 1_000, 1_000])
    result = run(Scripted({0: lambda: [Order("AAPL", 150, time_in_force="gtc")]}), frame)
    assert fills_of(result) == [(3, 100, 13.0), (4, 50, 14.0)]


def test_a_day_order_expires_with_its_remainder_at_the_end_of_its_session():
    # hourly bars, two New York days: the DAY order fills a part of each bar of day one, then expires
    index = pd.DatetimeIndex(
        ["2024-01-02 15:00", "2024-01-02 17:00", "2024-01-02 19:00", "2024-01-02 21:00", "2024-01-03 15:00"],
        tz="UTC",
    )
    frame = pd.DataFrame(
        {"Open": 10.0, "High": 10.0, "Low": 10.0, "Close": 10.0, "Volume": 1_000.0}, index=index
    )
    order = Order("AAPL", 1_000)
    result = run(Scripted({0: lambda: [order]}), frame)
    assert [(bar, qty) for bar, qty, _ in fills_of(result)] == [(1, 100), (2, 100), (3, 100)]
    assert order.status is OrderStatus.EXPIRED
    assert order.filled_quantity == 300
    assert "end of its session" in order.reject_reason
    assert result.positions["AAPL"].quantity == 300


def test_what_is_still_working_when_the_data_ends_is_cancelled_with_its_fills_kept():
    frame = flat([10, 10, 10], [0, 1_000, 1_000])
    order = Order("AAPL", 1_000, time_in_force="gtc")
    result = run(Scripted({0: lambda: [order]}), frame)
    assert order.status is OrderStatus.CANCELLED
    assert order.filled_quantity == 200
    assert sum(f.fill_quantity for f in result.fills) == 200


def test_fills_at_the_close_share_that_bars_allowance():
    frame = flat([10, 11, 12, 13], [1_000, 1_000, 1_000, 1_000])
    order = Order("AAPL", 250, time_in_force="gtc")
    result = run(Scripted({0: lambda: [order]}), frame, fill_at="close")
    # bar 0's close (the bar the order was placed on), then the next opens
    assert fills_of(result) == [(0, 100, 10.0), (1, 100, 11.0), (2, 50, 12.0)]


def test_the_remainder_is_checked_for_buying_power_when_it_fills():
    frame = flat([10, 10, 50, 50], [0, 1_000, 1_000, 1_000])
    order = Order("AAPL", 300, time_in_force="gtc")
    result = run(Scripted({0: lambda: [order]}), frame, capital=5_000.0)
    # 100 at 10 = 1,000 of cash; 100 at 50 = 5,000 is more than the 4,000 left
    assert fills_of(result) == [(1, 100, 10.0)]
    assert order.status is OrderStatus.REJECTED
    assert order.filled_quantity == 100
    assert "insufficient cash: buying 100 AAPL" in order.reject_reason
    assert result.cash_curve.iloc[-1] == 4_000.0


def test_fractional_orders_fill_fractions_of_the_allowance():
    frame = flat([10, 10, 10], [0, 72.5, 1_000])
    order = Order("AAPL", 10.5, allow_fractional=True, time_in_force="gtc")
    result = run(Scripted({0: lambda: [order]}), frame)
    assert [q for _, q, _ in fills_of(result)] == pytest.approx([7.25, 3.25])
    assert order.status is OrderStatus.FILLED


def test_a_cancel_from_on_fill_stops_the_other_order_from_filling_in_that_bar():
    class CancelOther(Scripted):
        def on_fill(self, fill: Fill) -> None:
            super().on_fill(fill)
            for working in self.open_orders():
                self.cancel(working)

    frame = flat([10, 10, 10], [0, 1_000, 1_000])
    first, second = Order("AAPL", 50, time_in_force="gtc"), Order("AAPL", 50, time_in_force="gtc")
    result = run(CancelOther({0: lambda: [first, second]}), frame)
    assert [f.order.order_id for f in result.fills] == [first.order_id]
    assert second.status is OrderStatus.CANCELLED


# ------------------------------------------------------------------------------------------- fast path
class FastScript(FastStrategy):
    """Places the same orders as a Scripted strategy, on the fast path."""

    def __init__(self, script) -> None:
        super().__init__()
        self.script = script
        self.bar = -1

    def indicators(self, data):
        return {"close": data["Close"]}

    def on_bar(self, timestamp, close):
        self.bar += 1
        make = self.script.get(self.bar)
        return make() if make is not None else None


def test_the_fast_path_honours_the_limit_with_the_same_fills():
    frame = bars(
        [(10, 10, 10, 10), (10, 10.5, 9, 10.2), (9.4, 9.6, 9.2, 9.5), (11, 11, 11, 11), (12, 12, 12, 12)],
        [0, 4_000, 2_500, 1_000, 30_000],
    )

    def script():
        return {
            0: lambda: [
                Order("AAPL", 300, "limit", limit_price=9.5, time_in_force="gtc"),
                Order("AAPL", 800, time_in_force="gtc"),
            ],
            2: lambda: [Order("AAPL", 100, "stop", "sell", stop_price=10.5, time_in_force="gtc")],
        }

    slow = run(Scripted(script()), frame)
    fast = run(FastScript(script()), frame)
    # bar 1: the market order takes the 400 at the open, the limit (touched later) nothing; bar 2 opens
    # below the limit: both execute at the open, the limit (placed first) takes the 250
    assert fills_of(slow) == [(1, 400, 10.0), (2, 250, 9.4), (3, 100, 11.0), (4, 300, 12.0)]
    assert fills_of(fast) == fills_of(slow)
    assert [o.status for o in fast.orders] == [o.status for o in slow.orders]
    pd.testing.assert_series_equal(fast.equity_curve, slow.equity_curve)


# ------------------------------------------------------------------------------------------- settings
@pytest.mark.parametrize("bad", [0, -0.5, 1.5, math.nan])
def test_a_bad_volume_limit_is_a_config_error(bad):
    with pytest.raises(ConfigError, match="0 < volume_limit <= 1"):
        BacktestEngine(volume_limit=bad)


def test_a_volume_limit_needs_volume_in_the_data():
    frame = flat([10, 10], [1, 1]).drop(columns="Volume")
    with pytest.raises(DataError, match="no Volume for"):
        run(Scripted(), frame)
    assert (
        len(run(Scripted(), frame, volume_limit=None).equity_curve) == 2
    )  # without a limit it is not needed


# ------------------------------------------------------------------------------------------- invariants
order_specs = st.lists(
    st.tuples(
        st.integers(0, 9),  # bar placed on
        st.sampled_from(["AAPL", "MSFT"]),
        st.sampled_from(["market", "limit", "stop"]),
        st.sampled_from(["buy", "sell"]),
        st.integers(1, 3_000),
        st.floats(0.9, 1.1),  # limit/stop price relative to 100
        st.sampled_from(["day", "gtc"]),
    ),
    max_size=12,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    limit=st.floats(0.01, 1.0),
    volumes=st.lists(
        st.sampled_from([0.0, 50.0, 999.0, 1_000.0, 7_777.0, math.nan]), min_size=22, max_size=22
    ),
    moves=st.lists(st.floats(-0.05, 0.05), min_size=11, max_size=11),
    specs=order_specs,
)
def test_fills_never_exceed_the_order_nor_the_bar_allowance(limit, volumes, moves, specs):
    closes = 100.0 * np.cumprod(1.0 + np.asarray(moves))
    frames = {}
    for k, symbol in enumerate(["AAPL", "MSFT"]):
        rows = [
            (c / (1 + m), max(c, c / (1 + m)) * 1.01, min(c, c / (1 + m)) * 0.99, c)
            for c, m in zip(closes, moves, strict=True)
        ]
        frames[symbol] = bars(rows, volumes[k * 11 : (k + 1) * 11])
    frame = pd.concat(frames, axis=1).swaplevel(axis=1).sort_index(axis=1)
    script: dict[int, list[Order]] = defaultdict(list)
    for bar, symbol, kind, side, qty, rel, tif in specs:
        price = round(100.0 * rel, 2)
        script[bar].append(
            Order(
                symbol,
                qty,
                kind,
                side,
                limit_price=price if kind == "limit" else None,
                stop_price=price if kind == "stop" else None,
                time_in_force=tif,
            )
        )
    strategy = Scripted({bar: (lambda made=made: made) for bar, made in script.items()})
    result = run(strategy, frame, volume_limit=limit, capital=10_000_000.0, commission=0.001)

    per_order: dict[str | None, float] = defaultdict(float)
    per_bar: dict[tuple[pd.Timestamp, str], float] = defaultdict(float)
    for fill in result.fills:
        per_order[fill.order.order_id] += fill.fill_quantity
        per_bar[(pd.Timestamp(fill.timestamp), fill.symbol)] += fill.fill_quantity
    for order in result.orders:
        assert per_order[order.order_id] <= order.quantity
        assert per_order[order.order_id] == pytest.approx(order.filled_quantity)
        if order.status is OrderStatus.FILLED:
            assert order.filled_quantity == order.quantity
    volume = frame["Volume"]
    for (stamp, symbol), filled in per_bar.items():
        v = volume.loc[stamp, symbol]
        assert v > 0  # nothing fills on a bar without volume
        assert filled <= math.floor(limit * v + 1e-9)
    # cash + positions = equity, bar by bar
    held = pd.DataFrame(0.0, index=result.equity_curve.index, columns=["AAPL", "MSFT"])
    for fill in result.fills:
        held.loc[pd.Timestamp(fill.timestamp) :, fill.symbol] += fill.signed_quantity
    marks = frame["Close"][["AAPL", "MSFT"]]
    assert result.equity_curve.to_numpy() == pytest.approx(
        result.cash_curve.to_numpy() + (held * marks).sum(axis=1).to_numpy()
    )
