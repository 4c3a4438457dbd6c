"""Walk-forward analysis: each fold chooses on bars before its test stretch only, and the chain is exact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from copilot_quant.backtest.engine import BacktestEngine
from copilot_quant.backtest.sweep import parameter_grid, run_sweep
from copilot_quant.backtest.walk_forward import walk_forward
from copilot_quant.cli import app
from copilot_quant.cli.exit_codes import SUCCESS, USAGE_ERROR
from copilot_quant.data.providers import SampleDataProvider
from copilot_quant.errors import ConfigError
from copilot_quant.examples.sma_cross import SmaCrossFast
from typer.testing import CliRunner

pytestmark = pytest.mark.timeout(120)

SPEC = f"{Path(__file__).resolve().parents[2] / 'copilot_quant' / 'examples' / 'sma_cross.py'}:SmaCrossFast"
RANGE = ("2005-01-01", "2012-12-31")
OPTIONS = {"initial_capital": 100_000.0, "commission": 0.001, "slippage": 0.0005}
GRID = parameter_grid({"fast_period": [5, 10, 20], "slow_period": [30, 50, 100]})


def factory(**params):
    return SmaCrossFast(quantity=100, **params)


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return SampleDataProvider().get_historical_data("AAPL", *RANGE)


def _walk(data: pd.DataFrame, **kwargs):
    return walk_forward(factory, GRID, symbols=["AAPL"], data=data, engine_options=OPTIONS, **kwargs)


def test_folds_test_consecutive_stretches_and_train_on_everything_before(bars):
    wf = _walk(bars, folds=4)
    table = wf.table
    assert list(table.index) == [1, 2, 3, 4]
    stretches = np.array_split(np.arange(len(bars)), 5)
    for k, row in table.iterrows():
        test = stretches[k]
        assert row["test_start"] == bars.index[test[0]]
        assert row["test_end"] == bars.index[test[-1]]
        assert row["train_start"] == bars.index[0]  # anchored
        assert row["train_end"] == bars.index[test[0] - 1]


def test_each_fold_chooses_what_a_sweep_of_its_training_bars_ranks_first(bars):
    wf = _walk(bars, folds=3)
    for _, row in wf.table.iterrows():
        window = bars[bars.index <= row["test_end"]]
        sweep = run_sweep(factory, GRID, symbols=["AAPL"], data=window, engine_options=OPTIONS,
                          holdout_from=row["test_start"])  # fmt: skip
        assert {p: row[p] for p in wf.parameters} == sweep.best()
        assert row["train_sharpe_ratio"] == pytest.approx(sweep.table.iloc[0]["sharpe_ratio"])


def test_a_folds_choice_never_sees_its_test_stretch(bars):
    """Rewriting the bars from fold 3's test stretch on leaves folds 1-3's choices and scores unchanged."""
    wf = _walk(bars, folds=4)
    cut = wf.table.loc[3, "test_start"]
    changed = bars.copy()
    later = changed.index >= cut
    changed.loc[later, ["Open", "High", "Low", "Close"]] = changed.loc[
        later, ["Open", "High", "Low", "Close"]
    ][::-1].to_numpy()
    changed.loc[later, "High"] = changed.loc[later, ["Open", "High", "Low", "Close"]].max(axis=1)
    changed.loc[later, "Low"] = changed.loc[later, ["Open", "High", "Low", "Close"]].min(axis=1)
    other = _walk(changed, folds=4)
    chosen = [*wf.parameters, "train_sharpe_ratio"]
    pd.testing.assert_frame_equal(wf.table.loc[[1, 2, 3], chosen], other.table.loc[[1, 2, 3], chosen])
    pd.testing.assert_frame_equal(wf.table.loc[[1, 2]], other.table.loc[[1, 2]])  # tests before the cut too
    assert not wf.table.loc[4].equals(other.table.loc[4])


def test_the_chained_equity_is_the_folds_test_returns_compounded(bars):
    wf = _walk(bars, folds=4)
    assert wf.equity.index[0] == wf.table.loc[1, "test_start"]
    assert wf.equity.index[-1] == bars.index[-1]
    assert wf.equity.index.is_monotonic_increasing
    growth = float(np.prod(1 + wf.table["test_total_return"].to_numpy()))
    assert wf.equity.iloc[-1] == pytest.approx(100_000 * growth, rel=1e-9)
    assert wf.metrics["total_return"] == pytest.approx(growth - 1, rel=1e-9)
    assert wf.metrics["fills"] == wf.table["test_fills"].sum()


def test_a_folds_test_return_is_the_chosen_run_from_the_last_training_equity(bars):
    wf = _walk(bars, folds=2, rolling=True)
    row = wf.table.loc[2]
    assert row["train_start"] == bars.index[np.array_split(np.arange(len(bars)), 3)[1][0]]  # rolling
    window = bars[(bars.index >= row["train_start"]) & (bars.index <= row["test_end"])]
    engine = BacktestEngine(**OPTIONS)
    engine.add_strategy(factory(**{p: int(row[p]) for p in wf.parameters}))
    equity = engine.run(None, None, ["AAPL"], data=window).equity_curve
    start = equity[equity.index < row["test_start"]].iloc[-1]
    assert row["test_total_return"] == pytest.approx(equity.iloc[-1] / start - 1, rel=1e-9)


def test_too_few_bars_for_the_folds_is_a_named_error(bars):
    with pytest.raises(ConfigError, match="too few for 9 folds"):
        _walk(bars.iloc[:15], folds=9)
    with pytest.raises(ConfigError, match="folds must be at least 1"):
        _walk(bars, folds=0)


def test_the_cli_runs_a_walk_forward_and_exports_the_folds(tmp_path):
    out = tmp_path / "wf.csv"
    result = CliRunner().invoke(app, [
        "sweep", SPEC, "--symbols", "AAPL",
        "--start", "2005-01-01", "--end", "2012-12-31", "-g", "fast_period=5,10", "-g", "slow_period=30,50",
        "--walk-forward", "3", "--rolling", "--export", str(out), "--jobs", "2",
    ])  # fmt: skip
    assert result.exit_code == SUCCESS, result.output
    assert "Walk-forward: 3 fold(s)" in result.output
    folds = pd.read_csv(out)
    assert list(folds["fold"]) == [1, 2, 3]
    assert {"fast_period", "slow_period", "test_sharpe_ratio", "train_sharpe_ratio"} <= set(folds.columns)
    for args, message in (
        (["--walk-forward", "3", "--holdout-from", "2010-01-01"], "drop --holdout-from"),
        (["--rolling"], "--rolling only applies with --walk-forward"),
    ):
        bad = CliRunner().invoke(app, ["sweep", SPEC, "-s", "AAPL",
                                       "-g", "fast_period=5,10", *args])  # fmt: skip
        assert bad.exit_code == USAGE_ERROR, bad.output
        assert message in " ".join(bad.output.split())
