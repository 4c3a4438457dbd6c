"""The ``data`` a guide-style strategy gets each bar: a view of every bar up to the current one, cheap to build
and cheap to read.

What a portfolio strategy that reads ``data[('Close', symbol)]`` for each of its symbols pays for, and how
the window keeps it small:

* **Building the window.** A frame joined from per-symbol frames holds one pandas block per symbol, and a
  prefix view slices every block (~54 µs a bar at 100 symbols). :func:`consolidated` stores the bars as one
  block per dtype first (~4 µs a bar), once per run.
* **Reading a column.** ``frame[('Close', 'AAPL')]`` on a MultiIndex looks the key up three times (``in``,
  ``get_loc``, then the label again for the Series' name), ~27 µs. The window is a :class:`BarWindow`: a
  ``DataFrame`` whose ``[]`` finds an exact column label in a dict built once per run and returns the same
  Series pandas would (same values, index and name, a copy-on-write view), ~5 µs. Every other key, and every
  other operation, is plain pandas, and what operations return are plain ``DataFrame``/``Series``.
* **Building it in the bar loop.** Between two windows the strategy runs and pandas' code leaves the CPU's
  caches: a window built then costs ~12 µs. The windows of the next bars are built a few dozen at a time
  (each with its own bars only), ~4 µs each.
* **The last bars of a column.** The guide's ``closes.tail(n)`` slices the column's DatetimeIndex through
  ``iloc`` and copies the result, ~18 µs, more than the strategy's own arithmetic. A column read from the
  window is a :class:`BarColumn`, a ``Series`` whose ``tail(n)`` builds the same copy from the column's values
  and a view of its timestamps, ~3 µs.

The window holds exactly the bars up to the current one, nothing later, whichever way it is read. These are
pandas internals: each fast builder is compared with the public way once per run and any difference, or a
missing attribute, falls back to the public way (``iloc`` and a plain ``DataFrame``).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Hashable
from typing import Any, cast

import numpy as np
import pandas as pd

__all__ = ["BarColumn", "BarWindow", "consolidated", "prefix_viewer"]

log = logging.getLogger(__name__)

#: Windows built in one go when the bars are asked in order (see _BuiltAhead).
_AHEAD = 32

#: Exceptions that mean "these pandas internals are not what this module expects".
_INTERNALS_CHANGED = (AttributeError, TypeError, ValueError, ImportError, IndexError, KeyError)


def consolidated(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its columns in one block per dtype (the same frame object if they already are)."""
    internal: Any = frame
    try:
        if internal._mgr.is_consolidated():
            return frame
        return cast(pd.DataFrame, internal._consolidate())
    except _INTERNALS_CHANGED:
        return frame.copy()


class BarColumn(pd.Series):
    """One column of a :class:`BarWindow`: a ``Series`` in every respect, with a quick ``tail(n)``.

    ``tail(n)`` for ``n >= 1`` returns what ``Series.tail`` would (a copy of the last ``n`` values on the
    matching slice of the DatetimeIndex, same name and frequency), built from the values and the
    timestamps directly; other arguments, other indexes or dtypes, and columns with ``attrs`` or flags go
    to pandas. Results of operations on a column (``tail`` included) are plain ``Series``.
    """

    @property
    def _constructor(self) -> Callable[..., pd.Series]:
        return pd.Series

    def _constructor_from_mgr(self, mgr: Any, axes: Any) -> pd.Series:
        series = cast(Any, pd.Series)._from_mgr(mgr, axes)
        object.__setattr__(series, "_name", None)  # the caller sets the real name, as pandas does
        return cast(pd.Series, series)

    # pandas marks tail final (for its type stubs) and types it as returning the subclass; a column's
    # results are plain Series by design
    def tail(self, n: int = 5) -> pd.Series:  # type: ignore[misc, override]
        manager: Any = self._mgr
        index = manager.axes[0]
        values = manager.blocks[0].values
        if (
            type(n) is not int
            or n < 1
            or type(index) is not pd.DatetimeIndex
            or type(values) is not np.ndarray
            or self.attrs
            or not self.flags.allows_duplicate_labels
        ):
            return super().tail(n)
        stamps: Any = index
        prefix = slice(max(len(values) - n, 0), None)
        last = values[prefix].copy()  # tail's copy: nothing the caller does reaches the window
        rows = _new_index(_new_array(stamps._data._ndarray[prefix], dtype=index.dtype), name=index.name)
        rows._freq = stamps._freq  # a slice of a regular index keeps its frequency, as in pandas
        block = type(manager.blocks[0])(last, placement=_placement(slice(0, len(last))), ndim=1)
        column = _single_manager(block, rows)
        series = cast(Any, pd.Series)._from_mgr(column, column.axes)
        object.__setattr__(series, "_name", self._name)
        return cast(pd.Series, series)


class BarWindow(pd.DataFrame):
    """A strategy's view of the bars so far; a ``DataFrame`` in every respect, with a quick ``[]`` for one column.

    ``window[label]`` for a column label (``('Close', 'AAPL')`` with several symbols, ``'Close'`` with one)
    returns what ``DataFrame.__getitem__`` would, built straight from the column's block. Anything else
    (a metric such as ``window['Close']`` on a MultiIndex, lists, slices, masks) goes to pandas, and so does
    every read once the strategy changed its window (its columns or its blocks). Results of operations on a
    window are plain pandas objects.
    """

    #: column label -> (position, the label as stored, its block's number, its place in the block); set per
    #: window by :func:`prefix_viewer`
    _cq_columns: dict[Hashable, tuple[int, Hashable, int, int]] = {}  # noqa: RUF012 - read-only default
    #: the column index and the blocks those positions belong to: a strategy that inserts, deletes or
    #: renames columns of its window, or writes into it (copy-on-write gives it new blocks), gets new ones,
    #: and from then on pandas serves every read
    _cq_index: object = None
    _cq_blocks: Any = None

    @property
    def _constructor(self) -> Callable[..., pd.DataFrame]:
        return pd.DataFrame

    def _constructor_from_mgr(self, mgr: Any, axes: Any) -> pd.DataFrame:
        return cast(Any, pd.DataFrame)._from_mgr(mgr, axes=axes)

    def _constructor_sliced_from_mgr(self, mgr: Any, axes: Any) -> pd.Series:
        series = cast(Any, pd.Series)._from_mgr(mgr, axes)
        object.__setattr__(series, "_name", None)  # the caller sets the real name, as pandas does
        return cast(pd.Series, series)

    def __getitem__(self, key: Any) -> Any:
        try:
            hit = self._cq_columns.get(key)
        except TypeError:  # unhashable: a list of columns, a mask ...
            hit = None
        manager: Any = self._mgr
        blocks = manager.blocks
        if hit is None or blocks is not self._cq_blocks or manager.items is not self._cq_index:
            return super().__getitem__(key)
        _, label, number, place = hit
        # what DataFrame._ixs(position, axis=1) does (BlockManager.iget, then a named Series), minus
        # looking the label and the block up again
        block = blocks[number]
        values = block.iget(place)
        column = _single_manager(
            type(block)(values, placement=_placement(slice(0, len(values))), ndim=1, refs=block.refs),
            manager.axes[1],
        )
        series = _column_from_mgr(column, column.axes)
        object.__setattr__(series, "_name", label)
        if self.attrs or not self.flags.allows_duplicate_labels:
            return series.__finalize__(self)
        return series  # __finalize__ would copy nothing: no attrs, default flags, no shared metadata


def _bind_internals() -> tuple[Callable[..., Any], ...]:
    """pandas' SingleBlockManager, BlockPlacement, BarColumn._from_mgr, DatetimeIndex._simple_new and
    DatetimeArray._simple_new (internals, checked by prefix_viewer)."""
    try:
        from pandas._libs.internals import BlockPlacement  # noqa: PLC0415 - internals, only if they exist
        from pandas.core.arrays import DatetimeArray  # noqa: PLC0415
        from pandas.core.internals import SingleBlockManager  # noqa: PLC0415

        index_cls: Any = pd.DatetimeIndex
        array_cls: Any = DatetimeArray
        return (
            SingleBlockManager,
            BlockPlacement,
            cast(Any, BarColumn)._from_mgr,
            index_cls._simple_new,
            array_cls._simple_new,
        )
    except (ImportError, AttributeError):  # prefix_viewer's check then fails and the window is plain pandas
        return (_missing,) * 5


def _missing(*args: Any, **kwargs: Any) -> Any:
    raise AttributeError("pandas internals unavailable")


_single_manager, _placement, _column_from_mgr, _new_index, _new_array = _bind_internals()


def prefix_viewer(frame: pd.DataFrame) -> Callable[[int], pd.DataFrame]:
    """A function ``n -> frame.iloc[:n]`` (as a :class:`BarWindow`), as cheap as pandas allows.

    ``iloc`` costs ~12 µs per call, most of it in slicing the DatetimeIndex. Building the prefix from its
    parts (a view of each block, a DatetimeIndex over a view of the timestamps) costs ~4 µs with one block
    per dtype and keeps pandas' copy-on-write reference tracking, so a strategy that writes into its view
    never alters the engine's frame.
    """

    def by_iloc(n: int) -> pd.DataFrame:
        return frame.iloc[:n]

    try:
        fast = _internal_prefix_builder(frame)
        probe = min(len(frame), 3)
        expected, got = by_iloc(probe), fast(probe)
        if _same(got, expected):
            return _BuiltAhead(fast, len(frame))
    except _INTERNALS_CHANGED:
        pass
    log.debug("fast history views unavailable with this pandas; using iloc")
    return by_iloc


class _BuiltAhead:
    """``build(n)``, with the windows of the next few bars built in one go when bars are asked in order.

    A bar loop asks for window ``n``, then ``n + 1``...; between two asks the strategy runs, and building
    one window then costs two to three times what it costs in a tight loop (pandas' code and objects are out
    of the CPU's caches by then). Built :data:`_AHEAD` at a time, the windows are the same (each holds its own bars
    only: nothing later is visible in it, whenever it was built); any other order of asks builds directly.
    Several strategies ask for the same bar in turn: each gets a window of its own, built alone, and the
    windows ahead are kept (discarding them made every strategy after the first rebuild :data:`_AHEAD`).
    """

    __slots__ = ("_build", "_next", "_ready", "_total")

    def __init__(self, build: Callable[[int], pd.DataFrame], total: int) -> None:
        self._build = build
        self._total = total
        self._ready: deque[pd.DataFrame] = deque()
        self._next = -1  # the n the first ready window is for

    def __call__(self, n: int) -> pd.DataFrame:
        if n == self._next - 1:  # the bar just served, for another strategy
            return self._build(n)
        ready = self._ready
        if n != self._next or not ready:
            ready.clear()
            ready.extend(map(self._build, range(n, max(min(n + _AHEAD, self._total), n) + 1)))
        self._next = n + 1
        return ready.popleft()


def _same(got: pd.DataFrame, expected: pd.DataFrame) -> bool:
    """Whether the fast window is the ``iloc`` prefix, and its column reads (and their tails) pandas' own."""
    if not (
        got.equals(expected)
        and got.index.equals(expected.index)
        and got.columns.equals(expected.columns)
        and cast(Any, got.index).freq == cast(Any, expected.index).freq
    ):
        return False
    for label in (expected.columns[0], expected.columns[-1]):
        column = got[label]
        pairs = [(column, expected[label])]
        pairs += [(column.tail(n), expected[label].tail(n)) for n in (1, len(expected), len(expected) + 1)]
        for mine, theirs in pairs:
            if not (
                isinstance(mine, type(theirs))
                and mine.equals(theirs)
                and mine.name == theirs.name
                and mine.index.equals(theirs.index)
                and cast(Any, mine.index).freq == cast(Any, theirs.index).freq
            ):
                return False
    return True


def _column_positions(frame: pd.DataFrame) -> dict[Hashable, tuple[int, Hashable, int, int]]:
    """Label -> (position, label, block number, place in the block) for the labels ``[]`` may serve
    directly: all of them when they are unique (with duplicates pandas returns frames or raises, so
    nothing is served directly)."""
    columns = frame.columns
    if not columns.is_unique:
        return {}
    manager: Any = frame
    numbers, places = manager._mgr.blknos.tolist(), manager._mgr.blklocs.tolist()
    return {label: (k, label, numbers[k], places[k]) for k, label in enumerate(columns)}


def _internal_prefix_builder(frame: pd.DataFrame) -> Callable[[int], pd.DataFrame]:
    from pandas.core.arrays import DatetimeArray  # noqa: PLC0415 - internals, only if they exist
    from pandas.core.internals import BlockManager  # noqa: PLC0415

    index = frame.index
    if len(frame) == 0 or not isinstance(index, pd.DatetimeIndex):
        raise TypeError("needs a non-empty DatetimeIndex")
    # typed as Any: these are private pandas attributes the stubs do not declare
    array_cls: Any = DatetimeArray
    index_cls: Any = pd.DatetimeIndex
    window_cls: Any = BarWindow
    source: Any = index
    stamps = source._data._ndarray
    dtype, freq, name = index.dtype, index.freq, index.name
    blocks = cast(Any, frame)._mgr.blocks
    columns = frame.columns
    positions = _column_positions(frame)
    new_array, new_index = array_cls._simple_new, index_cls._simple_new
    from_blocks, from_mgr = BlockManager.from_blocks, window_cls._from_mgr

    def build(n: int) -> pd.DataFrame:
        prefix = slice(0, n)
        rows = new_index(new_array(stamps[prefix], dtype=dtype), name=name)
        if freq is not None:
            rows._freq = freq  # a prefix of a regular index keeps its frequency
        mgr = from_blocks([block.slice_block_rows(prefix) for block in blocks], [columns, rows])
        window = from_mgr(mgr, axes=mgr.axes)
        object.__setattr__(window, "_cq_columns", positions)
        object.__setattr__(window, "_cq_index", mgr.items)
        object.__setattr__(window, "_cq_blocks", mgr.blocks)
        return cast(pd.DataFrame, window)

    return build
