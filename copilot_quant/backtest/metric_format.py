"""The metrics a backtest reports, by name: which ones, in what order, labelled and formatted for people.

One list (:data:`SUMMARY_KEYS`) serves every place that shows a run's metrics — ``result.summary()``, the
CLI's table, the HTML report — and is also the set of keys every ``get_summary_stats()`` dict has. The
results, the reports and the CLI all import from here, so none of them imports another for a label.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

__all__ = ["DISPLAY_KEYS", "PERCENT_KEYS", "SUMMARY_KEYS", "format_duration", "format_metric", "metric_label"]

#: The metrics shown in summaries, tables and the HTML report, in order; every metrics dict has them.
SUMMARY_KEYS: tuple[str, ...] = (
    "total_return",
    "benchmark_return",
    "excess_return",
    "alpha",
    "beta",
    "annualized_return",
    "volatility",
    "sharpe_ratio",
    "sortino_ratio",
    "max_drawdown",
    "max_drawdown_duration",
    "max_drawdown_days",
    "calmar_ratio",
    "total_trades",
    "win_rate",
    "profit_factor",
    "exposure",
    "total_commission",
    "total_fees",
)

#: The same list under its older name (they were two lists that had drifted apart).
DISPLAY_KEYS = SUMMARY_KEYS

_LABELS: dict[str, str] = {
    "total_return": "Total return",
    "benchmark_return": "Benchmark return",
    "excess_return": "Excess return",
    "alpha": "Alpha (ann.)",
    "beta": "Beta",
    "annualized_return": "CAGR",
    "volatility": "Volatility (ann.)",
    "sharpe_ratio": "Sharpe ratio",
    "sortino_ratio": "Sortino ratio",
    "max_drawdown": "Max drawdown",
    "max_drawdown_duration": "Max DD duration",
    "max_drawdown_days": "Max DD duration (time)",
    "calmar_ratio": "Calmar ratio",
    "total_trades": "Closed trades",
    "win_rate": "Win rate",
    "profit_factor": "Profit factor",
    "exposure": "Exposure",
    "total_commission": "Commission paid",
    "total_fees": "Fees in commission",
    "open_trades": "Open trades",
    "final_value": "Final value",
}

#: Metrics that are fractions shown as percentages.
PERCENT_KEYS = frozenset(
    {
        "total_return",
        "benchmark_return",
        "excess_return",
        "alpha",
        "annualized_return",
        "volatility",
        "max_drawdown",
        "win_rate",
        "exposure",
    }
)

_COUNTS = frozenset({"total_trades", "open_trades", "total_fills", "bars", "rejected_orders"})
_MONEY = frozenset({"total_commission", "total_fees", "final_value", "initial_capital", "avg_trade_pnl"})


def metric_label(key: str) -> str:
    """Human label of a metric key."""
    return _LABELS.get(key, key.replace("_", " ").capitalize())


def format_metric(key: str, value: Any) -> str:
    """A metric value formatted for people: percentages, ratios, counts, money."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    if key in PERCENT_KEYS:
        return f"{value:,.2%}"
    if key == "max_drawdown_duration":
        return f"{int(value)} bars"
    if key == "max_drawdown_days":  # calendar days, shown in the units that matter
        return format_duration(pd.Timedelta(days=float(value))) or "0 s"
    if key in _COUNTS:
        return f"{int(value)}"
    if key in _MONEY:
        return f"{value:,.2f}"
    return f"{value:.2f}"


def format_duration(value: Any) -> str:
    """A length of time in the two largest units that matter: ``45 s``, ``12 min``, ``3 h 5 min``,
    ``3 d 4 h`` (days are calendar days); empty for a missing value."""
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return ""
    seconds = round(pd.Timedelta(value).total_seconds())
    sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
    if seconds < 60:
        return f"{sign}{seconds} s"
    if seconds < 3600:
        return f"{sign}{seconds // 60} min"
    if seconds < 86400:
        hours, minutes = divmod(seconds // 60, 60)
        return f"{sign}{hours} h {minutes} min" if minutes else f"{sign}{hours} h"
    days, rest = divmod(seconds, 86400)
    hours = rest // 3600
    return f"{sign}{days} d {hours} h" if hours else f"{sign}{days} d"
