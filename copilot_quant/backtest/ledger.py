"""The record of a run's fills, and the equity and cash curves derived from it after the loop.

Recording a fill costs a few list appends; the curves are built once, vectorized, at the end. Cash
and quantities are the broker's own values after each fill (not re-summed), so the curves agree
exactly with the account: ``equity[t] == cash[t] + Σ quantity[t] × close[t]``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from copilot_quant.backtest.orders import Fill

__all__ = ["Ledger"]


class Ledger:
    """Fills in the order they happened, with the bar each happened on."""

    __slots__ = ("_bars", "_cash", "_qty", "_symbols", "fills", "initial_cash")

    def __init__(self, initial_cash: float) -> None:
        self.initial_cash = float(initial_cash)
        self.fills: list[Fill] = []
        self._bars: list[int] = []
        self._symbols: list[int] = []
        self._cash: list[float] = []
        self._qty: list[float] = []

    def record(self, bar: int, symbol: int, fill: Fill, cash_after: float, quantity_after: float) -> None:
        self.fills.append(fill)
        self._bars.append(bar)
        self._symbols.append(symbol)
        self._cash.append(cash_after)
        self._qty.append(quantity_after)

    def cash_curve(self, n_bars: int) -> np.ndarray:
        """Cash after each bar's fills."""
        return _step(
            np.asarray(self._bars, dtype=np.int64), np.asarray(self._cash), n_bars, self.initial_cash
        )

    def quantities(self, n_bars: int, n_symbols: int) -> np.ndarray:
        """Signed quantity held per symbol after each bar's fills, shape ``(bars, symbols)``."""
        out = np.zeros((n_bars, n_symbols))
        bars = np.asarray(self._bars, dtype=np.int64)
        symbols = np.asarray(self._symbols, dtype=np.int64)
        qty = np.asarray(self._qty)
        for s in range(n_symbols):
            mine = symbols == s
            if mine.any():
                out[:, s] = _step(bars[mine], qty[mine], n_bars, 0.0)
        return out

    def equity_curve(self, marks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(equity, cash)`` per bar; ``marks`` are the prices positions are valued at, ``(bars, symbols)``."""
        n_bars, n_symbols = marks.shape
        cash = self.cash_curve(n_bars)
        qty = self.quantities(n_bars, n_symbols)
        # a symbol with no price yet cannot be held, so 0 × NaN must count as 0
        value = np.where(qty != 0, qty * np.nan_to_num(marks), 0.0).sum(axis=1)
        return cash + value, cash

    def curves(self, marks: np.ndarray, index: pd.DatetimeIndex) -> tuple[pd.Series, pd.Series]:
        equity, cash = self.equity_curve(marks)
        return pd.Series(equity, index=index, name="equity"), pd.Series(cash, index=index, name="cash")


def _step(bars: np.ndarray, values: np.ndarray, n_bars: int, initial: float) -> np.ndarray:
    """Per bar, the last ``values`` entry recorded at or before it (``initial`` before the first)."""
    if len(bars) == 0:
        return np.full(n_bars, initial)
    last = np.searchsorted(bars, np.arange(n_bars), side="right") - 1
    return np.where(last >= 0, values[np.maximum(last, 0)], initial)
