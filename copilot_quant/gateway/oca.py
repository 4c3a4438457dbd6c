"""The simulated gateway's checks of IB's one-cancels-all fields (ocaGroup, ocaType) on a new order.

The group rule itself (what a fill does to the other members) is :mod:`copilot_quant.model.oca`, applied
by :mod:`copilot_quant.gateway.matching`; a client's cancel of a member cancels the others
(``SimBroker.cancel_order``). Here: what the gateway refuses, with the reason TWS's 201 error
carries, rather than accepting a group and not honouring it.
"""

from __future__ import annotations

from collections.abc import Iterable

from copilot_quant.gateway.orders import PlaceOrderRequest, SimOrder
from copilot_quant.model.oca import join_problem

__all__ = ["OCA_REVISION", "oca_problem"]

#: TWS's reason when a modification moves an order into another group or changes its ocaType.
OCA_REVISION = "OCA group revision is not allowed"


def oca_problem(req: PlaceOrderRequest, orders: Iterable[SimOrder]) -> str | None:
    """Why a new order ``req`` cannot join its OCA group, given the gateway's ``orders``; None if it can."""
    group = req.oca_group
    if not group:
        return None
    members = [r for r in orders if r.oca_group == group]
    group_type = min((r.oca_type for r in members if r.oca_type != req.oca_type), default=None)
    if group_type is None and members:
        group_type = req.oca_type
    return join_problem(group, group_type, req.oca_type, any(r.filled > 0 for r in members))
