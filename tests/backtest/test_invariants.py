"""Accounting invariants of a backtest, property-tested with random bars and random order flow.

For any data and any orders: equity == cash + Σ quantity × close at every bar; cash moves by exactly
price × quantity ± commission per fill; no order fills beyond its quantity; every order ends up on the
record with a status (and a reason when refused); fills respect the order's price limits; and the
guide-style path and the fast path produce the same fills.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
import pytest
from copilot_quant.backtest.costs import PercentCommission, PerShareCommission
from copilot_quant.backtest.engine import BacktestEngine
from copilot_quant.backtest.interfaces import combine_symbols
from copilot_quant.backtest.orders import Order, OrderSide, OrderStatus, OrderType
from copilot_quant.backtest.strategy import FastStrategy, Strategy
from copilot_quant.model.spread import grid_frame
from hypothesis import given
from hypothesis import strategies as st

SYMBOLS = ("AAA", "BBB")


@dataclass(frozen=True)
class Planned:
    """An order to place at ``bar``; limit/stop prices are set relative to that bar's close."""

    bar: int
    symbol: int
    side: str
    kind: str
    quantity: int
    offset: float
    offset2: float
    tif: str

    def build(self, close: float) -> Order:
        symbol = SYMBOLS[self.symbol]
        limit = round(close * (1 + self.offset), 4)
        stop = round(close * (1 + self.offset2), 4)
        if self.kind == "limit":
            return Order(symbol, self.quantity, "limit", self.side, limit_price=limit, time_in_force=self.tif)
        if self.kind == "stop":
            return Order(symbol, self.quantity, "stop", self.side, stop_price=stop, time_in_force=self.tif)
        if self.kind == "stop_limit":
            return Order(
                symbol,
                self.quantity,
                "stop_limit",
                self.side,
                limit_price=limit,
                stop_price=stop,
                time_in_force=self.tif,
            )
        return Order(symbol, self.quantity, "market", self.side, time_in_force=self.tif)


def _closes(data: pd.DataFrame) -> pd.DataFrame:
    if isinstance(data.columns, pd.MultiIndex):
        return data["Close"]
    return data[["Close"]].set_axis([SYMBOLS[0]], axis=1)


class Scripted(Strategy):
    """Places the planned orders, guide style (reads closes from its pandas history)."""

    def __init__(self, plan: list[Planned]) -> None:
        super().__init__()
        self.plan = plan
        self.bar = -1

    def initialize(self) -> None:
        self.bar = -1

    def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order]:
        self.bar += 1
        closes = _closes(data).iloc[-1]
        orders = []
        for p in self.plan:
            close = closes.iloc[p.symbol] if p.symbol < len(closes) else float("nan")
            if p.bar == self.bar and not np.isnan(close):  # NaN: that symbol has no bar now
                orders.append(p.build(float(close)))
        return orders


class ScriptedFast(FastStrategy):
    """The same plan on the fast path: the closes are its indicators."""

    def __init__(self, plan: list[Planned]) -> None:
        super().__init__()
        self.plan = plan
        self.bar = -1

    def initialize(self) -> None:
        self.bar = -1

    def indicators(self, data: pd.DataFrame) -> Mapping[str, pd.Series]:
        closes = _closes(data)
        return {str(c): closes[c] for c in closes.columns}

    def on_bar(self, timestamp: datetime, *closes: float) -> list[Order]:
        self.bar += 1
        orders = []
        for p in self.plan:
            close = closes[p.symbol] if p.symbol < len(closes) else float("nan")
            if p.bar == self.bar and not np.isnan(close):
                orders.append(p.build(close))
        return orders


@st.composite
def market(draw) -> tuple[pd.DataFrame, list[str]]:
    n = draw(st.integers(min_value=2, max_value=25))
    n_symbols = draw(st.integers(min_value=1, max_value=2))
    intraday = draw(st.booleans())
    if intraday:  # four bars per session: DAY orders must expire at each session's end
        days = pd.bdate_range("2024-03-04", periods=n // 4 + 1)
        index = (
            pd.DatetimeIndex([(days[k // 4] + pd.Timedelta(minutes=600 + 90 * (k % 4))) for k in range(n)])
            .tz_localize("America/New_York")
            .tz_convert("UTC")
        )
    else:
        index = pd.date_range("2024-01-02 21:00", periods=n, freq="D", tz="UTC")
    frames = {}
    for s in SYMBOLS[:n_symbols]:
        rows = len(index)
        start = draw(st.floats(min_value=5.0, max_value=500.0))
        steps = draw(st.lists(st.floats(min_value=-0.08, max_value=0.08), min_size=rows, max_size=rows))
        wicks = draw(st.lists(st.floats(min_value=0.0, max_value=0.05), min_size=2 * rows, max_size=2 * rows))
        gaps = draw(st.lists(st.floats(min_value=-0.05, max_value=0.05), min_size=rows, max_size=rows))
        closes = start * np.exp(np.cumsum(steps))
        opens = np.concatenate([[start], closes[:-1]]) * np.exp(gaps)
        highs = np.maximum(opens, closes) * (1 + np.array(wicks[:rows]))
        lows = np.minimum(opens, closes) * (1 - np.array(wicks[rows:]))
        frame = pd.DataFrame(
            {"Open": opens, "High": highs, "Low": lows, "Close": closes, "Volume": 1e6}, index=index
        )
        if s != SYMBOLS[0] and rows > 3:  # the second symbol misses some bars
            holes = draw(st.lists(st.integers(min_value=1, max_value=rows - 1), max_size=3, unique=True))
            frame = frame.drop(index=index[holes])
        frames[s] = frame
    symbols = list(frames)
    data = frames[symbols[0]] if n_symbols == 1 else combine_symbols(frames)
    return data, symbols


@st.composite
def plans(draw, n_bars: int, n_symbols: int) -> list[Planned]:
    planned = st.builds(
        Planned,
        bar=st.integers(min_value=0, max_value=n_bars - 1),
        symbol=st.integers(min_value=0, max_value=n_symbols - 1),
        side=st.sampled_from(["buy", "sell"]),
        kind=st.sampled_from(["market", "limit", "stop", "stop_limit"]),
        quantity=st.integers(min_value=1, max_value=400),
        offset=st.floats(min_value=-0.06, max_value=0.06),
        offset2=st.floats(min_value=-0.06, max_value=0.06),
        tif=st.sampled_from(["day", "gtc"]),
    )
    return draw(st.lists(planned, max_size=12))


@st.composite
def scenarios(draw):
    data, symbols = draw(market())
    plan = draw(plans(len(data), len(symbols)))
    settings = {
        "initial_capital": draw(st.sampled_from([2_000.0, 20_000.0, 200_000.0])),
        "commission": draw(
            st.sampled_from([0.0, 0.001, PercentCommission(0.002, minimum=1.0), PerShareCommission()])
        ),
        "slippage": draw(st.sampled_from([0.0, 0.0005, 0.01])),
        "allow_short": draw(st.booleans()),
        "fill_at": draw(st.sampled_from(["next_open", "close"])),
        # the default spread, a fixed one, and none: with a spread the bars are put on the tick grid
        "spread": draw(st.sampled_from(["auto", 2, None])),
    }
    return data, symbols, plan, settings


def _run(strategy: Strategy, data: pd.DataFrame, symbols: list[str], settings: dict) -> BacktestEngine:
    engine = BacktestEngine(**settings)
    engine.add_strategy(strategy)
    engine.run(symbols=symbols, data=data)
    return engine


@given(scenarios())
def test_accounting_invariants_hold_for_any_bars_and_orders(scenario):
    data, symbols, plan, settings = scenario
    engine = _run(Scripted(plan), data, symbols, settings)
    result = engine.result
    assert result is not None
    index = data.index
    marked = data if settings["spread"] is None else grid_frame(data)  # the engine's bars
    closes = _closes(marked)[symbols].ffill()

    # the curves: one value per bar, UTC, after the bar's fills
    assert result.equity_curve.index.equals(index)
    assert str(result.equity_curve.index.tz) == "UTC"

    # cash moves by exactly price × quantity ± commission, fill by fill
    model = engine.broker.commission_model
    cash = result.initial_capital
    cash_after: list[tuple[datetime, float]] = []
    for fill in result.fills:
        sign = 1 if fill.side is OrderSide.BUY else -1
        assert fill.commission == pytest.approx(
            model.commission(fill.fill_price, fill.fill_quantity), abs=1e-12
        )
        assert fill.net_proceeds == -sign * fill.fill_price * fill.fill_quantity - fill.commission
        cash += fill.net_proceeds
        cash_after.append((fill.timestamp, cash))
    assert engine.broker.get_cash_balance() == cash

    # equity == cash + Σ quantity × close at every bar
    quantities = dict.fromkeys(symbols, 0.0)
    fills = list(result.fills)
    k = 0
    running_cash = result.initial_capital
    for i, ts in enumerate(index):
        while k < len(fills) and fills[k].timestamp <= ts:
            quantities[fills[k].symbol] += fills[k].signed_quantity
            running_cash = cash_after[k][1]
            k += 1
        assert result.cash_curve.iloc[i] == running_cash
        held = sum(q * closes[s].iloc[i] for s, q in quantities.items() if q)
        assert result.equity_curve.iloc[i] == pytest.approx(running_cash + held, rel=1e-12, abs=1e-6)
    assert k == len(fills)
    final = {s: p.quantity for s, p in result.positions.items()}
    assert final == {s: q for s, q in quantities.items() if abs(q) > 1e-9}
    assert result.final_value == pytest.approx(engine.get_portfolio_value(), rel=1e-12)

    # without shorting, a position is never negative and cash never goes below zero
    if not settings["allow_short"]:
        assert all(q >= -1e-9 for q in quantities.values())
        assert (result.cash_curve >= -1e-6).all()

    # orders: all on the record, none overfilled, refusals explained, fills within the order's limits
    by_order: dict[str | None, float] = {}
    for fill in result.fills:
        by_order[fill.order.order_id] = by_order.get(fill.order.order_id, 0.0) + fill.fill_quantity
        assert fill.fill_quantity <= fill.order.quantity
        assert fill.timestamp >= fill.order.timestamp
        if settings["fill_at"] == "next_open":
            assert fill.timestamp > fill.order.timestamp
        order = fill.order
        if order.type_enum in (OrderType.LIMIT, OrderType.STOP_LIMIT):
            if order.is_buy:
                assert fill.fill_price <= order.limit_price + 1e-9
            else:
                assert fill.fill_price >= order.limit_price - 1e-9
        if order.type_enum is OrderType.STOP:
            if order.is_buy:
                assert fill.fill_price >= order.stop_price - 1e-9
            else:
                assert fill.fill_price <= order.stop_price + 1e-9
    assert len(result.orders) == len({o.order_id for o in result.orders})
    assert len(result.orders) == len(plan) - _skipped(plan, data, symbols)
    for order in result.orders:
        assert by_order.get(order.order_id, 0.0) == pytest.approx(order.filled_quantity)
        assert order.filled_quantity <= order.quantity
        assert order.status is not OrderStatus.CREATED
        if order.status is OrderStatus.REJECTED:
            assert order.reject_reason
        if order.status is OrderStatus.FILLED:
            assert order.filled_quantity == order.quantity
        if order.status is OrderStatus.EXPIRED:
            assert order.time_in_force == "day"


def _skipped(plan: list[Planned], data: pd.DataFrame, symbols: list[str]) -> int:
    """Planned orders the strategy cannot place because their symbol has no bar at that time."""
    closes = _closes(data)
    return sum(1 for p in plan if p.symbol < len(symbols) and np.isnan(closes[symbols[p.symbol]].iloc[p.bar]))


@given(scenarios())
def test_the_fast_path_fills_exactly_like_the_guide_style_path(scenario):
    data, symbols, plan, settings = scenario
    slow = _run(Scripted(plan), data, symbols, settings).result
    fast = _run(ScriptedFast(plan), data, symbols, settings).result
    assert slow is not None
    assert fast is not None

    def record(result):
        return [
            (f.timestamp, f.symbol, f.side, f.fill_price, f.fill_quantity, f.commission) for f in result.fills
        ], [(o.symbol, o.status, o.filled_quantity) for o in result.orders]

    assert record(slow) == record(fast)
    pd.testing.assert_series_equal(slow.equity_curve, fast.equity_curve)
    pd.testing.assert_series_equal(slow.cash_curve, fast.cash_curve)
