"""Strategy files the CLI tests write to disk and load by path (``path/to/file.py:Class``)."""

from __future__ import annotations

#: A strategy that buys 5 AAPL at market on its first bar, then does nothing.
BUY_ONCE = """
from copilot_quant.backtest.strategy import Strategy
from copilot_quant.backtest.orders import Order


class BuyOnce(Strategy):
    def initialize(self):
        self.done = False

    def on_data(self, timestamp, data):
        if self.done:
            return None
        self.done = True
        return [Order("AAPL", 5, "market", "buy")]
"""
