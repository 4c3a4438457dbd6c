"""Request handlers, one module per message family; :data:`HANDLERS` maps a message id to its handler.

A handler is ``handler(session, reader)``: ``reader`` is positioned just after the message id. Handlers
answer through ``session.send`` and reach shared state through ``session.core``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from copilot_quant.gateway.handlers import account, connection, contracts, historical, market_data, orders
from copilot_quant.gateway.wire import FieldReader

if TYPE_CHECKING:
    from copilot_quant.gateway.client import ClientSession

__all__ = ["HANDLERS", "Handler"]

Handler = Callable[["ClientSession", FieldReader], None]

HANDLERS: dict[int, Handler] = {
    int(msg_id): handler
    for module in (connection, contracts, historical, market_data, orders, account)
    for msg_id, handler in module.HANDLERS.items()
}
