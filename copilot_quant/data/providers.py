"""The data providers, in one import, and :func:`provider_from_spec` for the CLI and the gateway.

=========================  =====================================================================
Provider                   Source
=========================  =====================================================================
:class:`SampleDataProvider`     real daily prices bundled offline (AAPL, MSFT, IBM, GOOG 2000–2013, FB)
:class:`SyntheticDataProvider`  seeded random walk, any interval: stocks, futures chains, forex pairs
:class:`CSVDataProvider`        a directory of ``SYMBOL.csv`` files, or one file
:class:`ParquetStore`           the local store (``copilot-quant data import``)
:class:`YFinanceProvider`       Yahoo Finance, cached on disk, works offline from the cache
=========================  =====================================================================

Each implements :class:`~copilot_quant.backtest.interfaces.IDataFeed` and has ``symbols()``.
"""

from __future__ import annotations

from copilot_quant.data.base import BarProvider
from copilot_quant.data.csv_files import CSVDataProvider
from copilot_quant.data.sample import SampleDataProvider
from copilot_quant.data.store import ParquetStore
from copilot_quant.data.synthetic import SyntheticDataProvider
from copilot_quant.data.yfinance_provider import YFinanceProvider
from copilot_quant.errors import ConfigError
from copilot_quant.model.ports import IDataFeed

__all__ = [
    "PROVIDER_SPECS",
    "BarProvider",
    "CSVDataProvider",
    "ParquetStore",
    "SampleDataProvider",
    "SyntheticDataProvider",
    "YFinanceProvider",
    "provider_from_spec",
]

#: The data specs :func:`provider_from_spec` understands, with what each means (for help texts).
PROVIDER_SPECS: dict[str, str] = {
    "sample": "real daily prices bundled offline (AAPL, MSFT, IBM, GOOG 2000-2013; FB 2012-2013)",
    "synthetic[:SEED]": "seeded random-walk bars for any stock, future (ESZ6, MES) or pair (EUR.USD); seed 42",
    "csv:PATH": "a directory of SYMBOL.csv files, or one CSV file",
    "store[:DIR]": "the local Parquet store ($COPILOT_QUANT_STORE or ~/.copilot_quant/store)",
    "yfinance": "Yahoo Finance, cached on disk ($COPILOT_QUANT_CACHE); offline it serves the cache",
}


def provider_from_spec(spec: str) -> IDataFeed:
    """Build a provider from a short text spec such as ``'sample'``, ``'synthetic:7'`` or ``'csv:data/'``.

    See :data:`PROVIDER_SPECS`. Raises :class:`~copilot_quant.errors.ConfigError` for an unknown spec.
    """
    text = (spec or "").strip()
    kind, _, arg = text.partition(":")
    kind = kind.strip().lower()
    arg = arg.strip()
    if kind == "sample" and not arg:
        return SampleDataProvider()
    if kind == "synthetic":
        if not arg:
            return SyntheticDataProvider()
        try:
            return SyntheticDataProvider(seed=int(arg))
        except ValueError as exc:
            raise ConfigError(
                f"Synthetic seed must be an integer, as in 'synthetic:7'; got {arg!r}."
            ) from exc
    if kind == "csv":
        if not arg:
            raise ConfigError(
                "Say where the CSV files are: 'csv:PATH' (a directory of SYMBOL.csv or one file)."
            )
        return CSVDataProvider(arg)
    if kind == "store":
        return ParquetStore(arg or None)
    if kind == "yfinance" and not arg:
        return YFinanceProvider()
    known = ", ".join(PROVIDER_SPECS)
    raise ConfigError(f"Unknown data source {spec!r}; use one of: {known}.")
