"""The record of a run's fills, and the equity and cash curves derived from it after the loop.

Recording a fill costs a few appends to typed arrays (``array.array``: numpy reads them without a
per-element conversion); the curves are built once, vectorized, at the end. Cash and quantities are the
broker's own values after each fill (not re-summed), so the curves agree exactly with the account:
``equity[t] == cash[t] + Σ quantity[t] × close[t]``.
"""

from __future__ import annotations

from array import array

import numpy as np
import pandas as pd

from copilot_quant.backtest.orders import Fill

__all__ = ["Ledger"]


class Ledger:
    """Fills in the order they happened, with the bar each happened on."""

    __slots__ = ("_rows", "fills", "initial_cash")

    def __init__(self, initial_cash: float) -> None:
        self.initial_cash = float(initial_cash)
        self.fills: list[Fill] = []
        #: ``bar, symbol, cash after, quantity after`` per fill, one after the other (one append per fill)
        self._rows = array("d")

    def record(self, bar: int, symbol: int, fill: Fill, cash_after: float, quantity_after: float) -> None:
        self.fills.append(fill)
        self._rows.extend((bar, symbol, cash_after, quantity_after))

    def _columns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The records' bars, symbols (ints), cash and quantities after each fill."""
        rows = np.frombuffer(self._rows, dtype=float).reshape(-1, 4) if self._rows else np.zeros((0, 4))
        bars, symbols = rows[:, 0].astype(np.int64), rows[:, 1].astype(np.int64)
        return bars, symbols, rows[:, 2].copy(), rows[:, 3].copy()

    def cash_curve(self, n_bars: int) -> np.ndarray:
        """Cash after each bar's fills."""
        bars, _, cash, _ = self._columns()
        return _step(bars, cash, n_bars, self.initial_cash)

    def quantities(self, n_bars: int, n_symbols: int) -> np.ndarray:
        """Signed quantity held per symbol after each bar's fills, shape ``(bars, symbols)``."""
        out = np.zeros((n_bars, n_symbols))
        bars, symbols, _, qty = self._columns()
        if n_symbols == 1 and len(symbols) and not symbols.any():  # one symbol: no per-symbol selection
            out[:, 0] = _step(bars, qty, n_bars, 0.0)
            return out
        for s in range(n_symbols):
            mine = symbols == s
            if mine.any():
                out[:, s] = _step(bars[mine], qty[mine], n_bars, 0.0)
        return out

    def equity_curve(self, marks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(equity, cash)`` per bar; ``marks`` are the prices positions are valued at, ``(bars, symbols)``."""
        n_bars, n_symbols = marks.shape
        bars, _, cash_after, qty_after = self._columns()
        if n_symbols == 1 and len(bars):  # one symbol: cash and quantity step at the same records
            last = _last_records(bars, n_bars)
            cash = _at(last, cash_after, self.initial_cash)
            qty = _at(last, qty_after, 0.0)
            # a symbol with no price yet cannot be held, so 0 × NaN must count as 0 (prices are finite)
            return cash + qty * np.nan_to_num(marks[:, 0]), cash
        cash = self.cash_curve(n_bars)
        quantities = self.quantities(n_bars, n_symbols)
        value = np.where(quantities != 0, quantities * np.nan_to_num(marks), 0.0).sum(axis=1)
        return cash + value, cash

    def curves(self, marks: np.ndarray, index: pd.DatetimeIndex) -> tuple[pd.Series, pd.Series]:
        equity, cash = self.equity_curve(marks)
        return pd.Series(equity, index=index, name="equity"), pd.Series(cash, index=index, name="cash")


def _step(bars: np.ndarray, values: np.ndarray, n_bars: int, initial: float) -> np.ndarray:
    """Per bar, the last ``values`` entry recorded at or before it (``initial`` before the first).

    ``bars`` is sorted (records are made bar after bar); a bar below 0 counts as before the first bar.
    """
    if len(bars) == 0:
        return np.full(n_bars, initial)
    return _at(_last_records(bars, n_bars), values, initial)


def _last_records(bars: np.ndarray, n_bars: int) -> np.ndarray:
    """Per bar, the index of the last record at or before it (-1 before the first); ``bars`` sorted.

    Counting the records per bar and summing them up finds each bar's last record in two linear passes,
    several times quicker than a binary search per bar on a long run.
    """
    counts = np.bincount(np.clip(bars, 0, n_bars), minlength=n_bars + 1)[:n_bars]
    last = np.cumsum(counts)
    last -= 1
    return last


def _at(last: np.ndarray, values: np.ndarray, initial: float) -> np.ndarray:
    """``values[last]`` per bar, ``initial`` where ``last`` is -1."""
    return np.concatenate(([initial], values))[last + 1]
