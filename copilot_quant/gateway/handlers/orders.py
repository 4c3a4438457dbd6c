"""Order requests — placeOrder (3), cancelOrder (4), reqGlobalCancel (58), reqOpenOrders (5),
reqAllOpenOrders (16), reqCompletedOrders (99), reqExecutions (7) — and the routing of SimBroker's events.

Routing follows TWS: openOrder, orderStatus, execDetails, commissionReport and order errors go only to the
client that placed the order (a client that is away simply misses them and finds fills with
reqExecutions later); account and position changes go to every subscribed client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from copilot_quant.gateway.broker_events import (
    AccountChanged,
    CommissionReported,
    ExecutionReported,
    OrderErrorEvent,
    OrderUpdated,
    WhatIfReported,
)
from copilot_quant.gateway.handlers.account import publish_account_change
from copilot_quant.gateway.messages.errors import Code
from copilot_quant.gateway.messages.ids import In
from copilot_quant.gateway.messages.orders import (
    commission_report,
    completed_order,
    completed_orders_end,
    exec_details,
    exec_details_end,
    open_order,
    open_order_end,
    order_status,
    parse_cancel_order,
    parse_executions_request,
    parse_place_order,
)
from copilot_quant.gateway.wire import FieldReader

if TYPE_CHECKING:
    from copilot_quant.gateway.client import ClientSession
    from copilot_quant.gateway.core import GatewayCore


def place_order(session: ClientSession, reader: FieldReader) -> None:
    request = parse_place_order(reader, session.server_version)
    info = session.core.resolve(request.contract)
    if info is None:
        session.send_error(
            request.order_id,
            Code.NO_SECURITY_DEFINITION,
            f"No security definition has been found for the request ({request.contract.describe()})",
        )
        return
    session.core.broker.place_order(session.client_id or 0, request, info)


def cancel_order(session: ClientSession, reader: FieldReader) -> None:
    request = parse_cancel_order(reader)
    session.core.broker.cancel_order(session.client_id or 0, request.order_id)


def global_cancel(session: ClientSession, reader: FieldReader) -> None:
    session.core.broker.global_cancel()


def _send_open_orders(session: ClientSession, client_id: int | None) -> None:
    for record in session.core.broker.open_orders(client_id):
        session.send(open_order(record, version=session.server_version))
        session.send(order_status(record))
    session.send(open_order_end())


def req_open_orders(session: ClientSession, reader: FieldReader) -> None:
    """``5, 1``: this client's working orders, then openOrderEnd (53)."""
    _send_open_orders(session, session.client_id or 0)


def req_all_open_orders(session: ClientSession, reader: FieldReader) -> None:
    """``16, 1``: every client's working orders, then openOrderEnd (53)."""
    _send_open_orders(session, None)


def req_completed_orders(session: ClientSession, reader: FieldReader) -> None:
    """``99, apiOnly``: every finished order, then completedOrdersEnd (102)."""
    for record in session.core.broker.completed_orders():
        session.send(completed_order(record, session.server_version))
    session.send(completed_orders_end())


def req_executions(session: ClientSession, reader: FieldReader) -> None:
    """``7, 3, reqId, filter…``: matching fills (execDetails with that reqId), their commissions, then 55."""
    request = parse_executions_request(reader)
    executions = session.core.broker.executions(None, request.filter)
    for execution in executions:
        session.send(exec_details(request.req_id, execution, session.server_version))
    for execution in executions:
        session.send(commission_report(execution))
    session.send(exec_details_end(request.req_id))


def route_broker_event(core: GatewayCore, event: object) -> None:
    """Deliver one SimBroker event to the sessions that must see it."""
    if isinstance(event, AccountChanged):
        publish_account_change(core, event)
        return
    client_id = getattr(event, "client_id", None)
    session = core.session_for(client_id) if client_id is not None else None
    if session is None:
        return  # the placing client is away: it finds fills with reqExecutions after reconnecting
    if isinstance(event, OrderUpdated):
        session.send(open_order(event.record, version=session.server_version))
        session.send(order_status(event.record))
    elif isinstance(event, ExecutionReported):
        session.send(exec_details(-1, event.execution, session.server_version))
    elif isinstance(event, CommissionReported):
        session.send(commission_report(event.execution))
    elif isinstance(event, OrderErrorEvent):
        session.send_error(event.order_id, event.code, event.message)
    elif isinstance(event, WhatIfReported):
        session.send(open_order(event.record, event.impact, session.server_version))


HANDLERS = {
    In.PLACE_ORDER: place_order,
    In.CANCEL_ORDER: cancel_order,
    In.REQ_GLOBAL_CANCEL: global_cancel,
    In.REQ_OPEN_ORDERS: req_open_orders,
    In.REQ_ALL_OPEN_ORDERS: req_all_open_orders,
    In.REQ_COMPLETED_ORDERS: req_completed_orders,
    In.REQ_EXECUTIONS: req_executions,
}
