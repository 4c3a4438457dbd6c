"""Yahoo Finance bars through ``yfinance``, cached on disk, usable offline, never hanging.

Every download is merged into a Parquet cache (one file per symbol and interval, see
:class:`~copilot_quant.data.store.ParquetStore`). A request the cache already covers is served from it
without touching the network; otherwise the provider downloads, and if that fails (offline, Yahoo down,
timeout) it serves whatever the cache holds for the range, logging a warning, or raises
:class:`~copilot_quant.errors.DataUnavailableError` when nothing is cached. A download runs in a daemon thread
with a hard deadline (``timeout`` + 5 s), so a stalled DNS lookup or socket cannot block a backtest; after a
failed attempt the network is not retried for ``retry_after`` seconds.

**Adjusted or not.** ``adjust=True`` (default) asks Yahoo for split- and dividend-adjusted OHLC
(``auto_adjust=True``): a 2:1 split does not look like a 50 % crash and returns include dividends, but past
prices differ from what was quoted on the day. ``adjust=False`` gives the prices as traded (splits show as
gaps). Both are cached separately (``<cache_dir>/adjusted`` and ``<cache_dir>/raw``).

**Timestamps.** Daily bars are stamped at the NYSE session close; intraday bars (Yahoo stamps bar start)
at bar end, capped at the session close. ``1wk``/``1mo`` are aggregated from daily bars, so their stamps
follow the same rule.

**Hourly bars on IB's grid.** Yahoo's hourly bars run 09:30–10:30, 10:30–11:30 … 15:30–16:00; IB's run
09:30–10:00, 10:00–11:00 … 15:00–16:00 (:mod:`~copilot_quant.data.bar_grid`). So ``'1h'`` is never downloaded
as such: it is built from Yahoo's ``'30m'`` bars (the same on both grids) on IB's grid, and a backtest sees
the hours a live run sees. Yahoo keeps 30-minute bars for about 60 days only, so hourly history reaches that
far back; for more, download IB's own bars (``copilot-quant data download``). Yahoo hourly bars handed to
:func:`from_yahoo` raise :class:`~copilot_quant.errors.BarGridError`.

Cache location: ``cache_dir``, else ``$COPILOT_QUANT_CACHE/yfinance``, else ``~/.copilot_quant/cache/yfinance``.
Pre-fill it (tests, air-gapped machines) with :meth:`YFinanceProvider.prime`. Set ``offline=True`` or
``COPILOT_QUANT_OFFLINE=1`` to never touch the network. yfinance's own logger is set to CRITICAL on the first
download unless you configured its level: failures reach you as our errors and warnings instead.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd

from copilot_quant.data.bar_grid import bar_ends_of_starts, check_starts_on_grid
from copilot_quant.data.base import BarProvider
from copilot_quant.data.calendars import (
    DEFAULT_CALENDAR,
    daily_close_stamps,
    exchange_tz_name,
    session_bounds,
)
from copilot_quant.data.dates import slice_range
from copilot_quant.data.intervals import DERIVED_FROM_DAILY, INTRADAY_INTERVALS, bar_duration
from copilot_quant.data.resample import aggregate_bars, resample_daily
from copilot_quant.data.store import ParquetStore
from copilot_quant.data.validation import check_supported_interval, empty_bars, normalize_symbol
from copilot_quant.errors import DataError, DataUnavailableError, UnknownSymbolError

__all__ = ["YFinanceProvider", "default_cache_dir", "from_yahoo"]

logger = logging.getLogger(__name__)

_TRUTHY = {"1", "true", "yes", "on"}
#: Built from 30-minute bars: Yahoo's own hours are on another grid than IB's.
_HOURLY = "1h"


def default_cache_dir() -> Path:
    """``$COPILOT_QUANT_CACHE/yfinance`` if the variable is set, else ``~/.copilot_quant/cache/yfinance``."""
    configured = os.environ.get("COPILOT_QUANT_CACHE")
    base = Path(configured).expanduser() if configured else Path.home() / ".copilot_quant" / "cache"
    return base / "yfinance"


def from_yahoo(raw: pd.DataFrame, interval: str, calendar: str = DEFAULT_CALENDAR) -> pd.DataFrame:
    """Re-stamp a frame as yfinance returns it to the bar convention (not yet validated).

    Yahoo stamps daily bars at local midnight and intraday bars at bar start; here daily bars get the
    session close and intraday bars their end on IB's grid, capped at the session close (a 15:30 half-hour
    bar ends at 16:00). Bars whose starts are off that grid — Yahoo's hourly 10:30, 11:30 … — raise
    :class:`~copilot_quant.errors.BarGridError`: aggregate Yahoo's 30-minute bars instead.
    """
    tz = exchange_tz_name(calendar)
    frame = raw[[c for c in ("Open", "High", "Low", "Close", "Volume") if c in raw.columns]].copy()
    index = pd.DatetimeIndex(raw.index)
    local = index.tz_localize(tz) if index.tz is None else index.tz_convert(tz)
    if interval == "1d":
        frame.index = daily_close_stamps(local, calendar)
        return frame
    starts = local.tz_convert("UTC").as_unit("ns").asi8
    step = bar_duration(interval).value
    check_starts_on_grid(starts, interval, step, calendar, f"Yahoo Finance {interval} bars")
    ends = pd.DatetimeIndex(bar_ends_of_starts(starts, step, calendar).view("datetime64[ns]")).tz_localize(
        "UTC"
    )
    frame.index = ends
    return frame


class YFinanceProvider(BarProvider):
    """Yahoo Finance bars with a disk cache; see the module docstring.

    Args:
        cache_dir: cache folder (see :func:`default_cache_dir`).
        adjust: split- and dividend-adjusted prices (default) or prices as traded.
        timeout: seconds yfinance may wait for Yahoo per request.
        offline: never use the network (default: ``$COPILOT_QUANT_OFFLINE``).
        retry_after: seconds to skip the network after a failed download.
    """

    source = "yfinance"

    def __init__(
        self,
        cache_dir: str | os.PathLike[str] | None = None,
        adjust: bool = True,
        *,
        timeout: float = 10.0,
        offline: bool | None = None,
        retry_after: float = 60.0,
        calendar: str = DEFAULT_CALENDAR,
    ) -> None:
        super().__init__()
        self.calendar = calendar
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        self.adjust = adjust
        self.cache = ParquetStore(self.cache_dir / ("adjusted" if adjust else "raw"))
        self.timeout = float(timeout)
        if offline is None:
            offline = os.environ.get("COPILOT_QUANT_OFFLINE", "").strip().lower() in _TRUTHY
        self.offline = offline
        self.retry_after = float(retry_after)
        self._network_failed_at: float | None = None

    # -- cache -------------------------------------------------------------------------------------------
    def prime(self, symbol: str, frame: pd.DataFrame, interval: str = "1d") -> Path:
        """Put bars into the cache as if downloaded (they must already be adjusted iff ``adjust``)."""
        return self.cache.write(symbol, frame, interval)

    def symbols(self) -> list[str]:
        """The cached symbols (any Yahoo ticker can be requested)."""
        return self.cache.symbols()

    def native_intervals(self, symbol: str) -> frozenset[str]:
        return frozenset((INTRADAY_INTERVALS - {_HOURLY}) | {"1d"})  # hours: aggregated from 30m

    def _require_symbol(self, symbol: str) -> str:
        return normalize_symbol(symbol)  # any ticker may exist on Yahoo; a download tells

    def _load(self, symbol: str, interval: str) -> pd.DataFrame:
        return self._range(symbol, interval, None, None)

    def bars(self, symbol: str, interval: str = "1d") -> pd.DataFrame:
        """Everything Yahoo has for ``symbol`` (the cache decides whether to download; not kept in memory)."""
        check_supported_interval(interval)
        return self._range(self._require_symbol(symbol), interval, None, None)

    def get_ticker_info(self, symbol: str) -> dict[str, Any]:
        """Cached facts only (no network): symbol, source, adjusted flag, cached intervals and bar span."""
        name = normalize_symbol(symbol)
        info: dict[str, Any] = {
            "symbol": name,
            "source": self.source,
            "adjusted": self.adjust,
            "currency": "USD",
        }
        if name in self.cache.symbols():
            info["cached"] = self.cache.info(name)["intervals"]
        return info

    # -- serving a range ----------------------------------------------------------------------------------
    def _range(
        self, symbol: str, interval: str, lo: pd.Timestamp | None, hi: pd.Timestamp | None
    ) -> pd.DataFrame:
        if interval in DERIVED_FROM_DAILY:
            # Start at the beginning of the first week/month so its bar is complete, not cut at ``lo``.
            early = None if lo is None else lo - pd.Timedelta(days=31)
            if "1d" in self.cache.native_intervals(symbol):
                stored = self.cache.bars(symbol, "1d")
                if self._covers(stored, "1d", lo, hi):  # no download just for the days before ``lo``
                    return slice_range(
                        resample_daily(slice_range(stored, early, hi), interval, self._tz), lo, hi
                    )
            daily = self._range(symbol, "1d", early, hi)
            return slice_range(resample_daily(daily, interval, self._tz), lo, hi)
        if interval == _HOURLY:
            return self._hours_from_half_hours(symbol, lo, hi)
        cached = (
            self.cache.bars(symbol, interval) if interval in self.cache.native_intervals(symbol) else None
        )
        if cached is not None and self._covers(cached, interval, lo, hi):
            return slice_range(cached, lo, hi)
        reason = self._network_unavailable_reason()
        if reason is None:
            try:
                fresh = self._download(symbol, interval, lo, hi)
            except DataUnavailableError as exc:
                reason = str(exc)
            else:
                if len(fresh):
                    self.cache.write(symbol, fresh, interval)
                    return slice_range(self.cache.bars(symbol, interval), lo, hi)
                return slice_range(fresh, lo, hi)
        if cached is not None and len(part := slice_range(cached, lo, hi)):
            logger.warning(
                "yfinance unavailable (%s); serving %d cached %s bars of %s (%s to %s), which may not cover "
                "the whole range requested.",
                reason,
                len(part),
                interval,
                symbol,
                part.index[0],
                part.index[-1],
            )
            return part
        raise DataUnavailableError(
            f"Cannot get {interval} bars of {symbol} from Yahoo Finance ({reason}) and none are cached in "
            f"{self.cache.root}. Connect to the internet, prime the cache "
            f"(YFinanceProvider(cache_dir=...).prime(symbol, bars)), or use offline data "
            f"(SampleDataProvider, CSVDataProvider, ParquetStore; CLI: --data sample)."
        )

    def _hours_from_half_hours(
        self, symbol: str, lo: pd.Timestamp | None, hi: pd.Timestamp | None
    ) -> pd.DataFrame:
        """Hourly bars on IB's grid from Yahoo's 30-minute bars (Yahoo's own hours are 09:30–10:30 …)."""
        early = None if lo is None else lo - pd.Timedelta(_HOURLY)  # the whole first hour, not cut at ``lo``
        halves = self._range(symbol, "30m", early, hi)
        return slice_range(aggregate_bars(halves, "30m", _HOURLY, self.calendar), lo, hi)

    def _covers(
        self, cached: pd.DataFrame, interval: str, lo: pd.Timestamp | None, hi: pd.Timestamp | None
    ) -> bool:
        """Whether ``cached`` holds every bar the exchange produced in ``[lo, hi]`` (up to now)."""
        if cached.empty:
            return False
        now = pd.Timestamp.now(tz="UTC")
        end = now if hi is None else min(hi, now)
        start = cached.index[0] if lo is None else lo
        if start > end:
            return True
        opens, closes = session_bounds(start, end, self.calendar)
        # Sessions still open at ``end`` have no complete bar yet; the last complete one must be cached.
        done = closes <= end
        if interval == "1d":
            expected = closes[done & (closes >= start)]
            if len(expected) == 0:
                return True
            return bool(cached.index[0] <= expected[0] and cached.index[-1] >= expected[-1])
        step = bar_duration(interval)
        in_range = (closes >= start) & (opens <= end)
        if not in_range.any():
            return True
        first_needed = max(opens[in_range][0] + step, start)
        last_needed = min(closes[in_range][-1], end) - step
        return bool(cached.index[0] <= first_needed + step and cached.index[-1] >= last_needed)

    def _network_unavailable_reason(self) -> str | None:
        if self.offline:
            return "offline mode (offline=True or COPILOT_QUANT_OFFLINE=1)"
        if (
            self._network_failed_at is not None
            and time.monotonic() - self._network_failed_at < self.retry_after
        ):
            return f"the last download failed less than {self.retry_after:.0f} s ago"
        return None

    # -- downloading --------------------------------------------------------------------------------------
    def _download(
        self, symbol: str, interval: str, lo: pd.Timestamp | None, hi: pd.Timestamp | None
    ) -> pd.DataFrame:
        """Fetch bars from Yahoo in a daemon thread with a hard deadline; converted to the bar convention."""
        outcome: dict[str, Any] = {}

        def work() -> None:
            try:
                outcome["frame"] = self._fetch(symbol, interval, lo, hi)
            except Exception as exc:
                outcome["error"] = exc

        worker = threading.Thread(target=work, name=f"yfinance-{symbol}", daemon=True)
        worker.start()
        worker.join(self.timeout + 5.0)
        if worker.is_alive():
            self._network_failed_at = time.monotonic()
            raise DataUnavailableError(f"no answer within {self.timeout + 5.0:.0f} s")
        error = outcome.get("error")
        if error is not None:
            message = str(error)
            if isinstance(error, DataError):
                raise error
            from yfinance import exceptions as yf_errors  # noqa: PLC0415 - yfinance is slow to import

            # Yahoo answered, but has nothing for this ticker/range (network failures are other exceptions).
            if isinstance(error, yf_errors.YFPricesMissingError | yf_errors.YFTickerMissingError):
                raise UnknownSymbolError(
                    f"Yahoo Finance has no {interval} prices for {symbol!r} ({message.strip()}); check the ticker."
                ) from error
            if isinstance(error, yf_errors.YFInvalidPeriodError):
                raise DataError(f"Yahoo Finance refused the request: {message.strip()}") from error
            self._network_failed_at = time.monotonic()
            raise DataUnavailableError(f"{type(error).__name__}: {message.strip()[:200]}") from error
        self._network_failed_at = None
        frame: pd.DataFrame = outcome["frame"]
        return frame

    def _fetch(
        self, symbol: str, interval: str, lo: pd.Timestamp | None, hi: pd.Timestamp | None
    ) -> pd.DataFrame:
        import yfinance as yf  # noqa: PLC0415 - slow to import; only needed to download

        # yfinance logs every network failure at ERROR on its own; we raise or warn with a fix instead, so
        # its logger is quieted unless the user configured it.
        yf_logger = logging.getLogger("yfinance")
        if yf_logger.level == logging.NOTSET:
            yf_logger.setLevel(logging.CRITICAL)
        # yfinance keeps a time-zone cache (sqlite) in the user's cache folder; keep it with ours.
        tz_cache = self.cache_dir / "yfinance-tz"
        tz_cache.mkdir(parents=True, exist_ok=True)
        yf.set_tz_cache_location(str(tz_cache))
        kwargs: dict[str, Any] = {
            "interval": interval,
            "auto_adjust": self.adjust,
            "actions": False,
            "timeout": self.timeout,
            "raise_errors": True,
        }
        if lo is None and hi is None:
            kwargs["period"] = "max"
        else:
            kwargs["start"] = (
                (lo or pd.Timestamp("1970-01-02", tz="UTC")).tz_convert(self._tz).strftime("%Y-%m-%d")
            )
            # Yahoo's end is exclusive and by date: ask for the day after.
            stop = hi if hi is not None else pd.Timestamp.now(tz="UTC")
            kwargs["end"] = (stop.tz_convert(self._tz) + pd.Timedelta(days=1)).strftime("%Y-%m-%d")
        raw = yf.Ticker(symbol).history(**kwargs)
        if raw is None or raw.empty:
            return empty_bars()
        return from_yahoo(raw, interval, self.calendar)

    def __repr__(self) -> str:
        return f"YFinanceProvider(cache_dir={str(self.cache_dir)!r}, adjust={self.adjust}, offline={self.offline})"
