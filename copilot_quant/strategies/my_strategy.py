"""``MyStrategy``: the small example strategy the live-trading guide imports.

A long-only moving-average trend follower on any number of symbols: when a symbol's close is above its
``period``-bar simple moving average and the strategy holds none, it buys ``quantity`` shares; when the
close falls below the average, it sells what it holds. It works on single-symbol data (flat columns
``Open, High, Low, Close, Volume``; such a frame carries no symbol name, so orders use ``symbol``, by
default the run's only symbol: ``--symbols MSFT`` trades MSFT) and multi-symbol data (``(Metric, Symbol)`` columns) alike, and runs unchanged in
:class:`~copilot_quant.backtest.engine.BacktestEngine` and
:class:`~copilot_quant.backtest.live_engine.LiveStrategyEngine`::

    from copilot_quant.strategies.my_strategy import MyStrategy
    engine.add_strategy(MyStrategy(period=20, quantity=10))

Holdings are tracked from the fills the engine reports (``on_fill``), so a rejected or unfilled order never
makes the strategy believe it holds shares.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from copilot_quant.backtest.orders import Fill, Order
from copilot_quant.backtest.strategy import Strategy
from copilot_quant.errors import ConfigError
from copilot_quant.strategies.symbols import traded_symbol

__all__ = ["MyStrategy"]


class MyStrategy(Strategy):
    """Buy ``quantity`` shares above the ``period``-bar SMA, sell them below it (long only)."""

    def __init__(self, period: int = 20, quantity: float = 10, symbol: str | None = None) -> None:
        super().__init__()
        #: Single-symbol frames carry no symbol name; orders for them use this one (None: the run's symbol).
        self.requested_symbol = symbol
        self.symbol = symbol.upper() if symbol else ""
        if int(period) < 1:
            raise ValueError(f"period must be at least 1, got {period!r}")
        self.period = int(period)
        self.quantity = float(quantity)
        self.held: dict[str, float] = {}

    def initialize(self) -> None:
        self.held = {}
        # multi-symbol data names its symbols; single-symbol data does not, so learn the run's one symbol
        if len(self.symbols) == 1 or self.requested_symbol is not None:
            self.symbol = traded_symbol(self, self.requested_symbol)

    def _closes(self, data: pd.DataFrame) -> dict[str, pd.Series]:
        if isinstance(data.columns, pd.MultiIndex):
            close = data["Close"]
            return {str(symbol): close[symbol].dropna() for symbol in close.columns}
        if not self.symbol:
            raise ConfigError(
                f"{self.name} cannot tell which symbol these single-symbol bars are (the engine did not say); "
                "pass symbol='AAPL' (--param symbol=AAPL)"
            )
        return {self.symbol: data["Close"].dropna()}

    def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order]:
        orders: list[Order] = []
        closes = self._closes(data)
        for symbol, close in closes.items():
            if len(close) < self.period:
                continue
            average = float(close.iloc[-self.period :].mean())
            last = float(close.iloc[-1])
            held = self.held.get(symbol, 0.0)
            if last > average and held <= 0:
                orders.append(Order(symbol, self.quantity, "market", "buy"))
            elif last < average and held > 0:
                orders.append(Order(symbol, held, "market", "sell"))
        return orders

    def on_fill(self, fill: Fill) -> None:
        self.held[fill.symbol] = self.held.get(fill.symbol, 0.0) + fill.signed_quantity
