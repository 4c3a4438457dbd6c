"""Reports of parameter searches, at their old import path: see :mod:`copilot_quant.reports.sweep` and
:mod:`copilot_quant.reports.walk_forward`.

Kept so ``from copilot_quant.backtest.sweep_report import write_sweep_report`` (and the other names below)
keep working; the code lives in :mod:`copilot_quant.reports`.
"""

from __future__ import annotations

from copilot_quant.reports.sweep import MAX_TABLE_ROWS, render_sweep_html, write_sweep_report
from copilot_quant.reports.sweep_figure import MAX_CELL_LABELS, sweep_figure
from copilot_quant.reports.sweep_values import format_cell
from copilot_quant.reports.walk_forward import (
    render_walk_forward_html,
    walk_forward_figure,
    write_walk_forward_report,
)

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
