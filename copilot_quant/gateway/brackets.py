"""Attached orders at the simulated gateway: IB's ``parentId``/``transmit``, as TWS handles them.

* An order sent with ``transmit=False`` is held, not working and not reported (TWS keeps it untransmitted),
  until an order with ``transmit=True`` that names it as ``parentId`` arrives: the group then goes out
  together, the parent first. This is what ib_async's ``bracketOrder`` + one ``placeOrder`` each does.
  That transmitting order is checked first: refused (error 201, or :meth:`reject_next_order`'s fault), it
  sends nothing and the group stays held, as in TWS. A held order can be cancelled (``cancelOrder``): it
  is discarded and reported Cancelled, with the held orders attached to it when it is the group's parent.
* Held orders live in this gateway session only, as in TWS's window (never at IB's servers), and a
  restart ends the session (:meth:`discard_untransmitted`: IB Gateway's nightly restart or a crash; here
  ``gateway-ctl restart`` and a new process on the same ``--state`` file alike): they are gone, unreported.
  The order that would have transmitted them is then refused (201, "parent order N is not known"), a
  cancel of one is IB's 10147, and the order ids they used stay used (saved when the order is held).
* A child (an exit) is accepted ``PreSubmitted`` and works only for its parent's exposure, per
  :mod:`copilot_quant.model.bracket`: active once the parent fills (for what it filled), one-cancels-other
  with its siblings, cancelled when the group is complete (the parent ended and nothing is left to
  protect). The exits are one OCA group at IB: a client's cancel of one cancels the others (each reported
  Cancelled), the parent keeps working (no ``autoCancelParent``). A child activated by a fill is first offered the current price as a gap, then follows the
  market on — the backtest's rule on a bar's path, price by price.

A child must take the other side of its parent (an exit); anything else is refused with the reason, as
an accepted but unhonoured field would be worse.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from copilot_quant.gateway.broker_events import BrokerEvent, OrderUpdated
from copilot_quant.gateway.contracts import ContractInfo
from copilot_quant.gateway.matching import FillIntent, MatchingEngine, WorkingOrder
from copilot_quant.gateway.order_checks import parse_order_type, request_problem
from copilot_quant.gateway.order_records import working_order
from copilot_quant.gateway.orders import IbStatus, PlaceOrderRequest, SimOrder
from copilot_quant.model.bracket import exit_allowance, group_complete

__all__ = ["BrokerBrackets"]

log = logging.getLogger(__name__)

Key = tuple[int, int]


class BrokerBrackets:
    """Mixin of :class:`~copilot_quant.gateway.broker.SimBroker` (it owns the state declared here)."""

    _orders: dict[Key, SimOrder]
    _engine: MatchingEngine
    _clock: Callable[[], datetime]
    #: Untransmitted orders by the parent they wait for (its own key for a parent sent with transmit=False).
    _untransmitted: dict[Key, list[tuple[PlaceOrderRequest, ContractInfo]]]
    #: Each parent's children (bracket exits), by key.
    _children: dict[Key, list[Key]]
    #: Rejections queued by fault injection (the broker's placement owns the queue).
    _reject_queue: deque[str]

    @property
    def account_id(self) -> str:
        raise NotImplementedError

    def _emit(self, event: BrokerEvent) -> None:
        raise NotImplementedError

    def _error(self, client_id: int, order_id: int, code: int, message: str) -> None:
        raise NotImplementedError

    def _accept(
        self, client_id: int, req: PlaceOrderRequest, contract: ContractInfo, *, unsized: str | None = None
    ) -> SimOrder | None:
        raise NotImplementedError

    def _new_record(self, client_id: int, req: PlaceOrderRequest, contract: ContractInfo) -> SimOrder:
        raise NotImplementedError

    def _reject(self, record: SimOrder, reason: str) -> None:
        raise NotImplementedError

    def _finish_cancel(self, record: SimOrder, why: str, when: datetime, *, report_202: bool) -> None:
        raise NotImplementedError

    def _fill(self, intent: FillIntent, when: datetime) -> None:
        raise NotImplementedError

    def last_price(self, symbol: str) -> float | None:
        raise NotImplementedError

    def _aware(self, time: datetime) -> datetime:
        raise NotImplementedError

    def _save(self) -> None:
        raise NotImplementedError

    # ----- arrival --------------------------------------------------------------------------------
    def _hold_untransmitted(self, client_id: int, req: PlaceOrderRequest, contract: ContractInfo) -> None:
        """``req`` came with transmit=False: keep it with the group it belongs to, unreported."""
        group = (client_id, req.parent_id or req.order_id)
        self._untransmitted.setdefault(group, []).append((req, contract))
        log.info("order %s held untransmitted (group of order %d)", (client_id, req.order_id), group[1])
        self._save()  # its order id is used, also after a crash

    def discard_untransmitted(self) -> int:
        """The session ends (a restart): forget every held order, as TWS does; returns how many."""
        held = self.untransmitted_orders()
        self._untransmitted.clear()
        if held:
            log.warning("a restart discards %d order(s) held untransmitted: %s", len(held), held)
        return len(held)

    def _transmit_group(self, client_id: int, req: PlaceOrderRequest, contract: ContractInfo) -> None:
        """``req`` (transmit=True) names a parent: send the parent's untransmitted group, then ``req``."""
        parent_key = (client_id, req.parent_id)
        if parent_key in self._untransmitted:
            refusal = self._reject_queue.popleft() if self._reject_queue else None
            refusal = refusal or request_problem(
                req, contract, account_id=self.account_id, now=self._aware(self._clock())
            )
            if refusal is not None:  # TWS refuses the order that would transmit: nothing goes out
                self._reject(self._new_record(client_id, req, contract), refusal)
                log.info(
                    "group of order %d stays untransmitted: its transmitting order was refused", req.parent_id
                )
                return
        held = self._untransmitted.pop(parent_key, [])
        parent = self._orders.get(parent_key)
        queue = list(held)
        if held and held[0][0].order_id == req.parent_id:
            parent = self._accept(client_id, held[0][0], held[0][1])
            queue = held[1:]
        for child_req, child_contract in [*queue, (req, contract)]:
            self._accept_child(client_id, child_req, child_contract, parent)
        self._save()

    def _accept_child(
        self, client_id: int, req: PlaceOrderRequest, contract: ContractInfo, parent: SimOrder | None
    ) -> None:
        record = replace(self._new_record(client_id, req, contract), status=IbStatus.PRE_SUBMITTED)
        reason = _child_problem(req, parent) or request_problem(
            req, contract, account_id=self.account_id, now=self._aware(self._clock())
        )
        if reason is not None:
            self._reject(record, reason)
            return
        assert parent is not None  # _child_problem refuses a missing parent
        self._orders[record.key] = record
        self._children.setdefault(parent.key, []).append(record.key)
        log.info("order %s accepted as a child of %s (held until the parent fills)", record.key, parent.key)
        self._emit(OrderUpdated(client_id, record))
        self._sync_bracket(parent.key, self._clock())

    def _cancel_other_exits(self, record: SimOrder, when: datetime) -> None:
        """The client cancelled ``record``: if it is a bracket exit, its working siblings go with it (IB's
        OCA group of the exits); the parent is not touched."""
        if not record.parent_id:
            return
        for key in self._children.get((record.client_id, record.parent_id), []):
            sibling = self._orders[key]
            if key != record.key and not sibling.is_done:
                why = f"Cancelled: bracket exit {record.order_id} of its OCA group was cancelled"
                self._finish_cancel(sibling, why, when, report_202=False)

    def _cancel_untransmitted(self, client_id: int, order_id: int) -> bool:
        """Discard a held (untransmitted) order, reported Cancelled; its group's held children go with a
        parent. False when no such order is held."""
        for group, held in list(self._untransmitted.items()):
            if group[0] != client_id or all(r.order_id != order_id for r, _ in held):
                continue
            parent = group[1] == order_id
            gone = [pair for pair in held if parent or pair[0].order_id == order_id]
            kept = [pair for pair in held if not parent and pair[0].order_id != order_id]
            if kept:
                self._untransmitted[group] = kept
            else:
                del self._untransmitted[group]
            for req, contract in gone:
                record = self._new_record(client_id, req, contract)
                self._orders[record.key] = record
                self._finish_cancel(
                    record, "Cancelled by client (untransmitted)", self._clock(), report_202=True
                )
            self._save()
            return True
        return False

    def untransmitted_orders(self) -> list[tuple[int, int]]:
        """The ``(client_id, order_id)`` of every order held untransmitted."""
        return [(group[0], req.order_id) for group, held in self._untransmitted.items() for req, _ in held]

    # ----- the rule -------------------------------------------------------------------------------
    def _sync_bracket(self, parent_key: Key, when: datetime, *, offer: bool = True) -> None:
        """Apply the bracket rule after the parent or a child changed: each child works for the group's
        exposure (newly active ones are offered the current price as a gap when ``offer``); a complete
        group cancels the children left."""
        parent = self._orders.get(parent_key)
        keys = self._children.get(parent_key)
        if parent is None or not keys:
            return
        children = [self._orders[k] for k in keys]
        exits_filled = sum(c.filled for c in children)
        if group_complete(parent.is_done, parent.filled, exits_filled):
            self._children.pop(parent_key, None)
            for child in children:
                if not child.is_done:
                    why = (
                        "Cancelled: the other bracket exit filled"
                        if parent.filled > 0
                        else f"Cancelled: parent order {parent.order_id} ended without a fill"
                    )
                    self._finish_cancel(child, why, when, report_202=False)
            return
        fresh = [c.key for c in children if not c.is_done and self._arm(c, parent.filled, exits_filled)]
        price = self.last_price(parent.contract.symbol) if offer else None
        for key in fresh:
            if price is None:
                break
            for event in self._engine.match_now(key, price):
                if isinstance(event, FillIntent):
                    self._fill(event, when)

    def _arm(self, child: SimOrder, entry_filled: float, exits_filled: float) -> bool:
        """Give ``child`` its allowance in the matching engine; True when it just became active."""
        parent_key = (child.client_id, child.parent_id)
        self._engine.set_exposure(parent_key, max(0.0, entry_filled - exits_filled))
        allowed = exit_allowance(entry_filled, exits_filled, child.remaining)
        working = self._engine.get(child.key)
        if working is not None:
            working.bracket = parent_key  # (restored from a state file without it)
            if allowed <= 1e-9:
                self._engine.remove(child.key)  # nothing to protect now; it may come back
            else:
                working.remaining = allowed
            return False
        if allowed <= 1e-9:
            return False
        fresh: WorkingOrder = working_order(child)
        fresh.remaining = allowed
        fresh.bracket = parent_key
        self._engine.add(fresh)
        order_type = child.order_type
        if child.status is IbStatus.PRE_SUBMITTED and not (order_type.needs_stop or order_type.is_trailing):
            child = replace(child, status=IbStatus.SUBMITTED)  # a stop stays PreSubmitted until triggered
            self._orders[child.key] = child
            self._emit(OrderUpdated(child.client_id, child))
        return True

    def _bracket_of(self, record: SimOrder) -> Key | None:
        """The parent key of the bracket ``record`` belongs to (as parent or child), or None."""
        if record.parent_id:
            return (record.client_id, record.parent_id)
        return record.key if record.key in self._children else None

    def _resume_brackets(self) -> None:
        """After a restart: rebuild the groups and give the working children their allowance again."""
        self._children = {}
        for record in self._orders.values():
            if record.parent_id:
                self._children.setdefault((record.client_id, record.parent_id), []).append(record.key)
        for parent_key in list(self._children):  # restored as working: a child waits for its parent
            self._sync_bracket(parent_key, self._clock(), offer=False)


def _child_problem(req: PlaceOrderRequest, parent: SimOrder | None) -> str | None:
    if parent is None:
        return (
            f"parent order {req.parent_id} is not known (send the parent first, with the same client; orders "
            "held untransmitted do not survive a gateway restart)"
        )
    if parent.is_done and parent.filled <= 0:
        return f"parent order {req.parent_id} has ended ({parent.completed_status or parent.status.value})"
    if req.action.upper() == parent.action.value:
        return (
            f"a child order must take the other side of its parent {req.parent_id} (a bracket exit); "
            f"both are {parent.action.value}"
        )
    if parse_order_type(req.order_type) is None:
        return None  # request_problem names the type
    if req.oca_group:
        return "a child order is one-cancels-other with its siblings already; drop its ocaGroup"
    return None
