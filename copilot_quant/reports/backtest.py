"""The HTML report of a backtest: one self-contained file that opens offline.

The page holds the run's metrics table (with the benchmark it is compared with), plotly charts, a
per-symbol summary (for two or more symbols), a table of monthly returns and the trades. The charts are one
figure: equity beside the benchmark, drawdown, and the close of one symbol with its trade entry/exit
markers; with several symbols a dropdown at the top left of the price panel picks the symbol (every
symbol's traces are in the figure, the menu only toggles which are visible, so the page needs no server
and no script beyond plotly.js, which is embedded inline).

The page stays a few MB and readable however long or wide the run is: lines are thinned for display only
(keeping the lowest and highest value of every span, the first and last point, and the breaks where a
symbol has no bars), price lines share a budget of :data:`PRICE_POINTS_BUDGET` points, at most
:data:`MAX_CHART_SYMBOLS` symbols are charted, a symbol's many trades are drawn as grouped markers
(:mod:`copilot_quant.reports.markers`) and a long trade list is summarised
(:mod:`copilot_quant.reports.trades`); the page says when any of that happened. Metrics and tables use the
full data.
"""

from __future__ import annotations

import html
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from copilot_quant.reports import markers
from copilot_quant.reports.account import account_html
from copilot_quant.reports.backtest_tables import (
    metrics_html,
    monthly_html,
    symbol_summary,
    symbols_html,
)
from copilot_quant.reports.charts import (
    MAX_CHART_POINTS,
    chart_times,
    closed_market_breaks,
    display_positions,
    drawdown_ticks,
)
from copilot_quant.reports.page import ny_time, page_html, write_page
from copilot_quant.reports.strategies import strategies_html, strategy_traces
from copilot_quant.reports.trades import trades_html

if TYPE_CHECKING:
    from copilot_quant.reports.result_view import ReportedResult

__all__ = [
    "BENCHMARK_TRACE",
    "MAX_CHART_SYMBOLS",
    "MIN_PRICE_POINTS",
    "PRICE_POINTS_BUDGET",
    "build_figure",
    "render_html",
    "write_html",
]

log = logging.getLogger(__name__)

#: Points shared by all the symbols' price lines (each gets at least :data:`MIN_PRICE_POINTS`); a price
#: line holds about 24 bytes a point in the page, so 100,000 points are about 2.4 MB.
PRICE_POINTS_BUDGET = 100_000
#: Points a symbol's price line keeps however many symbols share the budget (two per pixel of a wide chart).
MIN_PRICE_POINTS = 500
#: Symbols in the chart's dropdown at most: the most traded ones (by turnover); the table lists them all.
MAX_CHART_SYMBOLS = 200
#: Intervals at most on the drawdown axis (its panel is short).
_DRAWDOWN_TICKS = 4
#: Drawdowns shallower than this (0.01 %) are drawn on a fixed 0 to -1 % axis, not one zoomed on noise.
_NEGLIGIBLE_DRAWDOWN = 1e-4


@dataclass(frozen=True, slots=True)
class _ChartPlan:
    """What the figure draws: which symbols, and how many points each price line keeps."""

    symbols: tuple[str, ...]  # charted, in the order of ``result.prices``' columns
    symbol_points: int  # price-line points per symbol at most
    total_symbols: int  # symbols with prices

    @property
    def dropdown(self) -> bool:
        return len(self.symbols) > 1


def _chart_plan(result: ReportedResult, max_points: int, summary: pd.DataFrame | None = None) -> _ChartPlan:
    """``summary`` (:func:`symbol_summary`; computed when missing) ranks the symbols if there are too many."""
    priced = [str(s) for s in result.prices.columns] if not result.prices.empty else []
    charted = priced
    if len(priced) > MAX_CHART_SYMBOLS:  # the most traded ones, then the first listed
        table = symbol_summary(result) if summary is None else summary
        turnover = table["turnover"].reindex(priced).fillna(0.0)
        ranked = sorted(range(len(priced)), key=lambda k: (-float(turnover.iloc[k]), k))
        chosen = set(ranked[:MAX_CHART_SYMBOLS])
        charted = [s for k, s in enumerate(priced) if k in chosen]
    share = PRICE_POINTS_BUDGET // max(len(charted), 1)
    points = min(max_points, max(MIN_PRICE_POINTS, share))
    return _ChartPlan(tuple(charted), points, len(priced))


def build_figure(result: ReportedResult, max_points: int = MAX_CHART_POINTS) -> go.Figure:
    """Equity, drawdown and a symbol's close with its trades; with several symbols a dropdown picks one.

    Every charted symbol has a price trace followed by its marker traces (``long entry``, ``short entry``,
    ``exit``; only those with trades), all with ``legendgroup`` set to the symbol; the first symbol's are
    visible. Each dropdown button shows one symbol's traces (``visible`` mask) and retitles the panel.
    Lines longer than ``max_points`` are thinned for display (see :func:`display_positions`).
    """
    return _figure(result, _chart_plan(result, max_points), max_points)


def _figure(result: ReportedResult, plan: _ChartPlan, max_points: int) -> go.Figure:
    history = result.portfolio_history
    daily = result.periods_per_year <= 252  # 252 trading days a year: daily bars or coarser
    has_prices = bool(plan.symbols)
    titles = ["Equity", "Drawdown"] + ([f"{plan.symbols[0]} close"] if has_prices else [])
    fig = make_subplots(
        rows=len(titles),
        cols=1,
        shared_xaxes=True,
        subplot_titles=titles,
        row_heights=[0.35, 0.15, 0.5][: len(titles)],
        vertical_spacing=0.04,
    )
    times = chart_times(history.index, daily)
    equity = history["equity"].to_numpy(dtype="float64")
    keep = display_positions(equity, max_points)
    fig.add_trace(
        go.Scatter(x=times[keep], y=equity[keep], name="Equity", line={"color": "#1f77b4"}), row=1, col=1
    )
    drawdown = history["drawdown"].to_numpy(dtype="float64")
    keep = display_positions(drawdown, max_points)
    fig.add_trace(
        go.Scatter(
            x=times[keep],
            y=drawdown[keep],
            name="Drawdown",
            fill="tozeroy",
            line={"color": "#d62728"},
            showlegend=False,
        ),
        row=2,
        col=1,
    )
    _add_benchmark_line(fig, result, times, max_points)
    for trace in strategy_traces(result, times, max_points):
        fig.add_trace(trace, row=1, col=1)
    _scale_drawdown_axis(fig, float(history["drawdown"].min()) if len(history) else math.nan)
    if has_prices:
        _add_price_panel(fig, result, plan, daily)
    if isinstance(history.index, pd.DatetimeIndex):
        # x values are text; say they are times, and hide the nights and weekends of intraday bars
        fig.update_xaxes(type="date", rangebreaks=closed_market_breaks(history.index) or None)
    fig.update_layout(
        height=320 + 220 * len(titles),
        title=_title(result),
        hovermode="x unified",
        # only the equity panel's lines are in the legend (equity, the benchmark, each strategy's equity)
        showlegend=result.benchmark is not None or result.has_sleeves,
        legend={"orientation": "h", "x": 1.0, "xanchor": "right", "y": 1.0, "yanchor": "bottom"},
        margin={"l": 60, "r": 20, "t": 70, "b": 40},
        template="plotly_white",
    )
    return fig


#: The benchmark's line in the equity panel: a trace named ``BENCHMARK_TRACE``, its hover naming the benchmark.
BENCHMARK_TRACE = "Benchmark"


def _add_benchmark_line(fig: go.Figure, result: ReportedResult, times: np.ndarray, max_points: int) -> None:
    """The benchmark's value (the same capital, bought and held) beside the equity, in row 1."""
    curve = result.benchmark_curve
    if curve is None or result.benchmark is None:
        return
    values = curve.to_numpy(dtype="float64")
    keep = display_positions(values, max_points)
    fig.add_trace(
        go.Scatter(
            x=times[keep],
            y=values[keep],
            name=f"{BENCHMARK_TRACE}: {result.benchmark.name}",
            meta=BENCHMARK_TRACE,
            hovertemplate=f"{html.escape(result.benchmark.name)}: %{{y:,.0f}}<extra></extra>",
            line={"color": "#ff7f0e", "width": 1.5, "dash": "dot"},
        ),
        row=1,
        col=1,
    )


def _title(result: ReportedResult) -> str:
    """The figure's title: the equity's start and end, and the benchmark's end from the same capital."""
    title = f"{result.strategy_name}: equity {result.initial_capital:,.0f} → {result.final_value:,.0f}"
    curve = result.benchmark_curve
    if curve is not None and len(curve) and not math.isnan(float(curve.iloc[-1])):
        title += f"; benchmark → {float(curve.iloc[-1]):,.0f}"
    return title


def _scale_drawdown_axis(fig: go.Figure, depth: float) -> None:
    """Ticks at multiples of a round step with the decimals that step needs: no two labels alike.

    Without a drawdown (or one below 0.01 %, float noise) the axis spans 0 to -1 % in half percents:
    plotly would otherwise zoom on nothing (-100 % to 100 % for a flat zero line) or on the noise.
    """
    ticks = _DRAWDOWN_TICKS
    if not depth < -_NEGLIGIBLE_DRAWDOWN:
        depth, ticks = -0.01, 2
        fig.update_yaxes(range=[depth, 0.0], row=2, col=1)
    scale = drawdown_ticks(depth, ticks)
    if scale is not None:
        dtick, tickformat = scale
        fig.update_yaxes(tickmode="linear", tick0=0, dtick=dtick, tickformat=tickformat, row=2, col=1)


def _add_price_panel(fig: go.Figure, result: ReportedResult, plan: _ChartPlan, daily: bool) -> None:
    """The symbols' price and marker traces in row 3, and the dropdown that picks one of them."""
    prices = result.prices
    times = chart_times(prices.index, daily)
    trades = result.trades
    by_symbol = {str(s): t for s, t in trades.groupby("symbol", sort=False)} if len(trades) else {}
    traces: list[go.Scatter] = []
    owner: list[str] = []  # the symbol of each trace in ``traces``
    for symbol in plan.symbols:
        closes = prices[symbol].to_numpy(dtype="float64")
        keep = display_positions(closes, plan.symbol_points)
        mine = [
            go.Scatter(
                x=times[keep],
                y=closes[keep],
                name=symbol,
                line={"color": "#7f7f7f", "width": 1},
            ),
            *markers.marker_traces(by_symbol.get(symbol), daily, pd.DatetimeIndex(prices.index)),
        ]
        for trace in mine:
            trace.legendgroup = symbol
            trace.showlegend = False
            trace.visible = symbol == plan.symbols[0]
        traces += mine
        owner += [symbol] * len(mine)
    fig.add_traces(traces, rows=[3] * len(traces), cols=[1] * len(traces))
    if not plan.dropdown:
        return
    fixed = [True] * (len(fig.data) - len(traces))  # equity, drawdown (and the benchmark) stay visible
    buttons = [
        {
            "label": symbol,
            "method": "update",
            "args": [
                {"visible": fixed + [s == symbol for s in owner]},
                # annotations 0-2 are the subplot titles; autorange drops a zoom made on another symbol
                {"annotations[2].text": f"{symbol} close", "yaxis3.autorange": True},
            ],
        }
        for symbol in plan.symbols
    ]
    top = fig.layout.yaxis3.domain[1]
    fig.update_layout(
        updatemenus=[
            {
                "type": "dropdown",
                "direction": "down",
                "active": 0,
                "buttons": buttons,
                "x": 0.0,
                "xanchor": "left",
                "y": top + 0.005,
                "yanchor": "bottom",
                "pad": {"t": 0, "b": 0},
                "showactive": True,
            }
        ]
    )


def _chart_notes(result: ReportedResult, plan: _ChartPlan, max_points: int) -> str:
    """What the reader should know about the charts: the symbol menu and any thinning for display."""
    notes = []
    if plan.dropdown:
        notes.append(
            f"The menu at the top left of the price panel picks which of the {len(plan.symbols):,} "
            "symbols it shows, with its trades."
        )
    if plan.total_symbols > len(plan.symbols):
        notes.append(
            f"The menu lists the {len(plan.symbols):,} most traded symbols (by turnover) of "
            f"{plan.total_symbols:,}; the per-symbol table lists them all."
        )
    if result.benchmark is not None:
        notes.append(
            f"The dotted line in the equity panel is the benchmark: the initial capital in "
            f"{result.benchmark.name}. Click a line's name in the legend to hide it (the axis then fits the "
            "other)."
        )
    thinned = []
    if len(result.equity_curve) > max_points:
        thinned.append(f"equity and drawdown to about {max_points:,} of {len(result.equity_curve):,} points")
    if plan.symbols and len(result.prices) > plan.symbol_points:
        thinned.append(f"each price line to about {plan.symbol_points:,} of {len(result.prices):,} bars")
    if thinned:
        notes.append(
            f"For display only, long lines are thinned ({'; '.join(thinned)}), keeping the lowest and "
            "highest value of every span; metrics and tables use every bar."
        )
    if plan.symbols and len(result.trades):
        counts = result.trades["symbol"].astype(str).value_counts()
        crowded = counts[counts.index.isin(plan.symbols) & (counts > markers.MAX_TRADE_MARKERS)]
        if len(crowded):
            notes.append(
                f"{len(crowded):,} symbol(s) with more than {markers.MAX_TRADE_MARKERS:,} trades show grouped markers: "
                f"the bars are cut into {markers.MARKER_SLICES} equal stretches and each shows one marker per "
                "kind (long entry, short entry, exit) at the average price of its trades, larger for more "
                "trades; hover for the count, times and P&L. The trades section has them all."
            )
    return "".join(f'<p class="note">{html.escape(n)}</p>' for n in notes)


def render_html(result: ReportedResult, max_points: int = MAX_CHART_POINTS) -> str:
    """The whole report page as a string (plotly.js inline)."""
    summary = symbol_summary(result)
    plan = _chart_plan(result, max_points, summary)
    figure = _figure(result, plan, max_points).to_html(full_html=False, include_plotlyjs=True)
    names = [str(s) for s in result.prices.columns] if not result.prices.empty else []
    symbols = ", ".join(names) if len(names) <= 10 else f"{len(names):,} symbols"
    compared = f"compared with {result.benchmark.name}" if result.benchmark is not None else "no benchmark"
    errors = ""
    if result.errors:
        items = "".join(
            f"<li>{html.escape(ny_time(e.get('timestamp')))} {html.escape(str(e.get('type', '')))}: "
            f"{html.escape(str(e.get('error', '')))}</li>"
            for e in result.errors[:100]
        )
        errors = (
            f'<h2 class="errors">Strategy errors ({len(result.errors)})</h2><ul class="errors">{items}</ul>'
        )
    per_symbol = ""
    if len(summary) > 1:
        per_symbol = f"<h2>Symbols</h2>\n{symbols_html(result, summary)}\n"
    body = f"""<h2>Metrics</h2>
{metrics_html(result)}
{errors}
{account_html(result)}
{strategies_html(result)}
<h2>Charts</h2>
{_chart_notes(result, plan, max_points)}
{figure}
{per_symbol}<h2>Monthly returns</h2>
{monthly_html(result)}
<h2>Trades</h2>
{trades_html(result)}"""
    sub = f"{_period(result)} · {symbols} · {compared}"
    return page_html(f"Backtest report: {result.strategy_name}", sub, body)


def _period(result: ReportedResult) -> str:
    """The span of the run's bars: New York days for daily bars, New York times otherwise."""
    index = result.equity_curve.index
    if not len(index):
        return f"{ny_time(result.start_date)} → {ny_time(result.end_date)} (New York time), no bars"
    daily = result.periods_per_year <= 252
    zone = "" if daily else " New York time"
    return f"{ny_time(index[0], daily)} → {ny_time(index[-1], daily)}{zone}, {len(index):,} bars"


def write_html(result: ReportedResult, path: str | Path, max_points: int = MAX_CHART_POINTS) -> Path:
    """Write :func:`render_html` to ``path`` (parent folders are created); returns the resolved path."""
    return write_page(render_html(result, max_points), path, "backtest")
