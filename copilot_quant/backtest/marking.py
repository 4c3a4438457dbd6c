"""Keeping the backtest broker's positions marked for its buying-power check, at a cost per change.

Before each fill the broker must see every position it holds valued at the last closed bar: the check
for a trade while shorts are held adds up the other positions' market values. Re-marking every symbol
before every fill made a fill cost O(symbols), so a portfolio's run grew with the square of its size.
:class:`BrokerMarks` does the same marking incrementally: the first fill checked against a row marks the
positions held (once), and later fills against that row re-mark only the symbols whose mark a fill has
moved since (a fill marks its own position at its price). The broker then sees exactly what it saw when
everything was re-marked before each fill.
"""

from __future__ import annotations

import numpy as np

from copilot_quant.backtest.broker import SimpleBroker

__all__ = ["BrokerMarks"]

#: From this many positions on, a row's prices are converted at once rather than one by one.
_ROW_AT_ONCE = 8


class BrokerMarks:
    """The broker's positions in the run's symbols, marked at a row of ``marks`` on demand.

    Args:
        broker: the account (it may hold positions from an earlier run: they are marked too).
        marks: closes carried over missing bars, ``(bars, symbols)``.
        symbol_index: symbol -> column of ``marks``.
    """

    __slots__ = ("_broker", "_held", "_marks", "_moved", "_row")

    def __init__(self, broker: SimpleBroker, marks: np.ndarray, symbol_index: dict[str, int]) -> None:
        self._broker = broker
        self._marks = marks
        #: symbol -> column, for every symbol the broker holds a position in
        self._held = {s: k for s, k in symbol_index.items() if broker.position_quantity(s)}
        self._row = -1  # the row the held positions are marked at (-1: none yet)
        self._moved: list[tuple[str, int]] = []  # positions a fill re-marked since

    def mark(self, row: int) -> None:
        """Make every held position marked at ``row`` (a negative row, before the first close: no-op)."""
        if row < 0:
            return
        held = self._held
        if row != self._row:
            self._row = row
            if not held:  # nothing to mark (and nothing moved that is still held)
                self._moved.clear()
                return
            mark, marks = self._broker.mark, self._marks
            if len(held) > _ROW_AT_ONCE:
                prices = marks[row].tolist()  # one conversion for the row, not one per symbol
                for symbol, k in held.items():
                    mark(symbol, prices[k])  # no-op where the symbol has no price yet
            else:
                for symbol, k in held.items():
                    mark(symbol, marks.item(row, k))
        else:
            mark, marks = self._broker.mark, self._marks
            for symbol, k in self._moved:
                mark(symbol, marks.item(row, k))
        self._moved.clear()

    def filled(self, symbol: str, k: int) -> None:
        """A fill in ``symbol`` (column ``k``) was booked: its position changed and is marked at the fill."""
        self._moved.append((symbol, k))
        if self._broker.position_quantity(symbol):
            self._held[symbol] = k
        else:
            self._held.pop(symbol, None)
