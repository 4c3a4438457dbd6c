"""What a request handler sees of a connected client: :class:`ClientSession`, and its :class:`Subscriptions`.

The handlers (``gateway/handlers``) answer one client's requests through this narrow protocol; the socket
side, :class:`~copilot_quant.gateway.session.Session`, implements it. So the handlers never import the
session module, which dispatches to them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from copilot_quant.gateway.messages.ids import Fields

if TYPE_CHECKING:
    from copilot_quant.gateway.core import GatewayCore

__all__ = ["ClientSession", "Subscriptions"]


@dataclass(slots=True)
class Subscriptions:
    """What one client is subscribed to (request ids live in the client's own namespace)."""

    market_data: dict[int, str] = field(default_factory=dict)  # reqId → symbol
    real_time_bars: dict[int, Any] = field(default_factory=dict)  # reqId → RealTimeBarsSub
    historical_updates: dict[int, Any] = field(default_factory=dict)  # reqId → KeepUpToDate
    account_summary: dict[int, Any] = field(default_factory=dict)  # reqId → tags
    account_updates_multi: set[int] = field(default_factory=set)
    account_updates: bool = False
    positions: bool = False
    pnl: dict[int, Any] = field(default_factory=dict)
    pnl_single: dict[int, Any] = field(default_factory=dict)
    market_data_type: int = 1
    #: Account values last sent per subscription (key -1: reqAccountUpdates, else the multi reqId), so
    #: pushes after fills and market steps carry only what changed, like TWS.
    account_values_sent: dict[int, dict[tuple[str, str], str]] = field(default_factory=dict)
    #: Account-summary tags last sent per reqAccountSummary reqId (the refresh sends the changed ones).
    summary_sent: dict[int, dict[tuple[str, str], str]] = field(default_factory=dict)


class ClientSession(Protocol):
    """One connected client, as the request handlers use it."""

    core: GatewayCore
    client_id: int | None
    server_version: int
    subs: Subscriptions

    def send(self, fields: Fields) -> None:
        """Queue one message to the client."""

    def send_error(self, req_id: int, code: int, message: str | None = None) -> None:
        """Send IB error ``code`` for request ``req_id``."""
