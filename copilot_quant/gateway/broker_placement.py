"""The simulated broker's placement pipeline: a new order is prepared, checked (what TWS would refuse, OCA
rules, buying power), recorded and handed to matching, or rejected with error 201; a known order id is a
modification; a what-if order is answered without being kept.

Part of :class:`~copilot_quant.gateway.broker.SimBroker` (a mixin; the broker owns the state declared
below). The reaction to market prices and the session's clock is in :mod:`.broker_market`.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from copilot_quant.errors import ConfigError
from copilot_quant.gateway.account import Account, MarginImpact
from copilot_quant.gateway.broker_events import (
    BrokerEvent,
    OrderUpdated,
    WhatIfReported,
)
from copilot_quant.gateway.contracts import ContractInfo
from copilot_quant.gateway.matching import MatchingEngine, OcaReduced, WorkingOrder
from copilot_quant.gateway.oca import OCA_REVISION, oca_problem
from copilot_quant.gateway.order_checks import (
    buying_power_problem,
    reference_price,
    request_problem,
)
from copilot_quant.gateway.order_checks import parse_order_type as _order_type
from copilot_quant.gateway.order_checks import parse_tif as _tif
from copilot_quant.gateway.order_records import new_record, working_order
from copilot_quant.gateway.orders import (
    IbAction,
    IbOrderType,
    IbStatus,
    IdAllocator,
    PlaceOrderRequest,
    SimOrder,
    TimeInForceCode,
    finite_or_none,
    parse_ib_time,
)

__all__ = ["BrokerPlacement"]

log = logging.getLogger("copilot_quant.gateway.broker")  # the broker's logger, as before the split

Key = tuple[int, int]


class BrokerPlacement:
    """Placing and modifying orders, for :class:`~copilot_quant.gateway.broker.SimBroker`."""

    _orders: dict[Key, SimOrder]
    _engine: MatchingEngine
    _account: Account
    _ids: IdAllocator
    _clock: Callable[[], datetime]
    _reject_queue: deque[str]
    _answer_queue: deque[tuple[int, str, bool]]

    if TYPE_CHECKING:  # the broker's and its other parts', which define them

        @property
        def account_id(self) -> str: ...
        def _emit(self, event: BrokerEvent) -> None: ...
        def _error(self, client_id: int, order_id: int, code: int, message: str) -> None: ...
        def _aware(self, time: datetime) -> datetime: ...
        def _save(self) -> None: ...
        def _immediate(self, record: SimOrder) -> None: ...
        def last_price(self, symbol: str) -> float | None: ...
        def _prepare_order(
            self, client_id: int, req: PlaceOrderRequest, contract: ContractInfo
        ) -> tuple[PlaceOrderRequest | None, str | None]: ...
        def _hold_untransmitted(
            self, client_id: int, req: PlaceOrderRequest, contract: ContractInfo
        ) -> None: ...
        def _transmit_group(self, client_id: int, req: PlaceOrderRequest, contract: ContractInfo) -> None: ...
        def _bracket_of(self, record: SimOrder) -> Key | None: ...
        def _sync_bracket(self, parent_key: Key, when: datetime, *, offer: bool = True) -> None: ...
        def _quote(
            self, price: float, quantity: float, action: IbAction, contract: ContractInfo | None = None
        ) -> float: ...
        def what_if(self, req: PlaceOrderRequest, contract: ContractInfo) -> MarginImpact: ...
        def _oca_reduced(self, event: OcaReduced, when: datetime) -> None: ...

    def place_order(self, client_id: int, req: PlaceOrderRequest, contract: ContractInfo) -> None:
        """Accept, modify or reject an order; the outcome is reported through :attr:`events`."""
        prepared, unsized = self._prepare_order(client_id, req, contract)
        if prepared is None:
            return
        req = prepared
        if req.what_if:
            self._what_if_order(client_id, req, contract)
            return
        existing = self._orders.get((client_id, req.order_id))
        if existing is not None:
            if unsized is not None:  # TWS keeps the original order working when a modification is refused
                self._error(client_id, req.order_id, 201, f"Order rejected - reason:{unsized}")
            else:
                self._modify(existing, req, contract)
            return
        if not self._ids.is_fresh(client_id, req.order_id):
            self._error(client_id, req.order_id, 103, f"Duplicate order id {req.order_id}")
            return
        self._ids.use_order_id(client_id, req.order_id)
        # an order its cashQty could not size is rejected at once, even inside a group
        if unsized is None and not req.transmit:
            self._hold_untransmitted(client_id, req, contract)  # TWS keeps it until its group is sent
            return
        if unsized is None and req.parent_id:
            self._transmit_group(client_id, req, contract)
            return
        if self._accept(client_id, req, contract, unsized=unsized) is not None:
            self._save()

    def _accept(
        self, client_id: int, req: PlaceOrderRequest, contract: ContractInfo, *, unsized: str | None = None
    ) -> SimOrder | None:
        """Accept (working) or reject a new order whose id is allocated; the record, or None if rejected.
        ``unsized``: why a forex ``cashQty`` could not size it (a rejection)."""
        answer = self._answer_queue.popleft() if self._answer_queue else None
        if answer is not None and not answer[2]:
            # IB answers with the error only (321 read-only API, 110 off the tick grid): no order exists.
            self._error(client_id, req.order_id, answer[0], answer[1])
            return None
        reason = self._reject_queue.popleft() if self._reject_queue else unsized
        reason = reason or self._invalid_reason(req, contract)
        if reason is None:
            reason = oca_problem(req, self._orders.values())
        record = self._new_record(client_id, req, contract)
        if reason is not None:
            self._reject(record, reason)
            return None
        self._orders[record.key] = record
        self._engine.add(self._working(record))
        log.info(
            "order %s accepted: %s %g %s %s",
            record.key,
            record.action,
            record.quantity,
            contract.symbol,
            record.order_type,
        )
        self._emit(OrderUpdated(client_id, record))
        if answer is not None:
            self._error(client_id, req.order_id, answer[0], answer[1])  # e.g. 10349: the order keeps working
        if record.tif is TimeInForceCode.IOC:
            self._immediate(record)
        return record

    def _new_record(self, client_id: int, req: PlaceOrderRequest, contract: ContractInfo) -> SimOrder:
        return new_record(
            client_id,
            req,
            contract,
            perm_id=self._ids.new_perm_id(),
            account_id=self.account_id,
            now=self._clock(),
            last_price=self.last_price(contract.symbol),
        )

    def _working(self, record: SimOrder, triggered: bool = False) -> WorkingOrder:
        return working_order(record, triggered)

    def _invalid_reason(self, req: PlaceOrderRequest, contract: ContractInfo) -> str | None:
        """Why TWS would reject ``req`` (the text after "Order rejected - reason:"), or None."""
        reason = request_problem(req, contract, account_id=self.account_id, now=self._aware(self._clock()))
        if reason is not None or (_order_type(req.order_type) or IbOrderType.MKT).is_trailing:
            return reason
        price = self._reference_price(req, contract)
        try:
            return buying_power_problem(
                req, contract, self._account, price, lambda p, q, a: self._quote(p, q, a, contract)
            )
        except ConfigError as exc:  # e.g. a futures root whose exchange fee is not known
            return str(exc)

    def _reference_price(self, req: PlaceOrderRequest, contract: ContractInfo) -> float | None:
        return reference_price(req, self.last_price(contract.symbol))

    def _reject(self, record: SimOrder, reason: str) -> None:
        done = replace(
            record,
            status=IbStatus.CANCELLED,
            completed_at=self._clock(),
            completed_status=f"Rejected: {reason}",
        )
        self._orders[done.key] = done
        log.info("order %s rejected: %s", record.key, reason)
        self._error(record.client_id, record.order_id, 201, f"Order rejected - reason:{reason}")
        self._save()

    def _modify(self, existing: SimOrder, req: PlaceOrderRequest, contract: ContractInfo) -> None:
        client_id, order_id = existing.key
        if existing.status is IbStatus.FILLED:
            self._error(client_id, order_id, 104, "Can't modify a filled order.")
            return
        if existing.is_done:
            self._error(client_id, order_id, 103, f"Duplicate order id {order_id}")
            return
        if req.action.upper() != existing.action.value or contract.con_id != existing.contract.con_id:
            self._error(client_id, order_id, 105, "Order being modified does not match original order.")
            return
        if (_order_type(req.order_type) or existing.order_type) is not existing.order_type:
            # IB modifies price, size and time in force; a new order type is a new order (cancel, then place)
            self._error(client_id, order_id, 329, "Order modify failed. Cannot change to the new order type.")
            return
        reason = self._invalid_reason(req, contract)
        if reason is None and (req.oca_group, req.oca_type if req.oca_group else 0) != (
            existing.oca_group,
            existing.oca_type,
        ):
            reason = OCA_REVISION
        if reason is None and req.total_quantity < existing.filled:
            reason = f"the new quantity {req.total_quantity:g} is below the {existing.filled:g} shares already filled"
        if reason is not None:
            # TWS keeps the original order working when a modification is refused.
            self._error(client_id, order_id, 201, f"Order rejected - reason:{reason}")
            return
        order_type = _order_type(req.order_type) or existing.order_type
        working = self._engine.remove(existing.key)
        updated = replace(
            existing,
            quantity=req.total_quantity,
            order_type=order_type,
            lmt_price=finite_or_none(req.lmt_price),
            aux_price=finite_or_none(req.aux_price),
            tif=_tif(req.tif),
            order_ref=req.order_ref,
            outside_rth=req.outside_rth,
            good_till=parse_ib_time(req.good_till_date) if req.tif.upper() == "GTD" else None,
            trigger_method=req.trigger_method,
        )
        if order_type.is_trailing:  # the trail may change; the stop stays where it has trailed to
            updated = replace(
                updated,
                trailing_percent=finite_or_none(req.trailing_percent),
                lmt_price_offset=finite_or_none(req.lmt_price_offset),
            )
        triggered = working.triggered if working is not None and order_type == existing.order_type else False
        if (order_type.needs_stop or order_type.is_trailing) and not triggered:
            updated = replace(updated, status=IbStatus.PRE_SUBMITTED)
        else:
            updated = replace(updated, status=IbStatus.SUBMITTED)
        self._orders[updated.key] = updated
        if updated.remaining > 0:
            fresh = self._working(updated, triggered)
            fresh.last_seen = working.last_seen if working is not None else None
            self._engine.add(fresh)
            self._emit(OrderUpdated(client_id, updated))
        else:
            # Quantity lowered to what already filled: the order is complete.
            updated = replace(
                updated, status=IbStatus.FILLED, completed_at=self._clock(), completed_status="Filled"
            )
            self._orders[updated.key] = updated
            self._emit(OrderUpdated(client_id, updated))
        if (
            updated.oca_group and updated.remaining <= 0 < updated.filled
        ):  # complete: the others go (model.oca)
            for event in self._engine.group_completed(updated.oca_group, updated.key):
                if isinstance(event, OcaReduced):
                    self._oca_reduced(event, self._clock())
        group = self._bracket_of(updated)
        if group is not None:  # a modified bracket order: the exits work for the exposure only
            self._sync_bracket(group, self._clock(), offer=False)
        self._save()

    def _what_if_order(self, client_id: int, req: PlaceOrderRequest, contract: ContractInfo) -> None:
        reason = self._invalid_reason(req, contract)
        # The what-if order is never kept; a buying-power shortfall is still reported with the figures.
        if reason is not None and not reason.startswith("insufficient buying power"):
            self._error(client_id, req.order_id, 201, f"Order rejected - reason:{reason}")
            return
        record = replace(self._new_record(client_id, req, contract), perm_id=0)
        self._emit(WhatIfReported(client_id, record, self.what_if(req, contract)))
