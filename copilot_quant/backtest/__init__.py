"""Backtesting: orders, the strategy API, the IDataFeed/IBroker ports, engines, results and metrics."""

from copilot_quant.backtest.indicators import SymbolValues
from copilot_quant.backtest.orders import (
    Fill,
    Order,
    OrderSide,
    OrderStatus,
    OrderType,
    Position,
    TimeInForce,
)
from copilot_quant.backtest.strategy import FastStrategy, Strategy

__all__ = [
    "FastStrategy",
    "Fill",
    "Order",
    "OrderSide",
    "OrderStatus",
    "OrderType",
    "Position",
    "Strategy",
    "SymbolValues",
    "TimeInForce",
]
