"""The metric functions: known answers, frequency inference, and agreement with empyrical-reloaded."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from copilot_quant.backtest import metrics as m
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # empyrical imports may warn on newer pandas/numpy
    import empyrical


# ------------------------------------------------------------------------------------------ known answers
def test_total_and_annualized_return_compound():
    rets = pd.Series([0.1, -0.1, 0.2])
    assert m.total_return(rets) == pytest.approx(1.1 * 0.9 * 1.2 - 1)
    # 252 daily returns of 0.1 % compound to a CAGR of 1.001**252 - 1
    daily = pd.Series([0.001] * 252)
    assert m.annualized_return(daily, 252) == pytest.approx(1.001**252 - 1)
    # two years of monthly bars: CAGR is the square root of the total growth
    monthly = pd.Series([0.01] * 24)
    assert m.annualized_return(monthly, 12) == pytest.approx(1.01**12 - 1)


def test_volatility_and_sharpe_use_the_sample_deviation():
    rets = pd.Series([0.01, -0.01, 0.02, 0.0])
    std = float(np.std(rets, ddof=1))
    assert m.annualized_volatility(rets, 252) == pytest.approx(std * math.sqrt(252))
    assert m.sharpe_ratio(rets, 252) == pytest.approx(rets.mean() / std * math.sqrt(252))


def test_sortino_divides_by_downside_deviation_only():
    rets = np.array([0.02, -0.01, 0.03, -0.02])
    downside = math.sqrt(np.mean(np.minimum(rets, 0) ** 2)) * math.sqrt(12)
    assert m.sortino_ratio(rets, 12) == pytest.approx(rets.mean() * 12 / downside)


def test_max_drawdown_is_negative_and_measured_from_the_start():
    # 1 -> 1.2 -> 0.9 -> 1.08: the deepest fall is 0.9 / 1.2 - 1 = -25 %
    rets = pd.Series([0.2, -0.25, 0.2])
    assert m.max_drawdown(rets) == pytest.approx(-0.25)
    # a loss on the first bar is a drawdown from the starting value
    assert m.max_drawdown(pd.Series([-0.1, 0.05])) == pytest.approx(-0.1)
    assert m.max_drawdown(pd.Series([0.01, 0.02])) == 0.0


def test_drawdown_stats_find_the_deepest_trough_and_the_longest_spell():
    index = pd.date_range("2022-01-03 21:00", periods=9, freq="D", tz="UTC")
    equity = pd.Series([100, 110, 100, 105, 111, 108, 109, 100, 101], index=index, dtype="float64")
    stats = m.max_drawdown_stats(equity)
    assert stats.max_drawdown == pytest.approx(100 / 111 - 1)
    assert stats.peak == index[4]
    assert stats.trough == index[7]
    # spells below a peak: bars 2-3 (peak at 1, back at 4: 3 bars); bars 5-8 (peak at 4, never back: 4 bars)
    assert stats.duration_bars == 4
    assert stats.duration == index[8] - index[4]
    assert not stats.recovered
    assert m.drawdown_series(equity).max() == 0.0
    assert m.drawdown_series(equity).min() == pytest.approx(stats.max_drawdown)


def test_calmar_is_cagr_over_the_drawdown_and_nan_without_one():
    rets = pd.Series([0.2, -0.25, 0.2])
    assert m.calmar_ratio(rets, 252) == pytest.approx(m.annualized_return(rets, 252) / 0.25)
    assert math.isnan(m.calmar_ratio(pd.Series([0.01, 0.01]), 252))


def test_win_rate_profit_factor_and_exposure():
    pnl = [100.0, -50.0, 25.0, -25.0]
    assert m.win_rate(pnl) == 0.5
    assert m.profit_factor(pnl) == pytest.approx(125.0 / 75.0)
    assert m.profit_factor([10.0]) == math.inf
    assert math.isnan(m.profit_factor([]))
    assert math.isnan(m.win_rate([]))
    assert m.exposure([0.0, 100.0, -5.0, 0.0]) == 0.5
    assert m.exposure(np.array([True, False, False, False])) == 0.25


def test_degenerate_inputs_give_nan_not_a_made_up_number():
    assert math.isnan(m.sharpe_ratio(pd.Series([0.01]), 252))
    assert math.isnan(m.sharpe_ratio(pd.Series([0.01, 0.01, 0.01]), 252))  # zero variance
    assert math.isnan(m.sortino_ratio(pd.Series([0.01, 0.02]), 252))  # no downside
    assert math.isnan(m.total_return(pd.Series([], dtype="float64")))


def test_returns_from_equity_measure_the_first_bar_against_the_capital():
    equity = pd.Series([99.0, 108.9])
    assert m.returns_from_equity(equity, 100.0).tolist() == pytest.approx([-0.01, 0.1])
    assert m.returns_from_equity(equity).tolist() == pytest.approx([0.0, 0.1])


# ---------------------------------------------------------------------------------------- frequency
def _session_closes(n: int) -> pd.DatetimeIndex:
    days = pd.bdate_range("2020-01-02", periods=n)
    return (days + pd.Timedelta(hours=16)).tz_localize("America/New_York").tz_convert("UTC")


def _intraday(step: str, bars_per_day: int, days: int = 5) -> pd.DatetimeIndex:
    parts = []
    for day in pd.bdate_range("2021-03-01", periods=days):
        start = pd.Timestamp(day) + pd.Timedelta(hours=9, minutes=30)
        parts.append(pd.date_range(start + pd.Timedelta(step), periods=bars_per_day, freq=step))
    local = parts[0].append(parts[1:])
    return local.tz_localize("America/New_York").tz_convert("UTC")


@pytest.mark.parametrize(
    ("index", "expected"),
    [
        (_session_closes(300), 252),
        (_intraday("1min", 390), 252 * 390),
        (_intraday("5min", 78), 252 * 78),
        (_intraday("30min", 13), 252 * 13),
        (pd.date_range("2020-01-03 21:00", periods=60, freq="W-FRI", tz="UTC"), 52),
        (pd.date_range("2020-01-31 21:00", periods=36, freq="ME", tz="UTC"), 12),
        (pd.date_range("2000-03-31", periods=12, freq="QE", tz="UTC"), 4),
        (pd.date_range("2000-12-31", periods=10, freq="YE", tz="UTC"), 1),
    ],
    ids=["daily", "1min", "5min", "30min", "weekly", "monthly", "quarterly", "yearly"],
)
def test_periods_per_year_are_inferred_from_the_index(index, expected):
    assert m.infer_periods_per_year(index) == expected


def test_periods_per_year_default_for_short_or_non_datetime_indexes():
    assert m.infer_periods_per_year(pd.RangeIndex(10)) == 252
    assert m.infer_periods_per_year(pd.DatetimeIndex(["2020-01-01"], tz="UTC")) == 252
    # a single day of minute bars assumes a 6.5-hour session
    assert m.infer_periods_per_year(_intraday("1min", 390, days=1)) == 252 * 390


# ------------------------------------------------------------------------------ agreement with empyrical
def _sample_returns(seed: int, n: int = 750) -> pd.Series:
    rng = np.random.default_rng(seed)
    return pd.Series(rng.normal(0.0004, 0.012, n), index=_session_closes(n))


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("ppy", [252, 52, 252 * 390])
def test_metrics_agree_with_empyrical(seed, ppy):
    rets = _sample_returns(seed)
    assert m.sharpe_ratio(rets, ppy) == pytest.approx(empyrical.sharpe_ratio(rets, annualization=ppy))
    assert m.sortino_ratio(rets, ppy) == pytest.approx(empyrical.sortino_ratio(rets, annualization=ppy))
    assert m.annualized_volatility(rets, ppy) == pytest.approx(
        empyrical.annual_volatility(rets, annualization=ppy)
    )
    assert m.annualized_return(rets, ppy) == pytest.approx(empyrical.annual_return(rets, annualization=ppy))
    assert m.max_drawdown(rets) == pytest.approx(empyrical.max_drawdown(rets))
    assert m.calmar_ratio(rets, ppy) == pytest.approx(empyrical.calmar_ratio(rets, annualization=ppy))
    assert m.total_return(rets) == pytest.approx(empyrical.cum_returns_final(rets))


@given(arrays(np.float64, st.integers(3, 80), elements=st.floats(-0.2, 0.2, allow_nan=False)))
def test_metrics_agree_with_empyrical_on_any_returns(values):
    rets = pd.Series(values)
    for ours, theirs in [
        (m.max_drawdown(rets), empyrical.max_drawdown(rets)),
        (m.annualized_return(rets, 252), empyrical.annual_return(rets, annualization=252)),
        (m.annualized_volatility(rets, 252), empyrical.annual_volatility(rets, annualization=252)),
    ]:
        assert ours == pytest.approx(theirs, rel=1e-9, abs=1e-12)
    ours_sharpe = m.sharpe_ratio(rets, 252)
    theirs_sharpe = empyrical.sharpe_ratio(rets, annualization=252)
    if np.std(values, ddof=1) > 1e-13:
        assert ours_sharpe == pytest.approx(theirs_sharpe, rel=1e-9)
    elif np.std(values, ddof=1) < 1e-15:
        assert math.isnan(ours_sharpe)


def test_result_metrics_agree_with_empyrical_on_its_own_returns():
    """The numbers a BacktestResult reports are empyrical's on the result's returns."""
    from copilot_quant.backtest.results import BacktestResult

    rets = _sample_returns(7, 500)
    equity = 50_000.0 * (1 + rets).cumprod()
    res = BacktestResult("S", equity.index[0], equity.index[-1], 50_000.0, equity, equity * 0)
    stats = res.get_summary_stats()
    r = res.portfolio_history["returns"]
    assert r.to_numpy() == pytest.approx(rets.to_numpy())
    assert stats["sharpe_ratio"] == pytest.approx(empyrical.sharpe_ratio(r, annualization=252))
    assert stats["sortino_ratio"] == pytest.approx(empyrical.sortino_ratio(r, annualization=252))
    assert stats["volatility"] == pytest.approx(empyrical.annual_volatility(r, annualization=252))
    assert stats["annualized_return"] == pytest.approx(empyrical.annual_return(r, annualization=252))
    assert stats["max_drawdown"] == pytest.approx(empyrical.max_drawdown(r))
    assert stats["calmar_ratio"] == pytest.approx(empyrical.calmar_ratio(r, annualization=252))
