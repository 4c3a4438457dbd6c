"""The journal's order states, and how they map to :class:`~copilot_quant.model.orders.OrderStatus`.

Why two enums: :class:`~copilot_quant.model.orders.OrderStatus` is an order object's lifecycle in memory,
starting at ``CREATED`` (nobody has seen it yet). The journal's durable record starts at ``INTENT`` instead
— written *before* the order is sent, so that after a crash the engine knows an order may be in flight and
must be looked up at the broker (by its ``order_ref``) rather than sent again. The other six states are
the same, with the same values; :meth:`JournalOrderState.parse` accepts either enum.
"""

from __future__ import annotations

from enum import StrEnum

from copilot_quant.errors import JournalError
from copilot_quant.model.orders import OrderStatus

__all__ = ["JournalOrderState", "OrderState"]


class JournalOrderState(StrEnum):
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
        return self in (JournalOrderState.SUBMITTED, JournalOrderState.PARTIALLY_FILLED)

    def to_order_status(self) -> OrderStatus:
        return OrderStatus.CREATED if self is JournalOrderState.INTENT else OrderStatus(self.value)

    @classmethod
    def from_order_status(cls, status: OrderStatus) -> JournalOrderState:
        return cls.INTENT if status is OrderStatus.CREATED else cls(status.value)

    @classmethod
    def parse(cls, value: JournalOrderState | OrderStatus | str) -> JournalOrderState:
        """Accept an ``JournalOrderState``, an ``OrderStatus`` or the value of either (``'created'`` means intent)."""
        if isinstance(value, JournalOrderState):
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


_DONE = frozenset(
    {
        JournalOrderState.FILLED,
        JournalOrderState.CANCELLED,
        JournalOrderState.REJECTED,
        JournalOrderState.EXPIRED,
    }
)

#: The former name, kept so that existing code keeps importing it.
OrderState = JournalOrderState
