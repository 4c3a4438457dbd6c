"""The tick grid and the bid/ask spread, shared by the backtest and the simulated IB Gateway.

**Tick grid.** US stocks trade on a grid of 0.01 at $1 and above and 0.0001 below (Reg NMS rule 612,
IB's ``minTick``). :func:`to_grid` puts a price on it (to the nearest tick); :func:`grid_frame` does the
same to a bar frame's Open/High/Low/Close. The gateway always prints on the grid; the backtest puts its
bars on the grid when a spread model is on, so both walk the same prices. Futures and forex pairs have
their own fixed tick (:attr:`~copilot_quant.model.instruments.Instrument.tick_size`: 0.25 for MES,
0.00005 for EUR.USD); every function here takes it as ``tick`` (None: the stock grid above, which
:func:`on_tick` and :func:`tick_at` fall back to), so a future's spread is ``N × 0.25`` and its quotes
and midpoints are on its own grid (a midpoint may be half a tick). A pair has no trades: its bars are
midpoints, and ``'auto'`` estimates its width from them alike (at least one tick).

**Spread, bar by bar.** Every bar of every symbol gets a width in ticks before it opens
(:meth:`SpreadModel.widths`): a fixed number of ticks, ``bps`` of the previous close, or — the default,
:data:`DEFAULT_SPREAD` — estimated from the bars before it with Corwin and Schultz's high-low estimator
(:mod:`copilot_quant.model.spread_estimate`), never below one tick. The width of bar ``t`` uses only bars
up to ``t - 1``, so it is causal and the same in the backtest and at the gateway. Around every trade at
``last`` the quote is (:func:`quote_at`): the bid ``width // 2`` ticks under the last (on the grid), the
ask ``width`` ticks above the bid. A one-tick spread quotes the last as the bid and one tick above as the
ask; the midpoint is then half a tick above the last (MIDPOINT bars are on the half-tick, as at IB).

**Fills** (the rules in :mod:`copilot_quant.model.fill_rules` take the bar's width):

* a market order executes at the touch (:func:`touch_at`): buys at the ask, sells at the bid; then the
  slippage model moves it further (``slippage=0.0005`` keeps its meaning: 5 bps worse than the touch), on
  the grid (:meth:`SpreadSlippage.slip`);
* a limit order fills when the other side of the quote crosses it (:func:`side_path`): a buy limit when
  the ask is at or below its limit, a sell limit when the bid is at or above it — at the limit, or at the
  better quote after a gap;
* stops trigger on the last trade, as IB triggers simulated stops on US stocks by default ("Last"; its
  double bid/ask method is for OTC stocks and US options), then execute at the touch like a market order.

**What it costs.** A round trip pays about one spread: with one tick, a buy pays the bar's price plus one
tick and a sell gets the bar's price, so 100 shares of a $50 stock round-trip for $1 more than without a
spread (2 bps of the notional), on top of commission and slippage.

**On by default** in the backtest (``BacktestEngine(spread=...)``), ``run_parity`` and the CLI commands
(``--spread auto``); ``spread=None`` / ``--spread off`` turns it off (the backtrader agreement tests do:
backtrader has no spread). A :class:`SpreadSlippage` (``with_spread(slippage, model)``) carries the model
with the slippage model, which is how the backtest and the gateway share one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from copilot_quant.errors import ConfigError
from copilot_quant.model.costs import NoSlippage, SlippageModel
from copilot_quant.model.orders import OrderSide
from copilot_quant.model.spread_estimate import DEFAULT_WINDOW, rolling_estimate

__all__ = [
    "AUTO",
    "DEFAULT_SPREAD",
    "SpreadModel",
    "SpreadSlippage",
    "after_touch",
    "grid_array",
    "grid_frame",
    "limit_on_grid",
    "midpoint_at",
    "min_tick",
    "on_tick",
    "quote_at",
    "resolve_spread",
    "side_path",
    "spread_model",
    "spread_of",
    "tick_at",
    "to_grid",
    "touch_at",
    "width_table",
    "with_spread",
]

_CENT = 0.01
_SUB_PENNY = 0.0001
_OHLC = ("Open", "High", "Low", "Close")
#: The spread option's default: the width estimated from the bars (:data:`DEFAULT_SPREAD`).
AUTO = "auto"


def min_tick(price: float) -> float:
    """The price increment of a US stock trading at ``price``: 0.01 at $1 and above, 0.0001 below."""
    return _CENT if round(price, 4) >= 1.0 else _SUB_PENNY


def to_grid(price: float) -> float:
    """``price`` rounded to the nearest tick (idempotent: a price on the grid stays as it is)."""
    q = round(float(price), 4)
    return round(q, 2) if q >= 1.0 else q


def on_tick(price: float, tick: float | None = None) -> float:
    """``price`` to the nearest tick of ``tick`` (None: :func:`to_grid`, the US stock grid)."""
    if tick is None:
        return to_grid(price)
    return round(round(float(price) / tick) * tick, 10)


def tick_at(price: float, tick: float | None = None) -> float:
    """The tick at ``price``: ``tick`` itself, or the US stock grid's (:func:`min_tick`) when None."""
    return min_tick(price) if tick is None else tick


def grid_array(values: np.ndarray) -> np.ndarray:
    """:func:`to_grid` on every element of an array."""
    q = np.round(values.astype(float), 4)
    return np.where(q >= 1.0, np.round(q, 2), q)


def grid_frame(
    frame: pd.DataFrame,
    tick_of: Callable[[str], float | None] | None = None,
    symbol: str | None = None,
) -> pd.DataFrame:
    """A copy of a bar frame with every Open/High/Low/Close on the tick grid (flat or per-symbol columns):
    each symbol's own tick from ``tick_of(symbol)`` (a future's, a pair's), the US stock grid where it
    gives None or is not given. ``symbol`` names a flat frame's symbol."""
    out = frame.copy()
    for column in out.columns:
        # (Metric, Symbol) columns: a level names the metric (a symbol may not be called "Close")
        if isinstance(column, tuple):
            name = next((c for c in column if c in _OHLC), None)
            owner = next((str(c) for c in column if c != name), None)
        else:
            name, owner = column, symbol
        if name not in _OHLC:
            continue
        tick = tick_of(owner) if tick_of is not None and owner is not None else None
        values = out[column].to_numpy(dtype=float)
        out[column] = grid_array(values) if tick is None else np.round(np.round(values / tick) * tick, 10)
    return out


@dataclass(frozen=True, slots=True)
class SpreadModel:
    """Widths of the quoted spread, in ticks, bar by bar.

    ``ticks`` is the floor (and the whole width when nothing else is asked); ``bps`` a width in basis
    points of the previous close; ``estimate`` adds Corwin–Schultz's estimate over the last ``window``
    bars (:mod:`copilot_quant.model.spread_estimate`). A bar's width is the largest of these.
    """

    ticks: int = 1
    bps: float = 0.0
    estimate: bool = False
    window: int = DEFAULT_WINDOW

    def __post_init__(self) -> None:
        if isinstance(self.ticks, bool) or not isinstance(self.ticks, int) or self.ticks < 1:
            raise ConfigError(f"spread ticks must be a whole number >= 1, got {self.ticks!r}")
        if not math.isfinite(self.bps) or not 0 <= self.bps < 1000:
            raise ConfigError(f"spread bps must be a number in [0, 1000), got {self.bps!r} (5 = 0.05 %)")
        if (
            isinstance(self.window, bool)
            or not isinstance(self.window, int)
            or not 2 <= self.window <= 10_000
        ):
            raise ConfigError(
                f"spread window must be a whole number of bars in [2, 10000], got {self.window!r}"
            )

    @classmethod
    def from_bars(cls, window: int = DEFAULT_WINDOW, ticks: int = 1) -> SpreadModel:
        """The data-derived model (the default): Corwin–Schultz over ``window`` bars, at least ``ticks``."""
        return cls(ticks=ticks, estimate=True, window=window)

    def width(self, price: float, tick: float | None = None) -> int:
        """The width, in ticks (of ``tick``; None: the US stock grid), at ``price`` without bar history
        (one price, e.g. a direct execution): the floor, or ``bps`` of ``price``."""
        if not self.bps:
            return self.ticks
        return max(self.ticks, _ticks_of(abs(price) * self.bps / 10_000, price, tick))

    def widths(
        self,
        opens: np.ndarray,
        highs: np.ndarray,
        lows: np.ndarray,
        closes: np.ndarray,
        tick: float | None = None,
    ) -> np.ndarray:
        """The width (ticks of ``tick``, None: the US stock grid; int64) of every bar, each from the bars
        before it only."""
        return self._widths(opens, highs, lows, closes, tick)[:-1]

    def next_width(
        self,
        opens: np.ndarray,
        highs: np.ndarray,
        lows: np.ndarray,
        closes: np.ndarray,
        tick: float | None = None,
    ) -> int:
        """The width of the bar after these bars (the last ``window + 1`` of them decide it)."""
        keep = self.window + 1
        return int(self._widths(opens[-keep:], highs[-keep:], lows[-keep:], closes[-keep:], tick)[-1])

    def _widths(
        self,
        opens: np.ndarray,
        highs: np.ndarray,
        lows: np.ndarray,
        closes: np.ndarray,
        tick: float | None = None,
    ) -> np.ndarray:
        """Widths of bars ``0 .. n`` (bar ``n``: the next one); bar ``t``'s from bars before ``t``."""
        n = len(closes)
        out = np.full(n + 1, self.ticks, dtype=np.int64)
        if n == 0 or not (self.bps or self.estimate):
            return out
        # each bar is priced at the close before it (the first at its own open, known when it opens)
        ref = np.empty(n + 1)
        ref[0] = float(opens[0])
        ref[1:] = np.asarray(closes, dtype=float)
        fraction = np.full(n + 1, self.bps / 10_000)
        if self.estimate:  # the estimate known after bar t prices bar t + 1
            known = rolling_estimate(highs, lows, closes, self.window)
            fraction[1:] = np.fmax(fraction[1:], np.nan_to_num(known, nan=0.0))
        with np.errstate(invalid="ignore"):
            usable = (fraction > 0) & np.isfinite(ref) & (ref > 0)
        price = np.where(usable, ref, 1.0)
        # a future's or a pair's own tick (a pair's bars are midpoints: the estimate reads them alike)
        size = np.where(grid_array(price) >= 1.0, _CENT, _SUB_PENNY) if tick is None else tick
        ticks = np.floor(fraction * price / size + 0.5)  # to the nearest tick, half up
        out[usable] = np.maximum(self.ticks, ticks[usable]).astype(np.int64)
        return out

    def quote(self, last: float, width: int | None = None, tick: float | None = None) -> tuple[float, float]:
        """``(bid, ask)`` around a trade at ``last``, ``width`` ticks of ``tick`` wide (None: :meth:`width`
        at ``last``; ``tick`` None: the US stock grid)."""
        return quote_at(last, self.width(on_tick(last, tick), tick) if width is None else width, tick)

    def touch(
        self, last: float, side: OrderSide, width: int | None = None, tick: float | None = None
    ) -> float:
        """Where a market order executes against a trade at ``last``: buys at the ask, sells at the bid."""
        bid, ask = self.quote(last, width, tick)
        return ask if side is OrderSide.BUY else bid

    def label(self) -> str:
        if self.estimate:
            return f"estimated from the bars (Corwin-Schultz over {self.window} bars, min {self.ticks} tick)"
        return f"{self.bps:g}bps (min {self.ticks} tick)" if self.bps else f"{self.ticks} tick(s)"


#: The default: the width estimated from the bars (Corwin–Schultz over 20 bars), at least one tick.
DEFAULT_SPREAD = SpreadModel.from_bars()


def _ticks_of(distance: float, price: float, tick: float | None = None) -> int:
    """A price distance at ``price`` in whole ticks (to the nearest, half up)."""
    return math.floor(distance / tick_at(on_tick(price, tick), tick) + 0.5)


def quote_at(last: float, width: int, tick: float | None = None) -> tuple[float, float]:
    """``(bid, ask)`` around a trade at ``last`` with a spread of ``width`` ticks of ``tick`` (None: the
    US stock grid; a future's or a pair's own tick otherwise): on that grid, and
    ``bid <= on_tick(last) < ask``. Width 0 (no spread model): ``(last, last)``, as given.

    Depends on ``last`` only through ``on_tick(last, tick)``, so off-grid data and the same data put on
    the grid quote alike (which keeps the backtest and the gateway in agreement).
    """
    if width <= 0:
        return last, last
    mid = on_tick(last, tick)
    size = tick_at(mid, tick)
    bid = max(on_tick(mid - (width // 2) * size, tick), size)
    return bid, on_tick(bid + width * size, tick)


def limit_on_grid(price: float, side: OrderSide, tick: float | None = None) -> float:
    """A limit fill at ``price`` on the tick grid (``tick``; None: the US stock grid), never worse than
    ``price``: a buy's rounded down, a sell's up (an off-grid limit, which IB would refuse with error 110,
    fills at the grid price within it)."""
    size = tick_at(price, tick)
    steps = price / size
    whole = math.floor(steps + 1e-6) if side is OrderSide.BUY else math.ceil(steps - 1e-6)
    return on_tick(whole * size, tick)


def stop_trade_at(trigger: float, side: OrderSide, width: int, tick: float | None = None) -> float:
    """The trade that triggers a stop of ``side`` at ``trigger`` when trades print on the tick grid (a
    spread on, ``width`` > 0): the first grid price at or beyond the level — a sell stop's rounded down, a
    buy stop's up. An off-grid level (IB refuses such a stop price with error 110, but a trailing stop's
    level often is one) so never fills on the wrong side of itself. Without a spread: ``trigger``."""
    if width <= 0:
        return trigger
    return limit_on_grid(trigger, OrderSide.BUY if side is OrderSide.SELL else OrderSide.SELL, tick)


def touch_at(last: float, side: OrderSide, width: int, tick: float | None = None) -> float:
    """The side of the quote an order of ``side`` trades against: the ask for a buy, the bid for a sell."""
    if width <= 0:
        return last
    bid, ask = quote_at(last, width, tick)
    return ask if side is OrderSide.BUY else bid


def midpoint_at(last: float, width: int, tick: float | None = None) -> float:
    """The quote's midpoint around a trade at ``last`` (on the half-tick grid; the trade without a spread)."""
    if width <= 0:
        return on_tick(last, tick)
    bid, ask = quote_at(last, width, tick)
    return round((bid + ask) / 2.0, 10)


def side_path(
    path: Sequence[float], side: OrderSide, width: int, tick: float | None = None
) -> Sequence[float]:
    """``path`` (trades) as an order of ``side`` meets it: each trade's ask for a buy, its bid for a sell
    (the path itself without a spread). The quote moves with the trade, so a level this path crosses
    continuously is crossed continuously by the quote too."""
    if width <= 0:
        return path
    return tuple(touch_at(p, side, width, tick) for p in path)


@dataclass(frozen=True, slots=True)
class SpreadSlippage:
    """A slippage model with a spread: fills at the touch of ``spread``, then ``inner``, on the tick grid.

    The fill rules take the touch with each bar's width and then call :meth:`slip`; :meth:`adjust` (the
    plain slippage interface, one price without bar history) takes the touch at :meth:`SpreadModel.width`.
    """

    spread: SpreadModel
    inner: SlippageModel = field(default_factory=NoSlippage)

    def adjust(self, price: float, side: OrderSide) -> float:
        """The plain slippage interface: a US stock's touch and grid (see :meth:`adjust_on` for others)."""
        return self.adjust_on(price, side, None)

    def adjust_on(self, price: float, side: OrderSide, tick: float | None) -> float:
        """:meth:`adjust` in ticks of ``tick`` (a future's 0.25, a pair's 0.00005; None: the stock grid)."""
        return self.slip(self.spread.touch(price, side, tick=tick), side, tick)

    def slip(self, touch: float, side: OrderSide, tick: float | None = None) -> float:
        """Move a price at the touch by the inner slippage, onto the grid (``tick``; None: the stocks')."""
        return on_tick(self.inner.adjust(touch, side), tick)

    @staticmethod
    def on_grid(price: float, side: OrderSide, tick: float | None = None) -> float:
        """A fill without slippage (a limit order's) on the tick grid: :func:`limit_on_grid`."""
        return limit_on_grid(price, side, tick)


def width_table(  # noqa: PLR0917 - the model, the four price arrays, then the ticks
    model: SpreadModel,
    opens: np.ndarray,
    highs: np.ndarray,
    lows: np.ndarray,
    closes: np.ndarray,
    ticks: Sequence[float | None] | None = None,
    prior: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """The width of every bar of every symbol, ``(bars, symbols)`` int64, from ``(bars, symbols)`` price
    arrays, in ticks of each symbol's ``ticks`` entry (None: the US stock grid); each symbol's widths come
    from its own bars (rows where it has none, NaN, are skipped, so a symbol quotes as it would alone — as
    the gateway replays it). ``prior`` (open, high, low, close arrays of the same symbols, the bars before
    the first row) lets the first rows' widths be estimated from the bars before them."""
    out = np.full(closes.shape, model.ticks, dtype=np.int64)
    for k in range(closes.shape[1]):
        rows = np.flatnonzero(np.isfinite(closes[:, k]) & np.isfinite(opens[:, k]))
        tick = None if ticks is None else ticks[k]
        if not len(rows):
            continue
        series = [opens[rows, k], highs[rows, k], lows[rows, k], closes[rows, k]]
        if prior is not None and k < prior[3].shape[1]:
            before = np.flatnonzero(np.isfinite(prior[3][:, k]) & np.isfinite(prior[0][:, k]))
            series = [np.concatenate([p[before, k], s]) for p, s in zip(prior, series, strict=True)]
        o, h, lo, c = series
        out[rows, k] = model.widths(o, h, lo, c, tick)[-len(rows) :]
    return out


def spread_of(slippage: object) -> SpreadModel | None:
    """The spread model inside a slippage model, or None when it has none (spread off)."""
    return slippage.spread if isinstance(slippage, SpreadSlippage) else None


def after_touch(slippage: SlippageModel) -> Callable[[float, OrderSide, float | None], float]:
    """How ``slippage`` moves a price the fill rules already took at the touch, onto the grid of the
    tick given (None: the stocks'); its plain ``adjust`` when it carries no spread: then the fill rules'
    price is the trade itself."""
    if isinstance(slippage, SpreadSlippage):
        return slippage.slip

    def plain(price: float, side: OrderSide, tick: float | None = None) -> float:
        return slippage.adjust(price, side)

    return plain


def with_spread(slippage: SlippageModel, spread: SpreadModel | None) -> SlippageModel:
    """``slippage`` with fills at the touch of ``spread`` (unchanged when ``spread`` is None)."""
    if spread is None:
        return slippage
    if isinstance(slippage, SpreadSlippage):
        raise ConfigError("the slippage model already has a spread; give the spread once")
    return SpreadSlippage(spread, slippage)


def resolve_spread(slippage: SlippageModel, spread: object = AUTO) -> SlippageModel:
    """``slippage`` with the spread option applied (``None``/``'off'``: as it is). A spread already inside
    ``slippage`` wins over the default (``'auto'``); any other ``spread`` given with it is refused."""
    if isinstance(slippage, SpreadSlippage):
        if isinstance(spread, str) and spread.strip().lower() == AUTO:
            return slippage
        raise ConfigError(
            f"the slippage model already has a spread ({slippage.spread.label()}) and spread={spread!r} "
            "was given too; give the spread once"
        )
    return with_spread(slippage, spread_model(spread))


def spread_model(value: object) -> SpreadModel | None:
    """Parse a spread option: ``'auto'`` (estimated from the bars, the default), None/``'off'``/``'none'``/
    ``0`` (off), a tick count (``1``, ``'2'``), ``'5bps'``, or a :class:`SpreadModel`."""
    if value is None or isinstance(value, SpreadModel):
        return value
    text = str(value).strip().lower()
    if text in ("", "off", "none", "0"):
        return None
    if text == AUTO:
        return DEFAULT_SPREAD
    example = "use auto (estimated from the bars), a tick count such as 1, a width such as 5bps, or off"
    try:
        if text.endswith("bps"):
            return SpreadModel(ticks=1, bps=float(text[:-3]))
        number = float(text)
    except ValueError:
        raise ConfigError(f"spread {value!r} is not understood; {example}") from None
    if number != int(number):
        raise ConfigError(f"spread {value!r}: ticks must be whole; {example}")
    return SpreadModel(ticks=int(number))
