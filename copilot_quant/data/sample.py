"""Real daily stock history that works offline: the Quandl WIKI prices shipped by ``bokeh-sampledata``.

Symbols and spans (public-domain data, NASDAQ/NYSE daily bars): AAPL, MSFT, IBM 2000-03-01 – 2013-03-01,
GOOG 2004-08-19 – 2013-03-01, FB 2012-05-18 – 2013-03-01. Each bar is stamped at its session's close
(16:00 New York, 13:00 on early-close days) in UTC.

Prices are **split- and dividend-adjusted by default** (``adjust=True``): Open, High, Low and Close are
scaled by ``Adj Close / Close`` and Volume by the inverse, so AAPL's 2:1 split of 2005-02-28 is not a 50%
crash and a position's value stays continuous. ``adjust=False`` gives the raw prices as traded that day
(use them to check fills against historical quotes, never to compute returns across a split).
"""

from __future__ import annotations

import functools
import importlib.resources
import logging
from typing import Any

import pandas as pd

from copilot_quant.data.base import BarProvider
from copilot_quant.data.calendars import daily_close_stamps
from copilot_quant.errors import DataUnavailableError

__all__ = ["SampleDataProvider"]

logger = logging.getLogger(__name__)

_NAMES = {
    "AAPL": ("Apple Inc.", "NASDAQ"),
    "FB": ("Facebook Inc. (now Meta Platforms)", "NASDAQ"),
    "GOOG": ("Google Inc. (now Alphabet)", "NASDAQ"),
    "IBM": ("International Business Machines", "NYSE"),
    "MSFT": ("Microsoft Corp.", "NASDAQ"),
}


@functools.lru_cache(maxsize=1)
def _raw_table() -> pd.DataFrame:
    """The whole bundled table (read once per process: ~12k rows, ~30 ms)."""
    try:
        resource = importlib.resources.files("bokeh_sampledata") / "_data" / "stocks.csv.gz"
        with importlib.resources.as_file(resource) as path:
            table = pd.read_csv(path, compression="gzip")
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise DataUnavailableError(
            "The sample data ships with the 'bokeh-sampledata' package, which is not installed; "
            "install it with `pip install bokeh-sampledata` (it is a dependency of copilot-quant)."
        ) from exc
    table["Ticker"] = table["Ticker"].astype(str).str.upper()
    return table


class SampleDataProvider(BarProvider):
    """Daily bars of AAPL, MSFT, IBM, GOOG (2000–2013) and FB (2012–2013), offline; see the module docstring.

    ``adjust=True`` (default) returns split/dividend-adjusted prices, ``adjust=False`` the raw ones.
    Serves ``'1d'`` and, aggregated from it, ``'1wk'`` and ``'1mo'``.
    """

    source = "sample"

    def __init__(self, adjust: bool = True) -> None:
        super().__init__()
        self.adjust = adjust

    def symbols(self) -> list[str]:
        """The bundled tickers: AAPL, FB, GOOG, IBM, MSFT."""
        return sorted(_raw_table()["Ticker"].unique().tolist())

    def _load(self, symbol: str, interval: str) -> pd.DataFrame:
        table = _raw_table()
        rows = table[table["Ticker"] == symbol]
        frame = rows[["Open", "High", "Low", "Close", "Volume"]].astype("float64")
        if self.adjust:
            factor = (rows["Adj Close"] / rows["Close"]).to_numpy()
            for column in ("Open", "High", "Low", "Close"):
                frame[column] = frame[column].to_numpy() * factor
            frame["Volume"] = frame["Volume"].to_numpy() / factor
        frame.index = daily_close_stamps(pd.DatetimeIndex(pd.to_datetime(rows["Date"])), self.calendar)
        return frame

    def get_ticker_info(self, symbol: str) -> dict[str, Any]:
        """Name, exchange, adjustment and span of a bundled symbol."""
        info = super().get_ticker_info(symbol)
        name, exchange = _NAMES.get(info["symbol"], (info["symbol"], "unknown"))
        info.update(
            name=name,
            exchange=exchange,
            adjusted=self.adjust,
            origin="Quandl WIKI prices (public domain) via the bokeh-sampledata package",
        )
        return info

    def __repr__(self) -> str:
        return f"SampleDataProvider(adjust={self.adjust})"
