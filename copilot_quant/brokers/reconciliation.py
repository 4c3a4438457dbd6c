"""What IB says about our orders and executions, translated at the edge for journal reconciliation.

:func:`fetch_broker_state` asks IB (on the loop thread) for every open order (``reqAllOpenOrders``, so
orders placed by hand or by another client are seen too), the completed orders (``reqCompletedOrders``)
the executions (``reqExecutions``) and the positions (``reqPositions``), and turns them into the journal's plain
:class:`~copilot_quant.journal.BrokerOrder` / :class:`~copilot_quant.journal.BrokerExecution` values,
which :func:`copilot_quant.journal.reconcile` compares with the journal.

IB's ``reqExecutions`` covers the current day only (unless TWS's trade log is set to keep up to 7 days):
after an overnight or weekend outage, an order's fills from an earlier day show in its filled quantity
but not as executions. :attr:`BrokerState.unseen_fills` names them (quantity known, price and execution
id not), so that reconciliation can alert instead of taking the positions mismatch for a mystery.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ib_async import IB, Trade
from ib_async import Fill as IBFill

from copilot_quant.brokers.ib_contracts import instrument_key
from copilot_quant.brokers.ib_mapping import ib_status
from copilot_quant.journal import BrokerExecution, BrokerOrder

__all__ = ["BrokerState", "UnseenFill", "fetch_broker_state", "to_broker_execution", "to_broker_order"]

_QTY_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class UnseenFill:
    """Shares IB reports filled for an order without an execution to show for them (fills from before
    ``reqExecutions``' window: IB no longer says at what price or under which execution id)."""

    order_ref: str | None
    broker_order_id: int | None
    perm_id: int | None
    symbol: str
    side: str
    quantity: float


log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BrokerState:
    """The broker's orders and executions, plus IB's order ids by ref (to adopt working orders)."""

    orders: tuple[BrokerOrder, ...]
    executions: tuple[BrokerExecution, ...]
    #: ``{order_ref: (ib_order_id, perm_id)}`` of the orders still working at the broker.
    working: dict[str, tuple[int, int]]
    #: ``{symbol: signed quantity}`` held at the broker (the account's, when it is known).
    positions: dict[str, float] = field(default_factory=dict)
    #: The account's cash (``TotalCashValue``) when IB has reported it; information only.
    cash: float | None = None
    #: Orders whose filled quantity at IB exceeds the executions IB returned for them (see the module doc).
    unseen_fills: tuple[UnseenFill, ...] = ()


def to_broker_order(trade: Trade) -> BrokerOrder | None:
    order, st = trade.order, trade.orderStatus
    quantity = float(order.totalQuantity or 0)
    if quantity <= 0:
        return None
    filled = float(st.filled or 0) if st is not None else 0.0
    reported = getattr(
        order, "filledQuantity", None
    )  # completed orders carry it on the order, not the status
    if isinstance(reported, int | float) and math.isfinite(reported) and 0 < reported <= quantity:
        filled = max(filled, float(reported))
    remaining = float(st.remaining or 0) if st is not None else quantity - filled
    status = ib_status(st.status if st is not None else "", filled, remaining)
    return BrokerOrder(
        order_ref=order.orderRef or None,
        broker_order_id=int(order.orderId) if order.orderId else None,
        symbol=instrument_key(trade.contract),
        side="buy" if str(order.action).upper() == "BUY" else "sell",
        quantity=quantity,
        filled=filled,
        status=status,
        perm_id=int(order.permId) if order.permId else None,
    )


def to_broker_execution(fill: IBFill) -> BrokerExecution | None:
    ex = fill.execution
    if not ex.execId or not ex.shares or float(ex.shares) <= 0:
        return None
    report = fill.commissionReport
    commission = None
    if report is not None and report.execId == ex.execId and math.isfinite(report.commission or math.nan):
        commission = float(report.commission)
    when = ex.time if isinstance(ex.time, datetime) and ex.time.tzinfo else datetime.now(UTC)
    return BrokerExecution(
        exec_id=ex.execId,
        order_ref=ex.orderRef or None,
        symbol=instrument_key(fill.contract),
        side="buy" if str(ex.side).upper() in {"BOT", "BUY"} else "sell",
        quantity=float(ex.shares),
        price=float(ex.price),
        time=when,
        broker_order_id=int(ex.orderId) if ex.orderId else None,
        commission=commission,
    )


def _positions(ib_positions: list[Any], account: str | None) -> dict[str, float]:
    held: dict[str, float] = {}
    for p in ib_positions:
        if account and p.account and p.account != account:
            continue
        quantity = float(p.position or 0)
        if quantity and math.isfinite(quantity):
            symbol = instrument_key(p.contract)
            held[symbol] = held.get(symbol, 0.0) + quantity
    return held


def _cash(ib: IB, account: str | None) -> float | None:
    for value in ib.accountValues(account or ""):
        if value.tag == "TotalCashValue" and value.currency in {"BASE", "USD"}:
            try:
                return float(value.value)
            except ValueError:
                return None
    return None


async def fetch_broker_state(ib: IB, account: str | None = None) -> BrokerState:
    """Open and completed orders, executions and positions IB reports now (run on the IB loop thread).

    Positions are fetched first: a fill that lands in between then shows up as an execution, so the
    report errs on the side of a visible mismatch rather than a hidden one.
    """
    ib_positions: list[Any] = list(await ib.reqPositionsAsync())
    open_trades: list[Trade] = list(await ib.reqAllOpenOrdersAsync())
    completed: list[Trade] = list(await ib.reqCompletedOrdersAsync(False))
    fills: list[IBFill] = list(await ib.reqExecutionsAsync())
    # ib_async's own caches may know orders of this client that the requests above did not repeat.
    trades: list[Any] = [*completed, *open_trades, *ib.openTrades()]
    unique: dict[object, BrokerOrder] = {}
    for order in (to_broker_order(t) for t in trades):
        if order is None:
            continue
        key = order.perm_id or (order.broker_order_id, order.order_ref, order.symbol)
        if key not in unique or order.status_enum.is_done:  # the finished report is the later one
            unique[key] = order
    orders = list(unique.values())
    working: dict[str, tuple[int, int]] = {}
    for trade in [*open_trades, *ib.openTrades()]:
        ref = trade.order.orderRef
        if ref and not trade.isDone():
            working[ref] = (int(trade.order.orderId or 0), int(trade.order.permId or 0))
    executions = [e for e in (to_broker_execution(f) for f in [*fills, *ib.fills()]) if e is not None]
    log.debug("broker state: %d orders, %d executions", len(orders), len(executions))
    unseen = _unseen_fills(orders, executions)
    for gap in unseen:
        log.warning(
            "IB reports %g more share(s) of %s filled for order %s than executions it still returns "
            "(reqExecutions covers the current day only)",
            gap.quantity,
            gap.symbol,
            gap.order_ref or gap.broker_order_id,
        )
    return BrokerState(
        tuple(orders),
        tuple(executions),
        working,
        _positions(ib_positions, account),
        _cash(ib, account),
        tuple(unseen),
    )


def _unseen_fills(orders: list[BrokerOrder], executions: list[BrokerExecution]) -> list[UnseenFill]:
    seen_ids: set[str] = set()
    by_ref: dict[str, float] = {}
    by_id: dict[int, float] = {}
    for e in executions:
        if e.exec_id in seen_ids:
            continue
        seen_ids.add(e.exec_id)
        if e.order_ref:
            by_ref[e.order_ref] = by_ref.get(e.order_ref, 0.0) + e.quantity
        elif e.broker_order_id:
            by_id[e.broker_order_id] = by_id.get(e.broker_order_id, 0.0) + e.quantity
    out: list[UnseenFill] = []
    for order in orders:
        if order.order_ref:
            executed = by_ref.get(order.order_ref, 0.0)
        else:
            executed = by_id.get(order.broker_order_id or 0, 0.0)
        gap = order.filled - executed
        if gap > _QTY_EPS:
            out.append(
                UnseenFill(
                    order.order_ref, order.broker_order_id, order.perm_id, order.symbol, order.side, gap
                )
            )
    return out
