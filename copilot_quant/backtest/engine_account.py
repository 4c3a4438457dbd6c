"""The backtest engine's account reads: equity, cash, a position, the positions, at the run's current bar.

:class:`AccountReads` is a base of :class:`~copilot_quant.backtest.engine.BacktestEngine` (its public
``get_portfolio_value``/``get_positions`` and the ``account_*`` reads behind the strategies' views in
:mod:`copilot_quant.backtest.books`). Marks follow the engine's timing: after a bar closed, at its close;
while bar *t+1*'s orders execute (``on_fill``), at bar *t*'s close, or the fill price for a symbol that
just traded (the broker's own marks).
"""

from __future__ import annotations

from datetime import datetime

import numpy as np

from copilot_quant.backtest.bar_loops import RunClock
from copilot_quant.backtest.broker import SimpleBroker
from copilot_quant.backtest.market import MarketData
from copilot_quant.backtest.multi_asset import RunAccounting
from copilot_quant.backtest.rolls import ContinuousRouter
from copilot_quant.model.orders import Position

__all__ = ["AccountReads"]


class AccountReads:
    """The account as the running (or finished) engine sees it; the engine sets the attributes below."""

    broker: SimpleBroker
    _market: MarketData | None
    _accounting: RunAccounting | None
    _router: ContinuousRouter | None
    _clock: RunClock

    # The run's position, read by the account views, cancel() and the booking (the bar loops move it).
    @property
    def _bar(self) -> int:
        return self._clock.bar

    @property
    def _now(self) -> datetime | None:
        return self._clock.now

    @property
    def _executing(self) -> bool:
        """True while bar ``_bar``'s orders execute: only the bars before it have closed."""
        return self._clock.executing

    def get_portfolio_value(self) -> float:
        """Equity now (during a run: at the current bar's close; after it: at the last close).

        While orders execute (``on_fill``) the current bar has not closed: positions are valued at the
        previous close, or at the fill price for a symbol that just traded.
        """
        market, bar = self._market, self._bar
        if market is None or bar < 0 or self._executing:
            return self.broker.get_account_value()
        if self._accounting is not None:
            return self._accounting.equity_at(self.broker, market.marks, bar, market.symbol_index)
        marks = market.marks[bar]
        value = self.broker.get_cash_balance()
        for symbol, k in market.symbol_index.items():
            qty = self.broker.position_quantity(symbol)
            if qty:
                value += qty * float(marks[k])
        return value

    def account_cash(self) -> float:
        """The account's cash now (the broker's); foreign balances at the current bar's rates, as equity."""
        market, bar = self._market, self._bar
        if self._accounting is not None and market is not None and bar >= 0 and not self._executing:
            return self._accounting.cash_at(self.broker, market.marks, bar)
        return self.broker.get_cash_balance()

    def account_position(self, symbol: str) -> float:
        """The account's signed quantity in ``symbol`` now (0 when flat); for a continuous future, the sum
        over its contracts."""
        router = self._router
        if router is not None and symbol in router.roots:
            return router.position(symbol, {s: p.quantity for s, p in self.broker.get_positions().items()})
        return self.broker.position_quantity(symbol)

    def get_positions(self) -> dict[str, Position]:
        """Open positions (snapshots) marked at the current (or last) bar's close."""
        positions = self.broker.get_positions()
        market, bar = self._market, self._bar
        if market is not None and bar >= 0 and not self._executing:
            for symbol, pos in positions.items():
                k = market.symbol_index.get(symbol)
                if k is not None and not np.isnan(market.marks[bar, k]):
                    pos.update_unrealized_pnl(float(market.marks[bar, k]))
        return positions
