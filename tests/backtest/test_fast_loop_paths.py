"""The fast loop's ways of calling a FastStrategy agree with each other and with the general loop.

Between trades the fast loop lets ``filter`` skip the bars that place no order, and
``FastStrategy.bar_timestamps = False`` drops the timestamp from ``on_bar``: neither may change a trade.
"""

from __future__ import annotations

import math

import pytest
from copilot_quant.backtest import indicators, market
from copilot_quant.backtest.engine import BacktestEngine
from copilot_quant.backtest.orders import Order
from copilot_quant.backtest.strategy import FastStrategy
from copilot_quant.data.providers import SyntheticDataProvider
from copilot_quant.errors import StrategyError
from hypothesis import given, settings
from hypothesis import strategies as st


class Trend(FastStrategy):
    """Long above a moving average; entries by market order or by a GTC limit below the close, cancelled
    when it has not filled after ``patience`` bars (so orders sometimes work over many bars)."""

    def __init__(self, window: int = 5, limit: float | None = None, patience: int = 3) -> None:
        super().__init__()
        self.window, self.limit, self.patience = window, limit, patience
        self.seen: list[tuple[float, float]] = []

    def initialize(self) -> None:
        self.waiting = 0

    def indicators(self, data):
        closes = data["Close"]
        return {"close": closes, "mean": closes.rolling(self.window).mean()}

    def decide(self, close: float, mean: float) -> list[Order] | None:
        self.seen.append((self.position("X"), self.equity))
        working = self.open_orders()
        if working:
            self.waiting += 1
            if self.waiting > self.patience:
                for order in working:
                    self.cancel(order)
            return None
        held = self.position("X")
        if math.isnan(mean):
            return None
        if close > mean and not held:
            self.waiting = 0
            if self.limit is None:
                return [Order("X", 10)]
            return [
                Order("X", 10, "limit", limit_price=round(close * (1 - self.limit), 2), time_in_force="gtc")
            ]
        if close < mean and held:
            return [Order("X", held, side="sell")]
        return None

    def on_bar(self, timestamp, close, mean):
        return self.decide(close, mean)


class TrendValues(Trend):
    bar_timestamps = False

    def on_bar(self, close, mean):  # type: ignore[override]
        return self.decide(close, mean)


class Idle(FastStrategy):
    """Places nothing; with it the engine runs its general loop."""

    def indicators(self, data):
        return {"close": data["Close"]}

    def on_bar(self, timestamp, close):
        return None


def run(*strategies, bars):
    engine = BacktestEngine(10_000_000, commission=0.001, slippage=0.0005, spread=None)
    for strategy in strategies:
        engine.add_strategy(strategy)
    result = engine.run(data=bars, symbols=["X"], benchmark=None)
    fills = [(f.timestamp, f.order.side, f.fill_quantity, f.fill_price, f.commission) for f in result.fills]
    return fills, result


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    window=st.integers(2, 12),
    limit=st.one_of(st.none(), st.floats(0.0, 0.02)),
    patience=st.integers(0, 6),
)
def test_the_fast_loop_with_or_without_timestamps_trades_as_the_general_loop(seed, window, limit, patience):
    bars = SyntheticDataProvider(["X"], seed=seed).get_historical_data("X", "2021-01-01", "2021-12-31")
    kwargs = {"window": window, "limit": limit, "patience": patience}
    fast = Trend(**kwargs)
    fast_fills, _ = run(fast, bars=bars)
    values = TrendValues(**kwargs)
    values_fills, _ = run(values, bars=bars)
    general = Trend(**kwargs)
    general_fills, _ = run(
        general, Idle(), bars=bars
    )  # two strategies: the general loop (Idle trades nothing)
    assert fast_fills == values_fills == general_fills
    assert fast.seen == values.seen  # the account views read the same, bar by bar
    assert [p for p, _ in fast.seen] == [p for p, _ in general.seen]


@pytest.mark.parametrize("chunk", [1, 2, 7, 64])
def test_the_bar_read_from_the_values_is_right_across_chunks(monkeypatch, chunk):
    # the fast loop reads the bar on_bar is called for from how far map has read the (chunked) values
    bars = SyntheticDataProvider(["X"], seed=11).get_historical_data("X", "2021-01-01", "2021-12-31")
    expected = [run(strategy, Idle(), bars=bars)[0] for strategy in (Trend(limit=0.005, patience=2),)]
    monkeypatch.setattr(market, "_CHUNK", chunk)
    fast, values = Trend(limit=0.005, patience=2), TrendValues(limit=0.005, patience=2)
    assert [run(fast, bars=bars)[0]] == [run(values, bars=bars)[0]] == expected
    assert fast.seen == values.seen


class Pairs(FastStrategy):
    """Two symbols, values only, a per-symbol indicator first: buys each symbol once, at a bar of its own."""

    bar_timestamps = False

    def initialize(self) -> None:
        self.bars = 0

    def indicators(self, data):
        return {"close": data["Close"], "count": data["Close"]["A"] * 0.0}

    def on_bar(self, close, count):  # type: ignore[override]
        self.bars += 1
        if self.bars == 5:
            return [Order("A", 1)]
        if self.bars == 9:
            return [Order("B", 2)]
        return None


@pytest.mark.parametrize("cells", [1, 3, 65_536])
def test_per_symbol_values_first_give_the_bar_too(monkeypatch, cells):
    monkeypatch.setattr(indicators, "_CHUNK_CELLS", cells)
    bars = SyntheticDataProvider(seed=3).get_multiple_symbols(["A", "B"], "2021-01-01", "2021-03-31")
    engine = BacktestEngine(1_000_000, commission=0.0, slippage=0.0, spread=None)
    engine.add_strategy(Pairs())
    result = engine.run(data=bars, symbols=["A", "B"], benchmark=None)
    assert [(f.symbol, f.timestamp) for f in result.fills] == [("A", bars.index[5]), ("B", bars.index[9])]
    assert [o.timestamp for o in result.orders] == [bars.index[4], bars.index[8]]


def test_without_timestamps_on_bar_gets_the_values_only_and_orders_keep_their_bar_time():
    bars = SyntheticDataProvider(["X"], seed=7).get_historical_data("X", "2021-01-01", "2021-06-30")
    calls = []

    class Values(FastStrategy):
        bar_timestamps = False

        def indicators(self, data):
            return {"close": data["Close"], "open": data["Open"]}

        def on_bar(self, close, open_):  # type: ignore[override]
            calls.append((close, open_))
            return [Order("X", 1)] if len(calls) == 5 else None

    _, result = run(Values(), bars=bars)
    assert calls == list(zip(bars["Close"], bars["Open"], strict=True))
    (order,) = list(result.orders)
    assert order.timestamp == bars.index[4]
    assert result.fills[0].timestamp == bars.index[5]  # placed after bar 4 closed: filled at bar 5's open
    assert result.fills[0].fill_price == pytest.approx(bars["Open"].iloc[5] * 1.0005)


def test_live_style_on_data_honours_bar_timestamps():
    bars = SyntheticDataProvider(["X"], seed=7).get_historical_data("X", "2021-01-01", "2021-03-31")
    seen = []

    class Values(FastStrategy):
        bar_timestamps = False

        def indicators(self, data):
            return {"close": data["Close"]}

        def on_bar(self, close):  # type: ignore[override]
            seen.append(close)

    Values().on_data(bars.index[-1], bars)
    assert seen == [bars["Close"].iloc[-1]]


@pytest.mark.parametrize("flag", ["no", 0, None])
def test_a_bar_timestamps_that_is_not_a_bool_is_refused_by_name(flag):
    class Odd(Idle):
        bar_timestamps = flag  # type: ignore[assignment]

    engine = BacktestEngine()
    engine.add_strategy(Odd())
    bars = SyntheticDataProvider(["X"], seed=7).get_historical_data("X", "2021-01-01", "2021-03-31")
    with pytest.raises(StrategyError, match="bar_timestamps must be True"):
        engine.run(data=bars, symbols=["X"])


@pytest.mark.parametrize("general", [False, True], ids=["fast loop", "general loop"])
@pytest.mark.parametrize("timestamps", [True, False])
def test_an_on_bar_that_cannot_take_its_values_is_refused_before_the_run_with_the_fix(general, timestamps):
    class Mismatched(FastStrategy):
        bar_timestamps = timestamps

        def indicators(self, data):
            return {"close": data["Close"], "open": data["Open"]}

        if timestamps:

            def on_bar(self, close, open_):  # forgot the timestamp
                return None
        else:

            def on_bar(self, timestamp, close, open_):  # type: ignore[override]  # kept the timestamp
                return None

    bars = SyntheticDataProvider(["X"], seed=7).get_historical_data("X", "2021-01-01", "2021-03-31")
    strategies = (Mismatched(), Idle()) if general else (Mismatched(),)
    with pytest.raises(StrategyError, match=f"set bar_timestamps = {not timestamps}"):
        run(*strategies, bars=bars)


def test_an_on_bar_taking_values_as_varargs_is_accepted():
    class Varargs(FastStrategy):
        bar_timestamps = False

        def indicators(self, data):
            return {"close": data["Close"], "open": data["Open"]}

        def on_bar(self, *values):  # type: ignore[override]
            return None

    bars = SyntheticDataProvider(["X"], seed=7).get_historical_data("X", "2021-01-01", "2021-03-31")
    fills, result = run(Varargs(), bars=bars)
    assert fills == []
    assert result.errors == []
