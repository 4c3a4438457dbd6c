"""The futures and forex side of :class:`~copilot_quant.gateway.broker.SimBroker`: an order's checks
before it is kept (IB's 110 for a price off the tick, a forex order sized by ``cashQty``), the cost meter
of each contract (IB's futures and forex commissions; see :mod:`~copilot_quant.gateway.fut_fx_orders`),
and contracts that stop trading (a futures contract past its last trade date: its orders end, a position
in it settles in cash).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from copilot_quant.gateway.account import Account
from copilot_quant.gateway.broker_events import AccountChanged, BrokerEvent
from copilot_quant.gateway.contracts import ContractInfo
from copilot_quant.gateway.fut_fx_orders import (
    TICK_ERROR,
    InstrumentMeters,
    is_fut_fx,
    size_by_cash,
    tick_problem,
)
from copilot_quant.gateway.order_checks import expired_problem
from copilot_quant.gateway.orders import PlaceOrderRequest, SimOrder
from copilot_quant.model.cost_meter import CostMeter

__all__ = ["BrokerInstruments"]

_NEW_YORK = ZoneInfo("America/New_York")


class BrokerInstruments:
    """Mixin of :class:`~copilot_quant.gateway.broker.SimBroker` (it owns the state declared here)."""

    _account: Account
    _costs: CostMeter
    _instrument_meters: InstrumentMeters
    _clock: Callable[[], datetime]

    def open_orders(self, client_id: int | None = None) -> list[SimOrder]:
        raise NotImplementedError

    def _reference_price(self, req: PlaceOrderRequest, contract: ContractInfo) -> float | None:
        raise NotImplementedError

    def _aware(self, time: datetime) -> datetime:
        raise NotImplementedError

    def _error(self, client_id: int, order_id: int, code: int, message: str) -> None:
        raise NotImplementedError

    def _emit(self, event: BrokerEvent) -> None:
        raise NotImplementedError

    def _finish_cancel(self, record: SimOrder, why: str, when: datetime, *, report_202: bool) -> None:
        raise NotImplementedError

    def _save(self) -> None:
        raise NotImplementedError

    def _prepare_order(
        self, client_id: int, req: PlaceOrderRequest, contract: ContractInfo
    ) -> tuple[PlaceOrderRequest | None, str | None]:
        """``req`` ready for the broker's checks, and why a forex ``cashQty`` could not size it (None: it
        could, or there was none). ``(None, _)``: answered already (IB's 110, or a what-if refused)."""
        off_tick = tick_problem(req, contract)
        if off_tick is not None:
            # TWS answers with error 110 alone: no order exists (a what-if gets the same answer)
            self._error(client_id, req.order_id, TICK_ERROR, off_tick)
            return None, None
        sized, unsized = size_by_cash(req, contract, self._reference_price(req, contract))
        if unsized is not None and req.what_if:
            self._error(client_id, req.order_id, 201, f"Order rejected - reason:{unsized}")
            return None, unsized
        return sized, unsized

    def _meter_for(self, contract: ContractInfo) -> CostMeter:
        """The cost meter pricing ``contract``: the account's model for stocks, IB's for futures and forex."""
        if not is_fut_fx(contract):
            return self._costs
        return self._instrument_meters.meter(contract, self._account.rate(contract.currency))

    def expire_contracts(self, time: datetime) -> None:
        """The market reached a New York day after a futures contract's last trade date: its working
        orders end and a position in it settles in cash at its last price (IB closes out a physically
        delivered one before delivery)."""
        when = self._aware(time)
        day = f"{when.astimezone(_NEW_YORK):%Y%m%d}"
        expired = [r for r in self.open_orders() if expired_problem(r.contract, when) is not None]
        for record in expired:
            self._finish_cancel(
                record, "Expired: the contract's last trade date passed", when, report_202=False
            )
        settled = self._account.settle_expired(day)
        if settled:
            self._emit(AccountChanged(tuple(settled)))
        if expired or settled:
            self._save()
