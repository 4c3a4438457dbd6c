"""The bars of one backtest, prepared once: numpy price arrays, sessions, and cheap history views.

Everything per-bar the engine needs is precomputed here so the bar loop does no pandas work of its
own: prices are read from numpy arrays by position (never by boolean masks), session ends are a
boolean array, and the strategy's history is a prefix view of one pre-built frame (O(1) per bar,
no copying of the growing history).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from itertools import accumulate, chain
from typing import Any

import numpy as np
import pandas as pd

from copilot_quant.backtest.interfaces import BAR_COLUMNS
from copilot_quant.backtest.window import consolidated, prefix_viewer
from copilot_quant.errors import DataError

__all__ = ["EPOCH", "BarCursor", "MarketData", "chunked", "iter_chunks", "iter_floats"]

log = logging.getLogger(__name__)

#: Trading sessions (for DAY-order expiry) are calendar days in the exchange's zone.
SESSION_TZ = "America/New_York"

_PRICE_COLUMNS = ("Open", "High", "Low", "Close")

#: Bar times are ``EPOCH + offset`` (:meth:`MarketData.offsets`).
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: Bars per chunk when per-bar Python objects are made lazily (timestamps, indicator values).
_CHUNK = 65_536


class BarCursor:
    """Which item an :func:`iter_chunks` iterator handed out last (-1 before the first).

    The fast loop gives one to the first iterator ``map`` reads for ``on_bar``: while ``on_bar`` runs for bar
    *i*, and until ``map`` asks for the next bar, :meth:`position` is *i* — read from the chunk's own list
    iterator (how many items it has left), so nothing is counted per bar.
    """

    __slots__ = ("end", "items")

    def __init__(self) -> None:
        #: One past the last item of the current chunk.
        self.end = 0
        #: The current chunk's list iterator: ``end - items.__length_hint__() - 1`` is the position (the
        #: fast loop reads it so, without calling :meth:`position`).
        self.items: Any = iter(())  # a list iterator (it has __length_hint__)

    def follow(self, items: Iterator[Any], end: int) -> None:
        """A new chunk starts: ``items`` (a list iterator) holds the items up to ``end`` (excluded)."""
        self.end, self.items = end, items

    def position(self) -> int:
        return int(self.end - self.items.__length_hint__() - 1)


def chunked(
    n: int, make: Callable[[int, int], list[Any]], size: int = _CHUNK, cursor: BarCursor | None = None
) -> Iterator[Any]:
    """``n`` items made ``size`` at a time: ``make(start, stop)`` lists items ``start`` to ``stop - 1``;
    ``cursor`` follows which one was handed out last."""

    def chunk(start: int) -> Iterator[Any]:
        stop = min(start + size, n)
        items = iter(make(start, stop))
        if cursor is not None:
            cursor.follow(items, stop)
        return items

    return chain.from_iterable(map(chunk, range(0, n, size)))


def iter_chunks(values: np.ndarray, size: int = _CHUNK, cursor: BarCursor | None = None) -> Iterator[Any]:
    """The items of ``values`` (its elements, or its rows when 2-D) as Python objects, converted ``size``
    at a time (bounded memory); ``cursor`` follows which one was handed out last."""
    return chunked(len(values), lambda start, stop: values[start:stop].tolist(), size, cursor)


def iter_floats(values: np.ndarray, cursor: BarCursor | None = None) -> Iterator[float]:
    """The elements of a 1-D array as Python floats, converted a chunk at a time (bounded memory)."""
    return iter_chunks(values, _CHUNK, cursor)


class MarketData:
    """Bars for a set of symbols, as the engine and the strategies see them.

    ``frame`` keeps the shape strategies get: flat ``Open, High, Low, Close, Volume`` columns for one
    symbol, ``(Metric, Symbol)`` MultiIndex columns for several. Price arrays are ``(bars, symbols)``.

    ``extra`` (a ``(Metric, Symbol)`` frame on the same index) adds symbols that orders can execute on but
    strategies do not see: the futures contracts a continuous symbol trades
    (:mod:`copilot_quant.backtest.rolls`). :attr:`symbols` lists every column of the price arrays;
    :attr:`visible` only those of ``frame``.
    """

    def __init__(
        self, frame: pd.DataFrame, symbols: list[str] | None = None, extra: pd.DataFrame | None = None
    ) -> None:
        # one block per dtype: a frame joined from per-symbol frames has one per symbol, which makes
        # every history view (and column read) slower
        frame = consolidated(_check_index(frame))
        if isinstance(frame.columns, pd.MultiIndex):
            present = list(dict.fromkeys(frame.columns.get_level_values(1)))
            self.symbols = [s for s in symbols if s in present] if symbols else present
            missing = [s for s in (symbols or []) if s not in present]
            if missing:
                raise DataError(f"the data has no columns for {missing}; it holds {present}")
            _require_columns(set(frame.columns.get_level_values(0)), "MultiIndex level 0")
            prices: dict[str, np.ndarray] = {
                m: frame[m][self.symbols].to_numpy(dtype=float) for m in _PRICE_COLUMNS
            }
        else:
            if not symbols or len(symbols) != 1:
                raise DataError(
                    "a flat bar frame holds one symbol; name it with symbols=['AAPL'], or pass a frame with "
                    "(Metric, Symbol) MultiIndex columns for several symbols"
                )
            self.symbols = [symbols[0]]
            _require_columns(set(frame.columns), "columns")
            prices = {m: frame[m].to_numpy(dtype=float).reshape(-1, 1) for m in _PRICE_COLUMNS}
        self.visible = list(self.symbols)
        self._extra = extra
        if extra is not None:
            more = list(dict.fromkeys(extra.columns.get_level_values(1)))
            extra_prices = {m: extra[m][more].to_numpy(dtype=float) for m in _PRICE_COLUMNS}
            prices = {m: np.hstack([prices[m], extra_prices[m]]) for m in _PRICE_COLUMNS}
            self.symbols = self.symbols + more
        _check_prices(prices, frame.index, self.symbols)
        self.frame = frame
        self.index: pd.DatetimeIndex = frame.index  # type: ignore[assignment]
        self.symbol_index = {s: k for k, s in enumerate(self.symbols)}
        self.opens = prices["Open"]
        self.highs = prices["High"]
        self.lows = prices["Low"]
        self.closes = prices["Close"]
        #: Closes carried forward over a symbol's missing bars: used only to *mark* positions.
        self.marks = (
            pd.DataFrame(self.closes).ffill().to_numpy() if np.isnan(self.closes).any() else self.closes
        )
        self.session_end = _session_ends(self.index)
        self._prefix: Callable[[int], pd.DataFrame] | None = None  # built on the first history() call
        self._deltas: np.ndarray | None = None  # time since the epoch, built on the first stamp() call

    def __len__(self) -> int:
        return len(self.index)

    def stamps(self) -> list[datetime]:
        """Bar timestamps as tz-aware (UTC) ``datetime`` objects (microsecond precision)."""
        return list(self.iter_stamps())

    def iter_stamps(self, cursor: BarCursor | None = None) -> Iterator[datetime]:
        """The same timestamps, made a chunk at a time so a million of them never sit in memory at once;
        ``cursor`` follows which one was handed out last (see :class:`BarCursor`).

        A running sum in C (``itertools.accumulate``): the first bar's time, then each bar's step from the
        bar before — on regular bars one shared ``timedelta`` — so a bar costs one datetime addition, about
        a third of ``epoch + timedelta`` per bar and a ninth of ``DatetimeIndex.to_pydatetime()``.
        """
        if not len(self.index):
            return iter(())
        return accumulate(chunked(len(self.index), _Steps(self.offsets()), _CHUNK, cursor))

    def stamp(self, bar: int) -> datetime:
        """The timestamp of ``bar``, equal to the one :meth:`iter_stamps` yields for it."""
        deltas = self._deltas
        if deltas is None:
            deltas = self.offsets()
        return EPOCH + deltas.item(bar)

    def offsets(self) -> np.ndarray:
        """Each bar's time since the epoch, ``timedelta64[us]`` (numpy makes the timedelta objects in C: much
        cheaper than ``timedelta(microseconds=...)``)."""
        deltas = self._deltas
        if deltas is None:
            deltas = self._deltas = (self.index.as_unit("ns").asi8 // 1000).astype("timedelta64[us]")
        return deltas

    def history(self, bar: int) -> pd.DataFrame:
        """Every bar up to and including ``bar`` — a view, never a copy of the history (a
        :class:`~copilot_quant.backtest.window.BarWindow`: a ``DataFrame`` with a quick ``[]``)."""
        prefix = self._prefix
        if prefix is None:  # the fast path never asks: it pays nothing for views
            prefix = self._prefix = prefix_viewer(self.frame)
        return prefix(bar + 1)

    def volumes(self) -> np.ndarray:
        """Traded volume per bar and symbol, ``(bars, symbols)``, NaN where unknown.

        Built on demand: only a volume participation limit needs it. Raises ``DataError`` when the data
        has no ``Volume`` for a symbol, since the limit could not be applied.
        """
        frame = self.frame if self._extra is None else self._with_extra()
        if isinstance(frame.columns, pd.MultiIndex):
            present = set(frame["Volume"].columns) if "Volume" in frame.columns.get_level_values(0) else set()
            missing = [s for s in self.symbols if s not in present]
            if not missing:
                return frame["Volume"][self.symbols].to_numpy(dtype=float)
        elif "Volume" in frame.columns:
            return frame["Volume"].to_numpy(dtype=float).reshape(-1, 1)
        else:
            missing = self.symbols
        raise DataError(
            f"volume_limit needs each bar's traded volume, but the data has no Volume for {missing}; "
            "add a Volume column or run without volume_limit"
        )

    def _with_extra(self) -> pd.DataFrame:
        frame = self.frame
        if not isinstance(frame.columns, pd.MultiIndex):
            frame = pd.concat({self.visible[0]: frame}, axis=1).swaplevel(axis=1)
        return pd.concat([frame, self._extra], axis=1)

    def close_frame(self) -> pd.DataFrame:
        """Close per symbol per bar (columns are symbols)."""
        return pd.DataFrame(self.closes, index=self.index, columns=pd.Index(self.symbols))


class _Steps:
    """The items whose running sum is the bars' times (:meth:`MarketData.iter_stamps`), a chunk at a time:
    the first bar's ``datetime``, then for each later bar its ``timedelta`` from the bar before. The usual
    step (the median of the first ones) is one shared object; numpy makes the others."""

    __slots__ = ("_first", "_steps", "_usual", "_usual_step")

    def __init__(self, offsets: np.ndarray) -> None:
        self._first = EPOCH + offsets.item(0)
        self._steps = np.diff(offsets.astype(np.int64))  # microseconds from each bar to the next
        usual = int(np.median(self._steps[:1001])) if len(self._steps) else 0
        self._usual, self._usual_step = usual, timedelta(microseconds=usual)

    def __call__(self, start: int, stop: int) -> list[Any]:
        head: list[Any] = [self._first] if start == 0 else []
        steps = self._steps[max(start - 1, 0) : stop - 1]  # into bars max(start, 1) .. stop - 1
        odd = np.flatnonzero(steps != self._usual)
        if 4 * len(odd) > len(steps):  # irregular bars: numpy makes every step
            return head + steps.astype("timedelta64[us]").tolist()
        items = head + [self._usual_step] * len(steps)
        at = (odd + len(head)).tolist()
        for j, step in zip(at, steps[odd].astype("timedelta64[us]").tolist(), strict=True):
            items[j] = step
        return items


def _check_index(frame: pd.DataFrame) -> pd.DataFrame:
    index = frame.index
    if not isinstance(index, pd.DatetimeIndex):
        raise DataError(
            f"bar data needs a DatetimeIndex, got {type(index).__name__}; set the timestamps as the index"
        )
    if index.tz is None:
        raise DataError(
            "bar timestamps are naive; localize them (e.g. frame.tz_localize('America/New_York')) — "
            "the engine works in UTC and will not guess a time zone"
        )
    if str(index.tz) != "UTC":
        frame = frame.tz_convert("UTC")
    if not frame.index.is_monotonic_increasing:
        raise DataError("bar timestamps are not sorted; sort them with frame.sort_index()")
    if frame.index.has_duplicates:
        dup = frame.index[frame.index.duplicated()][0]
        raise DataError(f"bar timestamps repeat (e.g. {dup}); drop duplicates before backtesting")
    return frame


def _require_columns(present: set[object], where: str) -> None:
    missing = [c for c in _PRICE_COLUMNS if c not in present]
    if missing:
        raise DataError(
            f"bar data lacks {missing} in its {where}; it needs {list(BAR_COLUMNS)} (Volume optional)"
        )


def _check_prices(prices: dict[str, np.ndarray], index: pd.Index, symbols: list[str]) -> None:
    """Refuse prices no fill could happen at, before the run rather than in the middle of it.

    A symbol may lack a bar (all four prices NaN: e.g. before it listed); anything else must be a
    positive, finite, consistent bar. Providers validate their bars; this catches frames passed as
    ``run(data=...)`` and third-party feeds.
    """
    if _plainly_valid(prices):  # the usual case, in a few passes without copies
        return
    stacked = np.stack([prices[m] for m in _PRICE_COLUMNS])  # (4, bars, symbols)
    nan = np.isnan(stacked)
    problems = (
        (nan.any(axis=0) & ~nan.all(axis=0), "some prices missing (Open/High/Low/Close must all be given)"),
        (
            (stacked <= 0).any(axis=0) | np.isinf(stacked).any(axis=0),
            "prices that are not positive and finite",
        ),
        (prices["High"] < prices["Low"], "High < Low"),
    )
    for bad, what in problems:
        if bad.any():
            row, col = (int(v[0]) for v in np.nonzero(bad))
            raise DataError(
                f"bar data has {what}: {symbols[col]} at {index[row]} ({int(bad.sum())} bar(s)); "
                "fix or drop those rows (the data providers' validate_bars does this) before backtesting"
            )


def _plainly_valid(prices: dict[str, np.ndarray]) -> bool:
    """Whether every bar has all four prices, positive and finite, with High >= Low (no NaN at all)."""
    with np.errstate(invalid="ignore"):
        for values in prices.values():
            low, high = values.min(initial=np.inf), values.max(initial=0.0)  # NaN propagates: not plain
            if not (low > 0 and high < np.inf):
                return False
        return bool((prices["High"] >= prices["Low"]).all())


def _session_ends(index: pd.DatetimeIndex) -> np.ndarray:
    """``True`` at the last bar of each trading day (exchange-zone calendar day)."""
    n = len(index)
    if n == 0:
        return np.zeros(0, dtype=bool)
    # New York's UTC offset is a whole number of hours and changes only on a whole UTC hour, so its
    # midnight is a UTC hour boundary: a day can end only at the last bar of a UTC hour. The wall-clock date
    # is looked up once per hour the bars touch (a few thousand for a million minute bars), not per bar.
    hours = index.as_unit("ns").asi8 // _HOUR
    lasts = np.flatnonzero(hours[1:] != hours[:-1])  # each hour's last bar but the final hour's (sorted bars)
    starts = np.concatenate((hours[:1], hours[lasts + 1])) * _HOUR  # each hour the bars touch, in order
    local = pd.DatetimeIndex(starts, tz="UTC").tz_convert(SESSION_TZ).tz_localize(None).as_unit("ns").asi8
    days = local // _DAY
    ends = np.zeros(n, dtype=bool)
    ends[lasts[days[1:] != days[:-1]]] = True
    ends[-1] = True
    return ends


_HOUR = 3_600_000_000_000  # nanoseconds
_DAY = 24 * _HOUR
