"""Backtest–live parity under a volume participation limit: partial fills agree bar for bar.

The backtest applies ``volume_limit`` in its engine; the simulated gateway applies the same rule to the bars
it replays, and the real :class:`LiveStrategyEngine` trades against it over a socket (see ``test_parity``).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from datetime import datetime

import pandas as pd
import pytest
from copilot_quant.backtest.engine import BacktestEngine
from copilot_quant.backtest.orders import Fill, Order, OrderStatus
from copilot_quant.backtest.strategy import Strategy
from copilot_quant.data.providers import SampleDataProvider
from copilot_quant.errors import ConfigError
from copilot_quant.parity import _final_status, run_parity
from copilot_quant.parity_watch import after_first_bar as _after_first_bar

pytestmark = pytest.mark.timeout(180)

#: ~100 shares of a sample AAPL bar (about 1e8 shares a day in 2011): orders of hundreds need several bars.
LIMIT = 1e-6


class ThinMarket(Strategy):
    """Trades more than a bar's allowance: GTC limit and market buys that share bars, a DAY market sell that
    fills a part and expires, a GTC stop sell."""

    def __init__(self, limit_first: bool = True) -> None:
        super().__init__()
        self.limit_first = limit_first

    def initialize(self) -> None:
        self.bar = 0
        self.held = 0.0

    def on_fill(self, fill: Fill) -> None:
        self.held += fill.signed_quantity

    def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order]:
        self.bar += 1
        close = float(data["Close"].iloc[-1])
        if self.open_orders():
            return []
        phase = self.bar % 6
        if phase == 0 and self.held < 1_000:
            # the limit is placed first but, touched later in a bar than the open, draws after the market order
            buys = [
                Order("AAPL", 150, "limit", "buy", limit_price=round(close * 0.995, 2), time_in_force="gtc"),
                Order("AAPL", 250, "market", "buy", time_in_force="gtc"),
            ]
            return buys if self.limit_first else buys[::-1]
        if phase == 3 and self.held >= 200:
            return [
                Order("AAPL", 200, "market", "sell"),  # DAY: one bar's allowance, then it expires
                Order("AAPL", 100, "stop", "sell", stop_price=round(close * 0.99, 2), time_in_force="gtc"),
            ]
        return []


def test_partial_fills_under_a_volume_limit_are_identical_live_and_in_backtest():
    start, end = "2011-01-01", "2011-05-31"
    report = run_parity(ThinMarket, "AAPL", start, end, volume_limit=LIMIT)
    assert report.ok, f"parity failed:\n{report.diffs.to_string()}"
    assert len(report.backtest.fills) == len(report.live.fills)
    assert report.backtest.final_equity == pytest.approx(report.live.final_equity, abs=0.005)

    # the test means something only if the limit bit: orders filled over several bars, and bars were full
    fills = report.backtest.fills  # (bar stamp, symbol, side, quantity, price, commission)
    bars = SampleDataProvider().get_historical_data("AAPL", start, end)
    per_bar: dict[pd.Timestamp, float] = defaultdict(float)
    for stamp, _, _, quantity, _, _ in fills:
        per_bar[stamp] += quantity
    allowance = {stamp: math.floor(LIMIT * bars.loc[stamp, "Volume"] + 1e-9) for stamp in per_bar}
    assert all(per_bar[s] <= allowance[s] for s in per_bar)
    assert sum(per_bar[s] == allowance[s] for s in per_bar) >= 5  # bars whose allowance was used up
    assert max(f[3] for f in fills) < 250  # no buy filled at once
    statuses = Counter(row[6] for row in report.backtest.orders)
    assert statuses["filled"] >= 3
    assert [row[6] for row in report.live.orders] == [row[6] for row in report.backtest.orders]
    # the same backtest on its own: DAY sells expired with a part filled, on both sides ("cancelled" live)
    engine = BacktestEngine(100_000, data_provider=SampleDataProvider(), volume_limit=LIMIT)
    engine.add_strategy(_after_first_bar(ThinMarket)())
    result = engine.run(start, end, ["AAPL"])
    assert [_final_status(o) for o in result.orders] == [row[6] for row in report.live.orders]
    assert any(o.status is OrderStatus.EXPIRED and 0 < o.filled_quantity < o.quantity for o in result.orders)


@pytest.mark.parametrize("limit_first", [False, True])
def test_without_the_limit_the_same_strategy_fills_whole_orders(limit_first):
    # With the limit first, the backtest books the bar's fills in submission order (limit, market) and the
    # gateway in the order they happen (market at the open, then the limit): the same fills, and the
    # harness compares one bar's fills of a symbol as a set.
    report = run_parity(
        ThinMarket, "AAPL", "2011-01-01", "2011-02-28", strategy_kwargs={"limit_first": limit_first}
    )
    assert report.ok, f"parity failed:\n{report.diffs.to_string()}"
    assert {row[3] for row in report.backtest.fills} >= {250.0, 200.0}


def test_a_bad_limit_is_refused_before_either_run():
    with pytest.raises(ConfigError, match="volume_limit must be"):
        run_parity(ThinMarket, "AAPL", "2011-01-01", "2011-02-28", volume_limit=0)
