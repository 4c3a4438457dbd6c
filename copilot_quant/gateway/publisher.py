"""How the gateway's news reaches its sessions: the protocol side of :class:`~copilot_quant.gateway.core.GatewayCore`.

The core keeps the books and calls its publisher; this one encodes each piece of news with the handlers'
publishers for the sessions that asked for it. Keeping it apart means the core imports no handler, while
the handlers may still read the core (one direction only).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from copilot_quant.gateway.handlers.account import push_marks
from copilot_quant.gateway.handlers.historical import publish_bar
from copilot_quant.gateway.handlers.market_data import publish_real_time_bar, publish_tick
from copilot_quant.gateway.handlers.orders import route_broker_event

if TYPE_CHECKING:
    from copilot_quant.gateway.core import GatewayCore
    from copilot_quant.gateway.market import Bar, PricePoint, Quote

__all__ = ["SessionPublisher"]


class SessionPublisher:
    """Encodes ticks, bars, account marks and order news for the core's sessions."""

    __slots__ = ("_core",)

    def __init__(self, core: GatewayCore) -> None:
        self._core = core

    def tick(self, point: PricePoint, quote: Quote) -> None:
        for session in list(self._core.sessions.values()):
            publish_tick(session, point, quote)

    def bar(self, bar: Bar) -> None:
        for session in list(self._core.sessions.values()):
            publish_real_time_bar(session, bar)
            publish_bar(session, bar)

    def step(self) -> None:
        push_marks(self._core)

    def broker_event(self, event: object) -> None:
        route_broker_event(self._core, event)
