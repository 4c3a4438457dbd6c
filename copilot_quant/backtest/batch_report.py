"""The page of a batch: one table, a row per run, ranked; failed runs say why.

``write_batch_report(result, "batch.html", title)`` writes a self-contained HTML page (no scripts) in the
project's report style, with the values formatted as ``copilot-quant batch`` prints them.
"""

from __future__ import annotations

import html
import logging
from datetime import datetime
from pathlib import Path

import pandas as pd

from copilot_quant.backtest.batch import BatchResult
from copilot_quant.backtest.report import REPORT_CSS
from copilot_quant.backtest.results import metric_label
from copilot_quant.backtest.sweep_report import format_cell

__all__ = ["TABLE_COLUMNS", "render_batch_html", "write_batch_report"]

log = logging.getLogger(__name__)

#: The columns the page and the command show (the export has every column).
TABLE_COLUMNS = (
    "strategy",
    "symbols",
    "sharpe_ratio",
    "total_return",
    "annualized_return",
    "max_drawdown",
    "fills",
    "final_value",
    "errors",
)

_EXTRA_CSS = "table.batch td:nth-child(2),table.batch td:nth-child(3){text-align:left}"


def _rows(table: pd.DataFrame) -> str:
    rows = []
    for rank, row in table.iterrows():
        cells = "".join(f"<td>{html.escape(format_cell(row[c], c))}</td>" for c in TABLE_COLUMNS)
        error = row["error"]
        if isinstance(error, str) and error:
            cells += f'<td class="errors">{html.escape(error)}</td>'
        rows.append(f"<tr><td>{rank}</td>{cells}</tr>")
    return "".join(rows)


def render_batch_html(result: BatchResult, title: str | None = None) -> str:
    """The batch's page as a string; ``title`` says what ran (strategies, symbols, dates)."""
    table = result.table
    failed = int((table["error"].fillna("") != "").sum())
    heading = f"Batch: {title}" if title else "Batch"
    sub = f"{len(table):,} run(s), ranked by {metric_label(result.metric)}"
    if failed:
        sub += f" · {failed} could not run (their error is on their row)"
    generated = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    head = "".join(f"<th>{html.escape(c.replace('_', ' '))}</th>" for c in ("#", *TABLE_COLUMNS))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(heading)}</title><style>{REPORT_CSS}{_EXTRA_CSS}</style></head>
<body>
<h1>{html.escape(heading)}</h1>
<p class="sub">{html.escape(sub)} · generated {html.escape(generated)} by copilot-quant</p>
<p class="note">Each row is an independent backtest (its own engine, strategy and account).</p>
<table class="batch" id="runs"><tr>{head}</tr>{_rows(table)}</table>
</body></html>
"""


def write_batch_report(result: BatchResult, path: str | Path, title: str | None = None) -> Path:
    """Write :func:`render_batch_html` to ``path`` (parent folders are created); returns the resolved path."""
    target = Path(path).expanduser()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_batch_html(result, title), encoding="utf-8")
    log.info("wrote batch report %s", target)
    return target.resolve()
