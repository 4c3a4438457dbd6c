"""The guide's moving-average crossover, written both ways.

* :class:`SimpleMovingAverage` is the guide's strategy: each bar it takes the closes seen so far and
  compares the mean of the last ``fast_period`` with the mean of the last ``slow_period``. It buys
  ``quantity`` shares when the fast mean is above the slow one and it is flat, and sells them when the
  fast mean falls below. It runs unchanged in a backtest and in live trading.
* :class:`SmaCrossFast` applies the same rules on the engine's fast path: the two moving averages are
  computed once, vectorized and causal (trailing windows only), and ``on_bar`` only compares two
  floats. Both classes place the same orders on the same data.

Unlike the guide's listing, the traded symbol and the sizes are parameters (defaults: the guide's
``'AAPL'``, 10 shares, 10/30 bars), and the close column is chosen by the shape of the data: with
several symbols the columns are a ``(Metric, Symbol)`` MultiIndex, where ``'Close' in data.columns``
is *also* true (pandas matches the first level) and ``data['Close']`` is a frame of all symbols'
closes — so the guide's ``if 'Close' in data.columns`` test cannot tell the two shapes apart.

Run it::

    from copilot_quant.backtest.engine import BacktestEngine
    from copilot_quant.data.providers import SampleDataProvider

    engine = BacktestEngine(initial_capital=100_000, data_provider=SampleDataProvider())
    engine.add_strategy(SimpleMovingAverage(symbol="AAPL", quantity=100))
    result = engine.run("2005-01-01", "2012-12-31", ["AAPL"])
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from copilot_quant.backtest.orders import Fill, Order, OrderSide, OrderType
from copilot_quant.backtest.strategy import FastStrategy, Strategy
from copilot_quant.errors import ConfigError

__all__ = ["SimpleMovingAverage", "SmaCrossFast", "close_prices", "trailing_mean"]

log = logging.getLogger(__name__)


def close_prices(data: pd.DataFrame, symbol: str) -> pd.Series:
    """The closes of ``symbol`` in either data shape (flat columns, or ``(Metric, Symbol)`` columns)."""
    if isinstance(data.columns, pd.MultiIndex):
        return data[("Close", symbol)]
    return data["Close"]


def trailing_mean(values: pd.Series, window: int) -> pd.Series:
    """Mean of the last ``window`` values at each point (NaN before ``window`` values exist).

    Computed as a plain mean over each window — the arithmetic of ``closes.tail(window).mean()`` in
    :class:`SimpleMovingAverage`, to the last bit. ``rolling(window).mean()`` would be as causal but
    sums incrementally, so on real prices (where the two averages can be exactly equal) rounding
    could make the two strategies disagree about a crossover.
    """
    out = np.full(len(values), np.nan)
    if len(values) >= window:
        out[window - 1 :] = sliding_window_view(values.to_numpy(dtype=float), window).mean(axis=1)
    return pd.Series(out, index=values.index)


def _check_periods(fast_period: int, slow_period: int, quantity: float) -> None:
    if not 0 < fast_period < slow_period:
        raise ConfigError(
            f"need 0 < fast_period < slow_period, got fast_period={fast_period}, slow_period={slow_period}"
        )
    if quantity <= 0:
        raise ConfigError(f"quantity must be positive, got {quantity}")


class SimpleMovingAverage(Strategy):
    """Simple moving average crossover strategy (the guide's example). Works in backtest and live mode."""

    def __init__(
        self, symbol: str = "AAPL", quantity: float = 10, fast_period: int = 10, slow_period: int = 30
    ) -> None:
        super().__init__()
        _check_periods(fast_period, slow_period, quantity)
        self.symbol = symbol.upper()
        self.quantity = quantity
        self._periods = (fast_period, slow_period)

    def initialize(self) -> None:
        self.fast_period, self.slow_period = self._periods
        # the guide names this flag ``self.position``, which would hide Strategy.position(symbol)
        self.state: str | None = None

    def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order]:
        orders: list[Order] = []
        closes = close_prices(data, self.symbol)
        if isinstance(data.columns, pd.MultiIndex):
            if pd.isna(closes.iloc[-1]):
                return orders  # this symbol has no bar at this timestamp
            closes = closes.dropna()

        if len(closes) < self.slow_period:
            return orders

        fast_ma = closes.tail(self.fast_period).mean()
        slow_ma = closes.tail(self.slow_period).mean()

        if fast_ma > slow_ma and self.state is None:
            orders.append(Order(symbol=self.symbol, quantity=self.quantity, order_type="market", side="buy"))
            self.state = "long"
        elif fast_ma < slow_ma and self.state == "long":
            orders.append(Order(symbol=self.symbol, quantity=self.quantity, order_type="market", side="sell"))
            self.state = None
        return orders

    def on_fill(self, fill: Fill) -> None:
        log.info("Fill: %s %g @ $%.2f", fill.order.side, fill.fill_quantity, fill.fill_price)


class SmaCrossFast(FastStrategy):
    """:class:`SimpleMovingAverage` on the fast path: the same orders, no per-bar pandas work."""

    def __init__(
        self, symbol: str = "AAPL", quantity: float = 10, fast_period: int = 10, slow_period: int = 30
    ) -> None:
        super().__init__()
        _check_periods(fast_period, slow_period, quantity)
        self.symbol = symbol.upper()
        self.quantity = quantity
        self.fast_period = fast_period
        self.slow_period = slow_period
        self.long = False

    def initialize(self) -> None:
        self.long = False

    def indicators(self, data: pd.DataFrame) -> Mapping[str, pd.Series]:
        closes = close_prices(data, self.symbol)
        if closes.isna().any():  # the symbol's own bars only; where it has none: NaN, never a signal
            closes = closes.dropna()
        return {
            "fast": trailing_mean(closes, self.fast_period),
            "slow": trailing_mean(closes, self.slow_period),
        }

    def on_bar(self, timestamp: datetime, *values: float) -> list[Order] | None:
        fast, slow = values  # in the order indicators() returned them
        # comparisons with NaN (warm-up, missing bars) are False, so those bars never signal
        if fast > slow and not self.long:
            self.long = True
            return [Order(self.symbol, self.quantity, OrderType.MARKET, OrderSide.BUY)]
        if fast < slow and self.long:
            self.long = False
            return [Order(self.symbol, self.quantity, OrderType.MARKET, OrderSide.SELL)]
        return None

    def on_fill(self, fill: Fill) -> None:
        log.debug("Fill: %s %g @ $%.2f", fill.order.side, fill.fill_quantity, fill.fill_price)
