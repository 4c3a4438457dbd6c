"""Reports of parameter searches: the maps hold the table's numbers where they belong, and the pages stand alone."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from copilot_quant.backtest.sweep import SweepResult, parameter_grid, run_sweep
from copilot_quant.backtest.sweep_report import (
    sweep_figure,
    walk_forward_figure,
    write_sweep_report,
    write_walk_forward_report,
)
from copilot_quant.backtest.walk_forward import WalkForwardResult, walk_forward
from copilot_quant.data.providers import SampleDataProvider
from copilot_quant.examples.sma_cross import SmaCrossFast

pytestmark = pytest.mark.timeout(120)

RANGE = ("2009-01-01", "2011-12-31")
HOLDOUT = "2011-01-01"
OPTIONS = {"initial_capital": 100_000.0, "commission": 0.001, "slippage": 0.0005}
# fast 20 with slow 20 cannot run (the strategy needs fast < slow): a failed combination in every sweep
GRID = parameter_grid({"fast_period": [5, 10, 20], "slow_period": [40, 20]})


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return SampleDataProvider().get_historical_data("AAPL", *RANGE)


def _sweep(bars: pd.DataFrame, grid=GRID, holdout: str | None = HOLDOUT, **fixed) -> SweepResult:
    fixed = {"quantity": 100, **fixed}
    return run_sweep(
        lambda **params: SmaCrossFast(**{**fixed, **params}),
        grid,
        symbols="AAPL",
        data=bars,
        engine_options=OPTIONS,
        holdout_from=holdout,
    )


@pytest.fixture(scope="module")
def swept(bars) -> SweepResult:
    return _sweep(bars)


def _hundred_shares(**params) -> SmaCrossFast:
    return SmaCrossFast(quantity=100, **params)


@pytest.fixture(scope="module")
def walked(bars) -> WalkForwardResult:
    grid = parameter_grid({"fast_period": [5, 10], "slow_period": [20, 40]})
    return walk_forward(_hundred_shares, grid, symbols="AAPL", data=bars, engine_options=OPTIONS, folds=3)


def _traces(fig: go.Figure, meta: str) -> list:
    return [t for t in fig.data if t.meta == meta]


def _heatmap(fig: go.Figure, column: str) -> go.Heatmap:
    (heatmap,) = [t for t in _traces(fig, column) if isinstance(t, go.Heatmap)]
    return heatmap


def _at(heatmap: go.Heatmap, x, y):
    """The heatmap's value at parameters (x, y): row ``y``'s position, column ``x``'s."""
    return heatmap.z[list(heatmap.y).index(y)][list(heatmap.x).index(x)]


def _same(shown, expected) -> bool:
    """A map shows a missing value as a gap (None)."""
    if expected is None or pd.isna(expected):
        return shown is None
    return shown == pytest.approx(float(expected), rel=1e-12)


def _table(rows: list[dict], metric: str = "sharpe_ratio", holdout: bool = False) -> SweepResult:
    """A SweepResult built by hand, ranked as run_sweep ranks (best first, NaN last)."""
    table = pd.DataFrame(rows)
    params = [c for c in rows[0] if c not in {metric, f"holdout_{metric}", "error"}]
    table["error"] = table.get("error", pd.Series("", index=table.index)).fillna("")
    table = table.sort_values(metric, ascending=False, na_position="last", kind="stable")
    table.index = pd.RangeIndex(1, len(table) + 1, name="rank")
    cut = pd.Timestamp("2011-01-01", tz="UTC") if holdout else None
    return SweepResult(table, metric, params, cut, len(table))


# ------------------------------------------------------------------------------------------- two parameters
def test_the_heatmap_holds_each_combinations_metric_at_its_parameters(swept):
    fig = sweep_figure(swept)
    heatmap = _heatmap(fig, "sharpe_ratio")
    assert list(heatmap.x) == [5, 10, 20]  # ascending, whatever the grid's order
    assert list(heatmap.y) == [20, 40]
    assert fig.layout.xaxis.title.text == "fast_period"
    assert fig.layout.yaxis.title.text == "slow_period"
    assert len(swept.table) == 6
    for _, row in swept.table.iterrows():
        assert _same(_at(heatmap, row["fast_period"], row["slow_period"]), row["sharpe_ratio"])
    assert _at(heatmap, 20, 20) is None  # the combination that could not run is a gap


def test_the_holdout_heatmap_sits_beside_it_on_the_same_axes(swept, bars):
    fig = sweep_figure(swept)
    ranked, held = _heatmap(fig, "sharpe_ratio"), _heatmap(fig, "holdout_sharpe_ratio")
    assert list(held.x) == list(ranked.x)
    assert list(held.y) == list(ranked.y)
    assert held.xaxis != ranked.xaxis  # its own panel
    for _, row in swept.table.iterrows():
        assert _same(_at(held, row["fast_period"], row["slow_period"]), row["holdout_sharpe_ratio"])
    alone = sweep_figure(_sweep(bars, holdout=None))
    assert [t.meta for t in alone.data if isinstance(t, go.Heatmap)] == ["sharpe_ratio"]


def test_the_best_cell_is_marked_on_every_map_at_the_tables_first_row(swept):
    fig = sweep_figure(swept)
    top = swept.table.iloc[0]
    marks = _traces(fig, "best")
    assert len(marks) == 2  # in-sample and holdout
    for mark in marks:
        assert (mark.x[0], mark.y[0]) == (top["fast_period"], top["slow_period"])
    assert {m.xaxis for m in marks} == {t.xaxis for t in fig.data if isinstance(t, go.Heatmap)}


def test_a_ranking_by_another_metric_maps_that_metric(bars):
    sweep = run_sweep(
        _hundred_shares,
        GRID,
        symbols="AAPL",
        data=bars,
        engine_options=OPTIONS,
        metric="total_return",
    )
    heatmap = _heatmap(sweep_figure(sweep), "total_return")
    for _, row in sweep.table.iterrows():
        assert _same(_at(heatmap, row["fast_period"], row["slow_period"]), row["total_return"])
    assert "%" in heatmap.texttemplate  # returns are printed as percentages


# ------------------------------------------------------------------------------------------- one parameter
def test_one_varied_parameter_is_a_line_of_the_metric_and_the_holdout_against_it(bars):
    sweep = _sweep(bars, parameter_grid({"fast_period": [20, 5, 10], "slow_period": [40]}))
    fig = sweep_figure(sweep)
    assert not [t for t in fig.data if isinstance(t, go.Heatmap)]
    by_fast = sweep.table.set_index("fast_period")
    for column in ("sharpe_ratio", "holdout_sharpe_ratio"):
        (line,) = _traces(fig, column)
        assert list(line.x) == [5, 10, 20]
        assert list(line.y) == pytest.approx([by_fast.at[v, column] for v in (5, 10, 20)])
    marks = _traces(fig, "best")
    top = sweep.table.iloc[0]
    assert [m.x[0] for m in marks] == [top["fast_period"]] * 2
    assert [m.y[0] for m in marks] == pytest.approx([top["sharpe_ratio"], top["holdout_sharpe_ratio"]])
    assert fig.layout.xaxis.title.text == "fast_period"


# ------------------------------------------------------------------------------------------- more parameters
def _three() -> SweepResult:
    """``a`` and ``b`` move the metric, ``c`` hardly: the map is over a and b, best over c."""
    rows = []
    for a in (1, 2, 3):
        for b in (10, 20):
            for c in ("x", "y", "z"):
                metric = a + b / 10 + {"x": 0.0, "y": 0.01, "z": -0.01}[c]
                rows.append({"c": c, "b": b, "a": a, "sharpe_ratio": metric, "holdout_sharpe_ratio": -metric})
    return _table(rows, holdout=True)


def test_more_parameters_map_the_two_that_matter_most_with_the_best_of_the_others():
    result = _three()
    fig = sweep_figure(result)
    ranked, held = _heatmap(fig, "sharpe_ratio"), _heatmap(fig, "holdout_sharpe_ratio")
    # the median moves by 2 over a's values and by 1 over b's, by 0.01 over c's: a across, b up
    assert list(ranked.x) == [1, 2, 3]
    assert list(ranked.y) == [10, 20]
    table = result.table
    for a in (1, 2, 3):
        for b in (10, 20):
            cell = table[(table["a"] == a) & (table["b"] == b)]
            best = cell.loc[cell["sharpe_ratio"].idxmax()]
            assert best["c"] == "y"
            assert _at(ranked, a, b) == pytest.approx(best["sharpe_ratio"])
            assert _at(held, a, b) == pytest.approx(best["holdout_sharpe_ratio"])  # the same combination's
    (mark, _) = _traces(fig, "best")
    assert (mark.x[0], mark.y[0]) == (3, 20)
    profiles = {t.meta for t in fig.data if str(t.meta).startswith("profile")}
    assert {f"profile {p}: {k}" for p in "abc" for k in ("best", "median")} <= profiles
    (c_best,) = _traces(fig, "profile c: best")
    assert list(c_best.x) == ["x", "y", "z"]  # text values are categories
    assert list(c_best.y) == pytest.approx([table.loc[table["c"] == c, "sharpe_ratio"].max() for c in "xyz"])


def test_text_parameters_are_categories_on_the_map():
    rows = [
        {"symbol": s, "period": p, "sharpe_ratio": float(i)}
        for i, (s, p) in enumerate((s, p) for s in ("MSFT", "AAPL") for p in (5, 10))
    ]
    result = _table(rows)
    fig = sweep_figure(result)
    heatmap = _heatmap(fig, "sharpe_ratio")
    assert list(heatmap.x) == ["AAPL", "MSFT"]
    assert fig.layout.xaxis.type == "category"
    for row in rows:
        assert _at(heatmap, row["symbol"], row["period"]) == row["sharpe_ratio"]


def test_a_parameter_with_one_value_is_fixed_not_mapped():
    rows = [{"fast": f, "slow": 50, "sharpe_ratio": f / 10} for f in (5, 10, 15)]
    fig = sweep_figure(_table(rows))
    (line,) = _traces(fig, "sharpe_ratio")
    assert list(line.x) == [5, 10, 15]


# ------------------------------------------------------------------------------------------- the sweep page
def _standalone(text: str) -> None:
    assert text.startswith("<!DOCTYPE html>")
    assert "plotly.js v" in text or "Plotly" in text  # embedded: the page opens offline
    assert not re.search(r"<script[^>]+src=[\"']?https?:", text, flags=re.IGNORECASE)
    assert not re.search(r"<link[^>]+href=[\"']?https?:", text, flags=re.IGNORECASE)


def test_the_sweep_page_is_standalone_with_the_ranked_table_and_the_failed_combinations(swept, tmp_path):
    path = write_sweep_report(swept, tmp_path / "sub" / "sweep.html", title="SmaCrossFast on AAPL")
    assert path == (tmp_path / "sub" / "sweep.html").resolve()
    text = path.read_text(encoding="utf-8")
    _standalone(text)
    assert "Parameter sweep: SmaCrossFast on AAPL" in text
    assert "6 combination(s) of fast_period, slow_period" in text
    ranked = text[text.index('id="ranked"') :]
    top = swept.table.iloc[0]
    # formatted as the CLI prints it: ratios with 2 decimals, returns and drawdowns as percentages
    assert f"<td>{top['sharpe_ratio']:.2f}</td><td>{top['total_return']:.2%}</td>" in ranked
    assert f"<td>{top['holdout_max_drawdown']:.2%}</td>" in ranked
    assert '<tr class="best"><td>1</td>' in ranked
    failed = text[text.index('id="failed"') :]
    assert "fast_period=20, slow_period=20: ConfigError" in failed
    assert "need 0 &lt; fast_period &lt; slow_period" in failed
    assert 'id="overfitting"' not in text  # a holdout was used
    assert "On the holdout the chosen combination ranks" in text


def test_without_a_holdout_the_page_warns_about_overfitting(bars, tmp_path):
    text = write_sweep_report(_sweep(bars, holdout=None), tmp_path / "sweep.html").read_text(encoding="utf-8")
    assert 'id="overfitting"' in text
    assert "--holdout-from DATE" in text
    assert "holdout" not in text[text.index('id="ranked"') :]


def test_the_page_says_how_many_rows_it_leaves_out(swept, tmp_path):
    text = write_sweep_report(swept, tmp_path / "sweep.html", top=2).read_text(encoding="utf-8")
    assert "Showing the best 2 of 6 combinations" in text
    ranked = text[text.index('id="ranked"') :].split("</table>")[0]
    assert ranked.count("<tr") == 3  # header and two rows


def test_a_single_combination_has_a_page_without_a_map(bars, tmp_path):
    sweep = _sweep(bars, parameter_grid({"fast_period": [5], "slow_period": [40]}), holdout=None)
    assert not sweep_figure(sweep).data
    text = write_sweep_report(sweep, tmp_path / "one.html").read_text(encoding="utf-8")
    assert "Landscape" not in text
    assert 'id="ranked"' in text


def test_a_sweep_where_nothing_ran_still_has_a_page(tmp_path):
    rows = [{"n": n, "sharpe_ratio": math.nan, "error": "ValueError: no"} for n in (1, 2)]
    result = _table(rows)
    fig = sweep_figure(result)
    assert not _traces(fig, "best")
    text = write_sweep_report(result, tmp_path / "none.html").read_text(encoding="utf-8")
    assert "No combination produced a Sharpe ratio" in text
    assert text.count("ValueError: no") >= 2


# ------------------------------------------------------------------------------------------- walk-forward
def _days(times) -> list[str]:
    return [t.strftime("%Y-%m-%d") for t in pd.DatetimeIndex(times).tz_convert("America/New_York")]


def test_the_walk_forward_curve_is_the_chained_equity_with_a_line_at_each_test_start(walked):
    fig = walk_forward_figure(walked)
    (curve,) = [t for t in fig.data if t.name == "out-of-sample equity"]
    assert list(curve.y) == pytest.approx(walked.equity.to_numpy())
    assert list(curve.x) == _days(walked.equity.index)  # New York days
    starts = _days(walked.table["test_start"])
    assert [s.x0 for s in fig.layout.shapes] == starts
    assert [s.x1 for s in fig.layout.shapes] == starts
    assert [a.text.split(":")[0] for a in fig.layout.annotations] == ["fold 1", "fold 2", "fold 3"]


def test_a_long_walk_forward_curve_is_thinned_for_display_keeping_its_extremes(walked):
    fig = walk_forward_figure(walked, max_points=50)
    curve = fig.data[0]
    assert len(curve.y) < len(walked.equity)
    assert max(curve.y) == pytest.approx(walked.equity.max())
    assert min(curve.y) == pytest.approx(walked.equity.min())


def test_the_walk_forward_page_lists_the_folds_and_the_chains_metrics(walked, tmp_path):
    path = write_walk_forward_report(walked, tmp_path / "wf.html", title="SmaCrossFast on AAPL")
    text = path.read_text(encoding="utf-8")
    _standalone(text)
    assert "Walk-forward: SmaCrossFast on AAPL" in text
    folds = text[text.index('id="folds"') :]
    for fold, row in walked.table.iterrows():
        train = f"{_days([row['train_start']])[0]} → {_days([row['train_end']])[0]}"
        test = f"{_days([row['test_start']])[0]} → {_days([row['test_end']])[0]}"
        params = "".join(f"<td>{row[p]}</td>" for p in walked.parameters)
        assert f"<tr><td>{fold}</td><td>{train}</td><td>{test}</td>{params}" in folds
        assert f"<td>{row['test_total_return']:.2%}</td>" in folds
    chain = text[text.index('id="chain-metrics"') :]
    stats = walked.metrics
    assert f"<td>{stats['total_return']:.2%}</td>" in chain
    assert f"<td>{stats['sharpe_ratio']:.2f}</td>" in chain
    assert f"<td>{float(walked.equity.iloc[-1]):,.2f}</td>" in chain
    assert "Training was anchored" in text


def test_fold_boundaries_are_in_the_folds_order_even_with_one_fold(bars):
    wf = walk_forward(
        _hundred_shares,
        parameter_grid({"fast_period": [5, 10], "slow_period": [40]}),
        symbols="AAPL",
        data=bars,
        folds=1,
    )
    fig = walk_forward_figure(wf)
    assert [s.x0 for s in fig.layout.shapes] == _days(wf.table["test_start"])
    assert np.isclose(fig.data[0].y[-1], wf.equity.iloc[-1])
