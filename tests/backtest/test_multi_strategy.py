"""Several strategies on one backtest account: one account, one book per strategy, results per strategy."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pandas as pd
import pytest
from copilot_quant.backtest.books import strategy_table
from copilot_quant.backtest.costs import PercentCommission
from copilot_quant.backtest.engine import BacktestEngine
from copilot_quant.backtest.orders import Fill, Order
from copilot_quant.backtest.strategy import FastStrategy, Strategy
from copilot_quant.data.providers import SyntheticDataProvider
from copilot_quant.errors import ConfigError
from copilot_quant.examples.sma_cross import SimpleMovingAverage, SmaCrossFast
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.backtest.engine_helpers import Scripted, daily_bars, flat_bars
from tests.backtest.test_invariants import Planned, ScriptedFast, scenarios
from tests.backtest.test_invariants import Scripted as ScriptedGuide

PRICES = [100.0, 100.0, 110.0, 120.0, 120.0, 90.0, 100.0]
BARS = flat_bars(PRICES)


def engine(capital: float = 100_000.0) -> BacktestEngine:
    """No slippage and a flat 1.0 per fill (a rate of 0 with a minimum of 1), so the numbers are easy to follow."""
    # the bars' own prices (spread off): these tests do the fill arithmetic by hand; the spread's own tests
    # are tests/model/test_spread*.py and tests/backtest/test_spread_fills.py
    return BacktestEngine(
        capital, commission=PercentCommission(rate=0.0, minimum=1.0), slippage=0.0, spread=None
    )


class Recorder(Scripted):
    """Scripted, and notes what it reads of its own account view after every bar."""

    def __init__(self, script: dict[int, object] | None = None, *, name: str | None = None) -> None:
        super().__init__(script)  # type: ignore[arg-type]
        if name:
            self.name = name
        self.views: list[tuple[float, float, float, int]] = []

    def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order] | None:
        orders = super().on_data(timestamp, data)
        self.views.append((self.position("AAPL"), self.cash, self.equity, len(self.open_orders())))
        return orders


def buy(qty: float = 10, **kw: object) -> object:
    return lambda: [Order("AAPL", qty, side="buy", **kw)]  # type: ignore[arg-type]


def sell(qty: float = 10, **kw: object) -> object:
    return lambda: [Order("AAPL", qty, side="sell", **kw)]  # type: ignore[arg-type]


def test_two_strategies_trading_one_symbol_in_opposite_directions_each_keep_their_own_book() -> None:
    long, short = Recorder({0: buy(10), 3: sell(10)}, name="Long"), Recorder({0: sell(4)}, name="Short")
    eng = engine()
    eng.add_strategy(long)
    eng.add_strategy(short)
    result = eng.run(data=BARS, symbols=["AAPL"])

    # the account nets them: +10 and -4 is 6 held, then -4 after Long sold out
    assert result.positions["AAPL"].quantity == -4
    assert [f.order.side.value for f in long.fills] == ["buy", "sell"]
    assert [f.order.side.value for f in short.fills] == ["sell"]
    # after bar 1 (the fills at its open of 100): each sees its own position, cash and equity
    assert long.views[1][:3] == (10, pytest.approx(50_000 - 1_000 - 1), pytest.approx(50_000 - 1))
    assert short.views[1][:3] == (-4, pytest.approx(50_000 + 400 - 1), pytest.approx(50_000 - 1))
    # bar 2 closes at 110: Long is up 100, Short down 40
    assert long.views[2][2] == pytest.approx(50_000 - 1 + 100)
    assert short.views[2][2] == pytest.approx(50_000 - 1 - 40)
    assert long.views[-1][0] == 0
    assert short.views[-1][0] == -4
    # each result is the strategy's own
    assert set(result.strategies) == {"Long", "Short"}
    assert [f.order.side.value for f in result.strategies["Long"].fills] == ["buy", "sell"]
    assert result.strategies["Short"].positions["AAPL"].quantity == -4
    assert "AAPL" not in result.strategies["Long"].positions
    assert result.strategies["Long"].initial_capital == 50_000


def test_open_orders_and_cancel_concern_only_the_strategys_own_orders() -> None:
    resting = Recorder(
        {0: buy(10, order_type="limit", limit_price=50.0, time_in_force="gtc")}, name="Resting"
    )
    other = Recorder(
        {0: buy(5, order_type="limit", limit_price=40.0, time_in_force="gtc"), 1: sell(5)}, name="Other"
    )
    eng = engine()
    eng.add_strategy(resting)
    eng.add_strategy(other)
    eng.run(data=BARS, symbols=["AAPL"])
    # an order returned at bar 0 works from bar 1 on; each lists its own one only
    assert [v[3] for v in resting.views[:3]] == [0, 1, 1]
    assert [v[3] for v in other.views[:3]] == [0, 1, 1]
    assert [o.limit_price for o in resting.open_orders()] == []  # the run ended: nothing works any more


def test_one_strategys_exception_does_not_stop_the_other() -> None:
    class Broken(Strategy):
        def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order] | None:
            raise RuntimeError("bug in Broken")

    trader = Recorder({0: buy(10)}, name="Trader")
    eng = engine()
    eng.add_strategy(Broken())
    eng.add_strategy(trader)
    result = eng.run(data=BARS, symbols=["AAPL"])
    assert len(trader.fills) == 1
    assert len(result.errors) == len(PRICES)
    assert {e["strategy"] for e in result.errors} == {"Broken"}
    assert len(result.strategies["Broken"].errors) == len(PRICES)
    assert result.strategies["Trader"].errors == []
    assert len(result.strategies["Trader"].fills) == 1


def _assert_adds_up(result: object) -> None:
    combined = result  # type: ignore[assignment]
    parts = list(combined.strategies.values())  # type: ignore[attr-defined]
    total = sum(p.equity_curve for p in parts)
    pd.testing.assert_series_equal(total, combined.equity_curve, check_names=False, rtol=1e-12)  # type: ignore[attr-defined]
    cash = sum(p.cash_curve for p in parts)
    pd.testing.assert_series_equal(cash, combined.cash_curve, check_names=False, rtol=1e-12)  # type: ignore[attr-defined]
    assert sum(len(p.fills) for p in parts) == len(combined.fills)  # type: ignore[attr-defined]
    assert sorted(id(o) for p in parts for o in p.orders) == sorted(id(o) for o in combined.orders)  # type: ignore[attr-defined]
    assert sum(p.initial_capital for p in parts) == pytest.approx(combined.initial_capital)  # type: ignore[attr-defined]


def test_results_per_strategy_add_up_to_the_combined_result() -> None:
    eng = engine()
    eng.add_strategy(Recorder({0: buy(10), 3: sell(10)}, name="Long"))
    eng.add_strategy(Recorder({0: sell(4), 4: buy(4)}, name="Short"))
    eng.add_strategy(Recorder({1: buy(7)}, name="Holder"))
    _assert_adds_up(eng.run(data=BARS, symbols=["AAPL"]))


class FastLong(FastStrategy):
    """Buys 10 when the close crosses above 105, sells them when it falls below."""

    def __init__(self, side: str = "buy") -> None:
        super().__init__()
        self.side = side
        self.held = False
        self.seen: list[tuple[float, float]] = []

    def indicators(self, data: pd.DataFrame) -> Mapping[str, pd.Series]:
        return {"close": data["Close"]}

    def on_bar(self, timestamp: datetime, close: float) -> list[Order] | None:
        self.seen.append((self.position("AAPL"), self.equity))
        other = "sell" if self.side == "buy" else "buy"
        if close > 105 and not self.held:
            self.held = True
            return [Order("AAPL", 10, side=self.side)]
        if close < 105 and self.held:
            self.held = False
            return [Order("AAPL", 10, side=other)]
        return None


def test_several_fast_strategies_each_keep_their_own_book_on_the_fast_loop() -> None:
    up, down = FastLong("buy"), FastLong("sell")
    eng = engine()
    eng.add_strategy(up)
    eng.add_strategy(down)
    result = eng.run(data=BARS, symbols=["AAPL"])
    assert set(result.strategies) == {"FastLong", "FastLong#2"}
    # bar 3 (after the fills at its open of 120): each sees its own side
    assert up.seen[3][0] == 10
    assert down.seen[3][0] == -10
    assert result.fills
    assert all(p.quantity == 0 for p in result.positions.values())
    _assert_adds_up(result)


def test_one_fast_strategy_given_a_capital_runs_the_tight_loop_on_its_own_book() -> None:
    strategy = FastLong("buy")
    eng = engine()
    eng.add_strategy(strategy, capital=20_000)
    result = eng.run(data=BARS, symbols=["AAPL"])
    assert strategy.seen[0][1] == 20_000  # its equity is its capital, not the account's 100,000
    own = result.strategies["FastLong"]
    assert own is not result
    assert own.initial_capital == 20_000
    assert own.final_capital - 20_000 == pytest.approx(result.final_capital - 100_000)


def test_one_strategy_reads_the_account_and_its_result_is_the_combined_one() -> None:
    strategy = Recorder({0: buy(10)})
    eng = engine()
    eng.add_strategy(strategy)
    result = eng.run(data=BARS, symbols=["AAPL"])
    assert result.strategies == {"Recorder": result}
    assert result.strategies["Recorder"] is result
    assert strategy.views[1][1] == pytest.approx(100_000 - 1_000 - 1)  # the account's cash


def test_capital_shares_follow_add_strategy() -> None:
    first, second, third = Recorder(name="A"), Recorder(name="B"), Recorder(name="C")
    eng = engine()
    eng.add_strategy(first, capital=50_000)
    eng.add_strategy(second)
    eng.add_strategy(third)
    result = eng.run(data=BARS, symbols=["AAPL"])
    assert [result.strategies[k].initial_capital for k in "ABC"] == [50_000, 25_000, 25_000]
    assert [s.cash for s in (first, second, third)] == [50_000, 25_000, 25_000]


@pytest.mark.parametrize("bad", [0, -5.0, float("nan"), float("inf"), "10k", True])
def test_a_capital_that_is_not_a_positive_amount_is_refused(bad: object) -> None:
    with pytest.raises(ConfigError, match="capital"):
        engine().add_strategy(Recorder(), capital=bad)  # type: ignore[arg-type]


def test_capital_shares_beyond_the_account_are_refused_before_the_run() -> None:
    eng = engine(capital=10_000)
    eng.add_strategy(Recorder(name="A"), capital=8_000)
    eng.add_strategy(Recorder(name="B"), capital=5_000)
    with pytest.raises(ConfigError, match="exceeds the account"):
        eng.run(data=BARS, symbols=["AAPL"])
    eng = engine(capital=10_000)
    eng.add_strategy(Recorder(name="A"), capital=10_000)
    eng.add_strategy(Recorder(name="B"))
    with pytest.raises(ConfigError, match="no capital is left for B"):
        eng.run(data=BARS, symbols=["AAPL"])


def test_guide_and_fast_strategies_side_by_side_on_real_shaped_data() -> None:
    feed = SyntheticDataProvider(seed=7)
    eng = BacktestEngine(100_000, data_provider=feed)
    eng.add_strategy(SimpleMovingAverage())
    eng.add_strategy(SmaCrossFast())
    result = eng.run("2020-01-01", "2021-12-31", symbols=["AAPL"])
    assert len(result.strategies) == 2
    assert all(len(p.fills) > 0 for p in result.strategies.values())
    _assert_adds_up(result)


def test_a_fill_reaches_only_the_strategy_that_placed_the_order() -> None:
    a, b = Recorder({0: buy(3)}, name="A"), Recorder({1: buy(5)}, name="B")
    eng = engine()
    eng.add_strategy(a)
    eng.add_strategy(b)
    eng.run(data=BARS, symbols=["AAPL"])
    assert [f.fill_quantity for f in a.fills] == [3]
    assert [f.fill_quantity for f in b.fills] == [5]
    assert all(isinstance(f, Fill) for f in a.fills + b.fills)


# ---------------------------------------------------------------------------------------------- invariants
@given(scenarios(), st.booleans())
@settings(max_examples=60, deadline=None)
def test_for_any_bars_and_orders_the_strategies_books_add_up_to_the_account(
    scenario: tuple[pd.DataFrame, list[str], list[Planned], dict[str, Any]], second_fast: bool
) -> None:
    data, symbols, plan, config = scenario
    first = ScriptedGuide(plan[0::2])
    second = ScriptedFast(plan[1::2]) if second_fast else ScriptedGuide(plan[1::2])
    eng = BacktestEngine(**config)
    eng.add_strategy(first)
    eng.add_strategy(second)
    result = eng.run(symbols=symbols, data=data)
    _assert_adds_up(result)
    parts = list(result.strategies.values())
    for symbol in symbols:
        held = sum(p.positions[symbol].quantity for p in parts if symbol in p.positions)
        account = result.positions[symbol].quantity if symbol in result.positions else 0.0
        assert held == pytest.approx(account, abs=1e-9)
    for part in parts:
        mine = {id(o) for o in part.orders}
        assert all(id(f.order) in mine for f in part.fills)


def test_the_strategy_table_has_a_row_per_strategy_and_one_for_the_account() -> None:
    eng = engine()
    eng.add_strategy(Recorder({0: buy(10), 3: sell(10)}, name="Long"))
    eng.add_strategy(Recorder({0: sell(4)}, name="Short"))
    table = strategy_table(eng.run(data=BARS, symbols=["AAPL"]))
    assert list(table.index) == ["Long", "Short", "account"]
    assert table.loc["Long", "pnl"] == pytest.approx(20 * 10 - 2)  # bought at 100, sold at 120
    assert table.loc["Short", "pnl"] == pytest.approx(-4 * 0 - 1)  # short at 100, last close 100
    assert table.loc["account", "pnl"] == pytest.approx(table.loc[["Long", "Short"], "pnl"].sum())
    assert list(table["fills"]) == [2, 1, 3]
    single = engine()
    single.add_strategy(Recorder({0: buy(1)}, name="Only"))
    assert list(strategy_table(single.run(data=BARS, symbols=["AAPL"])).index) == ["Only"]


def test_in_on_fill_a_strategys_equity_marks_the_symbol_it_just_traded_at_the_fill_price() -> None:
    class Watcher(Recorder):
        def on_fill(self, fill: Fill) -> None:
            super().on_fill(fill)
            self.at_fill = (self.position("AAPL"), self.equity)

    rows = [(100.0, 100.0, 100.0, 100.0), (104.0, 108.0, 103.0, 107.0), (107.0, 107.0, 107.0, 107.0)]
    watcher = Watcher({0: buy(10)}, name="Watcher")
    eng = engine()
    eng.add_strategy(watcher)
    eng.add_strategy(Recorder(name="Idle"))
    eng.run(data=daily_bars(rows), symbols=["AAPL"])
    # filled at bar 1's open (104); its close (107) is not known while the bar's orders execute
    assert watcher.at_fill == (10, pytest.approx(50_000 - 1))
    assert watcher.views[1][2] == pytest.approx(50_000 - 1 + 30)  # after bar 1 closed at 107
