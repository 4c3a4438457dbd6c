"""The two narrow ports between a strategy engine and the outside world.

``IDataFeed`` supplies bars; ``IBroker`` turns orders into fills. The backtest side
(:class:`~copilot_quant.data.providers.YFinanceProvider` and friends, :class:`~copilot_quant.backtest.broker.SimpleBroker`)
and the live side (:class:`~copilot_quant.brokers.live_data_adapter.LiveDataFeedAdapter`,
:class:`~copilot_quant.brokers.live_broker_adapter.LiveBrokerAdapter`) implement the same contracts, and
one parametrized contract test runs against both.

Data contract (every ``IDataFeed``):

* ``get_historical_data`` returns a DataFrame with a tz-aware (UTC) ``DatetimeIndex``, sorted and unique,
  and float columns ``Open, High, Low, Close, Volume``. Daily bars are stamped at the instant the
  exchange session closed (e.g. 2024-01-05 16:00 America/New_York = 21:00 UTC), so a bar's timestamp is
  the moment it became known. Naive ``start_date``/``end_date`` are read in the exchange time zone
  (America/New_York); an ``end_date`` at midnight includes that whole day. The range is inclusive.
* ``get_multiple_symbols`` returns the same bars with MultiIndex columns ``(Metric, Symbol)``, e.g.
  ``data[('Close', 'AAPL')]``.
* Unknown symbols raise :class:`~copilot_quant.errors.UnknownSymbolError`; unsupported intervals raise
  :class:`~copilot_quant.errors.DataError`. An empty frame is only returned for a valid request whose
  range contains no bars.

Broker contract (every ``IBroker``): see the method docstrings.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime
from typing import Any

import pandas as pd

from copilot_quant.model.bars import combine_symbols
from copilot_quant.model.orders import Fill, Order, Position

__all__ = ["IBroker", "IDataFeed"]


class IDataFeed(ABC):
    """Source of historical (and for live feeds, current) bars. See the module docstring for the contract."""

    @abstractmethod
    def get_historical_data(
        self,
        symbol: str,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        interval: str = "1d",
    ) -> pd.DataFrame:
        """Bars for one symbol in ``[start_date, end_date]`` with columns ``Open, High, Low, Close, Volume``."""

    def get_multiple_symbols(
        self,
        symbols: list[str],
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        interval: str = "1d",
    ) -> pd.DataFrame:
        """Bars for several symbols with MultiIndex columns ``(Metric, Symbol)``.

        Rows are the union of all symbols' timestamps; a symbol without a bar at some timestamp has NaN
        there (prices are never forward-filled from stale values).
        """
        frames = {s: self.get_historical_data(s, start_date, end_date, interval) for s in symbols}
        return combine_symbols(frames)

    def get_ticker_info(self, symbol: str) -> dict[str, Any]:
        """Descriptive information about a symbol (at least ``{'symbol': ...}``)."""
        return {"symbol": symbol.upper()}


class IBroker(ABC):
    """Turns orders into fills and keeps cash and positions.

    ``execute_order`` returns the :class:`Fill` of what executed by the time it returns, or ``None`` if
    nothing did (rejected, or still working: inspect ``order.status`` and ``order.reject_reason``).
    A rejected order is never dropped silently: its status becomes ``REJECTED`` with a reason.
    """

    @abstractmethod
    def execute_order(self, order: Order, current_price: float, timestamp: datetime) -> Fill | None:
        """Execute ``order`` given the current market price; see the class docstring for the result."""

    @abstractmethod
    def check_buying_power(self, order: Order, price: float) -> bool:
        """Whether the account can afford ``order`` at ``price`` (including commission)."""

    @abstractmethod
    def calculate_commission(self, fill_price: float, quantity: float) -> float:
        """Commission in account currency for a fill of ``quantity`` at ``fill_price``."""

    @abstractmethod
    def calculate_slippage(self, order: Order, market_price: float) -> float:
        """The price a market order would get: ``market_price`` moved against the order by the slippage model."""

    @abstractmethod
    def get_positions(self) -> dict[str, Position]:
        """Open positions keyed by symbol (snapshots; mutating them does not affect the broker)."""

    @abstractmethod
    def get_cash_balance(self) -> float:
        """Cash in account currency (may be negative only with margin)."""

    def get_position(self, symbol: str) -> Position | None:
        """The position in ``symbol``, or ``None`` when flat."""
        return self.get_positions().get(symbol.upper())
