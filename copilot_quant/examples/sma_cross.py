"""The guide's moving-average crossover, written both ways.

* :class:`SimpleMovingAverage` is the guide's strategy: each bar it takes the closes seen so far and
  compares the mean of the last ``fast_period`` with the mean of the last ``slow_period``. It buys
  ``quantity`` shares when the fast mean is above the slow one and it is flat, and sells them when the
  fast mean falls below. It runs unchanged in a backtest and in live trading.
* :class:`SmaCrossFast` applies the same rules on the engine's fast path: the two moving averages are
  computed once, vectorized and causal (trailing windows only), and ``on_bar`` only compares two
  floats. Both classes place the same orders on the same data.

Unlike the guide's listing, the traded symbol and the sizes are parameters (defaults: the run's only
symbol, so ``--symbols MSFT`` trades MSFT; 10 shares; 10/30 bars). What the strategy holds is tracked
from its fills (``on_fill``), so an order that a risk limit rejected, or that has not filled yet, never
makes it sell shares it does not have. The close column is chosen by the shape of the data: with
several symbols the columns are a ``(Metric, Symbol)`` MultiIndex, where ``'Close' in data.columns``
is *also* true (pandas matches the first level) and ``data['Close']`` is a frame of all symbols'
closes — so the guide's ``if 'Close' in data.columns`` test cannot tell the two shapes apart.

Run it::

    from copilot_quant.backtest.engine import BacktestEngine
    from copilot_quant.data.providers import SampleDataProvider

    engine = BacktestEngine(initial_capital=100_000, data_provider=SampleDataProvider())
    engine.add_strategy(SimpleMovingAverage(quantity=100))  # trades the run's symbol, AAPL
    result = engine.run("2005-01-01", "2012-12-31", ["AAPL"])
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from copilot_quant.backtest.orders import Fill, Order, OrderSide, OrderType, TimeInForce
from copilot_quant.backtest.strategy import FastStrategy, Strategy
from copilot_quant.errors import ConfigError
from copilot_quant.strategies.symbols import traded_symbol

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


def _time_in_force(value: str) -> TimeInForce:
    try:
        return TimeInForce(str(value).strip().lower())
    except ValueError:
        raise ConfigError(f"time_in_force must be 'day' or 'gtc', got {value!r}") from None


def _check_periods(fast_period: int, slow_period: int, quantity: float) -> None:
    if not 0 < fast_period < slow_period:
        raise ConfigError(
            f"need 0 < fast_period < slow_period, got fast_period={fast_period}, slow_period={slow_period}"
        )
    if quantity <= 0:
        raise ConfigError(f"quantity must be positive, got {quantity}")


def _crossover_orders(strategy: SimpleMovingAverage | SmaCrossFast, fast_above: bool) -> list[Order]:
    """Both classes' rule once the averages are compared: buy ``quantity`` when the fast average is above
    and the strategy holds nothing; sell what it holds when the fast average is below.

    ``held`` is what the fills so far add up to, so a rejected or still working order never counts as
    held; a working order of the symbol holds back a second one (a volume-limited GTC order that is still
    filling), and on the way down an unfilled buy is cancelled before the shares held are sold.
    """
    symbol, held, tif = strategy.symbol, strategy.held, strategy.time_in_force
    working = [o for o in strategy.open_orders() if symbol in (o.symbol, o.routed_from)]
    if fast_above:
        if held == 0 and not working:
            return [Order(symbol, strategy.quantity, OrderType.MARKET, OrderSide.BUY, time_in_force=tif)]
        return []
    for order in working:
        if order.side is OrderSide.BUY:
            strategy.cancel(order)
    if held > 0 and not any(o.side is OrderSide.SELL for o in working):
        return [Order(symbol, held, OrderType.MARKET, OrderSide.SELL, time_in_force=tif)]
    return []


class SimpleMovingAverage(Strategy):
    """Simple moving average crossover strategy (the guide's example). Works in backtest and live mode.

    ``symbol=None`` (the default) trades the run's only symbol (``--symbols MSFT`` trades MSFT); name one
    to pick it from a multi-symbol run. What it holds comes from its fills (``on_fill``), never from the
    orders it sent. ``time_in_force='gtc'`` keeps an order that filled only partly (``--volume-limit``)
    working on later bars; a DAY order's remainder expires at the session's close.
    """

    def __init__(
        self,
        symbol: str | None = None,
        quantity: float = 10,
        fast_period: int = 10,
        slow_period: int = 30,
        time_in_force: str = "day",
    ) -> None:
        super().__init__()
        _check_periods(fast_period, slow_period, quantity)
        self.time_in_force = _time_in_force(time_in_force)
        self.requested_symbol = symbol
        self.symbol = symbol.upper() if symbol else ""
        self.quantity = quantity
        self._periods = (fast_period, slow_period)
        self.held = 0.0

    def initialize(self) -> None:
        self.fast_period, self.slow_period = self._periods
        self.symbol = traded_symbol(self, self.requested_symbol)
        self.held = 0.0  # shares of self.symbol bought and not sold, from the fills

    def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order]:
        closes = close_prices(data, self.symbol)
        if isinstance(data.columns, pd.MultiIndex):
            if pd.isna(closes.iloc[-1]):
                return []  # this symbol has no bar at this timestamp
            closes = closes.dropna()

        if len(closes) < self.slow_period:
            return []

        fast_ma = closes.tail(self.fast_period).mean()
        slow_ma = closes.tail(self.slow_period).mean()
        if fast_ma == slow_ma:
            return []
        return _crossover_orders(self, bool(fast_ma > slow_ma))

    def on_fill(self, fill: Fill) -> None:
        if self.symbol in (fill.symbol, fill.order.routed_from):  # routed_from: "MES" traded as MESZ6
            self.held += fill.signed_quantity
        log.info("Fill: %s %g %s @ $%.2f", fill.order.side, fill.fill_quantity, fill.symbol, fill.fill_price)


class SmaCrossFast(FastStrategy):
    """:class:`SimpleMovingAverage` on the fast path: the same orders, no per-bar pandas work."""

    def __init__(
        self,
        symbol: str | None = None,
        quantity: float = 10,
        fast_period: int = 10,
        slow_period: int = 30,
        time_in_force: str = "day",
    ) -> None:
        super().__init__()
        _check_periods(fast_period, slow_period, quantity)
        self.time_in_force = _time_in_force(time_in_force)
        self.requested_symbol = symbol
        self.symbol = symbol.upper() if symbol else ""
        self.quantity = quantity
        self.fast_period = fast_period
        self.slow_period = slow_period
        self.held = 0.0
        self._buy_sent = False

    def initialize(self) -> None:
        self.symbol = traded_symbol(self, self.requested_symbol)
        self.held = 0.0
        self._buy_sent = False

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
        # comparisons with NaN (warm-up, missing bars) are False, so those bars never signal. The working
        # orders are looked up only when a bar can act: while holding, or after a buy was sent (it may
        # still be working), so the fast path does no per-bar bookkeeping while it waits.
        if fast > slow and self.held == 0:
            orders = _crossover_orders(self, True)
            self._buy_sent = self._buy_sent or bool(orders)
            return orders
        if fast < slow and (self.held > 0 or self._buy_sent):
            self._buy_sent = False  # any buy still working is cancelled now
            return _crossover_orders(self, False)
        return None

    def on_fill(self, fill: Fill) -> None:
        if self.symbol in (fill.symbol, fill.order.routed_from):  # routed_from: "MES" traded as MESZ6
            self.held += fill.signed_quantity
        log.debug("Fill: %s %g %s @ $%.2f", fill.order.side, fill.fill_quantity, fill.symbol, fill.fill_price)
