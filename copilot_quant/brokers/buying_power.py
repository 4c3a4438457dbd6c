"""What the live buying-power pre-check takes off IB's figure: what this adapter's orders committed since it.

IB pushes the account values (``BuyingPower``, ``AvailableFunds``) every 3 minutes; a fill sends the
position and its portfolio line at once, but not the values (:mod:`copilot_quant.gateway.account_cadence`).
So for up to 3 minutes after a buy IB's BuyingPower still counts the money it spent, and IB's values never
count an order that is still working. The rule, kept simple so that it can be explained in one breath:

* Every order the pre-check passes **reserves** what it was checked for: the value of what it opens plus
  its commission (a stock), or the margin it adds plus its commission (a future, a pair), in the account's
  base currency.
* An order keeps the part of its reservation that IB's last account update does not include: its quantity
  not filled yet (a working order is in no account value) and what it filled since that update.
* A new ``BuyingPower`` or ``AvailableFunds`` from IB (an account update: its rows come together, after
  the executions it includes) counts every fill received so far: those are in IB's figures from then
  on. An order that is finished and fully counted drops out. (Should IB compute an update before an
  execution it sends first, that fill is released early: the check is then as loose as IB's figure,
  never looser.)
* The pre-check compares an order with ``IB's figure − the reservations``. Nothing is ever credited — a
  sale's proceeds, or the margin a cover frees, count once IB's figure includes them — so the check is
  never looser than IB's own value, only stricter between two updates.

Only orders this adapter placed through the pre-check reserve. Orders placed in TWS or by another client,
adopted from an earlier run, and a bracket's exits (never pre-checked) count once IB's values include them;
so does the difference between a fill's price and the price an order was checked at. Everything here runs
on the IB loop thread (the pre-check, the account updates), so it needs no lock; the check's cost is a sum
over the orders still reserving, normally a handful.
"""

from __future__ import annotations

from dataclasses import dataclass

from copilot_quant.brokers.order_tracking import TrackedOrder
from copilot_quant.errors import BrokerError

__all__ = ["Commitments", "ExchangeRateUnknownError", "Reservation", "headroom"]


class ExchangeRateUnknownError(BrokerError):
    """The pre-check cannot value an order in the account's base currency: IB has sent no ``ExchangeRate``
    for its currency (IB reports one per currency the account deals in)."""


def _filled(record: TrackedOrder) -> float:
    """What the order has filled as far as this process knows: its fills, and executions whose commission
    report has not come yet (the position changed at IB all the same)."""
    pending = sum(p.shares for p in record.pending.values()) if record.pending else 0.0
    return float(record.order.filled_quantity) + pending


@dataclass(slots=True)
class Reservation:
    """One order's reservation: ``per_unit`` of the base currency for each unit of its quantity (what the
    pre-check counted for it, over its quantity); ``counted`` is the quantity filled when IB last updated
    the account values, which those values include."""

    record: TrackedOrder
    per_unit: float
    counted: float = 0.0

    def outstanding(self) -> float:
        """What IB's last account values do not include yet (>= 0)."""
        filled = _filled(self.record)
        # a working order commits its whole quantity (a modification may have changed it); a finished one
        # only what it filled
        units = filled if self.record.is_done else max(float(self.record.order.quantity), filled)
        return self.per_unit * max(units - self.counted, 0.0)

    @property
    def finished(self) -> bool:
        """Done, and every fill counted in IB's values: nothing left to reserve, now or later."""
        return self.record.is_done and _filled(self.record) <= self.counted


class Commitments:
    """The reservations of the orders placed since (and working across) IB's last account update."""

    __slots__ = ("_held",)

    def __init__(self) -> None:
        self._held: list[Reservation] = []

    def reserve(self, record: TrackedOrder, amount: float) -> None:
        """``record``'s order was placed after the pre-check counted ``amount`` for it."""
        quantity = float(record.order.quantity)
        if amount > 0 and quantity > 0:
            self._held.append(Reservation(record, amount / quantity))

    def account_updated(self) -> None:
        """IB sent account values: they include every fill received so far."""
        if not self._held:
            return
        for reservation in self._held:
            reservation.counted = _filled(reservation.record)
        self._held = [r for r in self._held if not r.finished]

    def total(self) -> float:
        """The sum of the outstanding reservations (>= 0); finished ones are dropped on the way."""
        if not self._held:
            return 0.0
        if any(r.finished for r in self._held):
            self._held = [r for r in self._held if not r.finished]
        return sum(r.outstanding() for r in self._held)

    def __len__(self) -> int:
        return len(self._held)


def headroom(ib_value: float, reserved: float) -> float:
    """What the pre-check lets an order use: IB's figure less the reservations, never more than IB's figure."""
    return min(ib_value, ib_value - max(reserved, 0.0))
