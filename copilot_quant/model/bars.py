"""The bar frame's shape, shared by every data feed: its columns, the supported intervals, and how
per-symbol frames join into one ``(Metric, Symbol)`` frame."""

from __future__ import annotations

import pandas as pd

__all__ = ["BAR_COLUMNS", "SUPPORTED_INTERVALS", "combine_symbols"]

#: Columns every bar frame carries, in this order.
BAR_COLUMNS: tuple[str, ...] = ("Open", "High", "Low", "Close", "Volume")

#: Interval strings understood by every data feed, mapped to a pandas offset alias.
SUPPORTED_INTERVALS: dict[str, str] = {
    "1m": "1min",
    "2m": "2min",
    "5m": "5min",
    "15m": "15min",
    "30m": "30min",
    "1h": "1h",
    "1d": "1D",
    "1wk": "1W",
    "1mo": "1MS",
}


def combine_symbols(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Join per-symbol bar frames into one frame with ``(Metric, Symbol)`` MultiIndex columns."""
    if not frames:
        return pd.DataFrame(columns=pd.MultiIndex.from_tuples([], names=["Metric", "Symbol"]))
    # sort=True: the union of the symbols' timestamps, in time order (pandas 3 warns without it)
    combined = pd.concat(frames, axis=1, names=["Symbol", "Metric"], sort=True)
    combined = combined.swaplevel(0, 1, axis=1)
    metrics = [m for m in BAR_COLUMNS if m in combined.columns.get_level_values(0)]
    extra = [m for m in dict.fromkeys(combined.columns.get_level_values(0)) if m not in metrics]
    order = pd.MultiIndex.from_product([metrics + extra, list(frames)], names=["Metric", "Symbol"])
    return combined.reindex(columns=order).sort_index()
