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

**Where the runs run** (:mod:`copilot_quant.backtest.cluster`): ``jobs=1`` in this process, one after the
other (the debugging path); ``jobs=N`` on a Dask ``LocalCluster`` of N worker processes started for the
sweep; ``scheduler="tcp://host:8786"`` on a running Dask cluster; ``client=`` on an open Dask client. The
bars and the strategy factory are shipped to each worker once; each task ships one parameter set and
returns one row (and the equity curve only with ``equity_curves=True``). The table is the same whatever
runs it: rows are placed by grid position, not by the order runs finish in.

**Combinations per task.** Each Dask task costs a fixed overhead (~1–5 ms: scheduler, messages, the
worker's bookkeeping), as long as a fast-path run on a few thousand daily bars. By default
(``per_task=None``) a sweep on workers puts several combinations in each task, in tasks that shrink as the
grid is handed out (guided self-scheduling, :func:`auto_task_sizes`): each task takes about
1/(:data:`GUIDE` x worker threads) of the combinations not yet handed out, at most :data:`MAX_PER_TASK`
and at least 1/:data:`TAIL_TASKS_PER_THREAD` of a thread's share. The first tasks are large, so the
overhead counts once per many runs; the last are small, so no worker waits long for another to finish
its last task (equal tasks of 6 runs on 2 workers left one worker idle for up to a task at the end). A
small grid on many workers stays at one combination a task; in this process there is nothing to save. A
task the cluster loses for good (its worker died under it each time) is split, and its combinations run
again one per task, so a combination that kills its worker takes no other down. ``per_task=k`` fixes the
size instead. The table does not depend on it.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from copilot_quant.backtest import metrics as m
from copilot_quant.backtest.cluster import Compute, Shared, TaskPool, task_pool
from copilot_quant.backtest.engine import BacktestEngine
from copilot_quant.backtest.interfaces import IDataFeed
from copilot_quant.backtest.results import BacktestResult
from copilot_quant.backtest.run_data import load_bars, symbol_list
from copilot_quant.backtest.strategy import Strategy
from copilot_quant.data.dates import resolve_range, to_utc
from copilot_quant.errors import ConfigError

__all__ = ["RANKING_METRICS", "SweepResult", "parameter_grid", "period_metrics", "run_sweep"]

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

#: Automatic batching: each task takes 1/(GUIDE x worker threads) of the runs not yet handed out ...
GUIDE = 2
#: ... at most this many (a task's rows travel back together) ...
MAX_PER_TASK = 200
#: ... and at least a thread's share of the grid divided by this: a grid does not end in a glut of small
#: tasks, each costing the scheduler and the workers as much as a big one (~3.5 ms of CPU on the 2-core VM,
#: a third of a fast-path run), while a worker waits at most one such task (1/8 of its work) at the end.
TAIL_TASKS_PER_THREAD = 8

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
    #: rank → the run's equity curve, when the sweep was asked for ``equity_curves`` (else empty)
    equity_curves: dict[int, pd.Series] = field(default_factory=dict)

    def best(self) -> dict[str, Any]:
        """The parameters ranked first (a ConfigError if no combination produced the metric)."""
        ranked = self.table[self.table[self.metric].notna()]
        if ranked.empty:
            raise ConfigError(f"no combination produced a {self.metric}; see the table's error column")
        row = ranked.iloc[0]
        return {name: _plain(row[name]) for name in self.parameters}


@dataclass(frozen=True, slots=True)
class _Job:
    """What every run of one sweep shares: shipped to each worker once, with the bars."""

    factory: StrategyFactory
    symbols: list[str]
    start: pd.Timestamp | None
    end: pd.Timestamp | None
    interval: str
    engine_options: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class _Run:
    """One task: the parameters and which bars to trade (``frame.iloc[first:stop]``); small to ship."""

    params: dict[str, Any]
    holdout_from: pd.Timestamp | None = None
    first: int = 0
    stop: int | None = None
    keep_equity: bool = False


#: The key of a row's equity curve (asked for with ``keep_equity``); taken out before the table is built.
EQUITY_KEY = "_equity"


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
    scheduler: str | None = None,
    client: Any = None,
    equity_curves: bool = False,
    per_task: int | None = None,
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
        jobs: 1 runs every combination in this process; N > 1 starts a Dask LocalCluster of N worker
            processes for this sweep (they import the calling script again: call it under
            ``if __name__ == "__main__":``).
        scheduler: the address of a running Dask scheduler (``tcp://host:8786``) to run on instead.
        client: an open ``distributed.Client`` to run on (reused, not closed).
        equity_curves: keep each run's equity curve in :attr:`SweepResult.equity_curves`.
        per_task: combinations per Dask task; None (the default) chooses from the grid size and the
            workers (see the module docstring), ``k`` fixes it.
        progress: ``progress(done, total)`` after each finished run.
    """
    if metric not in RANKING_METRICS:
        raise ConfigError(f"cannot rank by {metric!r}; choose one of {', '.join(RANKING_METRICS)}")
    if not grid:
        raise ConfigError("the parameter grid is empty; give at least one combination")
    compute = Compute(jobs, scheduler, client)
    check_per_task(per_task)
    names = symbol_list(symbols)
    lo, hi = resolve_range(start_date, end_date)
    frame = data if data is not None else load_bars(data_provider, names, lo, hi, interval, data=None)
    cut = to_utc(holdout_from) if holdout_from is not None else None
    if cut is not None:
        _check_holdout(frame, cut)
    job = _Job(strategy, names, lo, hi, interval, dict(engine_options or {}))
    runs = [_Run(dict(p), cut, keep_equity=equity_curves) for p in grid]
    with task_pool(compute) as pool:
        rows = run_all(pool, frame, job, runs, progress=progress, per_task=per_task)
    return _rank(rows, grid, metric, cut)


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
def run_all(
    pool: TaskPool,
    frame: pd.DataFrame,
    job: _Job,
    runs: Sequence[_Run],
    *,
    progress: Callable[[int, int], None] | None = None,
    per_task: int | None = None,
) -> list[dict[str, Any]]:
    """One row per run, in the order of ``runs``; the bars and the job travel to each worker once.

    ``per_task`` runs go in one task (None: :func:`auto_task_sizes`); a task with several runs that the
    cluster lost is split and its runs go again one per task (see the module docstring).
    """
    check_per_task(per_task)
    if per_task is None:
        sizes = auto_task_sizes(len(runs), pool.worker_threads())
    else:
        sizes = [min(per_task, len(runs) - i) for i in range(0, len(runs), per_task)]
    shared_frame, shared_job = Shared(frame), Shared(job)
    starts = list(itertools.accumulate(sizes, initial=0))
    chunks = [tuple(runs[a:b]) for a, b in itertools.pairwise(starts)]
    results = pool.run(
        _run_chunk,
        ((shared_frame, shared_job, chunk) for chunk in chunks),
        total=len(chunks),
        on_failure=_Lost,
        progress=progress,
        sizes=[len(chunk) for chunk in chunks],
    )
    results = _split_lost(pool, (shared_frame, shared_job), chunks, results)
    return [row for got in results for row in _rows(got)]


def _split_lost(
    pool: TaskPool, shared: tuple[Shared, Shared], chunks: list[tuple[_Run, ...]], results: list[Any]
) -> list[Any]:
    """``results`` with each lost task of several runs replaced by its runs' results, run one per task
    (a run that kills its worker then takes no other down). Progress has counted them already."""
    lost = [
        k for k, (chunk, got) in enumerate(zip(chunks, results, strict=True)) if _lost(got) and len(chunk) > 1
    ]
    if not lost:
        return results
    again = [run for k in lost for run in chunks[k]]
    log.warning("sweep: %d run(s) lost with their task; running them again one per task", len(again))
    alone = iter(
        pool.run(_run_chunk, ((*shared, (run,)) for run in again), total=len(again), on_failure=_Lost)
    )
    results = list(results)
    for k in lost:
        results[k] = [row for _ in chunks[k] for row in _rows(next(alone))]
    return results


def auto_task_sizes(runs: int, threads: int | None) -> list[int]:
    """Runs per task, task by task, when the caller does not say (guided self-scheduling: see the module
    docstring); one run a task in this process (``threads`` None) or while no worker has joined (0)."""
    if not threads:
        return [1] * runs
    floor = max(1, runs // (threads * TAIL_TASKS_PER_THREAD))
    sizes: list[int] = []
    left = runs
    while left:
        size = min(left, MAX_PER_TASK, max(floor, math.ceil(left / (GUIDE * threads))))
        sizes.append(size)
        left -= size
    return sizes


def check_per_task(per_task: int | None) -> None:
    if per_task is not None and per_task < 1:
        raise ConfigError(f"per_task must be at least 1, got {per_task}")


def _run_chunk(frame: pd.DataFrame, job: _Job, runs: tuple[_Run, ...]) -> list[dict[str, Any]]:
    return [_run_one(frame, job, run) for run in runs]


def _run_one(frame: pd.DataFrame, job: _Job, run: _Run) -> dict[str, Any]:
    """One backtest; a combination that cannot run becomes a row with its error, never an exception."""
    row: dict[str, Any] = dict(run.params)
    bars = frame if run.first == 0 and run.stop is None else frame.iloc[run.first : run.stop]
    try:
        strategy = job.factory(**run.params)
        engine = BacktestEngine(**{"interval": job.interval, **job.engine_options})
        engine.add_strategy(strategy)
        result = engine.run(job.start, job.end, job.symbols, data=bars)
    except Exception as exc:  # a bad combination must not end the sweep: report it in its row
        log.warning("sweep: %s failed: %s: %s", run.params, type(exc).__name__, exc)
        return _error_row(run.params, f"{type(exc).__name__}: {exc}")
    row.update(_row_metrics(result, run.holdout_from))
    row["final_value"] = result.final_value
    row["errors"] = len(result.errors)
    row["error"] = ""
    if run.keep_equity:
        row[EQUITY_KEY] = result.equity_curve.astype("float64")
    return row


def _error_row(params: Mapping[str, Any], error: str) -> dict[str, Any]:
    row: dict[str, Any] = dict(params)
    row.update(dict.fromkeys(_PERIOD_METRICS, math.nan), final_value=math.nan, errors=0)
    row["error"] = error
    return row


class _Lost:
    """A task the cluster could not finish (its worker died too often, or it could not start there)."""

    __slots__ = ("exc", "runs")

    def __init__(self, args: tuple[Any, ...], exc: BaseException) -> None:
        self.runs: tuple[_Run, ...] = args[-1]
        self.exc = exc


def _lost(got: Any) -> bool:
    return isinstance(got, _Lost)


def _rows(got: list[dict[str, Any]] | _Lost) -> list[dict[str, Any]]:
    """A task's rows; for a lost task, one error row per run."""
    if not isinstance(got, _Lost):
        return got
    exc = got.exc
    log.warning(
        "sweep: %d run(s) could not run on the cluster: %s: %s", len(got.runs), type(exc).__name__, exc
    )
    return [_error_row(run.params, f"{type(exc).__name__}: {exc}") for run in got.runs]


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
    curves = [row.pop(EQUITY_KEY, None) for row in rows]
    table = pd.DataFrame(rows)
    ordered = [*parameters, *_PERIOD_METRICS]
    if cut is not None:
        ordered += [f"holdout_{k}" for k in _PERIOD_METRICS]
    ordered += ["final_value", "errors", "error"]
    table = table.reindex(columns=ordered)
    counts = [c for c in ordered if c == "fills" or c.endswith("_fills")]
    table[counts] = table[counts].astype("Int64")  # whole numbers, <NA> for a run that failed
    table = table.sort_values(metric, ascending=False, na_position="last", kind="stable")
    order = list(table.index)  # grid positions, best first
    table = table.reset_index(drop=True)
    table.index = pd.RangeIndex(1, len(table) + 1, name="rank")
    equity = {rank: curves[at] for rank, at in enumerate(order, 1) if curves[at] is not None}
    return SweepResult(table, metric, parameters, cut, len(rows), equity)


def _plain(value: Any) -> Any:
    """numpy scalars back to Python values (a DataFrame stores ints as numpy.int64)."""
    return value.item() if isinstance(value, np.generic) else value
