"""The HTML page of a parameter search: where a sweep's good results lie.

A quant judges a parameter choice by its neighbourhood: a sharp, isolated peak is usually noise fitted
to the sample, a broad plateau is more likely to hold on new bars. So the page maps the ranking metric
over the parameters it varied (:mod:`copilot_quant.reports.sweep_figure`), says how the best combination's
neighbours did and whether the ranking carried over to the holdout, then lists the ranked table, the failed
combinations and, without a holdout, a warning about overfitting. One file that opens offline.
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from copilot_quant.backtest.metric_format import metric_label
from copilot_quant.reports.page import ny_day, page_html, paragraphs, write_page
from copilot_quant.reports.sweep_figure import (
    SweepPlan,
    best_rank,
    grid_of,
    holdout_title,
    in_sample_title,
    sweep_figure,
    sweep_plan,
)
from copilot_quant.reports.sweep_values import as_number, error_text, format_cell, param_label, params_text

if TYPE_CHECKING:
    from copilot_quant.backtest.sweep import SweepResult

__all__ = ["MAX_TABLE_ROWS", "render_sweep_html", "write_sweep_report"]

#: Rows of the ranked table a sweep page shows (the page says when there are more; an export has all).
MAX_TABLE_ROWS = 100


def _neighbourhood(result: SweepResult, plan: SweepPlan) -> str:
    """How the best combination's neighbours on the map did: the plateau-or-peak question in numbers."""
    table, metric = result.table, result.metric
    best = best_rank(table, metric)
    if best is None or not plan.varied:
        return ""
    x = plan.varied[0]
    y = plan.varied[1] if len(plan.varied) > 1 else None
    grid = grid_of(table, x, y) if y is not None else grid_of(table.assign(_row=0), x, "_row")
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
    peak = as_number(table.at[best, metric])
    where = "on the map" if len(plan.varied) <= 2 else f"on the {x} × {y} map"
    return (
        f"The best {metric_label(metric)} is {format_cell(peak, metric)}; its {len(around)} neighbouring cell(s) "
        f"{where} average {format_cell(float(np.mean(around)), metric)} (lowest {format_cell(min(around), metric)}). "
        "Neighbours close to the best suggest a plateau; far below it, an isolated peak that is likely luck."
    )


def _chart_notes(result: SweepResult, plan: SweepPlan) -> list[str]:
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
    best = best_rank(table, metric)
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
    best = best_rank(table, result.metric)
    rows = []
    for rank, row in table.head(top).iterrows():
        cells = "".join(f"<td>{html.escape(format_cell(row[c], c))}</td>" for c in columns)
        if error_text(row["error"]):
            cells += f'<td class="errors">{html.escape(error_text(row["error"]))}</td>'
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
    failed = result.table[result.table["error"].map(error_text) != ""]
    if failed.empty:
        return ""
    items = "".join(
        f"<li>{html.escape(params_text(row, result.parameters))}: {html.escape(error_text(row['error']))}</li>"
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
    best = best_rank(result.table, result.metric)
    if best is None:
        return f"<p>No combination produced a {html.escape(metric_label(result.metric))}.</p>"
    row = result.table.loc[best]
    rows = [(p, str(param_label(row[p]))) for p in result.parameters]
    rows.append((in_sample_title(result), format_cell(row[result.metric], result.metric)))
    if result.holdout_from is not None:
        rows.append((holdout_title(result), format_cell(row[f"holdout_{result.metric}"], result.metric)))
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f'<table class="metrics" id="best">{body}</table>'


def render_sweep_html(result: SweepResult, title: str | None = None, top: int = MAX_TABLE_ROWS) -> str:
    """The sweep's page as a string (plotly.js inline); ``title`` names what was swept (e.g. the strategy
    call and symbols), ``top`` how many ranked rows are listed."""
    plan = sweep_plan(result)
    count = result.combinations or len(result.table)
    ranked_by = f"ranked by {metric_label(result.metric)}"
    if result.holdout_from is not None:
        ranked_by += f" before {ny_day(result.holdout_from)}, holdout from then on"
    sub = f"{count:,} combination(s) of {', '.join(result.parameters)} · {ranked_by}"
    warning = ""
    if result.holdout_from is None and count > 1:
        warning = f'<p class="warn" id="overfitting">{_OVERFITTING.format(n=f"{count:,}")}</p>'
    chart = ""
    if plan.varied:
        figure = sweep_figure(result).to_html(full_html=False, include_plotlyjs=True)
        notes = [*_chart_notes(result, plan), _neighbourhood(result, plan)]
        chart = f"<h2>Landscape</h2>\n{paragraphs(notes)}\n{figure}\n"
    body = (
        f"{warning}\n<h2>Best combination</h2>\n{_best_html(result)}\n"
        f"{paragraphs([_holdout_summary(result)])}\n{chart}"
        f"<h2>Ranked combinations</h2>\n{_ranked_html(result, top)}\n{_failed_html(result)}"
    )
    return page_html(f"Parameter sweep: {title}" if title else "Parameter sweep", sub, body)


def write_sweep_report(
    result: SweepResult, path: str | Path, title: str | None = None, top: int = MAX_TABLE_ROWS
) -> Path:
    """Write :func:`render_sweep_html` to ``path`` (parent folders are created); returns the resolved path."""
    return write_page(render_sweep_html(result, title, top), path, "sweep")
