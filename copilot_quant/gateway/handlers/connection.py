"""Connection-level requests: reqIds (8), reqCurrentTime (49), reqManagedAccts (17), reqAutoOpenOrders (15),
reqMarketDataType (59)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from copilot_quant.gateway.messages.connection import current_time, managed_accounts, next_valid_id
from copilot_quant.gateway.messages.ids import In
from copilot_quant.gateway.messages.market_data import parse_market_data_type
from copilot_quant.gateway.wire import FieldReader

if TYPE_CHECKING:
    from copilot_quant.gateway.client import ClientSession


def req_ids(session: ClientSession, reader: FieldReader) -> None:
    """``8, 1, numIds`` → nextValidId: the client's next order id (order ids are per client)."""
    session.send(next_valid_id(session.core.next_order_id(session.client_id or 0)))


def req_current_time(session: ClientSession, reader: FieldReader) -> None:
    """``49, 1`` → the gateway's (simulated) time in epoch seconds."""
    session.send(current_time(int(session.core.now.timestamp())))


def req_managed_accounts(session: ClientSession, reader: FieldReader) -> None:
    session.send(managed_accounts([session.core.account_id]))


def req_auto_open_orders(session: ClientSession, reader: FieldReader) -> None:
    """``15, 1, autoBind``: only meaningful for manual TWS orders, which the gateway does not have."""


def req_market_data_type(session: ClientSession, reader: FieldReader) -> None:
    """``59, 1, type``: later tick subscriptions report this type (3/4 use delayed tick types)."""
    data_type = parse_market_data_type(reader)
    if data_type in (1, 2, 3, 4):
        session.subs.market_data_type = data_type


HANDLERS = {
    In.REQ_IDS: req_ids,
    In.REQ_CURRENT_TIME: req_current_time,
    In.REQ_MANAGED_ACCTS: req_managed_accounts,
    In.REQ_AUTO_OPEN_ORDERS: req_auto_open_orders,
    In.REQ_MARKET_DATA_TYPE: req_market_data_type,
}
