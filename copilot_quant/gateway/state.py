"""Persistence of the simulated account: what survives a gateway restart, as it does at IB.

The state is one JSON document (cash, positions, orders, executions, id counters and the market clock),
written atomically: to a temporary file in the same directory, flushed, then ``os.replace``-d over the old
file, so a crash mid-write leaves the previous state intact. A file that cannot be read raises
:class:`~copilot_quant.errors.GatewayError` saying which file and why, rather than starting from scratch.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from copilot_quant.errors import GatewayError
from copilot_quant.gateway.contracts import ContractInfo
from copilot_quant.gateway.orders import (
    ExecutionRecord,
    IbAction,
    IbOrderType,
    IbStatus,
    SimOrder,
    TimeInForceCode,
)
from copilot_quant.model.orders import Position

__all__ = ["STATE_VERSION", "BrokerState", "load_state", "save_state"]

log = logging.getLogger(__name__)

STATE_VERSION = 1


@dataclass(slots=True)
class BrokerState:
    """Everything :class:`~copilot_quant.gateway.broker.SimBroker` needs to resume."""

    account_id: str
    cash: float
    commissions: float = 0.0
    day_start_equity: float = 0.0
    holdings: list[tuple[ContractInfo, Position]] = field(default_factory=list)
    orders: list[SimOrder] = field(default_factory=list)
    #: keys of working stop orders whose trigger price was already reached
    triggered: list[tuple[int, int]] = field(default_factory=list)
    executions: list[ExecutionRecord] = field(default_factory=list)
    last_order_id: dict[int, int] = field(default_factory=dict)
    last_perm_id: int = 1_000_000
    last_exec_seq: int = 0
    #: The market clock when the state was written: a restarted gateway resumes its replay there.
    market_time: datetime | None = None
    #: Every contract the gateway had defined (qualified by clients): still known after a restart.
    contracts: list[ContractInfo] = field(default_factory=list)
    #: Foreign-currency balances from forex trades (``cash`` is the base currency's).
    balances: dict[str, float] = field(default_factory=dict)
    #: Realized P&L booked in the base currency at each realization's rate (None: not in the file).
    realized_base: float | None = None


def save_state(path: str | Path, state: BrokerState) -> None:
    """Write ``state`` to ``path`` atomically (temporary file + ``os.replace``)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    payload = json.dumps(_to_json(state), indent=1, sort_keys=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_state(path: str | Path) -> BrokerState | None:
    """The state saved at ``path``, or ``None`` if there is no such file yet."""
    source = Path(path)
    if not source.exists():
        return None
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
        return _from_json(data)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise GatewayError(
            f"cannot read the gateway state file {source}: {exc}. Fix or delete the file to start a fresh account."
        ) from exc


# ----- encoding ---------------------------------------------------------------------------------------
def _contract(c: ContractInfo) -> dict[str, Any]:
    return {f.name: getattr(c, f.name) for f in fields(c)}


def _contract_from(data: dict[str, Any]) -> ContractInfo:
    known = {f.name for f in fields(ContractInfo)}
    return ContractInfo(**{k: v for k, v in data.items() if k in known})


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _time_from(text: str | None) -> datetime | None:
    if text is None:
        return None
    stamp = datetime.fromisoformat(text)
    if stamp.tzinfo is None:
        raise ValueError(f"naive timestamp {text!r} in state file")
    return stamp


def _order(r: SimOrder) -> dict[str, Any]:
    return {
        "client_id": r.client_id,
        "order_id": r.order_id,
        "perm_id": r.perm_id,
        "contract": _contract(r.contract),
        "action": r.action.value,
        "quantity": r.quantity,
        "order_type": r.order_type.value,
        "lmt_price": r.lmt_price,
        "aux_price": r.aux_price,
        "tif": r.tif.value,
        "account": r.account,
        "submitted_at": _time(r.submitted_at),
        "status": r.status.value,
        "order_ref": r.order_ref,
        "outside_rth": r.outside_rth,
        "filled": r.filled,
        "avg_fill_price": r.avg_fill_price,
        "last_fill_price": r.last_fill_price,
        "completed_at": _time(r.completed_at),
        "completed_status": r.completed_status,
        "oca_group": r.oca_group,
        "oca_type": r.oca_type,
        "trailing_percent": r.trailing_percent,
        "lmt_price_offset": r.lmt_price_offset,
        "trail_stop_price": r.trail_stop_price,
        "good_till": _time(r.good_till),
        "parent_id": r.parent_id,
        "cash_qty": r.cash_qty,
        "trigger_method": r.trigger_method,
    }


def _order_from(d: dict[str, Any]) -> SimOrder:
    submitted = _time_from(d["submitted_at"])
    if submitted is None:
        raise ValueError("order without submitted_at")
    return SimOrder(
        client_id=int(d["client_id"]),
        order_id=int(d["order_id"]),
        perm_id=int(d["perm_id"]),
        contract=_contract_from(d["contract"]),
        action=IbAction(d["action"]),
        quantity=float(d["quantity"]),
        order_type=IbOrderType(d["order_type"]),
        lmt_price=d["lmt_price"],
        aux_price=d["aux_price"],
        tif=TimeInForceCode(d["tif"]),
        account=d["account"],
        submitted_at=submitted,
        status=IbStatus(d["status"]),
        order_ref=d["order_ref"],
        outside_rth=bool(d["outside_rth"]),
        filled=float(d["filled"]),
        avg_fill_price=float(d["avg_fill_price"]),
        last_fill_price=float(d["last_fill_price"]),
        completed_at=_time_from(d["completed_at"]),
        completed_status=d["completed_status"],
        oca_group=d.get("oca_group", ""),  # state files written before OCA groups have none
        oca_type=int(d.get("oca_type", 0)),
        trailing_percent=d.get("trailing_percent"),
        lmt_price_offset=d.get("lmt_price_offset"),
        trail_stop_price=d.get("trail_stop_price"),
        good_till=_time_from(d.get("good_till")),
        parent_id=int(d.get("parent_id", 0)),  # state files written before brackets have none
        cash_qty=d.get("cash_qty"),
        trigger_method=int(d.get("trigger_method", 0)),  # state files written before it have the default
    )


def _execution(e: ExecutionRecord) -> dict[str, Any]:
    return {
        "exec_id": e.exec_id,
        "client_id": e.client_id,
        "order_id": e.order_id,
        "perm_id": e.perm_id,
        "contract": _contract(e.contract),
        "side": e.side,
        "shares": e.shares,
        "price": e.price,
        "time": _time(e.time),
        "cum_qty": e.cum_qty,
        "avg_price": e.avg_price,
        "account": e.account,
        "commission": e.commission,
        "currency": e.currency,
        "order_ref": e.order_ref,
        "realized_pnl": e.realized_pnl,
    }


def _execution_from(d: dict[str, Any]) -> ExecutionRecord:
    time = _time_from(d["time"])
    if time is None:
        raise ValueError("execution without time")
    return ExecutionRecord(**{**d, "contract": _contract_from(d["contract"]), "time": time})


def _position(contract: ContractInfo, p: Position) -> dict[str, Any]:
    return {
        "contract": _contract(contract),
        "quantity": p.quantity,
        "avg_entry_price": p.avg_entry_price,
        "realized_pnl": p.realized_pnl,
        "last_price": p.last_price,
        "commission_paid": p.commission_paid,
    }


def _position_from(d: dict[str, Any]) -> tuple[ContractInfo, Position]:
    contract = _contract_from(d["contract"])
    position = Position(
        contract.symbol,
        quantity=float(d["quantity"]),
        avg_entry_price=float(d["avg_entry_price"]),
        realized_pnl=float(d["realized_pnl"]),
        commission_paid=float(d["commission_paid"]),
    )
    if d["last_price"]:
        position.update_unrealized_pnl(float(d["last_price"]))
    return contract, position


def _to_json(state: BrokerState) -> dict[str, Any]:
    return {
        "version": STATE_VERSION,
        "account_id": state.account_id,
        "cash": state.cash,
        "commissions": state.commissions,
        "day_start_equity": state.day_start_equity,
        "holdings": [_position(c, p) for c, p in state.holdings],
        "orders": [_order(r) for r in state.orders],
        "triggered": [list(key) for key in state.triggered],
        "executions": [_execution(e) for e in state.executions],
        # JSON object keys are strings; client ids are restored as ints on load.
        "last_order_id": {str(k): v for k, v in state.last_order_id.items()},
        "last_perm_id": state.last_perm_id,
        "last_exec_seq": state.last_exec_seq,
        "market_time": _time(state.market_time),
        "contracts": [_contract(c) for c in state.contracts],
        "balances": dict(state.balances),
        "realized_base": state.realized_base,
    }


def _from_json(data: dict[str, Any]) -> BrokerState:
    version = data.get("version")
    if version != STATE_VERSION:
        raise ValueError(
            f"unsupported state version {version!r} (this gateway writes version {STATE_VERSION})"
        )
    return BrokerState(
        account_id=str(data["account_id"]),
        cash=float(data["cash"]),
        balances={str(k): float(v) for k, v in data.get("balances", {}).items()},
        # Absent from files written before it was kept: rebuilt from the holdings at today's rates.
        realized_base=None if data.get("realized_base") is None else float(data["realized_base"]),
        commissions=float(data["commissions"]),
        day_start_equity=float(data["day_start_equity"]),
        holdings=[_position_from(d) for d in data["holdings"]],
        orders=[_order_from(d) for d in data["orders"]],
        triggered=[(int(a), int(b)) for a, b in data["triggered"]],
        executions=[_execution_from(d) for d in data["executions"]],
        last_order_id={int(k): int(v) for k, v in data["last_order_id"].items()},
        last_perm_id=int(data["last_perm_id"]),
        last_exec_seq=int(data["last_exec_seq"]),
        # Absent from files written before the clock was kept: those restart at the replay's start.
        market_time=_time_from(data.get("market_time")),
        # Absent from files written before contracts were kept.
        contracts=[_contract_from(d) for d in data.get("contracts", [])],
    )
