"""The bars a parity run replays (:mod:`copilot_quant.parity`): the range's bars on each symbol's tick grid, a
continuous future's contracts, and the feed that serves exactly those bars to both runs and the gateway.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from copilot_quant.backtest.interfaces import IDataFeed
from copilot_quant.backtest.market import SESSION_TZ
from copilot_quant.data.dates import resolve_range, slice_range
from copilot_quant.errors import ConfigError, DataError
from copilot_quant.live.continuous import ContinuousSymbols
from copilot_quant.model.instruments import AssetClass, InstrumentRegistry
from copilot_quant.model.spread import grid_frame

__all__ = ["ReplayFeed", "bar_frames", "contract_frames", "on_tick_grid"]


class ReplayFeed(IDataFeed):
    """The exact bars of the range, served to the gateway (nothing before or after them exists)."""

    def __init__(self, frames: Mapping[str, pd.DataFrame]) -> None:
        super().__init__()
        self._frames = dict(frames)

    def symbols(self) -> list[str]:
        return sorted(self._frames)

    def get_historical_data(
        self,
        symbol: str,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        interval: str = "1d",
    ) -> pd.DataFrame:
        frame = self._frames.get(symbol.upper())
        if frame is None:
            raise DataError(f"the parity replay has no data for {symbol!r}")
        lo, hi = resolve_range(start_date, end_date)
        return slice_range(frame, lo, hi).copy()


def bar_frames(
    provider: IDataFeed, symbols: Sequence[str], start: Any, end: Any, interval: str
) -> tuple[dict[str, pd.DataFrame], pd.Timestamp, pd.Timestamp]:
    lo, hi = resolve_range(start, end)
    frames: dict[str, pd.DataFrame] = {}
    for symbol in symbols:
        frame = provider.get_historical_data(symbol, start_date=lo, end_date=hi, interval=interval)
        frame = slice_range(frame, lo, hi)
        if frame.empty:
            raise DataError(f"no {interval} bars for {symbol} between {start} and {end}; widen the range")
        # on the tick grid, as the gateway prints them: both runs then walk the same prices (a future's or
        # a pair's own tick, the stocks' cent grid otherwise)
        frames[symbol] = on_tick_grid(symbol, frame[["Open", "High", "Low", "Close", "Volume"]].astype(float))
    first = min(f.index[0] for f in frames.values())
    last = max(f.index[-1] for f in frames.values())
    return frames, first, last


def contract_frames(
    provider: IDataFeed,
    names: Sequence[str],
    first: pd.Timestamp,
    last: pd.Timestamp,
    *,
    interval: str,
    roll_days: int,
) -> dict[str, pd.DataFrame]:
    """The bars of the contracts a continuous future (``MES``) trades in the range, and of the next one: the
    backtest executes on them, the gateway serves them and the live engine splices ``MES`` from them."""
    days = [ts.tz_convert(SESSION_TZ).date() for ts in (first, last)]
    continuous = ContinuousSymbols(InstrumentRegistry(reference=days[0]), names, roll_days)
    if not continuous:
        return {}
    frames: dict[str, pd.DataFrame] = {}
    for contract in continuous.contracts(days[0], days[1]):
        frame = slice_range(provider.get_historical_data(contract, first, last, interval), first, last)
        frames[contract] = on_tick_grid(
            contract, frame[["Open", "High", "Low", "Close", "Volume"]].astype(float)
        )
    return frames


def on_tick_grid(symbol: str, bars: pd.DataFrame) -> pd.DataFrame:
    """``bars`` on ``symbol``'s tick grid as the gateway prints it: a future's or a pair's own tick (0.25
    for MES, 0.00005 for EUR.USD), the US stock grid for anything else."""
    try:
        inst = InstrumentRegistry().resolve(symbol)
    except ConfigError:
        inst = None
    if inst is None or inst.kind is AssetClass.STOCK:
        return grid_frame(bars)
    out = bars.copy()
    ohlc = ["Open", "High", "Low", "Close"]
    out[ohlc] = np.round(out[ohlc].to_numpy() / inst.tick_size) * inst.tick_size
    return out
