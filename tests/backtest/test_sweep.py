"""Parameter sweeps: every row is a real, independent backtest, and the holdout is never peeked at."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from copilot_quant.backtest.engine import BacktestEngine
from copilot_quant.backtest.sweep import (
    MAX_PER_TASK,
    RANKING_METRICS,
    TAIL_TASKS_PER_THREAD,
    auto_task_sizes,
    parameter_grid,
    period_metrics,
    run_sweep,
)
from copilot_quant.data.providers import SampleDataProvider
from copilot_quant.errors import ConfigError
from copilot_quant.examples.sma_cross import SimpleMovingAverage, SmaCrossFast
from hypothesis import given
from hypothesis import strategies as st

pytestmark = pytest.mark.timeout(120)

RANGE = ("2009-01-01", "2011-12-31")
OPTIONS = {"initial_capital": 100_000.0, "commission": 0.001, "slippage": 0.0005}
GRID = parameter_grid({"fast_period": [5, 10], "slow_period": [20, 40]})


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return SampleDataProvider().get_historical_data("AAPL", *RANGE)


def _alone(params: dict, bars: pd.DataFrame, cls=SimpleMovingAverage):
    engine = BacktestEngine(**OPTIONS)
    engine.add_strategy(cls(quantity=100, **params))
    return engine.run(*RANGE, ["AAPL"], data=bars)


def _factory(cls=SimpleMovingAverage):
    return lambda **params: cls(quantity=100, **params)


def test_the_grid_is_every_combination_in_order():
    assert parameter_grid({"a": [1, 2], "b": ["x", "y"]}) == [
        {"a": 1, "b": "x"},
        {"a": 1, "b": "y"},
        {"a": 2, "b": "x"},
        {"a": 2, "b": "y"},
    ]
    with pytest.raises(ConfigError, match="'b' has no values"):
        parameter_grid({"a": [1], "b": []})


def test_period_metrics_of_a_whole_run_equal_the_results_own(bars):
    result = _alone({"fast_period": 5, "slow_period": 20}, bars)
    assert len(result.fills) > 4
    mine = period_metrics(result.equity_curve, result.initial_capital, result.periods_per_year, 0)
    theirs = result.metrics
    for key in RANKING_METRICS:
        assert mine[key] == pytest.approx(theirs[key], rel=1e-12, abs=1e-15), key


def test_each_row_is_the_same_backtest_run_alone_and_best_is_ranked_first(bars):
    sweep = run_sweep(
        _factory(),
        GRID,
        symbols="aapl",
        start_date=RANGE[0],
        end_date=RANGE[1],
        data=bars,
        engine_options=OPTIONS,
    )
    assert sweep.combinations == 4
    assert list(sweep.table.index) == [1, 2, 3, 4]
    for _, row in sweep.table.iterrows():
        params = {"fast_period": int(row["fast_period"]), "slow_period": int(row["slow_period"])}
        alone = _alone(params, bars)
        assert row["final_value"] == pytest.approx(alone.final_value, rel=1e-12)
        assert row["sharpe_ratio"] == pytest.approx(alone.metrics["sharpe_ratio"], rel=1e-12)
        assert row["fills"] == len(alone.fills)
        assert row["errors"] == 0
        assert row["error"] == ""
    sharpes = list(sweep.table["sharpe_ratio"])
    assert sharpes == sorted(sharpes, reverse=True)
    top = sweep.table.iloc[0]
    assert sweep.best() == {"fast_period": top["fast_period"], "slow_period": top["slow_period"]}
    assert all(type(v) is int for v in sweep.best().values())


def test_parallel_workers_give_the_same_table_as_one_process(bars):
    kwargs = {
        "symbols": ["AAPL"],
        "start_date": RANGE[0],
        "end_date": RANGE[1],
        "data": bars,
        "engine_options": OPTIONS,
        "holdout_from": "2011-01-01",
    }
    one = run_sweep(_factory(SmaCrossFast), GRID, jobs=1, **kwargs)
    two = run_sweep(_factory(SmaCrossFast), GRID, jobs=2, **kwargs)
    pd.testing.assert_frame_equal(one.table, two.table)


def test_the_ranking_never_sees_the_holdout(bars):
    """Rewriting every bar from the holdout date on changes the holdout columns, never the ranked ones."""
    cut = pd.Timestamp("2011-01-01", tz="America/New_York")
    changed = bars.copy()
    later = changed.index >= cut
    changed.loc[later, ["Open", "High", "Low", "Close"]] *= 1.5
    changed.loc[later, "Close"] = changed.loc[later, "Close"][::-1].to_numpy()  # a different path
    changed.loc[later, "High"] = changed.loc[later, ["Open", "High", "Close"]].max(axis=1)
    changed.loc[later, "Low"] = changed.loc[later, ["Open", "Low", "Close"]].min(axis=1)
    kwargs = {
        "symbols": ["AAPL"],
        "start_date": RANGE[0],
        "end_date": RANGE[1],
        "engine_options": OPTIONS,
        "holdout_from": "2011-01-01",
    }
    real = run_sweep(_factory(), GRID, data=bars, **kwargs).table.sort_values(["fast_period", "slow_period"])
    other = run_sweep(_factory(), GRID, data=changed, **kwargs).table.sort_values(
        ["fast_period", "slow_period"]
    )
    ranked = ["sharpe_ratio", "total_return", "max_drawdown", "fills"]
    pd.testing.assert_frame_equal(real[ranked], other[ranked])
    assert not real["holdout_total_return"].equals(other["holdout_total_return"])
    assert (real["fills"] + real["holdout_fills"]).tolist() == [
        len(_alone({"fast_period": int(f), "slow_period": int(s)}, bars).fills)
        for f, s in zip(real["fast_period"], real["slow_period"], strict=True)
    ]


def test_the_holdout_starts_from_the_equity_it_inherited(bars):
    params = {"fast_period": 5, "slow_period": 20}
    sweep = run_sweep(
        _factory(),
        [params],
        symbols=["AAPL"],
        start_date=RANGE[0],
        end_date=RANGE[1],
        data=bars,
        engine_options=OPTIONS,
        holdout_from="2011-01-01",
    )
    alone = _alone(params, bars)
    equity = alone.equity_curve
    cut = pd.Timestamp("2011-01-01", tz="America/New_York")
    before, after = equity[equity.index < cut], equity[equity.index >= cut]
    row = sweep.table.iloc[0]
    assert row["total_return"] == pytest.approx(before.iloc[-1] / 100_000 - 1)
    assert row["holdout_total_return"] == pytest.approx(after.iloc[-1] / before.iloc[-1] - 1)


def test_a_combination_that_cannot_run_is_a_row_with_its_error(bars):
    def factory(**params):
        if params["slow_period"] == 40:
            raise ValueError("slow too slow")
        return SimpleMovingAverage(quantity=100, **params)

    sweep = run_sweep(
        factory,
        GRID,
        symbols=["AAPL"],
        start_date=RANGE[0],
        end_date=RANGE[1],
        data=bars,
        engine_options=OPTIONS,
    )
    failed = sweep.table[sweep.table["error"] != ""]
    assert sorted(failed["fast_period"]) == [5, 10]
    assert set(failed["error"]) == {"ValueError: slow too slow"}
    assert failed["sharpe_ratio"].isna().all()
    assert list(sweep.table.index[-2:]) == [3, 4]  # ranked last
    assert math.isfinite(sweep.table.iloc[0]["sharpe_ratio"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metric": "luck"}, "cannot rank by 'luck'"),
        ({"jobs": 0}, "jobs must be at least 1"),
        ({"grid": []}, "grid is empty"),
    ],
)
def test_bad_settings_are_named(bars, kwargs, message):
    args = {"grid": GRID, **kwargs}
    grid = args.pop("grid")
    with pytest.raises(ConfigError, match=message):
        run_sweep(_factory(), grid, symbols=["AAPL"], data=bars, **args)


def test_automatic_batching_hands_out_shrinking_tasks_and_none_in_this_process():
    # guided: each task a quarter of what is left on 2 workers, down to 1/8 of a worker's share (3 runs)
    assert auto_task_sizes(48, 2) == [12, 9, 7, 5, 4, 3, 3, 3, 2]
    assert auto_task_sizes(48, 100) == [1] * 48  # a small grid on many workers: one combination a task
    big = auto_task_sizes(100_000, 100)
    assert max(big) == MAX_PER_TASK  # capped: a task's rows come back together
    assert min(big[:-1]) == 100_000 // (100 * TAIL_TASKS_PER_THREAD)  # no glut of small tasks at the end
    assert big == sorted(big, reverse=True)
    assert sum(big) == 100_000
    assert auto_task_sizes(48, None) == [1] * 48  # in this process: nothing to save
    assert auto_task_sizes(48, 0) == [1] * 48  # no worker has joined yet: the cluster's size is unknown


@given(runs=st.integers(1, 5_000), threads=st.integers(1, 200))
def test_automatic_task_sizes_cover_every_run_once_and_never_grow(runs, threads):
    sizes = auto_task_sizes(runs, threads)
    assert sum(sizes) == runs
    assert min(sizes) >= 1
    assert max(sizes) <= MAX_PER_TASK
    assert sizes == sorted(sizes, reverse=True)
