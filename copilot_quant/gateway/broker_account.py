"""The account side of :class:`~copilot_quant.gateway.broker.SimBroker`: executions, account values,
positions, portfolio, P&L and what-if margin, as reqExecutions, reqAccountUpdates, reqPositions,
reqPnL(Single) and whatIf orders ask for them. Reads only: the broker alone changes the books.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

from copilot_quant.gateway.account import Account, MarginImpact, PnL, PnLSingle, PortfolioItem, PositionItem
from copilot_quant.gateway.contracts import ContractInfo
from copilot_quant.gateway.order_checks import reference_price
from copilot_quant.gateway.orders import ExecutionFilter, ExecutionRecord, IbAction, PlaceOrderRequest
from copilot_quant.model.cost_meter import CostMeter

__all__ = ["BrokerAccountReads"]

_NEW_YORK = ZoneInfo("America/New_York")


class BrokerAccountReads:
    """Mixin of :class:`~copilot_quant.gateway.broker.SimBroker` (it owns the state declared here)."""

    _account: Account
    _costs: CostMeter
    _executions: list[ExecutionRecord]
    _clock: Callable[[], datetime]
    executions_today_only: bool
    #: the cost meter of a contract (:class:`~copilot_quant.gateway.broker_instruments.BrokerInstruments`)
    _meter_for: Callable[[ContractInfo], CostMeter]

    def last_price(self, symbol: str) -> float | None:
        raise NotImplementedError

    def _aware(self, time: datetime) -> datetime:
        raise NotImplementedError

    def executions(
        self, client_id: int | None = None, flt: ExecutionFilter | None = None
    ) -> list[ExecutionRecord]:
        """Executions matching the filter; only the current market day's with ``executions_today_only``
        (IB's reqExecutions covers the current day, unless TWS's trade log is set to keep more)."""
        since = self._today_start() if self.executions_today_only else None
        return [
            e
            for e in self._executions
            if client_id in (None, e.client_id)
            and (flt is None or flt.matches(e))
            and (since is None or e.time >= since)
        ]

    def _today_start(self) -> datetime:
        now = self._aware(self._clock()).astimezone(_NEW_YORK)
        return now.replace(hour=0, minute=0, second=0, microsecond=0)

    def account_values(self) -> list[tuple[str, str, str]]:
        return self._account.values()

    def account_summary(self, tags: Iterable[str] | str) -> list[tuple[str, str, str]]:
        return self._account.summary(tags)

    def positions(self, include_flat: bool = False) -> list[PositionItem]:
        return self._account.positions(include_flat)

    def portfolio(self, include_flat: bool = False) -> list[PortfolioItem]:
        return self._account.portfolio(include_flat)

    def pnl(self) -> PnL:
        return self._account.pnl()

    def pnl_single(self, symbol_or_con_id: str | int) -> PnLSingle | None:
        """P&L of one position, by symbol or conId (reqPnLSingle carries a conId); None if never traded."""
        if isinstance(symbol_or_con_id, int):
            for item in self._account.positions(include_flat=True):
                if item.contract.con_id == symbol_or_con_id:
                    return self._account.pnl_single(item.contract.symbol)
            return None
        return self._account.pnl_single(symbol_or_con_id.upper())

    @property
    def costs(self) -> CostMeter:
        """The account's cost meter: the commission model and the month's traded volume."""
        return self._costs

    @property
    def account(self) -> Account:
        """The books (read them; only the broker changes them)."""
        return self._account

    def what_if(self, req: PlaceOrderRequest, contract: ContractInfo) -> MarginImpact:
        """Margin and equity effect of ``req`` if it filled completely at its reference price."""
        action = IbAction(req.action.upper()) if req.action.upper() in IbAction.__members__ else IbAction.BUY
        price = reference_price(req, self.last_price(contract.symbol)) or 0.0
        qty = req.total_quantity if math.isfinite(req.total_quantity) else 0.0
        commission = self._quote(price, qty, action, contract) if price > 0 and qty > 0 else 0.0
        return self._account.margin_impact(contract, qty * action.side.sign, price, commission)

    def _quote(
        self, price: float, quantity: float, action: IbAction, contract: ContractInfo | None = None
    ) -> float:
        """What a whole order would cost now (for buying power and what-if), not recording anything: a
        stock by the account's commission model, a future or a pair by IB's (``contract``)."""
        meter = self._costs if contract is None else self._meter_for(contract)
        return meter.quote(price, quantity, action.side, self._aware(self._clock())).total
