"""How the simulated gateway books one fill: the order's new figures and the execution IB reports.

Commission follows IB: one minimum per order however it is split, so each execution pays what it adds
to the order's total (:meth:`~copilot_quant.model.cost_meter.CostMeter.charge`). A correction (a drill)
replaces an execution with a new execId that differs only after its last ``.``, as IB's do.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime

from copilot_quant.errors import ConfigError
from copilot_quant.gateway.account import Account
from copilot_quant.gateway.matching import FillIntent
from copilot_quant.gateway.orders import ExecutionRecord, IbStatus, SimOrder
from copilot_quant.model.cost_meter import CostMeter

__all__ = ["book_fill", "corrected_execution"]


def book_fill(
    record: SimOrder,
    intent: FillIntent,
    when: datetime,
    *,
    costs: CostMeter,
    account: Account,
    exec_id: str,
    charged_at: datetime,
) -> tuple[SimOrder, ExecutionRecord]:
    """Book ``intent`` on ``account``: the order's updated record and the execution to report.

    ``charged_at`` is the aware time the cost meter counts the volume at (tiered pricing's month).
    """
    price, qty = float(intent.price), float(intent.quantity)
    signed = qty * record.action.side.sign
    old_qty = account.quantity(record.contract.symbol)
    opening = old_qty == 0 or (old_qty > 0) == (signed > 0)
    charge = costs.charge(
        price,
        qty,
        record.action.side,
        charged_at,
        filled_before=record.filled,
        avg_price_before=record.avg_fill_price,
    )
    commission = charge.total
    realized = account.apply_fill(record.contract, signed, price, commission)
    filled = record.filled + qty
    avg = (record.avg_fill_price * record.filled + price * qty) / filled
    done = filled >= record.quantity - 1e-9
    record = replace(
        record,
        filled=filled,
        avg_fill_price=avg,
        last_fill_price=price,
        status=IbStatus.FILLED if done else IbStatus.SUBMITTED,
        completed_at=when if done else None,
        completed_status="Filled" if done else "",
    )
    execution = ExecutionRecord(
        exec_id=exec_id,
        client_id=record.client_id,
        order_id=record.order_id,
        perm_id=record.perm_id,
        contract=record.contract,
        side=record.action.exec_side,
        shares=qty,
        price=price,
        time=when,
        cum_qty=filled,
        avg_price=avg,
        account=account.account_id,
        commission=commission,
        currency=account.currency,
        order_ref=record.order_ref,
        realized_pnl=None if opening else realized - commission,
    )
    return record, execution


def corrected_execution(old: ExecutionRecord, shares: float | None, price: float | None) -> ExecutionRecord:
    """``old`` corrected to ``shares`` at ``price`` (None keeps the old figure), under IB's next execId."""
    head, _, tail = old.exec_id.rpartition(".")
    new_shares = old.shares if shares is None else float(shares)
    new_price = old.price if price is None else float(price)
    if new_shares < 0 or not math.isfinite(new_shares) or not (math.isfinite(new_price) and new_price > 0):
        raise ConfigError(
            f"a correction needs shares >= 0 and a positive price, got {new_shares}, {new_price}"
        )
    return replace(
        old,
        exec_id=f"{head}.{int(tail) + 1:02d}" if tail.isdigit() else f"{old.exec_id}.02",
        shares=new_shares,
        price=new_price,
        cum_qty=old.cum_qty + new_shares - old.shares,
    )
