"""The simulated gateway's records of an order: a placeOrder request as a :class:`SimOrder`, and a
working order as the matching engine's :class:`~copilot_quant.gateway.matching.WorkingOrder`."""

from __future__ import annotations

import math
from datetime import datetime

from copilot_quant.gateway.contracts import ContractInfo
from copilot_quant.gateway.matching import WorkingOrder
from copilot_quant.gateway.order_checks import auction_of, parse_order_type, parse_tif
from copilot_quant.gateway.orders import (
    IbAction,
    IbOrderType,
    IbStatus,
    PlaceOrderRequest,
    SimOrder,
    finite_or_none,
    parse_ib_time,
)
from copilot_quant.gateway.trailing import initial_trail_stop
from copilot_quant.model.participation import is_whole

__all__ = ["new_record", "working_order"]


def new_record(
    client_id: int,
    req: PlaceOrderRequest,
    contract: ContractInfo,
    *,
    perm_id: int,
    account_id: str,
    now: datetime,
    last_price: float | None,
) -> SimOrder:
    """The record of a new order ``req`` (stops and trailing stops wait PreSubmitted until triggered)."""
    order_type = parse_order_type(req.order_type) or IbOrderType.MKT
    action = IbAction.SELL if req.action.upper() == "SELL" else IbAction.BUY
    status = IbStatus.PRE_SUBMITTED if order_type.needs_stop or order_type.is_trailing else IbStatus.SUBMITTED
    return SimOrder(
        client_id=client_id,
        order_id=req.order_id,
        perm_id=perm_id,
        contract=contract,
        action=action,
        quantity=float(req.total_quantity) if math.isfinite(req.total_quantity) else 0.0,
        order_type=order_type,
        lmt_price=finite_or_none(req.lmt_price),
        aux_price=finite_or_none(req.aux_price),
        tif=parse_tif(req.tif),
        account=account_id,
        submitted_at=now,
        status=status,
        order_ref=req.order_ref,
        outside_rth=req.outside_rth,
        oca_group=req.oca_group,
        oca_type=req.oca_type if req.oca_group else 0,
        good_till=parse_ib_time(req.good_till_date) if req.tif.upper() == "GTD" else None,
        cash_qty=finite_or_none(req.cash_qty),
        trailing_percent=finite_or_none(req.trailing_percent) if order_type.is_trailing else None,
        lmt_price_offset=finite_or_none(req.lmt_price_offset) if order_type.is_trailing else None,
        trail_stop_price=(
            initial_trail_stop(req, action.side, last_price) if order_type.is_trailing else None
        ),
        parent_id=req.parent_id,
        trigger_method=req.trigger_method,
    )


def working_order(record: SimOrder, triggered: bool = False) -> WorkingOrder:
    """The matching engine's working state of ``record`` (``triggered``: its stop was already reached)."""
    return WorkingOrder(
        key=record.key,
        symbol=record.contract.symbol,
        side=record.action.side,
        order_type=record.order_type,
        remaining=record.remaining,
        limit=record.lmt_price,
        stop=record.trail_stop_price if record.order_type.is_trailing else record.aux_price,
        triggered=triggered,
        whole_shares=is_whole(record.quantity),
        oca_group=record.oca_group,
        oca_type=record.oca_type,
        trail_amount=record.aux_price if record.trailing_percent is None else None,
        trail_percent=record.trailing_percent,
        limit_offset=record.lmt_price_offset,
        auction=auction_of(record),
    )
