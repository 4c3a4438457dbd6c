"""Backtest–live parity: one strategy, the same bars, a backtest and a live run on the simulated gateway.

Each test runs the real :class:`LiveStrategyEngine` over a socket against an in-process gateway; the
harness steps the gateway one bar at a time, so the runs are deterministic.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import pytest
from copilot_quant.backtest.costs import PercentSlippage, PerShareCommission
from copilot_quant.backtest.engine import BacktestEngine
from copilot_quant.backtest.orders import Fill, Order
from copilot_quant.backtest.strategy import CANCELLED_BY_STRATEGY, Strategy
from copilot_quant.data.providers import SampleDataProvider
from copilot_quant.errors import ConfigError, DataError
from copilot_quant.examples.sma_cross import SimpleMovingAverage
from copilot_quant.parity import run_parity
from copilot_quant.parity_watch import after_first_bar as _after_first_bar

pytestmark = pytest.mark.timeout(120)


class LimitStopSwing(Strategy):
    """Buys on a limit below the close, protects with a stop, exits with a stop-limit or at market."""

    def __init__(self, symbol: str = "AAPL", quantity: float = 50) -> None:
        super().__init__()
        self.symbol = symbol
        self.quantity = quantity

    def initialize(self) -> None:
        self.bar = 0
        self.held = 0.0

    def on_fill(self, fill: Fill) -> None:
        self.held += fill.signed_quantity

    def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order]:
        self.bar += 1
        close = float(data["Close"].iloc[-1])
        held = self.held  # from on_fill, which both engines call before on_data of the fill's bar
        phase = self.bar % 6
        if held == 0 and phase == 0:
            return [Order(self.symbol, self.quantity, "limit", "buy", limit_price=round(close * 0.995, 2))]
        if held == 0 and phase == 3:
            return [Order(self.symbol, self.quantity, "stop", "buy", stop_price=round(close * 1.005, 2))]
        if held > 0 and phase == 1:
            return [Order(self.symbol, held, "stop", "sell", stop_price=round(close * 0.995, 2))]
        if held > 0 and phase == 4:
            return [
                Order(
                    self.symbol,
                    held,
                    "stop_limit",
                    "sell",
                    stop_price=round(close * 0.998, 2),
                    limit_price=round(close * 0.99, 2),
                )
            ]
        if held > 0 and phase == 5:
            return [Order(self.symbol, held, "market", "sell")]
        return []


class PairRotation(Strategy):
    """Two symbols: holds whichever of AAPL and MSFT rose more over the last 5 bars."""

    def initialize(self) -> None:
        self.holding: str | None = None

    def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order]:
        closes = data["Close"]
        if len(closes) < 6 or closes.iloc[-1].isna().any():
            return []
        change = closes.iloc[-1] / closes.iloc[-6] - 1.0
        best = str(change.idxmax())
        if best == self.holding:
            return []
        orders = []
        if self.holding is not None:
            orders.append(Order(self.holding, 100, "market", "sell"))
        orders.append(Order(best, 100, "market", "buy"))
        self.holding = best
        return orders


class CancelStaleLimits(Strategy):
    """Every other bar while flat: a GTC limit buy below the close; cancels it if it has not filled
    ``patience`` bars later (``open_orders()``/``cancel()``); sells a filled position at market."""

    def __init__(self, discount: float = 0.015, patience: int = 3, cancel: bool = True) -> None:
        super().__init__()
        self.discount, self.patience, self.do_cancel = discount, patience, cancel

    def initialize(self) -> None:
        self.bar = 0
        self.placed_at: dict[str, int] = {}
        self.held = 0.0

    def on_fill(self, fill: Fill) -> None:
        self.held += fill.signed_quantity

    def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order]:
        self.bar += 1
        close = float(data["Close"].iloc[-1])
        for order in self.open_orders():
            if self.do_cancel and self.bar - self.placed_at[str(order.order_id)] >= self.patience:
                self.cancel(order)
        if self.held > 0:
            return [Order("AAPL", self.held, "market", "sell")]
        if not self.open_orders() and self.bar % 2 == 0:
            limit = round(close * (1 - self.discount), 2)
            order = Order("AAPL", 50, "limit", "buy", limit_price=limit, time_in_force="gtc")
            self.placed_at[str(order.order_id)] = self.bar
            return [order]
        return []


def _assert_parity(report) -> None:
    assert report.ok, f"parity failed:\n{report.diffs.to_string()}"
    assert len(report.backtest.fills) == len(report.live.fills)
    assert report.backtest.final_equity == pytest.approx(report.live.final_equity, abs=0.005)


def test_guide_sma_strategy_is_identical_live_and_in_backtest() -> None:
    report = run_parity(
        SimpleMovingAverage,
        ["AAPL"],
        "2010-01-01",
        "2010-06-25",
        strategy_kwargs={"quantity": 100},
        capital=100_000,
        commission=0.001,
        slippage=0.0005,
    )
    _assert_parity(report)
    assert report.bars == 121
    assert len(report.backtest.fills) >= 2  # the test means something only if it traded
    assert report.backtest.commissions > 0
    # slippage moved the market fills away from the open: the same model ran on both sides
    assert report.live.fills[0][4] != pytest.approx(report.live.fills[0][4] / 1.0005)


def test_the_example_trades_the_symbol_it_is_run_on_live_too() -> None:
    # issue 16: `live ... sma_cross:SimpleMovingAverage --symbols MSFT` traded AAPL on MSFT's prices
    report = run_parity(
        SimpleMovingAverage, ["MSFT"], "2010-01-01", "2010-06-25", strategy_kwargs={"quantity": 100}
    )
    _assert_parity(report)
    assert report.live.fills, "the test means something only if it traded"
    assert {row[0] for row in report.live.orders} == {row[0] for row in report.backtest.orders} == {"MSFT"}
    assert report.weakness() is None


def test_limit_stop_and_stop_limit_orders_match() -> None:
    report = run_parity(
        LimitStopSwing,
        "AAPL",
        "2011-01-01",
        "2011-04-30",
        commission=PerShareCommission(),
        slippage=PercentSlippage(0.001),
    )
    _assert_parity(report)
    kinds = {row[3] for row in report.backtest.orders}
    assert {"limit", "stop", "stop_limit", "market"} <= kinds
    statuses = {row[6] for row in report.backtest.orders}
    assert {"filled", "cancelled"} <= statuses  # DAY orders that did not fill expired on both sides


def test_orders_cancelled_by_the_strategy_match() -> None:
    """Limit orders cancelled a few bars after they were placed, before they filled: both runs cancel the
    same orders at the same bar, so orders, statuses, fills and equity agree."""
    start, end = "2010-01-01", "2010-03-31"
    report = run_parity(CancelStaleLimits, "AAPL", start, end)
    _assert_parity(report)
    statuses = [row[6] for row in report.backtest.orders if row[3] == "limit"]
    assert statuses.count("cancelled") >= 5  # all but the last cancelled by the strategy
    assert statuses.count("filled") >= 5
    assert statuses == [row[6] for row in report.live.orders if row[3] == "limit"]
    # The cancels matter: a later bar traded through the limit of some of the cancelled orders, so live
    # they would have filled at the gateway had the cancel not been in force before that bar.
    engine = BacktestEngine(100_000, data_provider=SampleDataProvider(), commission=0.001, slippage=0.0005)
    engine.add_strategy(_after_first_bar(CancelStaleLimits)())  # the backtest run_parity made
    result = engine.run(start, end, ["AAPL"])
    assert [row[6] for row in report.backtest.orders] == [o.status.value for o in result.orders]
    lows = SampleDataProvider().get_historical_data("AAPL", start, end)["Low"]
    traded_through = [
        o
        for o in result.orders
        if o.reject_reason == CANCELLED_BY_STRATEGY
        # cancelled in on_data of the bar `patience` bars after the one it was placed on
        and (
            lows.iloc[lows.index.get_loc(o.timestamp) + CancelStaleLimits().patience + 1 :] <= o.limit_price
        ).any()
    ]
    assert traded_through


def test_two_symbols_match() -> None:
    report = run_parity(PairRotation, ["AAPL", "MSFT"], "2012-01-01", "2012-04-30", capital=200_000)
    _assert_parity(report)
    assert {row[1] for row in report.backtest.fills} == {"AAPL", "MSFT"}


def test_a_diff_is_reported_when_the_runs_differ() -> None:
    class Flaky(Strategy):
        """Orders differently on its second instance: the harness must notice."""

        made = 0

        def initialize(self) -> None:
            Flaky.made += 1
            self.size = 10 * Flaky.made

        def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order]:
            return [Order("AAPL", self.size, "market", "buy")] if len(data) == 3 else []

    report = run_parity(Flaky, "AAPL", "2010-01-01", "2010-01-20")
    assert not report.ok
    assert set(report.diffs["kind"]) >= {"order", "fill", "equity"}
    fields = set(report.diffs["field"])
    assert "quantity" in fields


def test_bad_input_is_a_named_error() -> None:
    with pytest.raises(ConfigError, match="symbol"):
        run_parity(SimpleMovingAverage, [], "2010-01-01", "2010-02-01")
    with pytest.raises(DataError, match="no 1d bars"):
        run_parity(SimpleMovingAverage, "AAPL", "1990-01-01", "1990-02-01")


def test_fill_instants_map_to_the_close_of_their_bar() -> None:
    from copilot_quant.parity_watch import bar_of as _bar_of

    stamps = pd.DatetimeIndex(["2024-01-02 21:00", "2024-01-03 21:00", "2024-01-04 18:00"], tz="UTC")
    open_ = datetime.fromisoformat("2024-01-03T14:30:00+00:00")
    assert _bar_of(open_, stamps) == stamps[1]
    assert _bar_of(stamps[1].to_pydatetime(), stamps) == stamps[1]  # the close belongs to its own bar
    assert _bar_of(datetime.fromisoformat("2024-01-04T14:30:00+00:00"), stamps) == stamps[2]
