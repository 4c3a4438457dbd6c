"""The journal's order states, and how they map to :class:`~copilot_quant.backtest.orders.OrderStatus`.

The journal needs one state the domain does not: ``INTENT`` — written *before* the order is sent, so that
after a crash the engine knows an order may be in flight and must be looked up at the broker (by its
``order_ref``) rather than sent again.
"""

from __future__ import annotations

from enum import StrEnum

from copilot_quant.backtest.orders import OrderStatus
from copilot_quant.errors import JournalError

__all__ = ["OrderState"]


class OrderState(StrEnum):
    INTENT = "intent"  # journaled, not (yet) confirmed by the broker
    SUBMITTED = "submitted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def is_done(self) -> bool:
        """True once the order can no longer fill."""
        return self in _DONE

    @property
    def is_active(self) -> bool:
        return not self.is_done

    @property
    def is_working(self) -> bool:
        """Confirmed at the broker and still able to fill."""
        return self in (OrderState.SUBMITTED, OrderState.PARTIALLY_FILLED)

    def to_order_status(self) -> OrderStatus:
        return OrderStatus.CREATED if self is OrderState.INTENT else OrderStatus(self.value)

    @classmethod
    def from_order_status(cls, status: OrderStatus) -> OrderState:
        return cls.INTENT if status is OrderStatus.CREATED else cls(status.value)

    @classmethod
    def parse(cls, value: OrderState | OrderStatus | str) -> OrderState:
        """Accept an ``OrderState``, an ``OrderStatus`` or the value of either (``'created'`` means intent)."""
        if isinstance(value, OrderState):
            return value
        if isinstance(value, OrderStatus):
            return cls.from_order_status(value)
        text = str(value).strip().lower().replace("-", "_").replace(" ", "_")
        if text == OrderStatus.CREATED.value:
            return cls.INTENT
        try:
            return cls(text)
        except ValueError:
            allowed = ", ".join(repr(s.value) for s in cls)
            raise JournalError(f"unknown order state {value!r}; use one of {allowed}") from None


_DONE = frozenset({OrderState.FILLED, OrderState.CANCELLED, OrderState.REJECTED, OrderState.EXPIRED})
