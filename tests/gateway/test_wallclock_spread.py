"""The wall-clock market quotes the data-derived spread: each forming bar's width comes from the bars
completed before it (data, then the bars the market made), and every trade is quoted at it."""

from __future__ import annotations

import pandas as pd
from copilot_quant.data.providers import SyntheticDataProvider
from copilot_quant.gateway.market import MarketReplay, PricePoint, Quote
from copilot_quant.gateway.wallclock import WallClockMarket
from copilot_quant.model.spread import DEFAULT_SPREAD, quote_at

SATURDAY = pd.Timestamp("2026-12-05 15:00:07", tz="UTC")


def test_every_trade_is_quoted_at_the_width_the_completed_bars_give():
    feed = SyntheticDataProvider(["AAPL"], seed=3, start="2024-01-02", periods=400, interval="1m")
    market = MarketReplay(feed, "1m", SATURDAY, quote_model=DEFAULT_SPREAD)
    market.track_all(["AAPL"])
    seen: list[tuple[PricePoint, float, float]] = []

    def on_tick(point: PricePoint, quote: Quote) -> None:
        seen.append((point, quote.bid, quote.ask))

    market.tick_listeners.append(on_tick)
    wall = WallClockMarket(market, seed=1)
    wall.catch_up(SATURDAY)
    for minute in range(1, 31):  # in steps: a longer stall would jump to the present
        wall.catch_up(SATURDAY + pd.Timedelta(minutes=minute))
    assert len(seen) > 1_000
    history = market.replayed_frame("AAPL")
    for point, bid, ask in seen:
        assert point.width >= 1
        assert (bid, ask) == (point.bid, point.ask) == quote_at(point.price, point.width)
        done = history[history.index <= point.time]  # the bars completed when it traded
        prices = [done[c].to_numpy() for c in ("Open", "High", "Low", "Close")]
        assert point.width == DEFAULT_SPREAD.next_width(*prices)
