"""The chart of a parameter sweep: the ranking metric mapped over the parameters it varied.

One varied parameter: the metric (and the holdout's) as a line against it. Two: a heatmap over both, with
the holdout's beside it on the same axes. More: a heatmap over the two that move the metric most (each cell
the best combination of the other parameters there) and a profile per parameter. The best combination is
marked on every panel.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from copilot_quant.backtest.metric_format import metric_label
from copilot_quant.reports.page import ny_day
from copilot_quant.reports.sweep_values import (
    Label,
    as_number,
    axis_order,
    d3_format,
    error_text,
    format_cell,
    param_label,
    params_at,
)

if TYPE_CHECKING:
    from copilot_quant.backtest.sweep import SweepResult

__all__ = [
    "MAX_CELL_LABELS",
    "Grid",
    "SweepPlan",
    "best_rank",
    "grid_of",
    "holdout_title",
    "in_sample_title",
    "sweep_figure",
    "sweep_plan",
]

#: Heatmap cells above which the values are not printed in the cells (they would overlap); hover shows them.
MAX_CELL_LABELS = 400

# an outline around the best cell (or point) that leaves its value readable
_BEST_MARKER = {"symbol": "square-open", "size": 30, "color": "#000000", "line": {"width": 3}}
_HOLDOUT_COLOR = "#ff7f0e"


@dataclass(frozen=True, slots=True)
class SweepPlan:
    """What the sweep's chart maps: the varied parameters, most important first for three or more."""

    varied: tuple[str, ...]  # parameters with two or more values
    fixed: dict[str, Label]  # parameters with one value in the whole grid
    spread: dict[str, float]  # per varied parameter: range of the metric's per-value medians


def sweep_plan(result: SweepResult) -> SweepPlan:
    table = result.table
    varied = [p for p in result.parameters if table[p].map(param_label).nunique() > 1]
    fixed = {p: param_label(table[p].iloc[0]) for p in result.parameters if p not in varied and len(table)}
    spread = {p: _median_spread(table, p, result.metric) for p in varied}
    if len(varied) > 2:  # the heatmap takes the two that move the metric most; ties keep the given order
        varied.sort(key=lambda p: -spread[p])
    return SweepPlan(tuple(varied), fixed, spread)


def _median_spread(table: pd.DataFrame, name: str, metric: str) -> float:
    """How much a parameter matters: the range of the metric's median over each of its values."""
    medians = table[metric].astype("float64").groupby(table[name].map(param_label)).median()
    spread = medians.max() - medians.min()
    return float(spread) if math.isfinite(spread) else 0.0


@dataclass(frozen=True, slots=True)
class Grid:
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
            cells = [None if r is None else as_number(table.at[r, column]) for r in row]
            grid.append([None if v is None or math.isnan(v) else v for v in cells])
        return grid


def grid_of(table: pd.DataFrame, x: str, y: str) -> Grid:
    labels = pd.DataFrame({"x": table[x].map(param_label), "y": table[y].map(param_label)}, index=table.index)
    # The table is ranked best first (NaN last), so a cell's first row is its best combination.
    first = labels.drop_duplicates(keep="first")
    where = {(cx, cy): int(rank) for rank, cx, cy in zip(first.index, first["x"], first["y"], strict=True)}
    xs, ys = axis_order(list(labels["x"])), axis_order(list(labels["y"]))
    return Grid(x, y, xs, ys, [[where.get((cx, cy)) for cx in xs] for cy in ys])


def best_rank(table: pd.DataFrame, metric: str) -> int | None:
    """The rank of the best combination: the first row, unless no combination produced the metric."""
    ranked = table.index[table[metric].notna()]
    return int(ranked[0]) if len(ranked) else None


def sweep_figure(result: SweepResult) -> go.Figure:
    """The metric over the parameters the sweep varied; see the module docstring for which chart when.

    Each data trace's ``meta`` is the table column it shows: the heatmaps' are ``"<metric>"`` and (with a
    holdout) ``"holdout_<metric>"``; x is the first mapped parameter, y the second, both category axes in
    ascending order, and ``z[i][j]`` is the value at ``(x[j], y[i])`` (None where no combination ran or it
    produced no value). The best combination is a marker trace (``meta`` ``"best"``) on every panel. One
    varied parameter gives line traces with the same ``meta``; three or more add a profile panel per
    parameter in row 2 (``meta`` ``"profile <name>: best"``, ``": median"``, ``": holdout of the best"``).
    """
    plan = sweep_plan(result)
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


def in_sample_title(result: SweepResult) -> str:
    label = metric_label(result.metric)
    if result.holdout_from is None:
        return label
    return f"{label} before {ny_day(result.holdout_from)} (ranked)"


def holdout_title(result: SweepResult) -> str:
    return f"{metric_label(result.metric)} from {ny_day(result.holdout_from)} on (holdout)"


def _line_figure(result: SweepResult, name: str) -> go.Figure:
    table, metric = result.table, result.metric
    labels = table[name].map(param_label)
    order = axis_order(list(labels))
    first = table.assign(_x=labels).drop_duplicates("_x", keep="first").set_index("_x")
    columns = [(metric, in_sample_title(result), "#1f77b4")]
    if result.holdout_from is not None:
        columns.append((f"holdout_{metric}", holdout_title(result), _HOLDOUT_COLOR))
    fig = go.Figure()
    for column, title, color in columns:
        fig.add_trace(
            go.Scatter(
                x=order,
                y=[as_number(first.at[v, column]) for v in order],
                mode="lines+markers",
                name=title,
                meta=column,
                line={"color": color},
                hovertemplate=f"{name}=%{{x}}<br>{title}: %{{y:{d3_format(metric)}}}<extra></extra>",
            )
        )
    best = best_rank(table, metric)
    if best is not None:
        for column, _title, _color in columns:
            fig.add_trace(
                go.Scatter(
                    x=[param_label(table.at[best, name])],
                    y=[as_number(table.at[best, column])],
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
    fig.update_yaxes(title_text=metric_label(metric), tickformat=d3_format(metric))
    fig.update_layout(
        template="plotly_white",
        height=450,
        title=f"{metric_label(metric)} against {name}",
        legend={"orientation": "h", "y": -0.2},
        margin={"l": 60, "r": 20, "t": 60, "b": 60},
    )
    return fig


def _heatmap_figure(result: SweepResult, plan: SweepPlan) -> go.Figure:
    table, metric = result.table, result.metric
    x, y = plan.varied[0], plan.varied[1]
    grid = grid_of(table, x, y)
    holdout = result.holdout_from is not None
    profiles = plan.varied if len(plan.varied) > 2 else ()
    fig, panels = _layout(result, grid, profiles)
    columns = [metric] + ([f"holdout_{metric}"] if holdout else [])
    best = best_rank(table, metric)
    for column, col in zip(columns, panels, strict=True):
        _add_heatmap(fig, result, grid, column, col)
        if best is not None:
            chosen = html.escape(params_at(table, best, result.parameters))
            # about one cell across on a panel some 450 px wide, so it outlines the cell, not its neighbours
            size = max(12, min(30, 400 // max(len(grid.xs), len(grid.ys))))
            fig.add_trace(
                go.Scatter(
                    x=[param_label(table.at[best, x])],
                    y=[param_label(table.at[best, y])],
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


def _layout(result: SweepResult, grid: Grid, profiles: Sequence[str]) -> tuple[go.Figure, list[int]]:
    """The subplots: the heatmaps side by side in row 1, a profile per parameter in row 2 (three or more)."""
    panels = 2 if result.holdout_from is not None else 1
    titles = [in_sample_title(result)] + ([holdout_title(result)] if panels == 2 else [])
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


def _add_heatmap(fig: go.Figure, result: SweepResult, grid: Grid, column: str, col: int) -> None:
    table = result.table
    z = grid.values(table, column)
    present = [v for row in z for v in row if v is not None]
    fmt = d3_format(column)
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
        name=in_sample_title(result) if column == result.metric else holdout_title(result),
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
            "tickformat": d3_format(column).replace(".1%", ".0%"),
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
    text = f"{html.escape(params_at(table, rank, result.parameters))}<br>rank {rank}"
    text += f"<br>{html.escape(column)}: {format_cell(table.at[rank, column], column)}"
    error = error_text(table.at[rank, "error"])
    if error:
        text += f"<br>failed: {html.escape(error[:120])}"
    return text


def _add_profile(fig: go.Figure, result: SweepResult, name: str, *, row: int, col: int, legend: bool) -> None:
    """Best and median metric at each value of ``name`` (and the holdout of each value's best)."""
    table, metric = result.table, result.metric
    labels = table[name].map(param_label)
    order = axis_order(list(labels))
    values = table[metric].astype("float64")
    best = table.assign(_x=labels).drop_duplicates("_x", keep="first").set_index("_x")
    median = values.groupby(labels).median()
    lines = [
        ("best", [as_number(best.at[v, metric]) for v in order], {"color": "#1f77b4"}),
        ("median", [as_number(median.get(v)) for v in order], {"color": "#1f77b4", "dash": "dash"}),
    ]
    if result.holdout_from is not None:
        held = [as_number(best.at[v, f"holdout_{metric}"]) for v in order]
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
                hovertemplate=f"{name}=%{{x}}<br>{label}: %{{y:{d3_format(metric)}}}<extra></extra>",
            ),
            row=row,
            col=col,
        )
    numeric = all(isinstance(v, int | float) for v in order)
    fig.update_xaxes(type="linear" if numeric else "category", row=row, col=col)
    fig.update_yaxes(tickformat=d3_format(metric), row=row, col=col)
