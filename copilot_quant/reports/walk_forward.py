"""The HTML page of a walk-forward analysis: what the parameter-choosing procedure earned out of sample.

The chained out-of-sample equity curve with the fold boundaries, one row per fold (dates as New York
days, the parameters chosen, training score, test metrics) and the metrics of the whole chain.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from copilot_quant.backtest.metric_format import metric_label
from copilot_quant.backtest.sweep import RANKING_METRICS
from copilot_quant.reports.charts import (
    MAX_CHART_POINTS,
    chart_times,
    closed_market_breaks,
    display_positions,
    is_daily,
)
from copilot_quant.reports.page import ny_day, page_html, paragraphs, write_page
from copilot_quant.reports.sweep_values import format_cell, param_label, params_text

if TYPE_CHECKING:
    from copilot_quant.backtest.walk_forward import WalkForwardResult

__all__ = ["render_walk_forward_html", "walk_forward_figure", "write_walk_forward_report"]

#: Characters of fold labels that fit above the walk-forward chart (about the chart's width).
_LABEL_CHARS = 160
#: The walk-forward chain's metrics the page lists, in order (then its fills and final equity).
_CHAIN_KEYS = RANKING_METRICS


def walk_forward_figure(result: WalkForwardResult, max_points: int = MAX_CHART_POINTS) -> go.Figure:
    """The chained out-of-sample equity curve (trace ``"out-of-sample equity"``), a dashed line at each
    fold's first test bar (``layout.shapes``, in fold order) labelled with the fold and its parameters.

    x values are New York days for daily bars (times otherwise); a curve longer than ``max_points`` is
    thinned for display, keeping every peak and trough.
    """
    equity = result.equity.astype("float64")
    daily = is_daily(equity.index)
    times = chart_times(equity.index, daily)
    values = equity.to_numpy()
    keep = display_positions(values, max_points)
    folds = result.table
    starts = pd.DatetimeIndex(folds["test_start"])
    # which fold each bar belongs to, for the hover text
    fold_of = np.searchsorted(starts.asi8, pd.DatetimeIndex(equity.index).asi8, side="right") - 1
    chosen = {k: params_text(row, result.parameters) for k, row in folds.iterrows()}
    labels = [f"fold {folds.index[max(f, 0)]}: {chosen[folds.index[max(f, 0)]]}" for f in fold_of]
    fig = go.Figure(
        go.Scatter(
            x=times[keep],
            y=values[keep],
            name="out-of-sample equity",
            line={"color": "#1f77b4"},
            text=[labels[k] for k in keep],
            hovertemplate="%{x}<br>%{y:,.0f}<br>%{text}<extra></extra>",
        )
    )
    # the chosen parameters beside each fold's label while they fit; the hover and the table have them all
    spelled = sum(len(t) for t in chosen.values()) + 10 * len(folds) <= _LABEL_CHARS
    for fold, row in folds.iterrows():
        at = chart_times(pd.DatetimeIndex([row["test_start"]]), daily)[0]
        fig.add_shape(
            type="line", x0=at, x1=at, y0=0, y1=1, xref="x", yref="paper", line={"dash": "dash", "width": 1}
        )
        fig.add_annotation(
            x=at,
            y=1,
            xref="x",
            yref="paper",
            text=html.escape(f"fold {fold}: {chosen[fold]}" if spelled else f"fold {fold}"),
            hovertext=html.escape(chosen[fold]),
            showarrow=False,
            xanchor="left",
            yanchor="bottom",
            font={"size": 11},
        )
    if isinstance(equity.index, pd.DatetimeIndex):
        # x values are text; say they are times, and hide the nights and weekends of intraday bars
        fig.update_xaxes(type="date", rangebreaks=closed_market_breaks(equity.index) or None)
    fig.update_layout(
        template="plotly_white",
        height=480,
        title=f"Out-of-sample equity, {len(folds)} fold(s) chained",
        yaxis_title="equity",
        showlegend=False,
        margin={"l": 70, "r": 20, "t": 80, "b": 40},
    )
    return fig


def _folds_html(result: WalkForwardResult) -> str:
    metric = result.metric
    heads = [
        "Fold",
        "Train (New York days)",
        "Test (New York days)",
        *result.parameters,
        f"Train {metric_label(metric)}",
        "Test Sharpe ratio",
        "Test return",
        "Test max drawdown",
        "Test fills",
    ]
    head = "".join(f"<th>{html.escape(h)}</th>" for h in heads)
    rows = []
    for fold, row in result.table.iterrows():
        cells = [
            str(fold),
            f"{ny_day(row['train_start'])} → {ny_day(row['train_end'])}",
            f"{ny_day(row['test_start'])} → {ny_day(row['test_end'])}",
            *(str(param_label(row[p])) for p in result.parameters),
            format_cell(row[f"train_{metric}"], metric),
            format_cell(row["test_sharpe_ratio"], "sharpe_ratio"),
            format_cell(row["test_total_return"], "total_return"),
            format_cell(row["test_max_drawdown"], "max_drawdown"),
            format_cell(row["test_fills"], "fills"),
        ]
        rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    return f'<table class="folds" id="folds"><tr>{head}</tr>{"".join(rows)}</table>'


def _chain_html(result: WalkForwardResult) -> str:
    stats = result.metrics
    equity = result.equity
    rows = (
        [("Out-of-sample bars (New York days)", f"{ny_day(equity.index[0])} → {ny_day(equity.index[-1])}")]
        if len(equity)
        else []
    )
    rows += [(metric_label(k), format_cell(stats[k], k)) for k in _CHAIN_KEYS if k in stats]
    rows.append(("Fills", format_cell(stats.get("fills"), "fills")))
    if len(equity):
        rows.append(("Final equity", f"{float(equity.iloc[-1]):,.2f}"))
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f'<table class="metrics" id="chain-metrics">{body}</table>'


def _walk_forward_notes(result: WalkForwardResult) -> list[str]:
    table = result.table
    notes = [
        "Each fold chose its parameters by "
        f"{metric_label(result.metric)} on its training bars and then traded them on the next stretch, "
        "which the choice never saw; the test stretches are chained into one curve. This is what the "
        "procedure (not one lucky parameter set) would have earned. Dashed lines mark where each fold's "
        "test begins."
    ]
    if len(table) > 1:
        anchored = table["train_start"].nunique() == 1
        notes.append(
            "Training was anchored (every fold trains from the first bar)."
            if anchored
            else "Training was rolling (each fold trains on the previous stretch only)."
        )
        chosen = len(table[result.parameters].astype(str).drop_duplicates())
        note = f"The folds chose {chosen} different parameter set(s) in {len(table)} folds."
        if chosen == len(table) > 2:
            note += " Every fold chose differently: an optimum that keeps moving is partly noise."
        notes.append(note)
    return notes


def render_walk_forward_html(
    result: WalkForwardResult, title: str | None = None, max_points: int = MAX_CHART_POINTS
) -> str:
    """The walk-forward's page as a string (plotly.js inline); ``title`` names what was tested."""
    figure = walk_forward_figure(result, max_points).to_html(full_html=False, include_plotlyjs=True)
    sub = (
        f"{len(result.table)} fold(s) over {', '.join(result.parameters)} · parameters chosen by "
        f"{metric_label(result.metric)}"
    )
    thinned = ""
    if len(result.equity) > max_points:
        thinned = (
            f"For display only, the curve is thinned to about {max_points:,} of {len(result.equity):,} "
            "points, keeping every peak and trough; the metrics use every bar."
        )
    body = (
        f"<h2>Out-of-sample metrics</h2>\n{_chain_html(result)}\n"
        f"<h2>Out-of-sample equity</h2>\n{paragraphs([*_walk_forward_notes(result), thinned])}\n{figure}\n"
        f"<h2>Folds</h2>\n{_folds_html(result)}\n"
    )
    return page_html(f"Walk-forward: {title}" if title else "Walk-forward analysis", sub, body)


def write_walk_forward_report(
    result: WalkForwardResult, path: str | Path, title: str | None = None, max_points: int = MAX_CHART_POINTS
) -> Path:
    """Write :func:`render_walk_forward_html` to ``path`` (parent folders are created); returns the
    resolved path."""
    return write_page(render_walk_forward_html(result, title, max_points), path, "walk-forward")
