"""Keeping the backtest broker's positions marked for its buying-power check, at a cost per change.

Before each fill the broker must see every position it holds valued at the last closed bar: the check
for a trade while shorts are held adds up the other positions' market values. Re-marking every symbol
before every fill made a fill cost O(symbols), so a portfolio's run grew with the square of its size.
:class:`BrokerMarks` does the same marking incrementally: the first fill checked against a row marks the
positions held (once), and later fills against that row re-mark only the symbols whose mark a fill has
moved since (a fill marks its own position at its price). The broker then sees exactly what it saw when
everything was re-marked before each fill.

Most fills read no mark at all: in an account of plain stocks that holds no short, a trade that leaves
its position long or flat is checked against cash alone. :meth:`BrokerMarks.before_fill` lets such fills
owe their marks, and the next fill that reads marks (or :meth:`BrokerMarks.settle`, at the end of the
run) pays what is owed: marking at that fill's row is what the owed marks would have become by then. A
long-only portfolio then marks nothing during its run.
"""

from __future__ import annotations

import numpy as np

from copilot_quant.backtest.broker import SimpleBroker
from copilot_quant.model.orders import Order, OrderSide

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

    __slots__ = ("_broker", "_deferrable", "_held", "_last", "_marks", "_moved", "_owed", "_row", "_shorts")

    def __init__(self, broker: SimpleBroker, marks: np.ndarray, symbol_index: dict[str, int]) -> None:
        self._broker = broker
        self._marks = marks
        #: symbol -> column, for every symbol the broker holds a position in
        self._held = {s: k for s, k in symbol_index.items() if broker.position_quantity(s)}
        self._row = -1  # the row the held positions are marked at (-1: none yet)
        self._moved: list[tuple[str, int]] = []  # positions a fill re-marked since
        held = broker.get_positions()
        #: symbols held short (the broker's check then reads every mark)
        self._shorts = {s for s, p in held.items() if p.quantity < 0}
        #: whether fills may owe their marks: every symbol (run or held) a plain stock, whose check
        #: reads no mark while the account is long (futures, forex: margin reads every mark)
        self._deferrable = all(broker.instrument(s) is None for s in (*symbol_index, *held))
        self._owed = -1  # the row marks are owed at (-1: none)
        self._last: tuple[str, float] | None = None  # the fill booked since the last before_fill

    def before_fill(self, row: int, order: Order, quantity: float | None, observed: bool) -> None:
        """Before ``quantity`` of ``order`` (None: what is left) is booked at ``row``'s prices: mark the
        positions if the broker's check (or, when ``observed``, the strategy's ``on_fill``) can read
        them; otherwise owe the marks."""
        self._last = None
        if self._deferrable and not observed and not self._shorts:
            if quantity is None:
                quantity = order.quantity - order.filled_quantity
            after = self._broker.position_quantity(order.symbol)
            after += quantity if order.side is OrderSide.BUY else -quantity
            if after >= 0:  # long or flat: the check reads cash only
                if row >= 0:
                    self._owed = row
                return
        self.mark(row)

    def settle(self) -> None:
        """Pay owed marks: the broker is left as if every fill had been marked (call after the last fill)."""
        if self._owed < 0:
            return
        self.mark(self._owed)
        last = self._last
        if last is not None:  # the last fill marked its own position at its price after the marks
            self._broker.mark(*last)

    def mark(self, row: int) -> None:
        """Make every held position marked at ``row`` (a negative row, before the first close: no-op)."""
        if row < 0:
            return
        self._owed = -1
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

    def filled(self, symbol: str, k: int, price: float) -> None:
        """A fill in ``symbol`` (column ``k``) was booked at ``price``: its position changed and is marked
        at the fill."""
        self._moved.append((symbol, k))
        self._last = (symbol, price)
        quantity = self._broker.position_quantity(symbol)
        if quantity:
            self._held[symbol] = k
        else:
            self._held.pop(symbol, None)
        if quantity < 0:
            self._shorts.add(symbol)
        else:
            self._shorts.discard(symbol)
