"""What of :class:`~copilot_quant.gateway.broker.SimBroker` survives a gateway restart, as it does at IB:
the snapshot written to the ``--state`` file after every change, and resuming from it (working orders
back in the matching engine, OCA groups' progress, id counters, the month's volume for tiered pricing).
The file format is :mod:`copilot_quant.gateway.state`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from copilot_quant.errors import ConfigError
from copilot_quant.gateway.account import Account, PositionItem
from copilot_quant.gateway.contracts import ContractInfo
from copilot_quant.gateway.fut_fx_orders import InstrumentMeters
from copilot_quant.gateway.matching import MatchingEngine, WorkingOrder
from copilot_quant.gateway.orders import (
    ExecutionRecord,
    IdAllocator,
    SimOrder,
    exec_id_tag,
    new_exec_id_tag,
)
from copilot_quant.gateway.state import BrokerState, save_state
from copilot_quant.model.cost_meter import CostMeter

__all__ = ["BrokerPersistence"]

log = logging.getLogger(__name__)


class BrokerPersistence:
    """Mixin of :class:`~copilot_quant.gateway.broker.SimBroker` (it owns the state declared here)."""

    _state_file: Path | None
    _account: Account
    _costs: CostMeter
    _instrument_meters: InstrumentMeters
    _engine: MatchingEngine
    _ids: IdAllocator
    _orders: dict[tuple[int, int], SimOrder]
    _executions: list[ExecutionRecord]
    _last_price: dict[str, float]
    _clock: Callable[[], datetime]
    _restored_contracts: list[ContractInfo]
    contract_source: Callable[[], list[ContractInfo]] | None
    resumed_market_time: datetime | None

    @property
    def account_id(self) -> str:
        raise NotImplementedError

    def open_orders(self, client_id: int | None = None) -> list[SimOrder]:
        raise NotImplementedError

    def positions(self, include_flat: bool = False) -> list[PositionItem]:
        raise NotImplementedError

    def _working(self, record: SimOrder, triggered: bool = False) -> WorkingOrder:
        raise NotImplementedError

    def _aware(self, time: datetime) -> datetime:
        raise NotImplementedError

    def _snapshot(self) -> BrokerState:
        working = {w.key: w for w in self._engine.working()}
        return BrokerState(
            account_id=self.account_id,
            cash=self._account.cash,
            balances=dict(self._account.currencies.foreign),
            realized_base=self._account.realized_base,
            commissions=self._account.commissions,
            day_start_equity=self._account.day_start_equity,
            holdings=self._account.holdings(),
            orders=list(self._orders.values()),
            triggered=[key for key, w in working.items() if w.triggered],
            executions=list(self._executions),
            last_order_id=dict(self._ids.last_order_id),
            last_perm_id=self._ids.last_perm_id,
            last_exec_seq=self._ids.last_exec_seq,
            market_time=self._aware(self._clock()),
            contracts=self.contract_source() if self.contract_source else list(self._restored_contracts),
        )

    def save(self) -> None:
        """Write the state file now (no-op without one); the gateway calls it when it stops."""
        self._save()

    def _save(self) -> None:
        if self._state_file is not None:
            save_state(self._state_file, self._snapshot())

    def known_contracts(self) -> list[ContractInfo]:
        """Every contract in the account's positions, orders and executions (restored ones included)."""
        found = [item.contract for item in self.positions(include_flat=True)]
        found += [record.contract for record in self._orders.values()]
        found += [execution.contract for execution in self._executions]
        found += self._restored_contracts
        return list({info.con_id: info for info in found}.values())

    def _restore(self, state: BrokerState) -> None:
        if state.account_id != self.account_id:
            raise ConfigError(
                f"state file {self._state_file} belongs to account {state.account_id}, not {self.account_id}; "
                "pass the same account or another --state file"
            )
        self._account.restore(
            state.cash,
            state.commissions,
            state.day_start_equity,
            state.holdings,
            state.balances,
            realized_base=state.realized_base,
        )
        self._restored_contracts = list(state.contracts)
        # A new run tag for this run's execution ids, unlike any the state holds (ids never repeat).
        used_tags = {exec_id_tag(e.exec_id) for e in state.executions}
        tag = self._ids.exec_tag
        while tag in used_tags:
            tag = new_exec_id_tag()
        self._ids = IdAllocator(dict(state.last_order_id), state.last_perm_id, state.last_exec_seq, tag)
        self._executions = list(state.executions)
        # the month's traded volume (tiered pricing) is what the saved executions add up to
        stocks = [e for e in self._executions if e.contract.sec_type == "STK"]
        self._costs.replay(sorted((self._aware(e.time), e.shares) for e in stocks))
        self._instrument_meters.replay(
            sorted(
                ((e.contract, self._aware(e.time), e.shares) for e in self._executions), key=lambda x: x[1]
            )
        )
        self.resumed_market_time = state.market_time
        self._orders = {r.key: r for r in state.orders}
        triggered = set(state.triggered)
        for record in self._orders.values():
            if not record.is_done:
                self._engine.add(self._working(record, record.key in triggered))
        for contract, position in state.holdings:
            if position.last_price:
                self._last_price[contract.symbol] = position.last_price
        log.info(
            "resumed account %s from %s: %d open orders, %d executions",
            self.account_id,
            self._state_file,
            len(self.open_orders()),
            len(self._executions),
        )
