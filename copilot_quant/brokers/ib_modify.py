"""Sending a modification to IB: ``placeOrder`` again with the order's own ``orderId`` and new terms.

That is how IB modifies a working order (ib_async logs it as "Modify"; IB answers with ``openOrder`` and
``orderStatus`` for the same id, which ib_async labels "Modified"). Only the fields a modification may
change (:data:`~copilot_quant.model.modify.MODIFIABLE`: size, limit and aux price, time in force, good-till
date) are copied onto the ib_async ``Order`` IB already knows, priced on the contract's tick grid as a new
order's are. The order's earlier terms are kept on the tracked record until IB acknowledges, so that a
refusal (104: it filled meanwhile) restores them (:mod:`copilot_quant.brokers.ib_order_events`).
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

from copilot_quant.brokers.contracts import ContractBook, round_order_prices
from copilot_quant.brokers.ib_mapping import to_ib_order
from copilot_quant.model.modify import Modification
from copilot_quant.model.orders import Order, OrderType, TimeInForce

if TYPE_CHECKING:
    from ib_async import IB

    from copilot_quant.brokers.order_tracking import TrackedOrder

__all__ = ["ECHOED_IB_FIELDS", "MODIFIED_IB_FIELDS", "held_terms", "send_modification"]

log = logging.getLogger(__name__)

#: The ib_async ``Order`` fields a modification rewrites.
MODIFIED_IB_FIELDS = ("totalQuantity", "lmtPrice", "auxPrice", "tif", "goodTillDate")
#: Those ib_async copies from IB's openOrder onto a Trade it knows: equal to what was sent = accepted.
ECHOED_IB_FIELDS = ("totalQuantity", "lmtPrice", "auxPrice")


async def send_modification(
    ib: IB, contracts: ContractBook, record: TrackedOrder, modification: Modification, account: str | None
) -> bool:
    """Give ``record``'s order its new terms and send them to IB (IB loop thread). False, changing
    nothing, when ib_async already holds the order finished (it refuses to modify a done trade)."""
    ib_order = record.ib_order
    trade = next((t for t in ib.trades() if t.order is ib_order), None)
    if trade is None or trade.isDone():
        return False
    order = record.order
    terms = order.copy(
        order_id=order.order_id,
        quantity=modification.quantity,
        limit_price=modification.limit_price,
        stop_price=modification.stop_price,
        time_in_force=modification.time_in_force,
        good_till=modification.good_till,
    )
    fresh = to_ib_order(terms, account)
    for note in round_order_prices(fresh, await contracts.price_rule(trade.contract)):
        log.info("order %s: %s", order.order_id, note)
    if trade.isDone():  # finished while the price rule was fetched
        return False
    record.modifying_ib = {name: getattr(ib_order, name) for name in MODIFIED_IB_FIELDS}
    for name in MODIFIED_IB_FIELDS:
        setattr(ib_order, name, getattr(fresh, name))
    record.modifying_sent = {name: getattr(fresh, name) for name in ECHOED_IB_FIELDS}
    record.modifying = Modification.of(order)
    record.modify_refused_code = 0
    modification.apply_to(order)
    ib.placeOrder(trade.contract, ib_order)
    return True


def _price(value: Any) -> float | None:
    """An ib_async price field as a price (None when unset: ib_async's UNSET_DOUBLE, 0, or not a number)."""
    try:
        price = float(value)
    except (TypeError, ValueError):
        return None
    return price if math.isfinite(price) and 0 < price < 1e300 else None


def held_terms(order: Order, ib_order: Any) -> Modification | None:
    """The terms IB holds for ``order`` (its open order ``ib_order``) when they differ from ``order``'s, else
    None: after a restart, a modification IB accepted but the journal never recorded (or the reverse) is
    found here. Only the modifiable terms are read; a trailing stop's auxPrice is its trail, not a stop."""
    if ib_order is None:
        return None
    kind = order.type_enum
    quantity = _price(getattr(ib_order, "totalQuantity", None)) or order.quantity
    limit = order.limit_price
    if kind.needs_limit_price:
        limit = _price(getattr(ib_order, "lmtPrice", None)) or limit
    stop = order.stop_price
    if kind in (OrderType.STOP, OrderType.STOP_LIMIT):
        stop = _price(getattr(ib_order, "auxPrice", None)) or stop
    tif = order.time_in_force
    text = str(getattr(ib_order, "tif", "") or "").strip().lower()
    if text in {t.value for t in TimeInForce}:
        tif = TimeInForce(text)
    held = Modification(quantity, limit, stop, TimeInForce(tif), order.good_till)
    return None if held == Modification.of(order) else held
