"""The backtest's HTML report, at its old import path: see :mod:`copilot_quant.reports.backtest`.

Kept so ``from copilot_quant.backtest.report import build_figure, write_html`` (and the other names below)
keep working; the code lives in :mod:`copilot_quant.reports`.
"""

from __future__ import annotations

from copilot_quant.reports.backtest import (
    BENCHMARK_TRACE,
    MAX_CHART_SYMBOLS,
    MIN_PRICE_POINTS,
    PRICE_POINTS_BUDGET,
    build_figure,
    render_html,
    write_html,
)
from copilot_quant.reports.backtest_tables import SYMBOL_SUMMARY_COLUMNS, monthly_returns, symbol_summary
from copilot_quant.reports.charts import MAX_CHART_POINTS, chart_times, display_positions, drawdown_ticks
from copilot_quant.reports.page import REPORT_CSS
from copilot_quant.reports.trades import MAX_LISTED_TRADES

#: The old name of the bound on listed trades (the list now shows its two ends beyond it).
MAX_TRADE_ROWS = MAX_LISTED_TRADES

__all__ = [
    "BENCHMARK_TRACE",
    "MAX_CHART_POINTS",
    "MAX_CHART_SYMBOLS",
    "MAX_TRADE_ROWS",
    "MIN_PRICE_POINTS",
    "PRICE_POINTS_BUDGET",
    "REPORT_CSS",
    "SYMBOL_SUMMARY_COLUMNS",
    "build_figure",
    "chart_times",
    "display_positions",
    "drawdown_ticks",
    "monthly_returns",
    "render_html",
    "symbol_summary",
    "write_html",
]
