"""The trades section of a backtest's report: statistics of the round trips, then the list.

Up to :data:`MAX_LISTED_TRADES` trades are listed in full. A longer list (a minute-bar run has thousands,
tens of thousands of pixels of table) shows its first and last :data:`TRADE_ROWS_SHOWN` with a count of
those in between, and a link that downloads every trade as CSV (embedded in the page, so it works offline;
up to :data:`MAX_CSV_TRADES` trades). Each trade says how long it was held in time ("3 d 4 h") as well as
in bars.
"""

from __future__ import annotations

import base64
import html
import re
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from copilot_quant.backtest.metric_format import format_duration
from copilot_quant.data.dates import EXCHANGE_TZ
from copilot_quant.reports.page import ny_time

if TYPE_CHECKING:
    from copilot_quant.reports.result_view import ReportedResult

__all__ = [
    "MAX_CSV_TRADES",
    "MAX_LISTED_TRADES",
    "TRADE_ROWS_SHOWN",
    "trade_stats",
    "trades_csv",
    "trades_html",
]

#: Trades listed in full; above this the list shows its two ends.
MAX_LISTED_TRADES = 50
#: Rows shown at each end of a longer list.
TRADE_ROWS_SHOWN = 15
#: Trades the page's CSV download holds at most (about 150 bytes each, a third more once embedded).
MAX_CSV_TRADES = 20_000

_HEAD = (
    "<tr><th>#</th><th>Symbol</th><th>Side</th><th>Entry</th><th>Exit</th><th>Qty</th>"
    "<th>Entry price</th><th>Exit price</th><th>P&amp;L</th><th>Return</th><th>Held</th><th>Bars</th></tr>"
)
_COLUMNS = 12


def trade_stats(trades: pd.DataFrame) -> list[tuple[str, str]]:
    """Label and text of each statistic of ``trades`` (a :attr:`~ReportedResult.trades` frame): counts,
    P&L of the closed trades, and holding times."""
    closed = trades.loc[~trades["is_open"]]
    pnl = closed["pnl"].astype("float64")
    won, lost = int((pnl > 0).sum()), int((pnl < 0).sum())
    rows = [
        ("Closed trades", f"{len(closed):,} ({won:,} won, {lost:,} lost)"),
        ("Open at the end (marked)", f"{int(trades['is_open'].sum()):,}"),
        (
            "Long / short",
            f"{int((trades['side'] == 'long').sum()):,} / {int((trades['side'] == 'short').sum()):,}",
        ),
    ]
    if len(closed):
        wins, losses = pnl[pnl > 0], pnl[pnl < 0]
        rows += [
            ("Average P&L", f"{pnl.mean():,.2f}"),
            (
                "Average win / loss",
                f"{_money(wins.mean())} / {_money(losses.mean())}",
            ),
            ("Best / worst", f"{pnl.max():,.2f} / {pnl.min():,.2f}"),
            (
                "Held: median / longest",
                f"{format_duration(closed['duration'].median())} / {format_duration(closed['duration'].max())}",
            ),
        ]
    return rows


def _money(value: float) -> str:
    return "n/a" if np.isnan(value) else f"{value:,.2f}"


def trades_csv(trades: pd.DataFrame) -> str:
    """Every trade as CSV text: the :attr:`~ReportedResult.trades` columns, times in New York."""
    out = trades.copy()
    for column in ("entry_time", "exit_time"):
        times = pd.DatetimeIndex(out[column])
        out[column] = (times.tz_convert(EXCHANGE_TZ) if times.tz is not None else times).map(
            lambda t: t.isoformat()
        )
    out["duration"] = out["duration"].map(format_duration)
    return str(out.to_csv(index=False, float_format="%.6g"))


def trades_html(result: ReportedResult, suffix: str = "") -> str:
    """The section's HTML: statistics, then the list (or its two ends, a count and a CSV download).

    ``suffix`` is appended to the element ids (``trades-fast``), for one section per strategy on one page.
    """
    trades = result.trades
    if trades.empty:
        return "<p>No trades.</p>"
    stats = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in trade_stats(trades)
    )
    daily = result.periods_per_year <= 252  # 252 trading days a year: daily bars or coarser
    records: list[dict[Any, Any]] = trades.to_dict(orient="records")
    n = len(records)
    note = ""
    if n <= MAX_LISTED_TRADES:
        rows = [_row(k, t, daily) for k, t in enumerate(records, start=1)]
    else:
        tail_from = n - TRADE_ROWS_SHOWN
        rows = [_row(k, records[k - 1], daily) for k in range(1, TRADE_ROWS_SHOWN + 1)]
        rows.append(
            f'<tr class="gap"><td colspan="{_COLUMNS}">… {tail_from - TRADE_ROWS_SHOWN:,} more trades …</td></tr>'
        )
        rows += [_row(k, records[k - 1], daily) for k in range(tail_from + 1, n + 1)]
        note = (
            f'<p class="note">{n:,} trades: the first {TRADE_ROWS_SHOWN} and the last {TRADE_ROWS_SHOWN} are '
            f"listed. {_download(result, trades, suffix)}</p>"
        )
    return (
        f'<table class="metrics" id="trade-stats{suffix}">{stats}</table>\n{note}'
        f'<table class="trades" id="trades{suffix}">{_HEAD}{"".join(rows)}</table>'
    )


def _row(number: int, t: dict[Any, Any], daily: bool) -> str:
    pnl = float(t["pnl"])
    cls = "pos" if pnl > 0 else "neg" if pnl < 0 else ""
    # Fills are stamped with their bar's close; for daily or coarser bars the day is what matters.
    exit_text = "open (marked)" if t["is_open"] else ny_time(t["exit_time"], daily)
    bars = "" if pd.isna(t["bars_held"]) else f"{int(t['bars_held'])}"
    return (
        f"<tr><td>{number}</td><td>{html.escape(str(t['symbol']))}</td><td>{t['side']}</td>"
        f"<td>{ny_time(t['entry_time'], daily)}</td><td>{exit_text}</td><td>{t['quantity']:g}</td>"
        f"<td>{t['entry_price']:,.2f}</td><td>{t['exit_price']:,.2f}</td>"
        f'<td class="{cls}">{pnl:,.2f}</td><td class="{cls}">{t["return"]:.2%}</td>'
        f"<td>{format_duration(t['duration'])}</td><td>{bars}</td></tr>"
    )


def _download(result: ReportedResult, trades: pd.DataFrame, suffix: str = "") -> str:
    """A link that saves every trade as CSV, or where to find them when there are too many to embed."""
    if len(trades) > MAX_CSV_TRADES:
        return f"<code>result.trades</code> has all {len(trades):,} of them."
    data = base64.b64encode(trades_csv(trades).encode("utf-8")).decode("ascii")
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", result.strategy_name).strip("_") or "backtest"
    return (
        f'<a id="trades-csv{suffix}" download="{html.escape(name)}-trades.csv" '
        f'href="data:text/csv;base64,{data}">Download all {len(trades):,} trades (CSV)</a>'
        " (also <code>result.trades</code>)."
    )
