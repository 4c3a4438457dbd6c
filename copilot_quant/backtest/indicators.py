"""A FastStrategy's indicators: one float column per value, and the values ``on_bar`` gets at each bar.

``FastStrategy.indicators(data)`` returns ``name -> values``, where the values are either

* a ``Series`` (one number per bar): ``on_bar`` gets a ``float`` in its place; or
* a ``DataFrame`` with one column per symbol (one number per bar and symbol), e.g.
  ``data['Close'].rolling(10).mean()`` on a portfolio: ``on_bar`` gets a :class:`SymbolValues` in its place,
  a read-only mapping ``symbol -> float`` at that bar (``fast['AAPL']``).

So a portfolio strategy reads ``def on_bar(self, timestamp, fast, slow)`` and ``fast[symbol] > slow[symbol]``
instead of unpacking two floats per symbol by position. Nothing is copied per bar: the values are made
Python floats a chunk of bars at a time (as for single values), and a :class:`SymbolValues` only wraps its
bar's row of them.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Mapping
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from copilot_quant.backtest.market import BarCursor, iter_chunks, iter_floats

__all__ = [
    "SymbolValues",
    "bar_columns",
    "bar_values",
    "indicator_columns",
    "last_bar_values",
    "value_count",
]

#: Values per chunk when indicators are made Python floats (bounded memory for long runs).
_CHUNK_CELLS = 65_536


class SymbolValues(Mapping[str, float]):
    """One per-symbol indicator at one bar: ``values['AAPL']`` is its value for AAPL (NaN where it has none).

    Iterating gives the symbols (the indicator frame's columns, in its order); ``len`` their number.
    It is read-only and belongs to its bar: keep ``dict(values)`` to remember the numbers.
    """

    __slots__ = ("_positions", "_row")

    def __init__(self, row: list[float], positions: dict[Hashable, int]) -> None:
        self._row = row
        self._positions = positions

    def __getitem__(self, symbol: Hashable) -> float:
        return self._row[self._positions[symbol]]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._positions)

    def __len__(self) -> int:
        return len(self._positions)

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._positions

    def __repr__(self) -> str:
        return f"SymbolValues({dict(self)!r})"


def indicator_columns(series: Mapping[str, Any], index: pd.Index, owner: str) -> pd.DataFrame:
    """``indicators()``'s result as one float frame aligned with ``index``.

    Only single values (``Series``, scalars, arrays): flat columns, one per name, as before. With a per-symbol
    ``DataFrame`` among them: ``(name, symbol)`` MultiIndex columns, single values under symbol ``''``.
    Raises ``TypeError`` (the engine reports it as a ``StrategyError``) for what it cannot lay out.
    """
    if not isinstance(series, Mapping) or not series:
        raise TypeError(
            f"{owner}.indicators() must return a non-empty mapping of name -> Series (or a DataFrame with "
            f"one column per symbol), got {type(series).__name__}"
        )
    if not any(isinstance(v, pd.DataFrame) for v in series.values()):
        columns = {key: _single(value, index) for key, value in series.items()}
        return pd.DataFrame(columns, index=index).astype(float)
    parts: dict[tuple[str, Any], pd.Series] = {}
    for key, value in series.items():
        if isinstance(value, pd.DataFrame):
            for symbol, column in _per_symbol(value, key, owner).items():
                parts[(key, symbol)] = column.reindex(index)
        else:
            parts[(key, "")] = _single(value, index)
    frame = pd.DataFrame(parts, index=index).astype(float)
    frame.columns = pd.MultiIndex.from_tuples(list(parts), names=["indicator", "symbol"])
    return frame


def _single(value: Any, index: pd.Index) -> pd.Series:
    if isinstance(value, pd.Series):
        return value.reindex(index)
    return pd.Series(value, index=index)


def _per_symbol(value: pd.DataFrame, key: str, owner: str) -> pd.DataFrame:
    if isinstance(value.columns, pd.MultiIndex) or not value.columns.is_unique or value.columns.empty:
        raise TypeError(
            f"{owner}.indicators()[{key!r}] is a DataFrame, so it needs one column per symbol (unique, flat "
            f"labels such as data['Close'].rolling(10).mean() gives), got columns {list(value.columns)[:5]}"
        )
    if "" in value.columns:
        raise TypeError(f"{owner}.indicators()[{key!r}] has a column named '', which is reserved")
    return value


def _layout(frame: pd.DataFrame) -> list[tuple[int, int, dict[Hashable, int] | None]]:
    """For each of ``on_bar``'s values: its first column, its number of columns, and the symbols' positions
    within them (None for a single value)."""
    if not isinstance(frame.columns, pd.MultiIndex):
        return [(k, 1, None) for k in range(frame.shape[1])]
    layout: list[tuple[int, int, dict[Hashable, int] | None]] = []
    names, symbols = frame.columns.get_level_values(0), frame.columns.get_level_values(1)
    start = 0
    for name in dict.fromkeys(names):
        stop = start
        while stop < len(names) and names[stop] == name:
            stop += 1
        if symbols[start] == "":
            layout.append((start, 1, None))
        else:
            layout.append((start, stop - start, {s: j for j, s in enumerate(symbols[start:stop])}))
        start = stop
    return layout


def _rows(
    values: np.ndarray, positions: dict[Hashable, int], cursor: BarCursor | None = None
) -> Iterator[SymbolValues]:
    rows = iter_chunks(values, max(_CHUNK_CELLS // max(values.shape[1], 1), 1), cursor)
    return map(partial(SymbolValues, positions=positions), rows)


def bar_columns(frame: pd.DataFrame, cursor: BarCursor | None = None) -> list[Iterator[Any]]:
    """One iterator per ``on_bar`` value over the bars of ``frame`` (an :func:`indicator_columns` frame),
    made a chunk at a time: floats for a single value, :class:`SymbolValues` for a per-symbol indicator.
    ``map(on_bar, stamps, *bar_columns(frame))`` calls ``on_bar`` without building a tuple per bar.
    ``cursor`` follows the first iterator (the bar it handed out last)."""
    parts: list[Iterator[Any]] = []
    for start, width, positions in _layout(frame):
        if positions is None:
            parts.append(iter_floats(frame.iloc[:, start].to_numpy(dtype=float), cursor))
        else:
            values = frame.iloc[:, start : start + width].to_numpy(dtype=float)
            parts.append(_rows(values, positions, cursor))
        cursor = None
    return parts


def value_count(frame: pd.DataFrame) -> int:
    """How many values ``on_bar`` gets from ``frame`` (an :func:`indicator_columns` frame), besides the time."""
    return len(_layout(frame))


def bar_values(frame: pd.DataFrame) -> Iterator[tuple[Any, ...]]:
    """``on_bar``'s values at each bar of ``frame``, as one tuple per bar (see :func:`bar_columns`)."""
    return zip(*bar_columns(frame), strict=True)


def last_bar_values(frame: pd.DataFrame) -> tuple[Any, ...]:
    """``on_bar``'s values at the last bar of ``frame`` (live trading recomputes the indicators each bar)."""
    return next(bar_values(frame.iloc[-1:]))
