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

Each fold is one :func:`~copilot_quant.backtest.sweep.run_sweep` with ``holdout_from`` at the test
stretch's first bar, so the chosen parameters run through the training bars into the test stretch:
their indicators are warm and a position open at the boundary is carried, as in real trading. The test
metrics are measured from the equity at the last training bar.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from copilot_quant.backtest.engine import BacktestEngine
from copilot_quant.backtest.interfaces import IDataFeed
from copilot_quant.backtest.metrics import infer_periods_per_year
from copilot_quant.backtest.sweep import StrategyFactory, load_bars, period_metrics, run_sweep
from copilot_quant.data.dates import resolve_range
from copilot_quant.errors import ConfigError

__all__ = ["WalkForwardResult", "walk_forward"]

#: The test metrics each fold reports (the ranking metric's value on the training bars comes first).
_TEST_COLUMNS = ("sharpe_ratio", "total_return", "max_drawdown", "fills")


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
    progress: Callable[[int, int], None] | None = None,
) -> WalkForwardResult:
    """Walk-forward analysis of ``strategy`` over ``grid``; see the module docstring.

    The arguments are those of :func:`~copilot_quant.backtest.sweep.run_sweep`, plus ``folds`` (test
    stretches, at least 1) and ``rolling`` (train on the previous stretch only instead of all before).
    """
    if folds < 1:
        raise ConfigError(f"folds must be at least 1, got {folds}")
    names = [s.strip().upper() for s in ([symbols] if isinstance(symbols, str) else symbols)]
    lo, hi = resolve_range(start_date, end_date)
    frame = data if data is not None else load_bars(data_provider, names, lo, hi, interval)
    stretches = _stretches(frame, folds)
    options = dict(engine_options or {})
    total = folds * len(grid)
    rows: list[dict[str, Any]] = []
    pieces: list[pd.Series] = []
    for k in range(1, folds + 1):
        first = 0 if not rolling else int(stretches[k - 1][0])
        test = stretches[k]
        window = frame.iloc[first : int(test[-1]) + 1]
        test_start = frame.index[int(test[0])]
        sweep = run_sweep(
            strategy,
            grid,
            symbols=names,
            data=window,
            interval=interval,
            engine_options=options,
            metric=metric,
            holdout_from=test_start,
            jobs=jobs,
            progress=_offset(progress, (k - 1) * len(grid), total),
        )
        params = sweep.best()
        best = sweep.table.iloc[0]
        returns = _test_returns(
            strategy, params, window, names=names, interval=interval, options=options, test_start=test_start
        )
        pieces.append(returns)
        rows.append(
            {
                "fold": k,
                "train_start": window.index[0],
                "train_end": frame.index[int(test[0]) - 1],
                "test_start": test_start,
                "test_end": window.index[-1],
                **params,
                f"train_{metric}": best[metric],
                **{f"test_{c}": best[f"holdout_{c}"] for c in _TEST_COLUMNS},
            }
        )
    return _result(rows, pieces, options, metric, list(grid[0]))


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


def _test_returns(
    strategy: StrategyFactory,
    params: Mapping[str, Any],
    window: pd.DataFrame,
    *,
    names: list[str],
    interval: str,
    options: Mapping[str, Any],
    test_start: pd.Timestamp,
) -> pd.Series:
    """Per-bar returns of the chosen parameters over the test stretch, from the last training bar's equity."""
    engine = BacktestEngine(**{"interval": interval, **options})
    engine.add_strategy(strategy(**params))
    equity = engine.run(None, None, names, data=window).equity_curve.astype("float64")
    before = equity[equity.index < test_start]
    start_value = float(before.iloc[-1]) if len(before) else engine.initial_capital
    test = equity[equity.index >= test_start]
    return pd.concat([pd.Series([start_value]), test]).pct_change().iloc[1:].set_axis(test.index)


def _result(
    rows: list[dict[str, Any]],
    pieces: list[pd.Series],
    options: Mapping[str, Any],
    metric: str,
    parameters: list[str],
) -> WalkForwardResult:
    capital = float(options.get("initial_capital", 100_000.0))
    returns = pd.concat(pieces)
    equity = capital * (1.0 + returns).cumprod()
    table = pd.DataFrame(rows).set_index("fold")
    fills = int(table["test_fills"].sum())
    ppy = infer_periods_per_year(equity.index)
    return WalkForwardResult(table, equity, period_metrics(equity, capital, ppy, fills), metric, parameters)
