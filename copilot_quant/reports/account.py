"""The account section of a futures/forex backtest report: cash by currency and the margin calls."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from copilot_quant.reports.page import ny_time

if TYPE_CHECKING:
    from copilot_quant.reports.result_view import ReportedResult

__all__ = ["account_html"]


def account_html(result: ReportedResult) -> str:
    """``""`` for a stock-only run; else the final cash per currency, the futures' multipliers and every
    margin call (a stretch of bars with equity below the maintenance margin)."""
    if not result.cash_balances and not result.margin_calls:
        return ""
    parts = ["<h2>Account</h2>"]
    if result.cash_balances:
        cash = " · ".join(f"{html.escape(c)} {v:,.2f}" for c, v in result.cash_balances.items())
        parts.append(f'<p class="note">Cash by currency at the end: {cash} (equity is in USD).</p>')
    if result.multipliers:
        mults = " · ".join(f"{html.escape(s)} × {m:g}" for s, m in result.multipliers.items())
        parts.append(f'<p class="note">Futures multipliers: {mults}.</p>')
    calls = result.margin_calls
    if not calls:
        parts.append('<p class="note">No margin call: equity stayed above the maintenance margin.</p>')
        return "\n".join(parts)
    rows = "".join(
        "<tr>"
        f"<td>{html.escape(ny_time(c.start))}</td><td>{html.escape(ny_time(c.end))}</td>"
        f"<td>{c.bars:,}</td><td>{c.equity_at_start:,.2f}</td>"
        f"<td>{c.maintenance_at_start:,.2f}</td><td>{c.worst_shortfall:,.2f}</td>"
        "</tr>"
        for c in calls
    )
    parts.append(
        f'<h3 class="errors">Margin calls ({len(calls)})</h3>'
        "<table><thead><tr><th>From (New York)</th><th>To</th><th>Bars</th><th>Equity</th>"
        f"<th>Maintenance margin</th><th>Worst shortfall</th></tr></thead><tbody>{rows}</tbody></table>"
    )
    return "\n".join(parts)
