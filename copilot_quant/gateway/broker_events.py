"""What :class:`~copilot_quant.gateway.broker.SimBroker` reports: one frozen event per happening.

The protocol side subscribes to ``SimBroker.events`` and turns each into TWS messages:

* :class:`OrderUpdated` → openOrder + orderStatus, to the placing client;
* :class:`ExecutionReported` → execDetails (reqId −1), to the placing client;
* :class:`CommissionReported` → commissionReport, to the placing client;
* :class:`OrderErrorEvent` → error message with ``reqId = order_id`` (201, 202, 103, 104, 105, 161, 10147, 10148);
* :class:`WhatIfReported` → the whatIf openOrder (margin figures), to the requesting client;
* :class:`AccountChanged` → position / updatePortfolio / P&L to every subscriber (values at the account refresh).
"""

from __future__ import annotations

from dataclasses import dataclass

from copilot_quant.gateway.account import MarginImpact, PortfolioItem
from copilot_quant.gateway.orders import ExecutionRecord, SimOrder

__all__ = [
    "AccountChanged",
    "BrokerEvent",
    "CommissionReported",
    "ExecutionReported",
    "OrderErrorEvent",
    "OrderUpdated",
    "WhatIfReported",
]


@dataclass(frozen=True, slots=True)
class OrderUpdated:
    client_id: int
    record: SimOrder


@dataclass(frozen=True, slots=True)
class ExecutionReported:
    client_id: int
    record: SimOrder
    execution: ExecutionRecord


@dataclass(frozen=True, slots=True)
class CommissionReported:
    client_id: int
    execution: ExecutionRecord


@dataclass(frozen=True, slots=True)
class OrderErrorEvent:
    client_id: int
    order_id: int
    code: int
    message: str


@dataclass(frozen=True, slots=True)
class WhatIfReported:
    """Answer to a whatIf order: encode ``record`` as an openOrder with whatIf=1 and ``impact``'s figures."""

    client_id: int
    record: SimOrder
    impact: MarginImpact


@dataclass(frozen=True, slots=True)
class AccountChanged:
    """Cash/positions changed. ``items`` are the portfolio items that changed (flat ones included, so the
    client can drop them: position 0 removes an item in ib_async)."""

    items: tuple[PortfolioItem, ...] = ()


BrokerEvent = (
    OrderUpdated | ExecutionReported | CommissionReported | OrderErrorEvent | WhatIfReported | AccountChanged
)
