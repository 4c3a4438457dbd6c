"""The domain at the bottom of the tree: orders, fills, positions, the bar shape, the data and broker
ports, a fill-based book per strategy, and the rules every simulation shares (``fill_rules``: where on a
bar each order type executes; ``costs``: commission and slippage models, with ``tiered`` (IBKR Tiered
pricing), ``fixed`` (IBKR Fixed with its pass-through fees) and ``cost_meter`` (an account's month volume);
``participation``: the volume limit; ``oca``, ``trailing`` and ``bracket``: the order families' rules;
``modify``: which terms of a working order may change, and the named outcomes; ``instruments``: stocks,
futures and forex pairs by name; ``instrument_costs``: IBKR futures and forex costs), used alike by the
backtest and the simulated gateway.

Everything else builds on this package; it imports only the standard library, numpy, pandas and
:mod:`copilot_quant.errors` (``tests/test_layers.py`` holds it to that). The guide's import paths
(``copilot_quant.backtest.orders``, ``copilot_quant.backtest.interfaces``) and the former paths
(``copilot_quant.backtest.execution``, ``.costs``, ``.participation``) re-export these same objects.
"""

from copilot_quant.model.bars import BAR_COLUMNS, SUPPORTED_INTERVALS, combine_symbols
from copilot_quant.model.book import StrategyBook, net_quantities
from copilot_quant.model.instruments import AssetClass, Instrument, InstrumentRegistry
from copilot_quant.model.orders import (
    Fill,
    Order,
    OrderSide,
    OrderStatus,
    OrderType,
    Position,
    TimeInForce,
    continue_order_ids_after,
)
from copilot_quant.model.ports import IBroker, IDataFeed

__all__ = [
    "BAR_COLUMNS",
    "SUPPORTED_INTERVALS",
    "AssetClass",
    "Fill",
    "IBroker",
    "IDataFeed",
    "Instrument",
    "InstrumentRegistry",
    "Order",
    "OrderSide",
    "OrderStatus",
    "OrderType",
    "Position",
    "StrategyBook",
    "TimeInForce",
    "combine_symbols",
    "continue_order_ids_after",
    "net_quantities",
]
