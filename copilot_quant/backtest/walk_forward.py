"""Walk-forward analysis: choose parameters on the past, trade them on the next stretch, repeat.

::

    from copilot_quant.backtest.walk_forward import walk_forward

    wf = walk_forward(SmaCross, parameter_grid({"fast_period": [5, 10, 20], "slow_period": [30, 50]}),
                      symbols=["AAPL"], data_provider=SampleDataProvider(), start_date="2005-01-01",
                      end_date="2012-12-31", folds=4)
    print(wf.table)        # per fold: training and test dates, the parameters chosen, their test metrics
    print(wf.metrics)      # of the stitched out-of-sample equity curve

The bars are split into ``folds + 1`` stretches of equal length. Fold *k* ranks the grid on the bars
before stretch *k* (all of them, or with ``rolling=True`` only stretch *k-1*), takes the best parameters,
and measures them on stretch *k* — bars the choice never saw. The test stretches are chained into one
out-of-sample equity curve that starts at the initial capital: what trading the procedure (not one
lucky parameter set) would have earned.

Each fold is a sweep (as :func:`~copilot_quant.backtest.sweep.run_sweep`) with ``holdout_from`` at the test
stretch's first bar; every fold's runs go to the workers together (on Dask with ``jobs``/``scheduler``, as
for a sweep), then the chosen parameters of each fold are run once more for their equity curve, so the chosen parameters run through the training bars into the test stretch:
their indicators are warm and a position open at the boundary is carried, as in real trading. The test
metrics are measured from the equity at the last training bar.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from copilot_quant.backtest.cluster import Compute, task_pool
from copilot_quant.backtest.interfaces import IDataFeed
from copilot_quant.backtest.metrics import infer_periods_per_year
from copilot_quant.backtest.run_data import load_bars, symbol_list
from copilot_quant.backtest.sweep import (
    EQUITY_KEY,
    RANKING_METRICS,
    StrategyFactory,
    SweepResult,
    _Job,
    _rank,
    _Run,
    check_per_task,
    period_metrics,
    run_all,
)
from copilot_quant.data.dates import resolve_range
from copilot_quant.errors import ConfigError

__all__ = ["WalkForwardResult", "walk_forward"]

#: The test metrics each fold reports (the ranking metric's value on the training bars comes first).
_TEST_COLUMNS = ("sharpe_ratio", "total_return", "max_drawdown", "fills")

_CAPITAL = 100_000.0  # BacktestEngine's default initial capital


@dataclass(slots=True)
class WalkForwardResult:
    """``table``: one row per fold (dates, chosen parameters, training score, test metrics);
    ``equity``: the stitched out-of-sample equity curve; ``metrics``: its return, risk and drawdown."""

    table: pd.DataFrame
    equity: pd.Series
    metrics: dict[str, float]
    metric: str
    parameters: list[str]


def walk_forward(
    strategy: StrategyFactory,
    grid: Sequence[Mapping[str, Any]],
    *,
    symbols: Sequence[str] | str,
    start_date: Any = None,
    end_date: Any = None,
    data_provider: IDataFeed | None = None,
    data: pd.DataFrame | None = None,
    folds: int = 4,
    rolling: bool = False,
    interval: str = "1d",
    engine_options: Mapping[str, Any] | None = None,
    metric: str = "sharpe_ratio",
    jobs: int = 1,
    scheduler: str | None = None,
    client: Any = None,
    per_task: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> WalkForwardResult:
    """Walk-forward analysis of ``strategy`` over ``grid``; see the module docstring.

    The arguments are those of :func:`~copilot_quant.backtest.sweep.run_sweep`, plus ``folds`` (test
    stretches, at least 1) and ``rolling`` (train on the previous stretch only instead of all before).
    ``progress(done, total)`` counts every fold's runs plus one test run per fold.
    """
    if folds < 1:
        raise ConfigError(f"folds must be at least 1, got {folds}")
    if metric not in RANKING_METRICS:
        raise ConfigError(f"cannot rank by {metric!r}; choose one of {', '.join(RANKING_METRICS)}")
    if not grid:
        raise ConfigError("the parameter grid is empty; give at least one combination")
    compute = Compute(jobs, scheduler, client)
    check_per_task(per_task)
    names = symbol_list(symbols)
    lo, hi = resolve_range(start_date, end_date)
    frame = data if data is not None else load_bars(data_provider, names, lo, hi, interval, data=None)
    stretches = _stretches(frame, folds)
    options = dict(engine_options or {})
    job = _Job(strategy, names, None, None, interval, options)
    spans = [_Fold.of(frame, stretches, k, rolling) for k in range(1, folds + 1)]
    total = folds * len(grid) + folds
    with task_pool(compute) as pool:
        # every fold's sweep in one go, so the workers never wait for a fold to finish
        runs = [_Run(dict(p), f.test_start, f.first, f.stop) for f in spans for p in grid]
        rows = run_all(pool, frame, job, runs, progress=_offset(progress, 0, total), per_task=per_task)
        size = len(grid)
        sweeps = [
            _rank(rows[k * size : (k + 1) * size], grid, metric, f.test_start) for k, f in enumerate(spans)
        ]
        chosen = [_chosen(sweep, k) for k, sweep in enumerate(sweeps, 1)]
        tests = [
            _Run(params, f.test_start, f.first, f.stop, keep_equity=True)
            for params, f in zip(chosen, spans, strict=True)
        ]
        reruns = run_all(pool, frame, job, tests, progress=_offset(progress, len(runs), total))
    capital = float(options.get("initial_capital", _CAPITAL))
    table_rows = []
    pieces = []
    for k, (sweep, params, rerun, f) in enumerate(zip(sweeps, chosen, reruns, spans, strict=True), 1):
        best = sweep.table.iloc[0]
        pieces.append(_test_returns(rerun, f.test_start, capital))
        table_rows.append(
            {
                "fold": k,
                "train_start": frame.index[f.first],
                "train_end": frame.index[f.test_first - 1],
                "test_start": f.test_start,
                "test_end": frame.index[f.stop - 1],
                **params,
                f"train_{metric}": best[metric],
                **{f"test_{c}": best[f"holdout_{c}"] for c in _TEST_COLUMNS},
            }
        )
    return _result(table_rows, pieces, options, metric, list(grid[0]))


class _Fold(NamedTuple):
    """One fold's bars, ``frame.iloc[first:stop]``, whose test stretch starts at ``test_first``."""

    first: int
    test_first: int
    stop: int
    test_start: pd.Timestamp

    @classmethod
    def of(cls, frame: pd.DataFrame, stretches: list[np.ndarray], k: int, rolling: bool) -> _Fold:
        test = stretches[k]
        first = int(stretches[k - 1][0]) if rolling else 0
        return cls(first, int(test[0]), int(test[-1]) + 1, frame.index[int(test[0])])


def _chosen(sweep: SweepResult, fold: int) -> dict[str, Any]:
    try:
        return sweep.best()
    except ConfigError as exc:
        raise ConfigError(f"walk-forward fold {fold}: {exc}") from exc


def _stretches(frame: pd.DataFrame, folds: int) -> list[np.ndarray]:
    """Bar positions split into ``folds + 1`` stretches of (almost) equal length; each needs 2 bars."""
    if not isinstance(frame.index, pd.DatetimeIndex):
        raise ConfigError("walk-forward needs bars with a datetime index")
    stretches = np.array_split(np.arange(len(frame)), folds + 1)
    if min(len(s) for s in stretches) < 2:
        raise ConfigError(
            f"{len(frame)} bars are too few for {folds} folds (each of the {folds + 1} stretches needs at "
            "least 2 bars); use fewer folds or a longer range"
        )
    return stretches


def _offset(
    progress: Callable[[int, int], None] | None, done_before: int, total: int
) -> Callable[[int, int], None] | None:
    """Report one fold's progress as part of the whole walk-forward."""
    if progress is None:
        return None
    return lambda done, _fold_total: progress(done_before + done, total)


def _test_returns(rerun: dict[str, Any], test_start: pd.Timestamp, capital: float) -> pd.Series:
    """Per-bar returns of the chosen parameters over the test stretch, from the last training bar's equity."""
    if rerun.get("error"):
        raise ConfigError(f"the chosen parameters {rerun} failed on their test run: {rerun['error']}")
    equity: pd.Series = rerun[EQUITY_KEY]
    before = equity[equity.index < test_start]
    start_value = float(before.iloc[-1]) if len(before) else capital
    test = equity[equity.index >= test_start]
    return pd.concat([pd.Series([start_value]), test]).pct_change().iloc[1:].set_axis(test.index)


def _result(
    rows: list[dict[str, Any]],
    pieces: list[pd.Series],
    options: Mapping[str, Any],
    metric: str,
    parameters: list[str],
) -> WalkForwardResult:
    capital = float(options.get("initial_capital", _CAPITAL))
    returns = pd.concat(pieces)
    equity = capital * (1.0 + returns).cumprod()
    table = pd.DataFrame(rows).set_index("fold")
    fills = int(table["test_fills"].sum())
    ppy = infer_periods_per_year(equity.index)
    return WalkForwardResult(table, equity, period_metrics(equity, capital, ppy, fills), metric, parameters)
