"""The tick grid and the bid/ask spread, shared by the backtest broker and the simulated IB Gateway.

**Tick grid.** US stocks trade on a grid of 0.01 at $1 and above and 0.0001 below (Reg NMS rule 612,
IB's ``minTick``). :func:`to_grid` puts a price on it (to the nearest tick); :func:`grid_frame` does the
same to a bar frame's Open/High/Low/Close. The gateway always prints on the grid; the backtest puts its
bars on the grid when a spread model is on, so both walk the same prices.

**Spread.** :class:`SpreadModel` quotes a bid and an ask around the last trade: ``max(ticks, bps of the
price)`` ticks wide (at least one tick), the bid ``width // 2`` ticks under the last (on the grid), the ask
``width`` ticks above the bid. With the default one tick the last trade is at the bid and the ask is one
tick above: a buy pays one tick more than the bar's price, a sell gets the bar's price — a round trip
costs one tick per share (1 cent on a stock above $1, about 2 bps of a $50 stock), on top of commission
and slippage.

**Fills at the touch.** :class:`SpreadSlippage` wraps a slippage model: a market order (or a triggered
stop) executes at the touch — buys at the ask, sells at the bid — then the wrapped slippage moves it
further (``slippage=0.0005`` keeps its meaning: 5 bps worse than the touch), and the result is put on the
grid. It *is* a :class:`~copilot_quant.model.costs.SlippageModel`, so the backtest and the gateway, which
already share the slippage object, share the spread too; both brokers also put limit fills (the limit,
or the open on a gap) on the grid with :meth:`SpreadSlippage.on_grid`.

The spread is **off by default** (``spread=None``): backtests, the guide's examples and the backtrader
agreement tests keep their prices. Turn it on with ``with_spread(slippage, SpreadModel())`` or the CLI's
``--spread 1`` (ticks) / ``--spread 5bps``.

Limits: a limit order still fills when the *last* trade reaches its price (not when the touch crosses
it), at its limit; only market orders and triggered stops pay the spread.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from copilot_quant.errors import ConfigError
from copilot_quant.model.costs import NoSlippage, SlippageModel
from copilot_quant.model.orders import OrderSide

__all__ = [
    "SpreadModel",
    "SpreadSlippage",
    "grid_array",
    "grid_frame",
    "min_tick",
    "spread_model",
    "spread_of",
    "to_grid",
    "with_spread",
]

_CENT = 0.01
_SUB_PENNY = 0.0001
_OHLC = ("Open", "High", "Low", "Close")


def min_tick(price: float) -> float:
    """The price increment of a US stock trading at ``price``: 0.01 at $1 and above, 0.0001 below."""
    return _CENT if round(price, 4) >= 1.0 else _SUB_PENNY


def to_grid(price: float) -> float:
    """``price`` rounded to the nearest tick (idempotent: a price on the grid stays as it is)."""
    q = round(float(price), 4)
    return round(q, 2) if q >= 1.0 else q


def grid_array(values: np.ndarray) -> np.ndarray:
    """:func:`to_grid` on every element of an array."""
    q = np.round(values.astype(float), 4)
    return np.where(q >= 1.0, np.round(q, 2), q)


def grid_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of a bar frame with every Open/High/Low/Close on the tick grid (flat or per-symbol columns)."""
    out = frame.copy()
    for column in out.columns:
        name = column[-1] if isinstance(column, tuple) else column
        if name in _OHLC:
            out[column] = grid_array(out[column].to_numpy())
    return out


@dataclass(frozen=True, slots=True)
class SpreadModel:
    """A quoted spread of ``max(ticks, bps × price)`` ticks (at least one), around the last trade."""

    ticks: int = 1
    bps: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.ticks, bool) or not isinstance(self.ticks, int) or self.ticks < 1:
            raise ConfigError(f"spread ticks must be a whole number >= 1, got {self.ticks!r}")
        if not math.isfinite(self.bps) or not 0 <= self.bps < 1000:
            raise ConfigError(f"spread bps must be a number in [0, 1000), got {self.bps!r} (5 = 0.05 %)")

    def width(self, price: float) -> int:
        """The spread, in ticks, at ``price``."""
        if not self.bps:
            return self.ticks
        return max(self.ticks, round(abs(price) * self.bps / 10_000 / min_tick(price)))

    def quote(self, last: float) -> tuple[float, float]:
        """``(bid, ask)`` around a trade at ``last``: on the grid, ``bid <= to_grid(last) < ask``, >= 1 tick apart.

        Depends on ``last`` only through ``to_grid(last)``, so off-grid data and the same data put on the
        grid quote alike (which keeps the backtest and the gateway in agreement).
        """
        mid = to_grid(last)
        tick = min_tick(mid)
        width = self.width(mid)
        bid = max(to_grid(mid - (width // 2) * tick), tick)
        return bid, to_grid(bid + width * tick)

    def touch(self, last: float, side: OrderSide) -> float:
        """Where a market order executes against a trade at ``last``: buys at the ask, sells at the bid."""
        bid, ask = self.quote(last)
        return ask if side is OrderSide.BUY else bid

    def label(self) -> str:
        return f"{self.bps:g}bps (min {self.ticks} tick)" if self.bps else f"{self.ticks} tick(s)"


@dataclass(frozen=True, slots=True)
class SpreadSlippage:
    """A slippage model that fills at the touch of ``spread``, then applies ``inner``, on the tick grid."""

    spread: SpreadModel
    inner: SlippageModel = field(default_factory=NoSlippage)

    def adjust(self, price: float, side: OrderSide) -> float:
        return to_grid(self.inner.adjust(self.spread.touch(price, side), side))

    @staticmethod
    def on_grid(price: float) -> float:
        """A fill without slippage (a limit order's) on the tick grid."""
        return to_grid(price)


def spread_of(slippage: object) -> SpreadModel | None:
    """The spread model inside a slippage model, or None when it has none (spread off)."""
    return slippage.spread if isinstance(slippage, SpreadSlippage) else None


def with_spread(slippage: SlippageModel, spread: SpreadModel | None) -> SlippageModel:
    """``slippage`` with fills at the touch of ``spread`` (unchanged when ``spread`` is None)."""
    if spread is None:
        return slippage
    if isinstance(slippage, SpreadSlippage):
        raise ConfigError("the slippage model already has a spread; give the spread once")
    return SpreadSlippage(spread, slippage)


def spread_model(value: object) -> SpreadModel | None:
    """Parse a spread option: None/``'off'``/``0`` (off), a tick count (``1``, ``'2'``), ``'5bps'``, or a model."""
    if value is None or isinstance(value, SpreadModel):
        return value
    text = str(value).strip().lower()
    if text in ("", "off", "none", "0"):
        return None
    example = "use a tick count such as 1, a width such as 5bps, or off"
    try:
        if text.endswith("bps"):
            return SpreadModel(ticks=1, bps=float(text[:-3]))
        number = float(text)
    except ValueError:
        raise ConfigError(f"spread {value!r} is not understood; {example}") from None
    if number != int(number):
        raise ConfigError(f"spread {value!r}: ticks must be whole; {example}")
    return SpreadModel(ticks=int(number))
