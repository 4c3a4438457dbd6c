"""HTML reports of parameter searches: where a sweep's good results lie, and what walk-forward earned.

A quant judges a parameter choice by its neighbourhood: a sharp, isolated peak is usually noise fitted
to the sample, a broad plateau is more likely to hold on new bars. So the sweep page maps the ranking
metric over the parameters it varied:

* one varied parameter: the metric (and the holdout's) as a line against it;
* two: a heatmap over both (with the holdout's heatmap beside it, on the same axes);
* more: a heatmap over the two that move the metric most, each cell the best combination of the other
  parameters there, and a profile per parameter (best and median metric at each of its values).

The best combination (the table's first row) is marked on every panel. Below sit the ranked table, the
failed combinations and, without a holdout, a warning about overfitting.

The walk-forward page shows the chained out-of-sample equity curve with the fold boundaries, one row
per fold (dates as New York days, the parameters chosen, training score, test metrics) and the metrics
of the whole chain.

Both pages are single files that open offline: plotly.js is embedded, as in the backtest's report
(:mod:`copilot_quant.backtest.report`), whose styles and chart conventions they share.
"""

from __future__ import annotations

import html
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from copilot_quant.backtest.metric_format import metric_label
from copilot_quant.backtest.metrics import infer_periods_per_year

# The backtest report's look and chart helpers, shared so every page of the project reads alike.
from copilot_quant.backtest.report import MAX_CHART_POINTS, REPORT_CSS, chart_times, display_positions
from copilot_quant.backtest.sweep import RANKING_METRICS
from copilot_quant.data.dates import EXCHANGE_TZ

if TYPE_CHECKING:
    from copilot_quant.backtest.sweep import SweepResult
    from copilot_quant.backtest.walk_forward import WalkForwardResult

__all__ = [
    "MAX_CELL_LABELS",
    "MAX_TABLE_ROWS",
    "format_cell",
    "render_sweep_html",
    "render_walk_forward_html",
    "sweep_figure",
    "walk_forward_figure",
    "write_sweep_report",
    "write_walk_forward_report",
]

log = logging.getLogger(__name__)

#: Rows of the ranked table a sweep page shows (the page says when there are more; an export has all).
MAX_TABLE_ROWS = 100
#: Heatmap cells above which the values are not printed in the cells (they would overlap); hover shows them.
MAX_CELL_LABELS = 400

Label = int | float | str  # a parameter value as the charts show it

# an outline around the best cell (or point) that leaves its value readable
_BEST_MARKER = {"symbol": "square-open", "size": 30, "color": "#000000", "line": {"width": 3}}
_HOLDOUT_COLOR = "#ff7f0e"
#: Characters of fold labels that fit above the walk-forward chart (about the chart's width).
_LABEL_CHARS = 160
#: The walk-forward chain's metrics the page lists, in order (then its fills and final equity).
_CHAIN_KEYS = RANKING_METRICS
_EXTRA_CSS = """
tr.best{font-weight:bold;background:#eef6ee}
table.ranked th,table.folds th{background:#f6f6f6}
.warn{color:#8a5300;background:#fff6e0;padding:6px 10px;border-left:3px solid #e0a000;max-width:900px}
p.note{max-width:900px}
"""


# ------------------------------------------------------------------------------------------- values
def _label(value: Any) -> Label:
    """A parameter value as a chart coordinate: numbers stay numbers, anything else becomes its text."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    return str(value)


def _ordered(labels: Sequence[Label]) -> list[Label]:
    """The distinct labels in axis order: numbers ascending, otherwise by their text."""
    distinct = list(dict.fromkeys(labels))
    if all(isinstance(v, int | float) for v in distinct):
        return sorted(distinct, key=float)
    return sorted(distinct, key=str)


def _is_percent(name: str) -> bool:
    # the same rule as the CLI's table: returns and drawdowns are fractions shown as percentages
    return "return" in name or "drawdown" in name


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def format_cell(value: Any, name: str) -> str:
    """One table value as the sweep tables show it (the page's and ``copilot-quant sweep``'s): ratios
    with two decimals, returns and drawdowns as percentages, counts and money as whole numbers."""
    if isinstance(value, np.generic):
        value = value.item()
    if _missing(value):
        return "-"
    if isinstance(value, float):
        if name.endswith("fills"):
            return f"{value:,.0f}"
        if _is_percent(name):
            return f"{value:.2%}"
        return f"{value:,.0f}" if name == "final_value" else f"{value:.2f}"
    return str(value)


def _error(value: Any) -> str:
    """The error column's text: empty when the combination ran."""
    return "" if _missing(value) else str(value)


def _d3_format(name: str) -> str:
    return ".1%" if _is_percent(name) else ".2f"


def _number(value: Any) -> float:
    """A table value as a float for a chart (NaN for a missing one)."""
    return math.nan if _missing(value) else float(value)


def _day(value: Any) -> str:
    """A bar time as its New York day."""
    ts = pd.Timestamp(value)
    return (ts.tz_convert(EXCHANGE_TZ) if ts.tzinfo is not None else ts).strftime("%Y-%m-%d")


def _params_text(row: pd.Series, names: Sequence[str]) -> str:
    return ", ".join(f"{n}={_label(row[n])}" for n in names)


def _params_at(table: pd.DataFrame, rank: int, names: Sequence[str]) -> str:
    return ", ".join(f"{n}={_label(table.at[rank, n])}" for n in names)


# ------------------------------------------------------------------------------------------- sweep plan
@dataclass(frozen=True, slots=True)
class _Plan:
    """What the sweep's chart maps: the varied parameters, most important first for three or more."""

    varied: tuple[str, ...]  # parameters with two or more values
    fixed: dict[str, Label]  # parameters with one value in the whole grid
    spread: dict[str, float]  # per varied parameter: range of the metric's per-value medians


def _plan(result: SweepResult) -> _Plan:
    table = result.table
    varied = [p for p in result.parameters if table[p].map(_label).nunique() > 1]
    fixed = {p: _label(table[p].iloc[0]) for p in result.parameters if p not in varied and len(table)}
    spread = {p: _median_spread(table, p, result.metric) for p in varied}
    if len(varied) > 2:  # the heatmap takes the two that move the metric most; ties keep the given order
        varied.sort(key=lambda p: -spread[p])
    return _Plan(tuple(varied), fixed, spread)


def _median_spread(table: pd.DataFrame, name: str, metric: str) -> float:
    """How much a parameter matters: the range of the metric's median over each of its values."""
    medians = table[metric].astype("float64").groupby(table[name].map(_label)).median()
    spread = medians.max() - medians.min()
    return float(spread) if math.isfinite(spread) else 0.0


@dataclass(frozen=True, slots=True)
class _Grid:
    """The cells of a heatmap over parameters ``x`` and ``y``: each holds the rank (the table's index) of
    the best combination with those two values, or None where the grid has none."""

    x: str
    y: str
    xs: list[Label]
    ys: list[Label]
    ranks: list[list[int | None]]  # ranks[i][j]: the cell at ys[i], xs[j]

    def values(self, table: pd.DataFrame, column: str) -> list[list[float | None]]:
        """``column`` of each cell's combination; None (a gap in the heatmap) where there is none."""
        grid: list[list[float | None]] = []
        for row in self.ranks:
            cells = [None if r is None else _number(table.at[r, column]) for r in row]
            grid.append([None if v is None or math.isnan(v) else v for v in cells])
        return grid


def _grid(table: pd.DataFrame, x: str, y: str) -> _Grid:
    labels = pd.DataFrame({"x": table[x].map(_label), "y": table[y].map(_label)}, index=table.index)
    # The table is ranked best first (NaN last), so a cell's first row is its best combination.
    first = labels.drop_duplicates(keep="first")
    where = {(cx, cy): int(rank) for rank, cx, cy in zip(first.index, first["x"], first["y"], strict=True)}
    xs, ys = _ordered(list(labels["x"])), _ordered(list(labels["y"]))
    return _Grid(x, y, xs, ys, [[where.get((cx, cy)) for cx in xs] for cy in ys])


def _best_rank(table: pd.DataFrame, metric: str) -> int | None:
    """The rank of the best combination: the first row, unless no combination produced the metric."""
    ranked = table.index[table[metric].notna()]
    return int(ranked[0]) if len(ranked) else None


# ------------------------------------------------------------------------------------------- sweep figure
def sweep_figure(result: SweepResult) -> go.Figure:
    """The metric over the parameters the sweep varied; see the module docstring for which chart when.

    Each data trace's ``meta`` is the table column it shows: the heatmaps' are ``"<metric>"`` and (with a
    holdout) ``"holdout_<metric>"``; x is the first mapped parameter, y the second, both category axes in
    ascending order, and ``z[i][j]`` is the value at ``(x[j], y[i])`` (None where no combination ran or it
    produced no value). The best combination is a marker trace (``meta`` ``"best"``) on every panel. One
    varied parameter gives line traces with the same ``meta``; three or more add a profile panel per
    parameter in row 2 (``meta`` ``"profile <name>: best"``, ``": median"``, ``": holdout of the best"``).
    """
    plan = _plan(result)
    if not plan.varied:
        return _empty_figure("One combination: there is no landscape to map.")
    if len(plan.varied) == 1:
        return _line_figure(result, plan.varied[0])
    return _heatmap_figure(result, plan)


def _empty_figure(message: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_layout(template="plotly_white", height=200, xaxis_visible=False, yaxis_visible=False)
    return fig


def _in_sample_title(result: SweepResult) -> str:
    label = metric_label(result.metric)
    if result.holdout_from is None:
        return label
    return f"{label} before {_day(result.holdout_from)} (ranked)"


def _holdout_title(result: SweepResult) -> str:
    return f"{metric_label(result.metric)} from {_day(result.holdout_from)} on (holdout)"


def _line_figure(result: SweepResult, name: str) -> go.Figure:
    table, metric = result.table, result.metric
    labels = table[name].map(_label)
    order = _ordered(list(labels))
    first = table.assign(_x=labels).drop_duplicates("_x", keep="first").set_index("_x")
    columns = [(metric, _in_sample_title(result), "#1f77b4")]
    if result.holdout_from is not None:
        columns.append((f"holdout_{metric}", _holdout_title(result), _HOLDOUT_COLOR))
    fig = go.Figure()
    for column, title, color in columns:
        fig.add_trace(
            go.Scatter(
                x=order,
                y=[_number(first.at[v, column]) for v in order],
                mode="lines+markers",
                name=title,
                meta=column,
                line={"color": color},
                hovertemplate=f"{name}=%{{x}}<br>{title}: %{{y:{_d3_format(metric)}}}<extra></extra>",
            )
        )
    best = _best_rank(table, metric)
    if best is not None:
        for column, _title, _color in columns:
            fig.add_trace(
                go.Scatter(
                    x=[_label(table.at[best, name])],
                    y=[_number(table.at[best, column])],
                    mode="markers",
                    name="best",
                    meta="best",
                    marker=_BEST_MARKER,
                    showlegend=column == metric,
                    hovertemplate=f"best (rank {best}): {name}=%{{x}}<extra></extra>",
                )
            )
    numeric = all(isinstance(v, int | float) for v in order)
    fig.update_xaxes(title_text=name, type="linear" if numeric else "category")
    fig.update_yaxes(title_text=metric_label(metric), tickformat=_d3_format(metric))
    fig.update_layout(
        template="plotly_white",
        height=450,
        title=f"{metric_label(metric)} against {name}",
        legend={"orientation": "h", "y": -0.2},
        margin={"l": 60, "r": 20, "t": 60, "b": 60},
    )
    return fig


def _heatmap_figure(result: SweepResult, plan: _Plan) -> go.Figure:
    table, metric = result.table, result.metric
    x, y = plan.varied[0], plan.varied[1]
    grid = _grid(table, x, y)
    holdout = result.holdout_from is not None
    profiles = plan.varied if len(plan.varied) > 2 else ()
    fig, panels = _layout(result, grid, profiles)
    columns = [metric] + ([f"holdout_{metric}"] if holdout else [])
    best = _best_rank(table, metric)
    for column, col in zip(columns, panels, strict=True):
        _add_heatmap(fig, result, grid, column, col)
        if best is not None:
            chosen = html.escape(_params_at(table, best, result.parameters))
            # about one cell across on a panel some 450 px wide, so it outlines the cell, not its neighbours
            size = max(12, min(30, 400 // max(len(grid.xs), len(grid.ys))))
            fig.add_trace(
                go.Scatter(
                    x=[_label(table.at[best, x])],
                    y=[_label(table.at[best, y])],
                    mode="markers",
                    name="best",
                    meta="best",
                    marker={**_BEST_MARKER, "size": size},
                    showlegend=False,
                    hovertemplate=f"best (rank {best}): {chosen}<extra></extra>",
                ),
                row=1,
                col=col,
            )
    for k, name in enumerate(profiles):
        _add_profile(fig, result, name, row=2, col=2 * k + 1, legend=k == 0)
    fig.update_layout(
        template="plotly_white",
        height=520 + (340 if profiles else 0),
        margin={"l": 70, "r": 40, "t": 70, "b": 50},
        legend={"orientation": "h", "y": -0.08},
    )
    return fig


def _layout(result: SweepResult, grid: _Grid, profiles: Sequence[str]) -> tuple[go.Figure, list[int]]:
    """The subplots: the heatmaps side by side in row 1, a profile per parameter in row 2 (three or more)."""
    panels = 2 if result.holdout_from is not None else 1
    titles = [_in_sample_title(result)] + ([_holdout_title(result)] if panels == 2 else [])
    if not profiles:
        fig = make_subplots(rows=1, cols=panels, subplot_titles=titles, horizontal_spacing=0.12)
        return fig, list(range(1, panels + 1))
    # Row 2 has a panel per parameter, two grid columns each; the heatmaps split row 1 between them.
    cols = 2 * len(profiles)
    width = cols // panels
    top: list[dict[str, Any] | None] = []
    for _ in range(panels):
        top += [{"colspan": width}] + [None] * (width - 1)
    top += [None] * (cols - len(top))
    bottom: list[dict[str, Any] | None] = []
    for _ in profiles:
        bottom += [{"colspan": 2}, None]
    others = [p for p in profiles if p not in (grid.x, grid.y)]
    suffix = f": best over {', '.join(others)}" if others else ""
    fig = make_subplots(
        rows=2,
        cols=cols,
        specs=[top, bottom],
        subplot_titles=[titles[0] + suffix, *titles[1:], *profiles],
        horizontal_spacing=min(0.12, 0.6 / cols),
        vertical_spacing=0.16,
        row_heights=[0.6, 0.4],
    )
    return fig, [1 + k * width for k in range(panels)]


def _add_heatmap(fig: go.Figure, result: SweepResult, grid: _Grid, column: str, col: int) -> None:
    table = result.table
    z = grid.values(table, column)
    present = [v for row in z for v in row if v is not None]
    fmt = _d3_format(column)
    shown = len(grid.xs) * len(grid.ys) <= MAX_CELL_LABELS
    hover = [
        [_hover(table, result, r, column) if r is not None else "not in the grid" for r in row]
        for row in grid.ranks
    ]
    ref = fig.get_subplot(1, col)
    x_domain, y_domain = ref.xaxis.domain, ref.yaxis.domain
    heatmap = go.Heatmap(
        x=grid.xs,
        y=grid.ys,
        z=z,
        name=_in_sample_title(result) if column == result.metric else _holdout_title(result),
        meta=column,
        colorscale="RdYlGn",
        text=hover,
        hovertemplate="%{text}<extra></extra>",
        texttemplate=f"%{{z:{fmt}}}" if shown else None,
        textfont={"size": 10},
        xgap=1,
        ygap=1,
        colorbar={
            "x": x_domain[1] + 0.005,
            "xanchor": "left",
            "y": (y_domain[0] + y_domain[1]) / 2,
            "len": y_domain[1] - y_domain[0],
            "thickness": 12,
            "tickformat": _d3_format(column).replace(".1%", ".0%"),
        },
    )
    if present and min(present) < 0 < max(present):
        heatmap.zmid = 0.0  # red below zero, green above: losing and winning regions read at a glance
    fig.add_trace(heatmap, row=1, col=col)
    for axis, name, values in (("x", grid.x, grid.xs), ("y", grid.y, grid.ys)):
        update = fig.update_xaxes if axis == "x" else fig.update_yaxes
        update(title_text=name, type="category", categoryorder="array", categoryarray=values, row=1, col=col)


def _hover(table: pd.DataFrame, result: SweepResult, rank: int, column: str) -> str:
    """A cell's hover text: its combination, rank and value, or why it failed."""
    text = f"{html.escape(_params_at(table, rank, result.parameters))}<br>rank {rank}"
    text += f"<br>{html.escape(column)}: {format_cell(table.at[rank, column], column)}"
    error = _error(table.at[rank, "error"])
    if error:
        text += f"<br>failed: {html.escape(error[:120])}"
    return text


def _add_profile(fig: go.Figure, result: SweepResult, name: str, *, row: int, col: int, legend: bool) -> None:
    """Best and median metric at each value of ``name`` (and the holdout of each value's best)."""
    table, metric = result.table, result.metric
    labels = table[name].map(_label)
    order = _ordered(list(labels))
    values = table[metric].astype("float64")
    best = table.assign(_x=labels).drop_duplicates("_x", keep="first").set_index("_x")
    median = values.groupby(labels).median()
    lines = [
        ("best", [_number(best.at[v, metric]) for v in order], {"color": "#1f77b4"}),
        ("median", [_number(median.get(v)) for v in order], {"color": "#1f77b4", "dash": "dash"}),
    ]
    if result.holdout_from is not None:
        held = [_number(best.at[v, f"holdout_{metric}"]) for v in order]
        lines.append(("holdout of the best", held, {"color": _HOLDOUT_COLOR, "dash": "dot"}))
    for label, ys, line in lines:
        fig.add_trace(
            go.Scatter(
                x=order,
                y=ys,
                mode="lines+markers",
                name=label,
                meta=f"profile {name}: {label}",
                legendgroup=label,
                showlegend=legend,
                line=line,
                hovertemplate=f"{name}=%{{x}}<br>{label}: %{{y:{_d3_format(metric)}}}<extra></extra>",
            ),
            row=row,
            col=col,
        )
    numeric = all(isinstance(v, int | float) for v in order)
    fig.update_xaxes(type="linear" if numeric else "category", row=row, col=col)
    fig.update_yaxes(tickformat=_d3_format(metric), row=row, col=col)


# ------------------------------------------------------------------------------------------- sweep page
def _neighbourhood(result: SweepResult, plan: _Plan) -> str:
    """How the best combination's neighbours on the map did: the plateau-or-peak question in numbers."""
    table, metric = result.table, result.metric
    best = _best_rank(table, metric)
    if best is None or not plan.varied:
        return ""
    x = plan.varied[0]
    y = plan.varied[1] if len(plan.varied) > 1 else None
    grid = _grid(table, x, y) if y is not None else _grid(table.assign(_row=0), x, "_row")
    z = grid.values(table, metric)
    i = next(k for k, row in enumerate(grid.ranks) if best in row)
    j = grid.ranks[i].index(best)
    around: list[float] = []
    for a in range(max(i - 1, 0), min(i + 2, len(z))):
        for b in range(max(j - 1, 0), min(j + 2, len(z[a]))):
            value = z[a][b]
            if (a, b) != (i, j) and value is not None:
                around.append(value)
    if not around:
        return ""
    peak = _number(table.at[best, metric])
    where = "on the map" if len(plan.varied) <= 2 else f"on the {x} × {y} map"
    return (
        f"The best {metric_label(metric)} is {format_cell(peak, metric)}; its {len(around)} neighbouring cell(s) "
        f"{where} average {format_cell(float(np.mean(around)), metric)} (lowest {format_cell(min(around), metric)}). "
        "Neighbours close to the best suggest a plateau; far below it, an isolated peak that is likely luck."
    )


def _chart_notes(result: SweepResult, plan: _Plan) -> list[str]:
    notes = []
    if plan.fixed:
        fixed = ", ".join(f"{k}={v}" for k, v in plan.fixed.items())
        notes.append(f"Fixed in every combination: {fixed}.")
    if len(plan.varied) == 2:
        notes.append(
            f"Each cell is one combination of {plan.varied[0]} (across) and {plan.varied[1]} (up); blank "
            "cells did not run or produced no value. The black square marks the best combination."
        )
    elif len(plan.varied) > 2:
        spread = ", ".join(f"{p} {format_cell(plan.spread[p], result.metric)}" for p in plan.varied)
        notes.append(
            f"With {len(plan.varied)} varied parameters the map shows the two that move the "
            f"{metric_label(result.metric)} most (range of its median over each parameter's values: "
            f"{spread}). Each cell is the best combination of the other parameters at those two values"
            + ("; the holdout map shows that same combination's holdout" if result.holdout_from else "")
            + ". The profiles below show, for every parameter, the best and the median value at each of "
            "its values: a flat median means the parameter hardly matters; a best line with one sharp "
            "spike is a fragile choice. (A parallel-coordinates plot would show every combination, but "
            "hides exactly this: which neighbourhoods are good.)"
        )
    if result.holdout_from is not None and len(plan.varied) >= 2:
        notes.append(
            "Each map has its own colour scale (the holdout is a different, shorter stretch), from red (worst) "
            "to green (best), centred on zero when the values straddle it."
        )
    return notes


def _holdout_summary(result: SweepResult) -> str:
    """Did the in-sample ranking carry over to the holdout? The chosen combination's holdout rank and the
    rank correlation of the two metrics over all combinations."""
    table, metric = result.table, result.metric
    best = _best_rank(table, metric)
    if result.holdout_from is None or best is None:
        return ""
    pairs = table[[metric, f"holdout_{metric}"]].astype("float64").dropna()
    held = pairs[f"holdout_{metric}"]
    position = int((held > held.loc[best]).sum()) + 1 if best in held.index else None
    parts = []
    if position is not None:
        parts.append(
            f"On the holdout the chosen combination ranks {position} of {len(held)} by "
            f"{metric_label(metric)}."
        )
    if len(pairs) >= 3:
        rho = pairs[metric].rank().corr(held.rank())
        if math.isfinite(rho):
            parts.append(
                f"Rank correlation of the ranked and holdout {metric_label(metric)} over all combinations: "
                f"{rho:.2f}."
            )
            if rho < 0.3:  # a loose line: below it, the ranking's order is mostly noise on new bars
                parts.append("Near zero or below, the in-sample ranking says little about new bars.")
    return " ".join(parts)


def _ranked_columns(result: SweepResult) -> list[str]:
    shown = ["sharpe_ratio", "total_return", "max_drawdown", "fills"]
    columns = [*result.parameters, *([result.metric] if result.metric not in shown else []), *shown]
    if result.holdout_from is not None:
        columns += [f"holdout_{k}" for k in shown]
    # a table built by hand may lack some of run_sweep's columns: show those it has
    return [c for c in [*columns, "final_value", "errors"] if c in result.table.columns]


def _ranked_html(result: SweepResult, top: int) -> str:
    table = result.table
    columns = _ranked_columns(result)
    head = "".join(f"<th>{html.escape(c.replace('_', ' '))}</th>" for c in ["#", *columns])
    best = _best_rank(table, result.metric)
    rows = []
    for rank, row in table.head(top).iterrows():
        cells = "".join(f"<td>{html.escape(format_cell(row[c], c))}</td>" for c in columns)
        if _error(row["error"]):
            cells += f'<td class="errors">{html.escape(_error(row["error"]))}</td>'
        cls = ' class="best"' if rank == best else ""
        rows.append(f"<tr{cls}><td>{rank}</td>{cells}</tr>")
    note = ""
    if len(table) > top:
        note = (
            f'<p class="note">Showing the best {top:,} of {len(table):,} combinations; '
            "<code>--export FILE.csv</code> (or <code>result.table</code>) has them all.</p>"
        )
    return f'{note}<table class="ranked" id="ranked"><tr>{head}</tr>{"".join(rows)}</table>'


def _failed_html(result: SweepResult) -> str:
    failed = result.table[result.table["error"].map(_error) != ""]
    if failed.empty:
        return ""
    items = "".join(
        f"<li>{html.escape(_params_text(row, result.parameters))}: {html.escape(_error(row['error']))}</li>"
        for _, row in failed.iterrows()
    )
    return (
        f'<h2 class="errors">Failed combinations ({len(failed)})</h2>'
        f'<p class="note">These could not run at all; they have no metrics and are blank on the map.</p>'
        f'<ul class="errors" id="failed">{items}</ul>'
    )


_OVERFITTING = (
    "No holdout was used: every number on this page is in-sample. The best of {n} tries looks better than "
    "the strategy is, because some of its edge is the noise it was chosen on. Prefer a broad plateau to a "
    "sharp peak, and check the choice on bars it was not chosen on: rerun with <code>--holdout-from "
    "DATE</code> (rank before the date, report after it) or test the whole procedure with "
    "<code>--walk-forward N</code>."
)


def _best_html(result: SweepResult) -> str:
    best = _best_rank(result.table, result.metric)
    if best is None:
        return f"<p>No combination produced a {html.escape(metric_label(result.metric))}.</p>"
    row = result.table.loc[best]
    rows = [(p, str(_label(row[p]))) for p in result.parameters]
    rows.append((_in_sample_title(result), format_cell(row[result.metric], result.metric)))
    if result.holdout_from is not None:
        rows.append((_holdout_title(result), format_cell(row[f"holdout_{result.metric}"], result.metric)))
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f'<table class="metrics" id="best">{body}</table>'


def _page(title: str, sub: str, body: str) -> str:
    generated = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{REPORT_CSS}{_EXTRA_CSS}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p class="sub">{html.escape(sub)} · generated {html.escape(generated)} by copilot-quant</p>
{body}
</body></html>
"""


def _paragraphs(texts: Sequence[str], cls: str = "note") -> str:
    return "".join(f'<p class="{cls}">{html.escape(t)}</p>' for t in texts if t)


def render_sweep_html(result: SweepResult, title: str | None = None, top: int = MAX_TABLE_ROWS) -> str:
    """The sweep's page as a string (plotly.js inline); ``title`` names what was swept (e.g. the strategy
    call and symbols), ``top`` how many ranked rows are listed."""
    plan = _plan(result)
    count = result.combinations or len(result.table)
    ranked_by = f"ranked by {metric_label(result.metric)}"
    if result.holdout_from is not None:
        ranked_by += f" before {_day(result.holdout_from)}, holdout from then on"
    sub = f"{count:,} combination(s) of {', '.join(result.parameters)} · {ranked_by}"
    warning = ""
    if result.holdout_from is None and count > 1:
        warning = f'<p class="warn" id="overfitting">{_OVERFITTING.format(n=f"{count:,}")}</p>'
    chart = ""
    if plan.varied:
        figure = sweep_figure(result).to_html(full_html=False, include_plotlyjs=True)
        notes = [*_chart_notes(result, plan), _neighbourhood(result, plan)]
        chart = f"<h2>Landscape</h2>\n{_paragraphs(notes)}\n{figure}\n"
    body = (
        f"{warning}\n<h2>Best combination</h2>\n{_best_html(result)}\n"
        f"{_paragraphs([_holdout_summary(result)])}\n{chart}"
        f"<h2>Ranked combinations</h2>\n{_ranked_html(result, top)}\n{_failed_html(result)}"
    )
    return _page(f"Parameter sweep: {title}" if title else "Parameter sweep", sub, body)


def write_sweep_report(
    result: SweepResult, path: str | Path, title: str | None = None, top: int = MAX_TABLE_ROWS
) -> Path:
    """Write :func:`render_sweep_html` to ``path`` (parent folders are created); returns the resolved path."""
    return _write(render_sweep_html(result, title, top), path, "sweep")


def _write(page: str, path: str | Path, kind: str) -> Path:
    target = Path(path).expanduser()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(page, encoding="utf-8")
    log.info("wrote %s report %s", kind, target)
    return target.resolve()


# ------------------------------------------------------------------------------------------- walk-forward
def _daily(index: pd.Index) -> bool:
    return infer_periods_per_year(index) <= 252  # 252 trading days a year: daily bars or coarser


def walk_forward_figure(result: WalkForwardResult, max_points: int = MAX_CHART_POINTS) -> go.Figure:
    """The chained out-of-sample equity curve (trace ``"out-of-sample equity"``), a dashed line at each
    fold's first test bar (``layout.shapes``, in fold order) labelled with the fold and its parameters.

    x values are New York days for daily bars (times otherwise); a curve longer than ``max_points`` is
    thinned for display, keeping every peak and trough.
    """
    equity = result.equity.astype("float64")
    daily = _daily(equity.index)
    times = chart_times(equity.index, daily)
    values = equity.to_numpy()
    keep = display_positions(values, max_points)
    folds = result.table
    starts = pd.DatetimeIndex(folds["test_start"])
    # which fold each bar belongs to, for the hover text
    fold_of = np.searchsorted(starts.asi8, pd.DatetimeIndex(equity.index).asi8, side="right") - 1
    chosen = {k: _params_text(row, result.parameters) for k, row in folds.iterrows()}
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
        fig.update_xaxes(type="date")  # x values are text; say they are times
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
            f"{_day(row['train_start'])} → {_day(row['train_end'])}",
            f"{_day(row['test_start'])} → {_day(row['test_end'])}",
            *(str(_label(row[p])) for p in result.parameters),
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
        [("Out-of-sample bars (New York days)", f"{_day(equity.index[0])} → {_day(equity.index[-1])}")]
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
        f"<h2>Out-of-sample equity</h2>\n{_paragraphs([*_walk_forward_notes(result), thinned])}\n{figure}\n"
        f"<h2>Folds</h2>\n{_folds_html(result)}\n"
    )
    return _page(f"Walk-forward: {title}" if title else "Walk-forward analysis", sub, body)


def write_walk_forward_report(
    result: WalkForwardResult, path: str | Path, title: str | None = None, max_points: int = MAX_CHART_POINTS
) -> Path:
    """Write :func:`render_walk_forward_html` to ``path`` (parent folders are created); returns the
    resolved path."""
    return _write(render_walk_forward_html(result, title, max_points), path, "walk-forward")
