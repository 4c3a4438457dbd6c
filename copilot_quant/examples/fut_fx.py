"""Example strategies for the other markets IB traders use (issue #14): a forex pair and a continuous future.

* :class:`FxBreakout` trades ``EUR.USD`` (any pair): long ``units`` of the base currency when the close
  breaks above the highest close of the last ``lookback`` bars, flat again when it breaks below the lowest.
  Prices are in the quote currency; the account keeps a balance per currency (``self.cash`` and
  ``self.equity`` are in USD, every balance valued at its pair's latest close).
* :class:`FuturesTrend` trades the continuous ``MES`` (any root): long ``contracts`` while the fast
  moving average of the closes is above the slow one, flat otherwise. Orders for ``MES`` trade the contract
  of the day (``MESZ6``); ``self.position("MES")`` is the sum over the root's contracts, so the rule never
  needs to know which one it holds. Run it with ``auto_roll`` (``--auto-roll``) and the engine moves the
  position into the next contract at each quarterly roll; ``on_roll`` only logs it.

Both track nothing themselves: they read ``self.position(symbol)``, which the backtest and the live engine
keep from the fills, so they run unchanged in both::

    copilot-quant backtest copilot_quant.examples.fut_fx:FxBreakout --symbols EUR.USD --data synthetic
    copilot-quant backtest copilot_quant.examples.fut_fx:FuturesTrend --symbols MES --data synthetic --auto-roll
"""

from __future__ import annotations

import logging
from datetime import datetime

import pandas as pd

from copilot_quant.backtest.orders import Order
from copilot_quant.backtest.rolls import Roll
from copilot_quant.backtest.strategy import Strategy
from copilot_quant.errors import ConfigError
from copilot_quant.examples.sma_cross import close_prices
from copilot_quant.strategies.symbols import traded_symbol

__all__ = ["FuturesTrend", "FxBreakout"]

log = logging.getLogger(__name__)


class FxBreakout(Strategy):
    """Long ``units`` of a pair's base currency on a breakout above the last ``lookback`` closes, flat on a
    breakdown below them (see the module docstring)."""

    def __init__(self, symbol: str | None = None, units: float = 20_000, lookback: int = 10) -> None:
        super().__init__()
        if not units > 0 or units != int(units):
            raise ConfigError(f"units must be a whole number of the base currency > 0, got {units!r}")
        if int(lookback) < 2:
            raise ConfigError(f"lookback must be at least 2 bars, got {lookback!r}")
        self.symbol = symbol
        self.units = float(units)
        self.lookback = int(lookback)

    def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order] | None:
        symbol = traded_symbol(self, self.symbol)
        closes = close_prices(data, symbol).dropna()
        if len(closes) <= self.lookback:
            return None
        last, before = float(closes.iloc[-1]), closes.iloc[-self.lookback - 1 : -1]
        held = self.position(symbol)
        if held == 0 and last > float(before.max()):
            return [Order(symbol, self.units, "market", "buy")]
        if held > 0 and last < float(before.min()):
            return [Order(symbol, held, "market", "sell")]
        return None


class FuturesTrend(Strategy):
    """Long ``contracts`` of a continuous future while its fast average is above its slow one (see the
    module docstring)."""

    def __init__(
        self, symbol: str | None = None, contracts: int = 1, fast_period: int = 5, slow_period: int = 20
    ) -> None:
        super().__init__()
        if isinstance(contracts, bool) or int(contracts) != contracts or contracts < 1:
            raise ConfigError(f"contracts must be a whole number >= 1, got {contracts!r}")
        if not 0 < int(fast_period) < int(slow_period):
            raise ConfigError(
                f"need 0 < fast_period < slow_period, got fast_period={fast_period}, slow_period={slow_period}"
            )
        self.symbol = symbol
        self.contracts = int(contracts)
        self.fast_period = int(fast_period)
        self.slow_period = int(slow_period)

    def on_roll(self, roll: Roll) -> None:
        log.info("%s rolls from %s to %s (%d roll orders)", roll.symbol, roll.old, roll.new, len(roll.orders))

    def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order] | None:
        symbol = traded_symbol(self, self.symbol)
        closes = close_prices(data, symbol).dropna()
        if len(closes) < self.slow_period:
            return None
        fast = float(closes.tail(self.fast_period).mean())
        slow = float(closes.tail(self.slow_period).mean())
        held = self.position(symbol)
        if held == 0 and fast > slow:
            return [Order(symbol, self.contracts, "market", "buy")]
        if held > 0 and fast < slow:
            return [Order(symbol, held, "market", "sell")]
        return None
