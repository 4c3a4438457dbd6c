"""The live engine's performance summary: the account, each strategy, the connection and the run's state.

Part of :class:`~copilot_quant.live.engine.LiveStrategyEngine` (a mixin, so that the guide's
``get_performance_summary()`` stays on the engine); the account's and each strategy's plain values come from
:mod:`copilot_quant.live.summary`. The reads of IB's account behind it live here too: the worker's, followed
by the :class:`~copilot_quant.live.position_watch.PositionWatch` (a trade made in TWS while the engine runs),
and IB's average cost of a position (what an adopted position is priced at).
"""

from __future__ import annotations

from typing import Any

from copilot_quant.brokers.live_broker_adapter import LiveBrokerAdapter
from copilot_quant.brokers.live_data_adapter import LiveDataFeedAdapter
from copilot_quant.errors import BrokerError
from copilot_quant.journal import TradeJournal
from copilot_quant.live.account_view import AccountState
from copilot_quant.live.engine_state import EngineState
from copilot_quant.live.position_watch import PositionWatch
from copilot_quant.live.summary import account_summary, strategy_summaries
from copilot_quant.risk import RiskManager

__all__ = ["EngineReport"]


class EngineReport(EngineState):
    """The engine's ``get_performance_summary()`` (the engine sets the parts below)."""

    data_feed: LiveDataFeedAdapter
    broker: LiveBrokerAdapter
    account: AccountState
    journal: TradeJournal | None
    symbols: list[str]
    risk: RiskManager
    _position_watch: PositionWatch

    def _refresh_account(self, settle: float = 0.0) -> None:
        # IB's P&L stream is read only when the daily-loss rail needs it (one more trip to the loop)
        wants_pnl = self.risk.limits.max_daily_loss is not None
        self.account.refresh(self.broker, self.clock.trading_day, settle, pnl=wants_pnl)

    def _refresh_and_watch(self, settle: float = 0.0) -> None:
        """The worker's read of IB's account, then the position watch (a trade made in TWS meanwhile)."""
        self._refresh_account(settle)
        self._position_watch.check()

    def _price_of(self, symbol: str) -> float | None:
        """IB's average cost of ``symbol``'s position, else its latest price (None if neither is known)."""
        position = self.account.positions.get(symbol)
        if position is not None and position.avg_cost > 0:
            return float(position.avg_cost)
        try:
            return self.data_feed.get_latest_price(symbol)
        except (BrokerError, TimeoutError, ConnectionError):
            return None

    def get_performance_summary(self) -> dict[str, Any]:
        """Account value, cash (also ``cash_by_currency`` with IB's ``exchange_rates``), positions ``{symbol:
        quantity}``, fills, errors and state, as plain values:
        the account combined (as IB reports it), and ``strategies``: each strategy's own capital, positions,
        fills, commissions, P&L, open orders and errors (see :mod:`copilot_quant.live.summary`)."""
        if self.is_connected():
            self._refresh_account()
        account = self.account
        try:
            currencies = self.broker.get_cash_balances() if self.is_connected() else {}
        except (BrokerError, TimeoutError, ConnectionError):
            currencies = {}
        return {
            "strategy": self.strategy.name if self.strategy is not None else None,
            # IB's CashBalance per currency and its ExchangeRate to USD (forex trades hold several)
            "cash_by_currency": {c: balance for c, (balance, _rate) in currencies.items()},
            "exchange_rates": {c: rate for c, (_balance, rate) in currencies.items()},
            "strategies": strategy_summaries(self._slots, account.marks, self._errors.by_strategy),
            **account_summary(account),
            "total_fills": self.dispatcher.count,
            "total_errors": self.total_errors,
            "bars_processed": self.bars_processed,
            "last_bar": self.last_bar,
            "open_orders": len(self.broker.get_open_orders()),
            "is_running": self._running,
            "is_connected": self.is_connected(),
            "connection_state": self.connection.state.value,
            # why TWS says the connection is degraded (its link to IB, its server, farms by name)
            "connection_problems": self.connection.machine.health.problems(),
            # what IB said about each symbol's market-data permissions (no, delayed or partial quotes)
            "market_data_problems": self.data_feed.market_data_problems(),
            "account": self.connection.account,
            "symbols": list(self.symbols),
            "halted": self.halted,
            # symbols whose IB position disagrees with the books: blocked, with what differs and how to resolve
            "position_mismatches": self.reconciler.guard.summary(),
            "journal": str(self.journal.path) if self.journal is not None else None,
        }
