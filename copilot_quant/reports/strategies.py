"""The report's section for a run of several strategies on one account: each strategy and the account.

A table with one row per strategy (its capital share, final value, P&L, return, Sharpe ratio, maximum
drawdown, fills, closed trades, win rate, errors) and a last row for the account, which the strategies add
up to; then each strategy's trades (its round trips, from its own fills). The equity chart draws each
strategy's equity curve beside the account's (:func:`strategy_traces`). A run of one strategy has none of
this: its result is the account's.
"""

from __future__ import annotations

import html
import re
from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go

from copilot_quant.backtest.metric_format import format_metric
from copilot_quant.reports.charts import display_positions
from copilot_quant.reports.trades import trades_html

if TYPE_CHECKING:
    from copilot_quant.reports.result_view import ReportedResult

__all__ = ["STRATEGY_TRACE_PREFIX", "strategies_html", "strategy_traces"]

#: Each strategy's equity line in the equity panel is named ``"Strategy: NAME"``.
STRATEGY_TRACE_PREFIX = "Strategy: "

_COLUMNS = (
    "Strategy",
    "Capital",
    "Final value",
    "P&amp;L",
    "Return",
    "Sharpe ratio",
    "Max drawdown",
    "Fills",
    "Closed trades",
    "Win rate",
    "Errors",
)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-").lower() or "strategy"


def _row(label: str, part: ReportedResult, cls: str = "") -> str:
    stats = part.metrics
    pnl = part.final_value - part.initial_capital
    colour = "pos" if pnl > 0 else "neg" if pnl < 0 else ""
    cells = (
        f"<th>{html.escape(label)}</th><td>{part.initial_capital:,.2f}</td><td>{part.final_value:,.2f}</td>"
        f'<td class="{colour}">{pnl:,.2f}</td><td>{format_metric("total_return", stats["total_return"])}</td>'
        f"<td>{format_metric('sharpe_ratio', stats['sharpe_ratio'])}</td>"
        f"<td>{format_metric('max_drawdown', stats['max_drawdown'])}</td>"
        f"<td>{len(part.fills):,}</td><td>{int(stats['total_trades']):,}</td>"
        f"<td>{format_metric('win_rate', stats['win_rate'])}</td><td>{len(part.errors):,}</td>"
    )
    return f'<tr class="{cls}">{cells}</tr>' if cls else f"<tr>{cells}</tr>"


def strategies_html(result: ReportedResult) -> str:
    """The section's HTML (empty for a run of one strategy without a capital share)."""
    if not result.has_sleeves:
        return ""
    head = "".join(f"<th>{c}</th>" for c in _COLUMNS)
    rows = [_row(key, part) for key, part in result.strategies.items()]
    rows.append(_row("Account", result, "total"))
    table = f'<table class="symbols" id="strategies"><tr>{head}</tr>{"".join(rows)}</table>'
    note = (
        '<p class="note">The strategies share one account (cash, buying power); each has its own book: its '
        "capital share, the fills of its own orders and its positions. Their P&amp;L adds up to the "
        "account's.</p>"
    )
    trades = "".join(
        f'<h3 id="strategy-{_slug(key)}">Trades of {html.escape(key)}</h3>\n'
        f"{trades_html(part, suffix='-' + _slug(key))}\n"
        for key, part in result.strategies.items()
    )
    return f"<h2>Strategies</h2>\n{note}\n{table}\n{trades}"


#: Line styles of the strategies' equity lines (the account's is solid blue).
_COLOURS = ("#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


def strategy_traces(result: ReportedResult, times: np.ndarray, max_points: int) -> list[go.Scatter]:
    """Each strategy's equity curve, for the equity panel (none for a run of one strategy)."""
    if not result.has_sleeves:
        return []
    traces = []
    for k, (key, part) in enumerate(result.strategies.items()):
        values = part.equity_curve.to_numpy(dtype="float64")
        if len(values) != len(times):
            continue  # no bars (an empty run): nothing to draw
        keep = display_positions(values, max_points)
        traces.append(
            go.Scatter(
                x=times[keep],
                y=values[keep],
                name=f"{STRATEGY_TRACE_PREFIX}{key}",
                hovertemplate=f"{html.escape(key)}: %{{y:,.0f}}<extra></extra>",
                line={"color": _COLOURS[k % len(_COLOURS)], "width": 1.2, "dash": "dash"},
            )
        )
    return traces
