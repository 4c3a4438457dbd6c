"""Compared with what? Every backtest carries a benchmark: its curve, return, excess return, alpha and beta."""

from __future__ import annotations

import empyrical
import numpy as np
import pandas as pd
import pytest
from copilot_quant.backtest.benchmark import (
    BUY_AND_HOLD,
    Benchmark,
    alpha_beta,
    daily_returns,
)
from copilot_quant.backtest.engine import BacktestEngine
from copilot_quant.backtest.report import BENCHMARK_TRACE, build_figure, render_html
from copilot_quant.backtest.results import BacktestResult
from copilot_quant.data.providers import SampleDataProvider
from copilot_quant.errors import ConfigError, DataError
from copilot_quant.examples.sma_cross import SimpleMovingAverage
from copilot_quant.model.spread import grid_frame
from hypothesis import given, settings
from hypothesis import strategies as st

START, END = "2006-01-01", "2009-12-31"


def _run(symbols: list[str], benchmark: str | None = BUY_AND_HOLD, **kwargs) -> BacktestResult:
    engine = BacktestEngine(100_000, SampleDataProvider(), commission=0.001)
    engine.add_strategy(SimpleMovingAverage(symbol=symbols[0], quantity=100))
    return engine.run(START, END, symbols, benchmark=benchmark, **kwargs)


@pytest.fixture(scope="module")
def aapl() -> BacktestResult:
    return _run(["AAPL"])


def _closes(symbol: str) -> pd.Series:
    """The closes the engine uses: with its default spread its bars are on the tick grid."""
    return grid_frame(SampleDataProvider().get_historical_data(symbol, *_range()))["Close"]


def _range():
    from copilot_quant.data.dates import resolve_range

    return resolve_range(START, END)


# ------------------------------------------------------------------------------------------- formulas
@settings(max_examples=50, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(2, 400),
    true_beta=st.floats(-2, 2),
    ppy=st.sampled_from([252.0, 52.0, 12.0]),
)
def test_alpha_and_beta_are_empyricals(seed, n, true_beta, ppy):
    rng = np.random.default_rng(seed)
    bench = rng.normal(0.0005, 0.01, n)
    strategy = true_beta * bench + rng.normal(0.0002, 0.005, n)
    strategy[rng.random(n) < 0.05] = np.nan  # missing periods are left out, as empyrical does
    alpha, beta = alpha_beta(strategy, bench, ppy)
    expected_alpha, expected_beta = empyrical.alpha_beta(strategy, bench, annualization=ppy)
    if np.isnan(expected_beta):
        assert np.isnan(beta)
        return
    assert beta == pytest.approx(expected_beta, rel=1e-9, abs=1e-12)
    assert alpha == pytest.approx(expected_alpha, rel=1e-9, abs=1e-12)


def test_a_benchmark_that_never_moved_has_no_beta():
    assert all(np.isnan(v) for v in alpha_beta(np.array([0.01, -0.02, 0.03]), np.zeros(3), 252))


def test_the_metrics_of_a_daily_run_are_empyricals_on_its_daily_returns(aapl):
    stats = aapl.metrics
    strategy = aapl.portfolio_history["returns"]
    curve = aapl.benchmark_curve
    assert curve is not None
    bench = curve.pct_change().fillna(curve.iloc[0] / aapl.initial_capital - 1.0)
    expected_alpha, expected_beta = empyrical.alpha_beta(strategy, bench, period="daily")
    assert stats["beta"] == pytest.approx(expected_beta, rel=1e-9)
    assert stats["alpha"] == pytest.approx(expected_alpha, rel=1e-9)
    assert stats["excess_return"] == pytest.approx(stats["total_return"] - stats["benchmark_return"])


def test_intraday_curves_are_regressed_on_their_daily_returns():
    index = pd.date_range("2024-03-04 14:31", periods=390, freq="1min", tz="UTC")
    days = pd.DatetimeIndex([t + pd.Timedelta(days=d) for d in range(5) for t in index])
    rng = np.random.default_rng(3)
    bench = pd.Series(100_000 * np.cumprod(1 + rng.normal(0, 1e-3, len(days))), index=days)
    equity = pd.Series(100_000 * np.cumprod(1 + rng.normal(0, 1e-3, len(days))), index=days)
    result = BacktestResult(
        "Minutes",
        days[0],
        days[-1],
        100_000.0,
        equity,
        equity.copy(),
        benchmark=Benchmark("B", bench.to_frame("B")),
    )
    assert result.periods_per_year == 390 * 252
    strategy_daily, ppy = daily_returns(equity, 100_000, result.periods_per_year)
    bench_daily, _ = daily_returns(result.benchmark_curve, 100_000, result.periods_per_year)
    assert ppy == 252.0
    assert len(strategy_daily) == 5  # one return per New York day
    assert strategy_daily.iloc[-1] == pytest.approx(equity.iloc[-1] / equity.iloc[-391] - 1)
    expected_alpha, expected_beta = empyrical.alpha_beta(strategy_daily, bench_daily, period="daily")
    assert result.metrics["beta"] == pytest.approx(expected_beta)
    assert result.metrics["alpha"] == pytest.approx(expected_alpha)


# ------------------------------------------------------------------------------------------- the curve
def test_the_default_is_buy_and_hold_of_the_traded_symbol(aapl):
    closes = _closes("AAPL")
    assert aapl.benchmark is not None
    assert aapl.benchmark.name == "buy-and-hold AAPL"
    curve = aapl.benchmark_curve
    assert list(curve.index) == list(aapl.equity_curve.index)
    assert curve.iloc[0] == pytest.approx(100_000)  # bought at the first close
    assert aapl.metrics["benchmark_return"] == pytest.approx(closes.iloc[-1] / closes.iloc[0] - 1)
    assert "Compared with buy-and-hold AAPL" in aapl.summary()


def test_several_symbols_are_held_in_equal_parts():
    result = _run(["AAPL", "MSFT"])
    assert result.benchmark is not None
    assert result.benchmark.name == "buy-and-hold AAPL, MSFT (equal weight)"
    growth = [_closes(s).iloc[-1] / _closes(s).iloc[0] for s in ("AAPL", "MSFT")]
    assert result.metrics["benchmark_return"] == pytest.approx(np.mean(growth) - 1)


def test_a_symbol_that_starts_later_waits_in_cash_until_its_first_close():
    index = pd.date_range("2024-01-02 21:00", periods=4, freq="D", tz="UTC")
    closes = pd.DataFrame({"A": [10.0, 11.0, 12.0, 13.0], "B": [np.nan, np.nan, 50.0, 100.0]}, index=index)
    curve = Benchmark("two", closes).curve(index, 1_000.0)
    assert list(curve) == pytest.approx([1_000.0, 1_050.0, 1_100.0, 1_650.0])


def test_a_benchmark_symbol_that_is_not_traded_is_loaded_from_the_provider():
    result = _run(["AAPL"], benchmark="ibm")
    ibm = SampleDataProvider().get_historical_data("IBM", *_range())["Close"]  # as the provider has it
    assert result.benchmark is not None
    assert result.benchmark.name == "buy-and-hold IBM"
    assert list(result.prices.columns) == ["AAPL"]  # the strategy's data is untouched
    assert result.metrics["benchmark_return"] == pytest.approx(ibm.iloc[-1] / ibm.iloc[0] - 1)
    curve = result.benchmark_curve
    assert curve.iloc[-1] == pytest.approx(100_000 * ibm.iloc[-1] / ibm.iloc[0])
    # the strategy's own numbers do not depend on what it is compared with
    assert result.metrics["sharpe_ratio"] == pytest.approx(_run(["AAPL"]).metrics["sharpe_ratio"])


def test_an_unknown_benchmark_symbol_is_refused_before_the_run_and_named():
    with pytest.raises(DataError, match="benchmark SPY"):
        _run(["AAPL"], benchmark="SPY")


def test_a_benchmark_that_is_not_in_the_data_given_needs_a_provider():
    frame = SampleDataProvider().get_historical_data("AAPL", *_range())
    engine = BacktestEngine(100_000)
    engine.add_strategy(SimpleMovingAverage(symbol="AAPL", quantity=100))
    with pytest.raises(ConfigError, match="data_provider"):
        engine.run(symbols=["AAPL"], data=frame, benchmark="IBM")
    assert engine.run(symbols=["AAPL"], data=frame).benchmark is not None  # its own symbol needs none


def test_no_benchmark_on_request(tmp_path):
    result = _run(["AAPL"], benchmark=None)
    assert result.benchmark is None
    assert result.benchmark_curve is None
    assert all(np.isnan(result.metrics[k]) for k in ("benchmark_return", "excess_return", "alpha", "beta"))
    assert "Compared with" not in result.summary()
    assert not any(str(t.meta) == BENCHMARK_TRACE for t in build_figure(result).data)


@pytest.mark.parametrize("bad", ["", "   ", 3])
def test_a_benchmark_that_is_not_a_ticker_is_refused(bad):
    with pytest.raises(ConfigError, match="benchmark must be a ticker"):
        _run(["AAPL"], benchmark=bad)


# ------------------------------------------------------------------------------------------- the report
def test_the_equity_chart_has_the_benchmark_line_and_the_page_its_numbers(aapl):
    fig = build_figure(aapl)
    lines = [t for t in fig.data if t.meta == BENCHMARK_TRACE]
    assert len(lines) == 1
    line = lines[0]
    assert line.name == "Benchmark: buy-and-hold AAPL"
    assert line.yaxis == fig.data[0].yaxis  # in the equity panel
    assert line.y[-1] == pytest.approx(aapl.benchmark_curve.iloc[-1])
    assert fig.layout.showlegend
    page = render_html(aapl)
    assert "Benchmark: buy-and-hold AAPL" in page  # the trace's name, in the embedded figure
    stats = aapl.metrics
    for key in ("benchmark_return", "excess_return", "alpha"):
        assert f"{stats[key]:.2%}" in page, key
    assert "Benchmark return" in page
    assert "Alpha (ann.)" in page
    assert aapl.to_dict()["benchmark"] == "buy-and-hold AAPL"


@settings(max_examples=60, deadline=None)
@given(
    paths=st.lists(st.lists(st.floats(0.5, 2.0), min_size=2, max_size=30), min_size=1, max_size=4).filter(
        lambda ps: len({len(p) for p in ps}) == 1
    ),
    capital=st.floats(1.0, 1e7),
)
def test_equal_parts_bought_at_the_first_close_are_worth_the_mean_growth(paths, capital):
    n = len(paths[0])
    index = pd.date_range("2024-01-02 21:00", periods=n, freq="D", tz="UTC")
    closes = pd.DataFrame({f"S{k}": np.cumprod(p) for k, p in enumerate(paths)}, index=index)
    curve = Benchmark("b", closes).curve(index, capital)
    growth = (closes / closes.iloc[0]).mean(axis=1)
    assert curve.to_numpy() == pytest.approx((capital * growth).to_numpy(), rel=1e-9)


def test_the_figure_title_gives_both_ends(aapl):
    title = build_figure(aapl).layout.title.text
    assert f"equity 100,000 → {aapl.final_value:,.0f}" in title
    assert f"benchmark → {aapl.benchmark_curve.iloc[-1]:,.0f}" in title
