"""Batch backtests: one strategy over many symbols, many strategies over one universe, or both.

::

    from copilot_quant.backtest.batch import BatchStrategy, each_strategy, each_symbol, run_batch

    sma = BatchStrategy("SmaCrossFast", SmaCrossFast, {"quantity": 100})
    batch = run_batch(each_symbol([sma], ["AAPL", "MSFT", "IBM"]), data_provider=SampleDataProvider(),
                      start_date="2005-01-01", end_date="2012-12-31", jobs=2)
    print(batch.table)    # one row per run, best first by sharpe_ratio

* :func:`each_symbol` makes one run per strategy and symbol: the strategy gets ``symbol=SYM`` (the name of
  the constructor parameter is ``symbol_parameter``) and trades that symbol's bars alone.
* :func:`each_strategy` makes one run per strategy over the whole universe, in one engine each.

Each run is an independent backtest with its own engine, strategy instance and account. Runs go where
sweeps go (:mod:`copilot_quant.backtest.cluster`: this process, a local Dask cluster or a named
scheduler). The bars of a universe are loaded when the first of its runs is submitted and shipped once
(to every worker when several runs read them); a universe whose bars cannot be loaded gives its runs a
row with the error, and the other runs go on. The table is the same whatever runs it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from copilot_quant.backtest.cluster import Compute, Shared, task_pool
from copilot_quant.backtest.engine import BacktestEngine
from copilot_quant.backtest.interfaces import IDataFeed
from copilot_quant.backtest.run_data import load_bars
from copilot_quant.backtest.sweep import RANKING_METRICS, StrategyFactory, period_metrics
from copilot_quant.data.dates import resolve_range
from copilot_quant.errors import ConfigError

__all__ = ["BatchResult", "BatchRun", "BatchStrategy", "each_strategy", "each_symbol", "run_batch"]

log = logging.getLogger(__name__)

#: The table's columns after ``strategy`` and ``symbols``.
METRIC_COLUMNS = (*RANKING_METRICS, "fills", "final_value", "errors", "error")


@dataclass(frozen=True, slots=True)
class BatchStrategy:
    """A strategy of a batch: its ``label`` in the table, what builds it, and its constructor arguments."""

    label: str
    factory: StrategyFactory
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BatchRun:
    """One backtest of a batch: ``strategy`` (with ``extra`` constructor arguments) on ``symbols``."""

    strategy: BatchStrategy
    symbols: tuple[str, ...]
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class BatchResult:
    """``table``: one row per run, ranked best first by ``metric`` (NaN last; ties keep the runs' order)."""

    table: pd.DataFrame
    metric: str


def _names(symbols: Sequence[str]) -> list[str]:
    names = list(dict.fromkeys(s.strip().upper() for s in symbols if s.strip()))
    if not names:
        raise ConfigError("no symbols to backtest; pass symbols=['AAPL', 'MSFT']")
    return names


def each_symbol(
    strategies: Sequence[BatchStrategy], symbols: Sequence[str], symbol_parameter: str = "symbol"
) -> list[BatchRun]:
    """One run per strategy and symbol; the strategy gets ``symbol_parameter=SYMBOL``."""
    for strategy in strategies:
        if symbol_parameter in strategy.params:
            raise ConfigError(
                f"{strategy.label} already sets {symbol_parameter}={strategy.params[symbol_parameter]!r}; "
                "one run per symbol sets it for each run"
            )
    return [
        BatchRun(strategy, (name,), {symbol_parameter: name})
        for strategy in strategies
        for name in _names(symbols)
    ]


def each_strategy(strategies: Sequence[BatchStrategy], symbols: Sequence[str]) -> list[BatchRun]:
    """One run per strategy over the whole universe ``symbols``."""
    universe = tuple(_names(symbols))
    return [BatchRun(strategy, universe) for strategy in strategies]


@dataclass(frozen=True, slots=True)
class _Settings:
    """What every run of a batch shares (shipped to each worker once)."""

    start: pd.Timestamp | None
    end: pd.Timestamp | None
    interval: str
    engine_options: Mapping[str, Any]


def run_batch(
    runs: Sequence[BatchRun],
    *,
    start_date: Any = None,
    end_date: Any = None,
    data_provider: IDataFeed | None = None,
    interval: str = "1d",
    engine_options: Mapping[str, Any] | None = None,
    metric: str = "sharpe_ratio",
    jobs: int = 1,
    scheduler: str | None = None,
    client: Any = None,
    progress: Callable[[int, int], None] | None = None,
) -> BatchResult:
    """Backtest every run; the arguments are those of :func:`~copilot_quant.backtest.sweep.run_sweep`."""
    if metric not in RANKING_METRICS:
        raise ConfigError(f"cannot rank by {metric!r}; choose one of {', '.join(RANKING_METRICS)}")
    if not runs:
        raise ConfigError("the batch is empty; give at least one strategy and one symbol")
    if data_provider is None:
        raise ConfigError("no data: pass data_provider=... (e.g. SampleDataProvider())")
    compute = Compute(jobs, scheduler, client)
    lo, hi = resolve_range(start_date, end_date)
    settings = Shared(_Settings(lo, hi, interval, dict(engine_options or {})))
    order = _by_universe(runs)

    def tasks() -> Iterator[tuple[Any, ...]]:
        strategies: dict[int, Shared] = {}
        for universe, indices in order.items():
            bars = _load(data_provider, list(universe), lo, hi, interval)
            shared = Shared(bars, broadcast=len(indices) > 1) if isinstance(bars, pd.DataFrame) else bars
            for i in indices:
                strategy = strategies.setdefault(id(runs[i].strategy), Shared(runs[i].strategy))
                yield shared, strategy, settings, runs[i].symbols, runs[i].extra

    positions = [i for indices in order.values() for i in indices]
    with task_pool(compute) as pool:
        rows = pool.run(_run_one, tasks(), total=len(runs), on_failure=_lost_row, progress=progress)
    in_order = [row for _, row in sorted(zip(positions, rows, strict=True), key=lambda pair: pair[0])]
    return BatchResult(_table(in_order, metric), metric)


def _by_universe(runs: Sequence[BatchRun]) -> dict[tuple[str, ...], list[int]]:
    """Run positions grouped by universe (first appearance first), so each universe is loaded once."""
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, run in enumerate(runs):
        groups.setdefault(run.symbols, []).append(i)
    return groups


def _load(
    provider: IDataFeed, names: list[str], lo: pd.Timestamp | None, hi: pd.Timestamp | None, interval: str
) -> pd.DataFrame | str:
    """The universe's bars, or why they could not be loaded (that universe's runs report it)."""
    try:
        return load_bars(provider, names, lo, hi, interval, data=None)
    except Exception as exc:  # one symbol without data must not end the batch
        log.warning("batch: no bars for %s: %s: %s", ",".join(names), type(exc).__name__, exc)
        return f"{type(exc).__name__}: {exc}"


def _run_one(
    bars: pd.DataFrame | str,
    strategy: BatchStrategy,
    settings: _Settings,
    symbols: tuple[str, ...],
    extra: Mapping[str, Any],
) -> dict[str, Any]:
    """One backtest's row; a run that cannot run becomes a row with its error, never an exception."""
    if isinstance(bars, str):
        return _error_row(strategy, symbols, bars)
    try:
        engine = BacktestEngine(**{"interval": settings.interval, **settings.engine_options})
        engine.add_strategy(strategy.factory(**{**strategy.params, **extra}))
        result = engine.run(settings.start, settings.end, list(symbols), data=bars)
    except Exception as exc:  # a bad run must not end the batch: report it in its row
        log.warning(
            "batch: %s on %s failed: %s: %s", strategy.label, ",".join(symbols), type(exc).__name__, exc
        )
        return _error_row(strategy, symbols, f"{type(exc).__name__}: {exc}")
    equity = result.equity_curve.astype("float64")
    row = _row_head(strategy, symbols)
    row.update(period_metrics(equity, result.initial_capital, result.periods_per_year, len(result.fills)))
    row.update(final_value=result.final_value, errors=len(result.errors), error="")
    return row


def _row_head(strategy: BatchStrategy, symbols: tuple[str, ...]) -> dict[str, Any]:
    return {"strategy": strategy.label, "symbols": ",".join(symbols)}


def _error_row(strategy: BatchStrategy, symbols: tuple[str, ...], error: str) -> dict[str, Any]:
    row = _row_head(strategy, symbols)
    row.update(dict.fromkeys((*RANKING_METRICS, "fills", "final_value"), math.nan), errors=0, error=error)
    return row


def _lost_row(args: tuple[Any, ...], exc: BaseException) -> dict[str, Any]:
    """The row of a run the cluster could not finish."""
    strategy, symbols = args[1].value, args[3]
    log.warning("batch: %s on %s could not run on the cluster: %s", strategy.label, ",".join(symbols), exc)
    return _error_row(strategy, symbols, f"{type(exc).__name__}: {exc}")


def _table(rows: list[dict[str, Any]], metric: str) -> pd.DataFrame:
    table = pd.DataFrame(rows).reindex(columns=["strategy", "symbols", *METRIC_COLUMNS])
    table["fills"] = table["fills"].astype("Int64")  # whole numbers, <NA> for a run that failed
    table = table.sort_values(metric, ascending=False, na_position="last", kind="stable")
    table = table.reset_index(drop=True)
    table.index = pd.RangeIndex(1, len(table) + 1, name="rank")
    return table
