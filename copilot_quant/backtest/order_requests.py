"""A strategy's requests about its own working orders in a backtest: ``cancel`` and ``modify``.

The timing contract is the engine's (see :mod:`copilot_quant.backtest.engine`): a cancel is immediate; a
modification gives the order its new terms at once, in force from the next bar on (from ``on_fill`` while
a bar is matched, the order sits out the rest of that bar). Both check that the order is the strategy's
own; a request about an order that is no longer working changes nothing and says why (a log line for a
cancel, a named :class:`~copilot_quant.model.modify.ModifyOutcome` for a modification).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

import pandas as pd

from copilot_quant.backtest.market import MarketData
from copilot_quant.backtest.order_book import OrderBook
from copilot_quant.backtest.strategy import CANCELLED_BY_STRATEGY, Strategy
from copilot_quant.errors import OrderValidationError, StrategyError
from copilot_quant.model.modify import ModifyOutcome, check_modification, modify_refusal
from copilot_quant.model.orders import Order

__all__ = ["RunState", "cancel_order", "expiry_bar", "modify_order"]

# The engine's logger: these lines were the engine's before they moved here, and users filter on its name.
log = logging.getLogger("copilot_quant.backtest.engine")


class RunState(Protocol):
    """What the requests read of the running backtest engine."""

    _strategies: list[Strategy]
    _book: OrderBook
    _orders: list[Order]
    _order_owner: dict[str | None, int]
    _market: MarketData | None
    _bar: int
    _now: datetime | None
    _executing: bool


def expiry_bar(market: MarketData | None, good_till: datetime | None) -> int | None:
    """The bar a good-till-date order expires after (the first whose time reaches ``good_till``)."""
    if good_till is None or market is None:
        return None
    return int(market.index.searchsorted(pd.Timestamp(good_till)))


def _owned_id(run: RunState, owner: int, order: Order | str, action: str) -> str | None:
    """The order id of ``order``, which must be one of ``strategies[owner]``'s (else StrategyError)."""
    order_id = order.order_id if isinstance(order, Order) else order
    known = run._order_owner.get(order_id)
    if known != owner:
        whose = (
            f"it belongs to {run._strategies[known].name}"
            if known is not None
            else "no order with this id was submitted in this run (orders count as submitted once "
            "on_data/on_bar has returned them)"
        )
        raise StrategyError(f"{run._strategies[owner].name}.{action}({order_id!r}): unknown order; {whose}")
    return order_id


def _last_order(run: RunState, order_id: str | None) -> Order | None:
    """The latest order with ``order_id`` in the run's record (a rare path, so a scan is fine)."""
    return next((o for o in reversed(run._orders) if o.order_id == order_id), None)


def cancel_order(run: RunState, owner: int, order: Order | str) -> None:
    """``strategies[owner].cancel(order)``: CANCELLED at once, or a log line saying what became of it."""
    strategy = run._strategies[owner]
    order_id = _owned_id(run, owner, order, "cancel")
    if run._book.cancel(order_id, CANCELLED_BY_STRATEGY, matching=run._executing) is not None:
        log.debug("%s cancelled order %s at %s", strategy.name, order_id, run._now)
        return
    done = _last_order(run, order_id)
    status = done.status.value if done is not None else "done"
    log.info("%s.cancel(%r): the order is already %s; nothing to cancel", strategy.name, order_id, status)


def modify_order(run: RunState, owner: int, order: Order | str, changes: Mapping[str, Any]) -> ModifyOutcome:
    """``strategies[owner].modify(order, **changes)``: APPLIED (in force from the next bar), or why not."""
    strategy = run._strategies[owner]
    order_id = _owned_id(run, owner, order, "modify")
    working = run._book.find(order_id)
    target = working.order if working is not None else _last_order(run, order_id)
    if target is None:
        raise StrategyError(f"{strategy.name}.modify({order_id!r}): unknown order")
    modification = check_modification(target, changes)
    refusal = modify_refusal(target, modification)
    if refusal is None and working is None:
        refusal = ModifyOutcome.NOT_WORKING  # never reached the book (e.g. an IOC order after its chance)
    if refusal is not None:
        log.info(
            "%s.modify(%r) not applied: %s (order %s)",
            strategy.name,
            order_id,
            refusal.value,
            target.status.value,
        )
        return refusal
    assert working is not None  # for mypy: refused above otherwise
    expires = expiry_bar(run._market, modification.good_till)
    if expires is not None and expires <= run._bar:
        raise OrderValidationError(f"good_till {modification.good_till} is not after now ({run._now})")
    log.debug(
        "%s modified order %s at %s: %s", strategy.name, order_id, run._now, modification.describe(target)
    )
    working.expires_bar = expires
    run._book.modify(working, modification, run._bar + 1, matching=run._executing)
    return ModifyOutcome.APPLIED
