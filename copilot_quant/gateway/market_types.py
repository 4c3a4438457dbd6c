"""The simulated market's values: a bar, a step of its intrabar path, a symbol's quote, and the path rule.

:mod:`copilot_quant.gateway.market` (which re-exports them) produces them; the handlers, the publisher, the
clocks and the history read them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

__all__ = ["Bar", "PricePoint", "Quote", "price_path"]


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar of one symbol; ``start`` is when it opened, ``end`` when it closed (its stamp)."""

    symbol: str
    start: pd.Timestamp
    end: pd.Timestamp
    open: float
    high: float
    low: float
    close: float
    volume: float
    #: The bar's bid/ask spread in ticks (0: no spread model).
    width: int = 0


@dataclass(frozen=True, slots=True)
class PricePoint:
    """One step of a bar's intrabar path: a trade at ``price`` with quotes around it."""

    symbol: str
    time: pd.Timestamp
    price: float
    bid: float
    ask: float
    size: float
    gap: bool = False  # the first price of a bar: the market may have jumped here from the last one
    #: The whole bar's traded volume (what a volume participation limit is a fraction of).
    bar_volume: float = math.nan
    #: The spread the quote has, in ticks (0: no spread model); the fills' touch uses it.
    width: int = 0


@dataclass(slots=True)
class Quote:
    """The latest market state of one symbol (what a market-data subscription shows)."""

    symbol: str
    last: float = math.nan
    bid: float = math.nan
    ask: float = math.nan
    bid_size: float = 0.0
    ask_size: float = 0.0
    last_size: float = 0.0
    volume: float = 0.0
    open: float = math.nan
    high: float = math.nan
    low: float = math.nan
    close: float = math.nan  # previous session's close
    time: pd.Timestamp | None = None
    session: pd.Timestamp | None = field(default=None, repr=False)


def price_path(open_: float, high: float, low: float, close: float) -> tuple[float, float, float, float]:
    """The shared intrabar path: open → low → high → close if close >= open, else open → high → low → close."""
    if close >= open_:
        return (open_, low, high, close)
    return (open_, high, low, close)
