"""CostMeter: one account's running cost state — the month's traded volume a tiered model prices by.

A commission model is immutable configuration, shareable by any number of runs; what an execution costs
under IBKR Tiered also depends on how many shares the account already traded this month. That count lives
here, one meter per account: the backtest's ``SimpleBroker`` and the gateway's ``SimBroker`` each build
their own from the model they are given, so a sweep's runs (or parallel processes) never share it. The
gateway rebuilds it from its persisted executions on restart (:meth:`CostMeter.replay`), so a restarted
gateway with ``--state`` keeps the month's volume.

The month is the calendar month of the execution in the exchange's time zone (naive times are exchange
time, as everywhere in the project); the count restarts at zero with the month's first execution.
Plain models (``commission(price, quantity)`` only) are priced exactly as before, with no fees.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo

from copilot_quant.model.costs import (
    CommissionModel,
    CostBreakdown,
    DetailedCommissionModel,
    execution_commission,
    execution_costs,
)
from copilot_quant.model.orders import OrderSide

__all__ = ["CostMeter"]

_NEW_YORK = ZoneInfo("America/New_York")


class CostMeter:
    """Prices executions with ``model`` and counts the month's traded shares (see the module docstring)."""

    __slots__ = ("_detailed", "_model", "_month", "_tz", "_volume", "by_volume")

    def __init__(self, model: CommissionModel, tz: tzinfo = _NEW_YORK) -> None:
        self._model = model
        # decided once: the fill path is hot, and a Protocol isinstance check is not free
        self._detailed: DetailedCommissionModel | None = (
            model if isinstance(model, DetailedCommissionModel) else None
        )
        #: Whether the model prices by the month's volume (a detailed model): if not, an execution costs
        #: :func:`~copilot_quant.model.costs.execution_commission` of the model, no fees, and nothing is counted.
        self.by_volume = self._detailed is not None
        self._tz = tz
        self._month: tuple[int, int] | None = None
        self._volume = 0.0

    @property
    def model(self) -> CommissionModel:
        return self._model

    @property
    def month(self) -> tuple[int, int] | None:
        """``(year, month)`` of the last recorded execution (None before any)."""
        return self._month

    def month_volume(self, when: datetime) -> float:
        """Shares traded in ``when``'s month before now (0 in a month with no execution yet)."""
        return self._volume if self._month_of(when) == self._month else 0.0

    def quote(
        self,
        price: float,
        quantity: float,
        side: OrderSide,
        when: datetime,
        *,
        filled_before: float = 0.0,
        avg_price_before: float = 0.0,
    ) -> CostBreakdown:
        """What an execution of ``quantity`` at ``price`` at ``when`` would cost, not recording it.

        ``filled_before``/``avg_price_before`` describe the order's earlier executions (IB prices an
        order's executions together; see :func:`~copilot_quant.model.costs.execution_commission`).
        """
        detailed = self._detailed
        if detailed is None:
            return CostBreakdown(
                execution_commission(self._model, price, quantity, filled_before, avg_price_before), 0.0
            )
        volume = self.month_volume(when)
        return execution_costs(
            detailed,
            price,
            quantity,
            side,
            volume,
            filled_before=filled_before,
            avg_price_before=avg_price_before,
        )

    def record(self, quantity: float, when: datetime) -> None:
        """Count an execution of ``quantity`` shares at ``when`` in its month's volume."""
        if self._detailed is None:
            return  # plain models do not price by volume; skip the time-zone arithmetic on the fast path
        month = self._month_of(when)
        if month != self._month:
            if self._month is not None and month < self._month:
                return  # an execution reported late, from a month already closed: it no longer counts
            self._month, self._volume = month, 0.0
        self._volume += abs(float(quantity))

    def charge(
        self,
        price: float,
        quantity: float,
        side: OrderSide,
        when: datetime,
        *,
        filled_before: float = 0.0,
        avg_price_before: float = 0.0,
    ) -> CostBreakdown:
        """:meth:`quote` then :meth:`record`: the costs of an execution that happened."""
        costs = self.quote(
            price, quantity, side, when, filled_before=filled_before, avg_price_before=avg_price_before
        )
        self.record(quantity, when)
        return costs

    def replay(self, executions: Iterable[tuple[datetime, float]]) -> None:
        """Rebuild the count from past executions ``(time, shares)`` in time order (a restart)."""
        for when, shares in executions:
            self.record(shares, when)

    def _month_of(self, when: datetime) -> tuple[int, int]:
        local = when.astimezone(self._tz) if when.tzinfo is not None else when
        return local.year, local.month
