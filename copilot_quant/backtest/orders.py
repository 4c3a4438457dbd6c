"""Orders, fills and positions (the guide's import path).

They live in :mod:`copilot_quant.model.orders`, at the bottom of the tree where ``risk/``, ``data/`` and
``journal/`` can use them; these are the same objects, so ``isinstance`` holds across both paths.
"""

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

__all__ = [
    "Fill",
    "Order",
    "OrderSide",
    "OrderStatus",
    "OrderType",
    "Position",
    "TimeInForce",
    "continue_order_ids_after",
]
