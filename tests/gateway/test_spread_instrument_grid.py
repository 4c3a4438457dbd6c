"""The default spread on a future and a pair: N of the instrument's own ticks (0.25 for MES, 0.00005 for
EUR.USD), in the backtest and at the gateway alike; quotes and fills on that grid."""

from __future__ import annotations

import math
from datetime import datetime

import pandas as pd
import pytest
from copilot_quant.backtest.engine import BacktestEngine
from copilot_quant.backtest.strategy import Strategy
from copilot_quant.gateway.testing import connected_ib, running_gateway
from copilot_quant.model.orders import Order
from copilot_quant.model.spread import DEFAULT_SPREAD
from ib_async import Forex, Future

from tests.gateway.conftest import wait_until
from tests.gateway.fut_fx_feed import FutFxFeed

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]

CASES = [("MESZ6", 0.25), ("EUR.USD", 0.00005)]


def _on_grid(price: float, tick: float) -> bool:
    return abs(price / tick - round(price / tick)) < 1e-6


class BuyThenSell(Strategy):
    """A market buy after bar 30 (the estimate has its window), a market sell after bar 40."""

    def __init__(self, symbol: str, quantity: float) -> None:
        super().__init__()
        self.symbol, self.quantity = symbol, quantity

    def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order] | None:
        side = {30: "buy", 40: "sell"}.get(len(data))
        return None if side is None else [Order(self.symbol, self.quantity, "market", side)]


@pytest.mark.parametrize(("symbol", "tick"), CASES)
def test_a_backtest_fills_at_the_touch_of_the_instruments_own_ticks(symbol: str, tick: float) -> None:
    feed = FutFxFeed()
    engine = BacktestEngine(1_000_000, data_provider=feed, commission=0.0, slippage=0.0)  # default spread
    engine.add_strategy(BuyThenSell(symbol, 1 if symbol.startswith("MES") else 10_000))
    result = engine.run("2026-09-01", "2026-11-30", [symbol])
    buy, sell = result.fills
    bars = feed.get_historical_data(symbol, "2026-09-01", "2026-11-30", "1d")
    widths = DEFAULT_SPREAD.widths(
        bars.Open.values, bars.High.values, bars.Low.values, bars.Close.values, tick
    )
    for fill, side in ((buy, 1), (sell, -1)):
        k = bars.index.get_loc(pd.Timestamp(fill.timestamp).tz_convert(bars.index.tz))
        width, opened = int(widths[k]), float(bars.Open.iloc[k])
        assert width >= 1
        assert _on_grid(fill.fill_price, tick)
        # the ask is width - width // 2 ticks above the open, the bid width // 2 below it
        ticks_away = width - width // 2 if side > 0 else -(width // 2)
        assert fill.fill_price == pytest.approx(
            round(opened / tick) * tick + ticks_away * tick, abs=tick / 100
        )


@pytest.mark.parametrize(("symbol", "tick"), CASES)
def test_the_gateway_quotes_on_the_instruments_own_ticks(symbol: str, tick: float) -> None:
    contract = Future("MES", "202612", "CME") if symbol.startswith("MES") else Forex("EURUSD")
    with (
        running_gateway(data=FutFxFeed(), start="2026-11-02 16:00") as gw,
        connected_ib(gw, client_id=4) as ib,
    ):
        [qualified] = ib.qualifyContracts(contract)
        ticker = ib.reqMktData(qualified)
        for _ in range(3):
            gw.clock.step()
            assert wait_until(ib, lambda: math.isfinite(ticker.bid) and math.isfinite(ticker.ask))
            assert _on_grid(ticker.bid, tick)
            assert _on_grid(ticker.ask, tick)
            width = (ticker.ask - ticker.bid) / tick
            assert width >= 1 - 1e-9
            assert _on_grid(width, 1.0)  # N of its own ticks (a stock's cent would not divide 0.00005)
        bars = ib.reqHistoricalData(qualified, "", "5 D", "1 day", "MIDPOINT", useRTH=False)
        assert bars
        # a midpoint of quotes on the grid: on the half-tick
        assert all(_on_grid(p, tick / 2) for b in bars for p in (b.open, b.high, b.low, b.close))
