"""Parameter sweeps: backtest one strategy over a grid of constructor parameters, honestly.

::

    from copilot_quant.backtest.sweep import parameter_grid, run_sweep

    grid = parameter_grid({"fast_period": [5, 10, 20], "slow_period": [30, 50]})
    sweep = run_sweep(SmaCross, grid, symbols=["AAPL"], start_date="2005-01-01", end_date="2012-12-31",
                      data_provider=SampleDataProvider(), holdout_from="2011-01-01", jobs=2)
    print(sweep.table.head())          # one row per combination, best first
    best = sweep.best()                # the parameters ranked first

The bars are loaded **once** and every combination runs on them with its own engine and a fresh
strategy instance, so runs never share state and the result does not depend on ``jobs`` or on the
order the runs finish in.

**Overfitting.** The best of many tries looks better than the strategy is. Give ``holdout_from``: each
run still trades the whole range (positions carry over, as they would in real trading), but the table's
ranking metrics are measured on the bars *before* that date only, and the same metrics for the bars
from that date on sit beside them in ``holdout_*`` columns. The ranking never looks at the holdout,
so the holdout columns show how the chosen parameters did on data they were not chosen on.

**Parallel runs** (``jobs > 1``) use worker processes started with ``fork``, which inherit the loaded
bars and the strategy class without pickling them (so classes loaded from a file work). Where ``fork``
is not available (Windows) or not safe (macOS) the sweep runs in this process and says so in the log.
"""

from __future__ import annotations

import itertools
import logging
import math
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from copilot_quant.backtest import metrics as m
from copilot_quant.backtest.engine import BacktestEngine
from copilot_quant.backtest.interfaces import IDataFeed
from copilot_quant.backtest.results import BacktestResult
from copilot_quant.backtest.strategy import Strategy
from copilot_quant.data.dates import resolve_range, to_utc
from copilot_quant.errors import ConfigError

__all__ = ["RANKING_METRICS", "SweepResult", "load_bars", "parameter_grid", "period_metrics", "run_sweep"]

log = logging.getLogger(__name__)

#: The metrics a sweep can rank by; each is "higher is better" (``max_drawdown`` is negative).
RANKING_METRICS = (
    "sharpe_ratio",
    "sortino_ratio",
    "total_return",
    "annualized_return",
    "calmar_ratio",
    "max_drawdown",
)

#: The per-period metrics of each row (the ranking metrics, plus the trades made in the period).
_PERIOD_METRICS = (*RANKING_METRICS, "fills")

StrategyFactory = Callable[..., Strategy]


def parameter_grid(values: Mapping[str, Iterable[Any]]) -> list[dict[str, Any]]:
    """Every combination of ``values`` (name → candidate values), in order: the last name varies fastest.

    ``parameter_grid({"fast": [5, 10], "slow": [30, 50]})`` gives ``[{fast: 5, slow: 30}, {fast: 5,
    slow: 50}, {fast: 10, slow: 30}, {fast: 10, slow: 50}]``. Raises ConfigError for a name with no values.
    """
    names = list(values)
    candidates = [list(values[name]) for name in names]
    for name, options in zip(names, candidates, strict=True):
        if not options:
            raise ConfigError(f"parameter {name!r} has no values to try; give at least one")
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*candidates)]


@dataclass(slots=True)
class SweepResult:
    """The outcome of :func:`run_sweep`.

    ``table`` has one row per combination, ranked best first by ``metric`` (NaN last; ties keep grid
    order): the parameter columns, the ranking metrics (before ``holdout_from`` when it is set), the
    ``holdout_*`` columns (only with a holdout), ``final_value``, ``errors`` (strategy exceptions
    counted during the run) and ``error`` (why a combination could not run at all, else empty).
    """

    table: pd.DataFrame
    metric: str
    parameters: list[str]
    holdout_from: pd.Timestamp | None = None
    combinations: int = field(default=0)

    def best(self) -> dict[str, Any]:
        """The parameters ranked first (a ConfigError if no combination produced the metric)."""
        ranked = self.table[self.table[self.metric].notna()]
        if ranked.empty:
            raise ConfigError(f"no combination produced a {self.metric}; see the table's error column")
        row = ranked.iloc[0]
        return {name: _plain(row[name]) for name in self.parameters}


@dataclass(frozen=True, slots=True)
class _Job:
    """What every run of one sweep shares; workers inherit it through fork."""

    factory: StrategyFactory
    frame: pd.DataFrame
    symbols: list[str]
    start: pd.Timestamp | None
    end: pd.Timestamp | None
    interval: str
    engine_options: Mapping[str, Any]
    holdout_from: pd.Timestamp | None


_JOB: _Job | None = None  # set in a worker process by _init_worker (fork: inherited, never pickled)


def run_sweep(
    strategy: StrategyFactory,
    grid: Sequence[Mapping[str, Any]],
    *,
    symbols: Sequence[str] | str,
    start_date: Any = None,
    end_date: Any = None,
    data_provider: IDataFeed | None = None,
    data: pd.DataFrame | None = None,
    interval: str = "1d",
    engine_options: Mapping[str, Any] | None = None,
    metric: str = "sharpe_ratio",
    holdout_from: Any = None,
    jobs: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> SweepResult:
    """Backtest ``strategy(**params)`` for every ``params`` in ``grid``; see the module docstring.

    Args:
        strategy: a Strategy class, or any callable that builds a fresh Strategy from keyword arguments.
        grid: the parameter combinations, e.g. from :func:`parameter_grid`.
        symbols, start_date, end_date, interval: as for :meth:`BacktestEngine.run`.
        data_provider / data: where the bars come from (loaded once), as for :class:`BacktestEngine`.
        engine_options: other :class:`BacktestEngine` arguments for every run (``initial_capital``,
            ``commission``, ``slippage``, ``fill_at``, ``allow_short`` ...).
        metric: the column to rank by, one of :data:`RANKING_METRICS`.
        holdout_from: rank on the bars before this date only and report the rest beside it.
        jobs: worker processes (1 = in this process).
        progress: ``progress(done, total)`` after each finished run.
    """
    if metric not in RANKING_METRICS:
        raise ConfigError(f"cannot rank by {metric!r}; choose one of {', '.join(RANKING_METRICS)}")
    if not grid:
        raise ConfigError("the parameter grid is empty; give at least one combination")
    if jobs < 1:
        raise ConfigError(f"jobs must be at least 1, got {jobs}")
    names = [s.strip().upper() for s in ([symbols] if isinstance(symbols, str) else symbols)]
    lo, hi = resolve_range(start_date, end_date)
    frame = data if data is not None else load_bars(data_provider, names, lo, hi, interval)
    cut = to_utc(holdout_from) if holdout_from is not None else None
    if cut is not None:
        _check_holdout(frame, cut)
    job = _Job(strategy, frame, names, lo, hi, interval, dict(engine_options or {}), cut)
    rows = list(_run_all(job, [dict(p) for p in grid], jobs, progress))
    return _rank(rows, grid, metric, cut)


def load_bars(
    provider: IDataFeed | None,
    names: list[str],
    lo: pd.Timestamp | None,
    hi: pd.Timestamp | None,
    interval: str,
) -> pd.DataFrame:
    """The bars of ``names`` in ``[lo, hi]`` from ``provider``, in the shape the engine takes."""
    if provider is None:
        raise ConfigError("no data: pass data_provider=... (e.g. SampleDataProvider()) or data=frame")
    if not names:
        raise ConfigError("no symbols to backtest; pass symbols=['AAPL']")
    if len(names) == 1:
        return provider.get_historical_data(names[0], lo, hi, interval)
    return provider.get_multiple_symbols(names, lo, hi, interval)


def _check_holdout(frame: pd.DataFrame, cut: pd.Timestamp) -> None:
    """Both sides of the holdout need bars: else the ranking (or the holdout) would measure nothing."""
    index = frame.index
    if not isinstance(index, pd.DatetimeIndex) or not len(index):
        return  # no bars at all: every run says so on its own
    if not (index < cut).any() or not (index >= cut).any():
        raise ConfigError(
            f"holdout_from {cut:%Y-%m-%d} leaves no bars on one side (the bars run from {index[0]:%Y-%m-%d} "
            f"to {index[-1]:%Y-%m-%d}); choose a day inside that range"
        )


# ----------------------------------------------------------------------------------------- running
def _fork_available() -> bool:
    # macOS lists fork but system frameworks may crash in a forked child; Windows has no fork.
    return "fork" in multiprocessing.get_all_start_methods() and sys.platform != "darwin"


def _run_all(
    job: _Job, grid: list[dict[str, Any]], jobs: int, progress: Callable[[int, int], None] | None
) -> Iterator[dict[str, Any]]:
    total = len(grid)
    workers = min(jobs, total, os.cpu_count() or 1)
    if workers > 1 and not _fork_available():
        log.warning("parallel sweeps need the 'fork' start method, not available here: running in-process")
        workers = 1
    if workers == 1:
        for done, params in enumerate(grid, 1):
            yield _run_one(job, params)
            if progress is not None:
                progress(done, total)
        return
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(job,)) as pool:
        # map keeps grid order whatever order the runs finish in
        for done, row in enumerate(pool.map(_run_in_worker, grid, chunksize=1), 1):
            yield row
            if progress is not None:
                progress(done, total)


def _init_worker(job: _Job) -> None:
    global _JOB  # noqa: PLW0603 - one job per worker process, handed over at fork
    _JOB = job


def _run_in_worker(params: dict[str, Any]) -> dict[str, Any]:
    if _JOB is None:  # pragma: no cover - the pool's initializer always ran first
        raise RuntimeError("sweep worker started without its job")
    return _run_one(_JOB, params)


def _run_one(job: _Job, params: dict[str, Any]) -> dict[str, Any]:
    """One backtest; a combination that cannot run becomes a row with its error, never an exception."""
    row: dict[str, Any] = dict(params)
    try:
        strategy = job.factory(**params)
        engine = BacktestEngine(**{"interval": job.interval, **job.engine_options})
        engine.add_strategy(strategy)
        result = engine.run(job.start, job.end, job.symbols, data=job.frame)
    except Exception as exc:  # a bad combination must not end the sweep: report it in its row
        log.warning("sweep: %s failed: %s: %s", params, type(exc).__name__, exc)
        row.update(dict.fromkeys(_PERIOD_METRICS, math.nan), final_value=math.nan, errors=0)
        row["error"] = f"{type(exc).__name__}: {exc}"
        return row
    row.update(_row_metrics(result, job.holdout_from))
    row["final_value"] = result.final_value
    row["errors"] = len(result.errors)
    row["error"] = ""
    return row


def _row_metrics(result: BacktestResult, cut: pd.Timestamp | None) -> dict[str, float]:
    """The ranking metrics before ``cut`` (the whole run without one), and ``holdout_*`` from it on."""
    equity = result.equity_curve.astype("float64")
    if cut is None:
        return period_metrics(equity, result.initial_capital, result.periods_per_year, len(result.fills))
    before = equity[equity.index < cut]
    after = equity[equity.index >= cut]
    n_before = int(sum(1 for f in result.fills if pd.Timestamp(f.timestamp) < cut))
    start_after = float(before.iloc[-1]) if len(before) else result.initial_capital
    ranked = period_metrics(before, result.initial_capital, result.periods_per_year, n_before)
    held = period_metrics(after, start_after, result.periods_per_year, len(result.fills) - n_before)
    return {**ranked, **{f"holdout_{k}": v for k, v in held.items()}}


def period_metrics(
    equity: pd.Series, start_value: float, periods_per_year: float, fills: int
) -> dict[str, float]:
    """Return, risk and drawdown of one stretch of an equity curve that began at ``start_value``.

    With the whole curve and the initial capital these equal the result's own metrics.
    """
    nan = math.nan
    if len(equity) == 0:
        return {**dict.fromkeys(RANKING_METRICS, nan), "fills": float(fills)}
    rets = m.returns_from_equity(equity, start_value)
    with_start = pd.concat([pd.Series([start_value]), equity.reset_index(drop=True)], ignore_index=True)
    max_dd = m.max_drawdown_stats(with_start).max_drawdown
    cagr = m.annualized_return(rets, periods_per_year)
    return {
        "sharpe_ratio": m.sharpe_ratio(rets, periods_per_year),
        "sortino_ratio": m.sortino_ratio(rets, periods_per_year),
        "total_return": float(equity.iloc[-1] / start_value - 1.0),
        "annualized_return": cagr,
        "calmar_ratio": cagr / abs(max_dd) if max_dd < 0 else nan,
        "max_drawdown": max_dd,
        "fills": float(fills),
    }


# ----------------------------------------------------------------------------------------- ranking
def _rank(
    rows: list[dict[str, Any]], grid: Sequence[Mapping[str, Any]], metric: str, cut: pd.Timestamp | None
) -> SweepResult:
    parameters = list(dict.fromkeys(name for params in grid for name in params))
    table = pd.DataFrame(rows)
    ordered = [*parameters, *_PERIOD_METRICS]
    if cut is not None:
        ordered += [f"holdout_{k}" for k in _PERIOD_METRICS]
    ordered += ["final_value", "errors", "error"]
    table = table.reindex(columns=ordered)
    counts = [c for c in ordered if c == "fills" or c.endswith("_fills")]
    table[counts] = table[counts].astype("Int64")  # whole numbers, <NA> for a run that failed
    table = table.sort_values(metric, ascending=False, na_position="last", kind="stable")
    table = table.reset_index(drop=True)
    table.index = pd.RangeIndex(1, len(table) + 1, name="rank")
    return SweepResult(table, metric, parameters, cut, len(rows))


def _plain(value: Any) -> Any:
    """numpy scalars back to Python values (a DataFrame stores ints as numpy.int64)."""
    return value.item() if isinstance(value, np.generic) else value
