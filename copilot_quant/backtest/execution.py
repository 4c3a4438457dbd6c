"""The fill rules (the former path, kept for existing imports).

They live in :mod:`copilot_quant.model.fill_rules`, shared by the backtest and the simulated gateway; these
are the same objects.
"""

from copilot_quant.model.fill_rules import (
    Execution,
    limit_fill_price,
    locate_order,
    match_limit,
    match_market,
    match_order,
    match_stop,
    match_stop_limit,
    price_path,
    stop_trigger_price,
)

__all__ = [
    "Execution",
    "limit_fill_price",
    "locate_order",
    "match_limit",
    "match_market",
    "match_order",
    "match_stop",
    "match_stop_limit",
    "price_path",
    "stop_trigger_price",
]
