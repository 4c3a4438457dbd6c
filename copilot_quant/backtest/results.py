"""The result of a backtest: equity curve, fills, round-trip trades, metrics and reports.

The engine fills in the raw record (equity and cash curves, fills, orders, final positions, prices);
everything else — round trips, the trade log, metrics, the HTML report — is derived from it here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from copilot_quant.backtest.orders import Fill, Order, Position

__all__ = ["BacktestResult"]


@dataclass(slots=True)
class BacktestResult:
    """Everything a backtest produced.

    ``equity_curve`` and ``cash_curve`` have one value per bar, indexed by the bar's tz-aware (UTC)
    timestamp, recorded *after* that bar's fills and marked at its close. ``prices`` holds the close
    of every symbol per bar (columns are symbols). ``orders`` includes rejected and cancelled orders,
    each with its status and reason; ``errors`` lists strategy exceptions as
    ``{'timestamp', 'error', 'type'}`` dicts.
    """

    strategy_name: str
    start_date: datetime
    end_date: datetime
    initial_capital: float
    equity_curve: pd.Series
    cash_curve: pd.Series
    fills: list[Fill] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)
    positions: dict[str, Position] = field(default_factory=dict)
    prices: pd.DataFrame = field(default_factory=pd.DataFrame)
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def final_capital(self) -> float:
        return float(self.equity_curve.iloc[-1]) if len(self.equity_curve) else float(self.initial_capital)

    @property
    def final_value(self) -> float:
        return self.final_capital

    @property
    def total_return(self) -> float:
        return self.final_capital / self.initial_capital - 1.0
