"""The simulated market's quotes: bid/ask around each trade, bars of BID/ASK/MIDPOINT, spreads in ticks.

Part of :class:`~copilot_quant.gateway.market.MarketReplay` (a mixin, so that its methods stay on the
market): with a spread model (``quote_model``, :mod:`copilot_quant.model.spread`) every trade is quoted at
its bar's width in ticks, as the backtest quotes the same bars; without one, ``spread`` (price units) only
shows in the quotes. Prices are on the tick grid: ``tick_of(symbol)`` (a future's, a pair's), else the
stocks' cent grid.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pandas as pd

from copilot_quant.gateway.market_types import Bar, Quote
from copilot_quant.model.spread import SpreadModel, midpoint_at, on_tick, quote_at

__all__ = ["MarketQuotes"]


class MarketQuotes:
    """Quoting on the market's spread (the market sets the attributes below)."""

    spread: float
    quote_model: SpreadModel | None
    quote_size: float
    tick_of: Callable[[str], float | None]
    #: Each symbol's spread now (ticks): the width of the bar trading or, between bars, of the next.
    _width: dict[str, int]

    def width_now(self, symbol: str) -> int:
        """``symbol``'s spread now, in ticks (0: no spread model)."""
        return self._width.get(symbol, 0)

    def side_price(self, price: float, what: str, width: int | None = None, symbol: str = "") -> float:
        """A trade at ``price`` as a bar of ``what`` shows it: the bid for BID, the ask for ASK, their
        midpoint for MIDPOINT (on the half-tick), else the trade itself; on the tick grid (``symbol``'s
        own, else the stocks'). ``width``: the bar's spread in ticks (None: the spread model's plain
        width)."""
        if what not in ("BID", "ASK", "MIDPOINT"):
            return self._on_grid(symbol, price)
        if self.quote_model is not None:
            tick = self._tick(symbol)
            ticks = self.quote_model.width(on_tick(price, tick), tick) if width is None else width
            if what == "MIDPOINT":
                return midpoint_at(price, ticks, tick)
            bid, ask = quote_at(price, ticks, tick)
            return bid if what == "BID" else ask
        half = self.spread / 2.0
        if what == "MIDPOINT":
            return self._on_grid(symbol, price)
        return self._on_grid(symbol, price - half if what == "BID" else price + half)

    def _tick(self, symbol: str) -> float | None:
        """``symbol``'s own tick (a future's, a pair's), None for the stocks' grid."""
        return self.tick_of(symbol) if symbol else None

    def _on_grid(self, symbol: str, price: float) -> float:
        return on_tick(price, self._tick(symbol))

    def quoted_bar(self, bar: Bar, what: str) -> Bar:
        """``bar`` (trades) as a bar of ``what`` shows it: the bid, ask or midpoint of its quote at its own
        spread (a live 5-second bar, which carries none, at the symbol's spread now); on the tick grid.

        BID_ASK, as IB defines its bars: open the time-average bid, high the highest ask, low the lowest
        bid, close the time-average ask — the averages taken as the quote at the mean of the bar's path.
        """
        width = bar.width or self.width_now(bar.symbol)
        if what == "BID_ASK":
            mean = (bar.open + bar.high + bar.low + bar.close) / 4.0
            return replace(
                bar,
                open=self.side_price(mean, "BID", width, bar.symbol),
                high=self.side_price(bar.high, "ASK", width, bar.symbol),
                low=self.side_price(bar.low, "BID", width, bar.symbol),
                close=self.side_price(mean, "ASK", width, bar.symbol),
            )
        o, h, lo, c = (
            self.side_price(x, what, width, bar.symbol) for x in (bar.open, bar.high, bar.low, bar.close)
        )
        return replace(bar, open=o, high=h, low=lo, close=c)

    def frame_widths(self, frame: pd.DataFrame, symbol: str = "") -> np.ndarray:
        """The spread (ticks of ``symbol``'s own tick) of each bar of ``frame`` (bars at the replay interval
        or any other, oldest first), from the bars before it in the frame; zeros without a spread model."""
        model = self.quote_model
        if model is None or frame.empty:
            return np.zeros(len(frame), dtype=np.int64)
        values = frame[["Open", "High", "Low", "Close"]].to_numpy(dtype=float)
        return model.widths(values[:, 0], values[:, 1], values[:, 2], values[:, 3], self._tick(symbol))

    def _apply_spread(self, quote: Quote, price: float) -> None:
        if self.quote_model is not None:
            width = self._width.get(quote.symbol) or self.quote_model.ticks
            quote.bid, quote.ask = quote_at(price, width, self._tick(quote.symbol))
        else:
            half = self.spread / 2.0
            quote.bid = self._on_grid(quote.symbol, price - half)
            quote.ask = self._on_grid(quote.symbol, price + half)
        quote.bid_size = quote.ask_size = self.quote_size
