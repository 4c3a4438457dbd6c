"""The HTML report: written, standalone (plotly.js inline, no network), and holding metrics and trades."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from copilot_quant.backtest.orders import Fill, Order
from copilot_quant.backtest.report import (
    build_figure,
    drawdown_ticks,
    monthly_returns,
)
from copilot_quant.backtest.results import BacktestResult
from hypothesis import given
from hypothesis import strategies as st

INDEX = (
    (pd.bdate_range("2019-12-02", "2020-03-31") + pd.Timedelta(hours=16))
    .tz_localize("America/New_York")
    .tz_convert("UTC")
)


def _result(fills_every: int = 10, symbols: tuple[str, ...] = ("AAPL", "MSFT")) -> BacktestResult:
    rng = np.random.default_rng(11)
    prices = pd.DataFrame(
        {s: 100 * np.cumprod(1 + rng.normal(0, 0.01, len(INDEX))) for s in symbols}, index=INDEX
    )
    fills: list[Fill] = []
    for i in range(1, len(INDEX) - 1, fills_every):
        for s in symbols:
            side = "buy" if (i // fills_every) % 2 == 0 else "sell"
            fills.append(Fill(Order(s, 10, "market", side), float(prices[s].iloc[i]), 10, 1.0, INDEX[i]))
    cash = pd.Series(100_000.0, index=INDEX)
    held = pd.DataFrame(0.0, index=INDEX, columns=list(symbols))
    for f in fills:
        at = INDEX.searchsorted(pd.Timestamp(f.timestamp))
        cash.iloc[at:] += f.net_proceeds
        held.iloc[at:, held.columns.get_loc(f.symbol)] += f.signed_quantity
    equity = cash + (held * prices).sum(axis=1)
    return BacktestResult("ReportTest", INDEX[0], INDEX[-1], 100_000.0, equity, cash, fills, prices=prices)


@pytest.fixture(scope="module")
def result() -> BacktestResult:
    return _result()


def test_the_report_file_is_standalone_and_has_metrics_charts_and_trades(result, tmp_path):
    path = result.to_html(tmp_path / "sub" / "report.html")
    assert path.exists()
    assert path == (tmp_path / "sub" / "report.html").resolve()
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    # plotly.js is embedded, and nothing is fetched from the network
    assert "plotly.js v" in text or "Plotly" in text
    assert len(text) > 1_000_000
    assert not re.search(r"<script[^>]+src=[\"']?https?:", text, flags=re.IGNORECASE)
    assert not re.search(r"<link[^>]+href=[\"']?https?:", text, flags=re.IGNORECASE)
    # metrics, with the same formatting as the text summary
    stats = result.metrics
    assert 'id="metrics"' in text
    assert "Sharpe ratio" in text
    assert f"{stats['sharpe_ratio']:.2f}" in text
    assert f"{stats['max_drawdown']:.2%}" in text
    # the trade list: every trade's entry price is listed
    assert 'id="trades"' in text
    trades = result.trades
    assert len(trades) > 4
    for price in trades["entry_price"]:
        assert f"{price:,.2f}" in text
    assert 'id="monthly-returns"' in text
    assert "ReportTest" in text


def test_the_figure_has_equity_drawdown_and_a_price_panel_per_symbol_with_markers(result):
    fig = result.plot()
    assert isinstance(fig, go.Figure)
    names = [t.name for t in fig.data]
    assert names[:2] == ["Equity", "Drawdown"]
    assert "AAPL" in names
    assert "MSFT" in names
    assert "long entry" in names
    assert "exit" in names
    equity = fig.data[0]
    assert len(equity.x) == len(result.equity_curve)
    assert list(equity.y) == pytest.approx(result.equity_curve.tolist())
    # chart times are the exchange's days (daily bars): 16:00 New York is 21:00 UTC, still 2 December
    assert INDEX[0] == pd.Timestamp("2019-12-02 21:00", tz="UTC")
    assert equity.x[0] == "2019-12-02"
    entries = [t for t in fig.data if t.name == "long entry"]
    n_long = int((result.trades["side"] == "long").sum())
    assert sum(len(t.x) for t in entries) == n_long


def test_long_series_are_thinned_for_the_chart_but_keep_the_extremes():
    result = _result()
    fig = build_figure(result, max_points=20)
    equity = fig.data[0]
    assert len(equity.y) < len(result.equity_curve)
    assert max(equity.y) == pytest.approx(result.equity_curve.max())
    assert min(equity.y) == pytest.approx(result.equity_curve.min())
    drawdown = fig.data[1]
    assert min(drawdown.y) == pytest.approx(result.portfolio_history["drawdown"].min())


def _tick_labels(axis: go.layout.YAxis, low: float) -> list[str]:
    """The labels plotly draws on a ``tickmode='linear'`` axis from 0 down to ``low``, formatted as d3's
    ``.N%`` does (the value times 100, fixed-point with N decimals, then ``%``)."""
    assert axis.tickmode == "linear"
    assert axis.tick0 == 0
    match = re.fullmatch(r"\.(\d+)%", axis.tickformat)
    assert match, axis.tickformat
    decimals = int(match.group(1))
    count = int(np.floor(-low / axis.dtick + 1e-9)) + 1
    return [f"{-k * axis.dtick * 100:.{decimals}f}%" for k in range(count)]


def _drawdown_result(depth: float) -> BacktestResult:
    """A run whose equity rises 1 %, falls ``depth`` below that peak, then recovers."""
    n = len(INDEX)
    path = np.concatenate(
        [
            np.linspace(100_000, 101_000, n // 3),
            np.linspace(101_000, 101_000 * (1 - depth), n // 3),
            np.linspace(101_000 * (1 - depth), 102_000, n - 2 * (n // 3)),
        ]
    )
    equity = pd.Series(path, index=INDEX)
    return BacktestResult("Shallow", INDEX[0], INDEX[-1], 100_000.0, equity, equity.copy())


@pytest.mark.parametrize("depth", [0.008, 0.0085, 0.004, 0.01, 0.0123, 0.02, 0.0005, 0.07, 0.1, 0.35, 0.9])
def test_drawdown_tick_labels_are_distinct_for_any_depth(depth):
    res = _drawdown_result(depth)
    low = float(res.portfolio_history["drawdown"].min())
    assert low == pytest.approx(-depth)
    axis = build_figure(res).layout.yaxis2  # row 2: the drawdown panel
    labels = _tick_labels(axis, low)
    assert len(labels) == len(set(labels)), labels  # e.g. never "-1%" at both -0.6 % and -0.8 %
    assert 3 <= len(labels) <= 5, labels  # enough ticks to read the depth, few enough for a short panel


def test_a_max_drawdown_of_0_8_percent_is_labelled_in_tenths():
    axis = build_figure(_drawdown_result(0.008)).layout.yaxis2
    assert (axis.dtick, axis.tickformat) == (pytest.approx(0.002), ".1%")
    assert _tick_labels(axis, -0.008) == ["0.0%", "-0.2%", "-0.4%", "-0.6%", "-0.8%"]


@pytest.mark.parametrize("noise", [0.0, 1e-16, 1e-9, 5e-5])
def test_a_run_without_drawdown_or_only_float_noise_gets_a_fixed_0_to_minus_1_percent_axis(noise):
    path = np.linspace(100.0, 110.0, len(INDEX))
    path[len(path) // 2 :] *= 1 - noise  # a dip of ``noise`` (0: none)
    equity = pd.Series(path, index=INDEX)
    res = BacktestResult("Up", INDEX[0], INDEX[-1], 100.0, equity, equity.copy())
    axis = build_figure(res).layout.yaxis2
    assert tuple(axis.range) == (
        -0.01,
        0.0,
    )  # not plotly's -100 % .. 100 % for a zero line, nor a zoom on noise
    assert _tick_labels(axis, -0.01) == ["0.0%", "-0.5%", "-1.0%"]


@given(depth=st.floats(min_value=1e-4, max_value=0.999))
def test_drawdown_tick_labels_never_repeat(depth):
    scale = drawdown_ticks(-depth)
    assert scale is not None
    axis = go.layout.YAxis(tickmode="linear", tick0=0, dtick=scale[0], tickformat=scale[1])
    labels = _tick_labels(axis, -depth)
    assert len(labels) == len(set(labels)), labels
    assert 3 <= len(labels) <= 5, labels


def test_intraday_chart_times_are_new_york_wall_clock_minutes():
    index = pd.date_range("2024-03-01 14:31", periods=30, freq="1min", tz="UTC")
    equity = pd.Series(np.linspace(100.0, 101.0, len(index)), index=index)
    res = BacktestResult("Minutes", index[0], index[-1], 100.0, equity, equity.copy())
    assert list(build_figure(res).data[0].x[:2]) == ["2024-03-01 09:31", "2024-03-01 09:32"]


def test_monthly_returns_chain_month_ends_from_the_initial_capital():
    idx = pd.DatetimeIndex(
        ["2020-01-15 21:00", "2020-01-31 21:00", "2020-02-28 21:00", "2020-04-30 20:00"], tz="UTC"
    )
    equity = pd.Series([101.0, 110.0, 99.0, 108.9], index=idx)
    res = BacktestResult("M", idx[0], idx[-1], 100.0, equity, equity.copy())
    table = monthly_returns(res)
    assert list(table.index) == [2020]
    assert table.loc[2020, "Jan"] == pytest.approx(0.10)
    assert table.loc[2020, "Feb"] == pytest.approx(-0.10)
    assert pd.isna(table.loc[2020, "Mar"])
    assert table.loc[2020, "Apr"] == pytest.approx(0.10)
    assert table.loc[2020, "Year"] == pytest.approx(108.9 / 100 - 1)


def test_a_run_without_trades_still_writes_a_report(tmp_path):
    equity = pd.Series(1_000.0, index=INDEX)
    res = BacktestResult("Idle", INDEX[0], INDEX[-1], 1_000.0, equity, equity.copy())
    text = res.to_html(tmp_path / "idle.html").read_text(encoding="utf-8")
    assert "No trades." in text
    assert "n/a" in text  # a flat run has no Sharpe ratio


def test_strategy_errors_are_shown_in_the_report(tmp_path):
    res = _result()
    res.errors.append({"timestamp": INDEX[3], "error": "division by zero", "type": "ZeroDivisionError"})
    text = res.to_html(tmp_path / "err.html").read_text(encoding="utf-8")
    assert "Strategy errors (1)" in text
    assert "ZeroDivisionError: division by zero" in text


def test_intraday_charts_hide_nights_weekends_and_holidays_and_daily_charts_do_not(result):
    # 1-minute bars 09:31-16:00 New York on Thu 28 and Fri 29 March, then Tue 2 April (Mon 1st missing)
    days = ["2024-03-28", "2024-03-29", "2024-04-02"]
    index = pd.DatetimeIndex(
        [
            t
            for d in days
            for t in pd.date_range(f"{d} 09:31", f"{d} 16:00", freq="1min", tz="America/New_York")
        ]
    ).tz_convert("UTC")
    equity = pd.Series(np.linspace(100.0, 101.0, len(index)), index=index)
    fig = build_figure(BacktestResult("Minutes", index[0], index[-1], 100.0, equity, equity.copy()))
    breaks = [b.to_plotly_json() for b in fig.layout.xaxis.rangebreaks]
    assert {"bounds": ["sat", "mon"]} in breaks
    assert {"bounds": [16.0, 9.5], "pattern": "hour"} in breaks  # the market opens at 09:30
    assert {"values": ["2024-04-01"]} in breaks  # a weekday without bars
    assert not build_figure(result).layout.xaxis.rangebreaks  # daily bars: nothing to hide
