"""The account as the engine last read it from IB, and the read-only view a strategy gets of it.

:class:`AccountState` holds IB's account value, cash and positions from the last snapshot, and the
account value at the start of the trading day (the daily-loss limit counts from it). A strategy sees the
account through :class:`StrategyView` (the :class:`~copilot_quant.backtest.strategy.StrategyContext` it is
bound to): snapshots only, never the engine's live objects.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from datetime import date
from typing import TYPE_CHECKING

from copilot_quant.backtest.orders import Order, Position
from copilot_quant.brokers.live_broker_adapter import LiveBrokerAdapter
from copilot_quant.errors import BrokerError

if TYPE_CHECKING:
    from copilot_quant.live.strategy_slot import StrategySlot

__all__ = ["AccountState", "StrategyView"]

log = logging.getLogger(__name__)


class AccountState:
    """IB's account value, cash and positions as last read (NaN / empty before the first read)."""

    __slots__ = ("cash", "day_start_equity", "equity_day", "positions", "value")

    def __init__(self) -> None:
        self.value = float("nan")
        self.cash = float("nan")
        self.positions: dict[str, Position] = {}
        self.day_start_equity: float | None = None
        self.equity_day: date | None = None

    def refresh(self, broker: LiveBrokerAdapter, trading_day: Callable[[], date]) -> bool:
        """Read IB's account in one trip to the loop thread; ``False`` (and the old values kept) if it fails."""
        try:
            self.value, self.cash, self.positions = broker.account_snapshot()
        except (BrokerError, TimeoutError, ConnectionError) as exc:
            log.debug("account refresh failed: %s", exc)
            return False
        today = trading_day()
        if self.equity_day != today and math.isfinite(self.value):
            # The daily-loss limit counts from the first account value seen each trading day.
            self.equity_day, self.day_start_equity = today, self.value
        return True

    @property
    def known_value(self) -> float | None:
        return self.value if math.isfinite(self.value) else None

    def positions_snapshot(self) -> dict[str, Position]:
        return {s: p.snapshot() for s, p in self.positions.items()}


class StrategyView:
    """What one strategy sees: ``self.positions``, ``self.cash``, ``self.equity`` (read-only), and its own
    working orders (``self.open_orders()``, ``self.cancel()``)."""

    __slots__ = ("_account", "_cancel", "_slot", "_symbols")

    def __init__(
        self,
        slot: StrategySlot,
        account: AccountState,
        cancel: Callable[[StrategySlot, Order | str], None],
        symbols: tuple[str, ...] = (),
    ) -> None:
        self._slot = slot
        self._account = account
        self._cancel = cancel
        self._symbols = symbols

    def symbols(self) -> tuple[str, ...]:
        return self._symbols

    def positions(self) -> Mapping[str, Position]:
        return self._account.positions_snapshot()

    def cash(self) -> float:
        return self._account.cash

    def equity(self) -> float:
        return self._account.value

    def open_orders(self) -> list[Order]:
        return self._slot.open_orders()

    def cancel(self, order: Order | str) -> None:
        self._cancel(self._slot, order)
