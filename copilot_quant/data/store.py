"""A local Parquet store of bars: one file per (symbol, interval), readable as an ``IDataFeed``.

Layout: ``<root>/<interval>/<SYMBOL>.parquet``, e.g. ``~/.copilot_quant/store/1d/AAPL.parquet``. The root is
the ``root`` argument, else ``$COPILOT_QUANT_STORE``, else ``~/.copilot_quant/store``. Files hold bars in
the project convention (UTC index, float OHLCV), validated on write, so reading needs no repairs.

::

    store = ParquetStore()
    store.import_csv('prices/AAPL.csv')          # → ['AAPL']
    store.write('MSFT', frame, interval='1d')     # merges with what is stored; new rows win
    store.get_historical_data('AAPL', '2020-01-01', '2020-12-31')

Writes go to a temporary file that replaces the old one, so a crash never leaves half a file. The store is
meant for one writer at a time.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pandas as pd

from copilot_quant.data.base import BarProvider
from copilot_quant.data.csv_files import CSVDataProvider
from copilot_quant.data.validation import check_supported_interval, normalize_symbol, validate_bars
from copilot_quant.errors import DataError
from copilot_quant.model.bars import SUPPORTED_INTERVALS

__all__ = ["ParquetStore", "default_store_root"]

logger = logging.getLogger(__name__)

_SUFFIX = ".parquet"


def default_store_root() -> Path:
    """``$COPILOT_QUANT_STORE`` if set, else ``~/.copilot_quant/store``."""
    configured = os.environ.get("COPILOT_QUANT_STORE")
    return Path(configured).expanduser() if configured else Path.home() / ".copilot_quant" / "store"


class ParquetStore(BarProvider):
    """Bars kept as Parquet files under ``root``; see the module docstring."""

    source = "store"

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        super().__init__()
        self.root = Path(root).expanduser() if root is not None else default_store_root()

    # -- files -------------------------------------------------------------------------------------------
    def path(self, symbol: str, interval: str = "1d") -> Path:
        """Where the bars of ``symbol`` at ``interval`` are (or would be) stored."""
        return self.root / check_supported_interval(interval) / f"{normalize_symbol(symbol)}{_SUFFIX}"

    def write(self, symbol: str, frame: pd.DataFrame, interval: str = "1d", *, merge: bool = True) -> Path:
        """Validate ``frame`` and store it; with ``merge`` keep stored bars it does not cover (new rows win).

        Returns the file written. Raises :class:`DataError` for bars that fail validation (nothing is written).
        """
        name = normalize_symbol(symbol)
        bars = validate_bars(frame, symbol=name, source=f"bars written to the store ({interval})")
        target = self.path(name, interval)
        if merge and target.exists():
            old = self._read_file(target, name)
            bars = pd.concat([old[~old.index.isin(bars.index)], bars]).sort_index(kind="stable")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".parquet.tmp")
        bars.to_parquet(partial, engine="pyarrow")
        partial.replace(target)
        self._forget(name)
        logger.info("Stored %d %s bars of %s in %s.", len(bars), interval, name, target)
        return target

    def delete(self, symbol: str, interval: str | None = None) -> int:
        """Remove the stored bars of ``symbol`` (one interval or all); returns the number of files removed."""
        name = normalize_symbol(symbol)
        intervals = [check_supported_interval(interval)] if interval else list(SUPPORTED_INTERVALS)
        removed = 0
        for iv in intervals:
            target = self.root / iv / f"{name}{_SUFFIX}"
            if target.exists():
                target.unlink()
                removed += 1
        self._forget(name)
        return removed

    def import_csv(
        self,
        path: str | os.PathLike[str],
        symbol: str | None = None,
        interval: str | None = None,
        **csv_options: Any,
    ) -> list[str]:
        """Read a CSV file or a directory of ``SYMBOL.csv`` files and store every symbol in it.

        ``symbol`` names the data of a single file (default: the file name); ``interval`` is the bars'
        interval (default: inferred); other keyword arguments go to
        :class:`~copilot_quant.data.csv_files.CSVDataProvider` (e.g. ``adjust``, ``bar_end``).
        Returns the imported symbols.
        """
        reader = CSVDataProvider(Path(path), symbol=symbol, interval=interval, **csv_options)
        imported = []
        for name in reader.symbols():
            frame_interval = reader.interval_of(name)
            self.write(name, reader.bars(name, frame_interval), frame_interval)
            imported.append(name)
        if not imported:
            raise DataError(
                f"No CSV bars found at {path}; expected SYMBOL.csv files with Date,Open,High,Low,Close."
            )
        return imported

    # -- BarProvider hooks --------------------------------------------------------------------------------
    def symbols(self, interval: str | None = None) -> list[str]:
        """Stored symbols (at ``interval``, or at any interval)."""
        if not self.root.is_dir():
            return []
        folders = (
            [self.root / check_supported_interval(interval)]
            if interval
            else [self.root / iv for iv in SUPPORTED_INTERVALS]
        )
        names = {
            p.name[: -len(_SUFFIX)]
            for folder in folders
            if folder.is_dir()
            for p in folder.glob(f"*{_SUFFIX}")
        }
        return sorted(names)

    def native_intervals(self, symbol: str) -> frozenset[str]:
        name = normalize_symbol(symbol)
        return frozenset(iv for iv in SUPPORTED_INTERVALS if (self.root / iv / f"{name}{_SUFFIX}").is_file())

    def _load(self, symbol: str, interval: str) -> pd.DataFrame:
        return self._read_file(self.path(symbol, interval), symbol)

    def info(self, symbol: str) -> dict[str, Any]:
        """What is stored for ``symbol``: per interval the file, its size, bar count and first/last bar."""
        name = self._require_symbol(symbol)
        per_interval: dict[str, dict[str, Any]] = {}
        for iv in sorted(self.native_intervals(name), key=list(SUPPORTED_INTERVALS).index):
            bars = self.bars(name, iv)
            target = self.path(name, iv)
            per_interval[iv] = {
                "path": str(target),
                "bytes": target.stat().st_size,
                "bars": len(bars),
                "first": bars.index[0] if len(bars) else None,
                "last": bars.index[-1] if len(bars) else None,
            }
        return {"symbol": name, "root": str(self.root), "intervals": per_interval}

    def get_ticker_info(self, symbol: str) -> dict[str, Any]:
        info = super().get_ticker_info(symbol)
        info["stored"] = self.info(symbol)["intervals"]
        return info

    # -- internals ----------------------------------------------------------------------------------------
    def _read_file(self, target: Path, symbol: str) -> pd.DataFrame:
        try:
            frame = pd.read_parquet(target, engine="pyarrow")
        except (OSError, ValueError) as exc:
            raise DataError(f"Cannot read {target} ({exc}); delete it and import the data again.") from exc
        return validate_bars(frame, symbol=symbol, source=f"store file {target}")

    def _forget(self, symbol: str) -> None:
        for key in [k for k in self._series_cache if k[0] == symbol]:
            del self._series_cache[key]

    def __repr__(self) -> str:
        return f"ParquetStore(root={str(self.root)!r})"
