"""The HTML report of a backtest: one self-contained file that opens offline.

The page holds the run's metrics table, plotly charts (equity, drawdown, and each symbol's close with
trade entry/exit markers), a table of monthly returns and the trade list. plotly.js is embedded inline,
so the file needs no network. Long series are thinned for the charts only (keeping every extreme that
matters: the last bar, the equity peak and trough, the deepest drawdown); tables use the full data.
"""

from __future__ import annotations

import html
import logging
import math
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from copilot_quant.backtest.results import DISPLAY_KEYS, format_metric, metric_label

if TYPE_CHECKING:
    from copilot_quant.backtest.results import BacktestResult

__all__ = [
    "MAX_CHART_POINTS",
    "MAX_TRADE_ROWS",
    "build_figure",
    "drawdown_ticks",
    "monthly_returns",
    "render_html",
    "write_html",
]

log = logging.getLogger(__name__)

#: Points per chart line above which the line is thinned (the HTML stays a few MB at most).
MAX_CHART_POINTS = 5_000
#: Rows of the trade list shown in the HTML page (the page says when there are more).
MAX_TRADE_ROWS = 2_000

_TZ = "America/New_York"  # the report shows times in the exchange's zone, where sessions are defined
#: Intervals at most on the drawdown axis (its panel is short).
_DRAWDOWN_TICKS = 4
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


# ------------------------------------------------------------------------------------------- charts
def _thin(series: pd.Series, max_points: int) -> pd.Series:
    """Every k-th point of ``series`` plus its first, last, minimum and maximum, when it is too long."""
    n = len(series)
    if n <= max_points:
        return series
    values = series.to_numpy(dtype="float64")
    keep = np.zeros(n, dtype=bool)
    keep[:: math.ceil(n / max_points)] = True
    keep[[0, n - 1, int(np.nanargmin(values)), int(np.nanargmax(values))]] = True
    return series[keep]


def drawdown_ticks(depth: float, ticks: int = _DRAWDOWN_TICKS) -> tuple[float, str] | None:
    """Tick spacing and d3 tick format for a drawdown axis reaching ``depth`` (a fraction, ``-0.008`` = -0.8 %).

    The spacing is the smallest 1, 2, 2.5 or 5 x 10^k percent step giving at most ``ticks`` intervals (so at
    least ``ticks / 2`` of them), and the format has exactly the decimals that step needs, so every tick label
    differs (a fixed ``.0%`` prints ``-1%`` at both -0.6 % and -0.8 %). ``None`` when there is no drawdown.
    """
    if not math.isfinite(depth) or depth >= 0:
        return None
    rough = -depth * 100 / max(ticks, 1)  # the smallest step in percent that keeps to ``ticks`` intervals
    exponent = math.floor(math.log10(rough))
    mantissa = next((m for m in (1, 2, 2.5, 5) if m * 10.0**exponent >= rough * (1 - 1e-9)), None)
    if mantissa is None:
        mantissa, exponent = 1, exponent + 1
    decimals = max(0, -exponent + (1 if mantissa == 2.5 else 0))
    step = round(mantissa * 10.0**exponent, decimals)  # in percent
    return step / 100, f".{decimals}%"


def _local(index: pd.Index) -> pd.Index:
    if isinstance(index, pd.DatetimeIndex) and index.tz is not None:
        return index.tz_convert(_TZ)
    return index


def build_figure(result: BacktestResult, max_points: int = MAX_CHART_POINTS) -> go.Figure:
    """Equity, drawdown and one price panel per traded (or held) symbol, with trade markers."""
    history = result.portfolio_history
    trades = result.trades
    symbols = [str(s) for s in result.prices.columns] if not result.prices.empty else []
    rows = 2 + len(symbols)
    titles = ["Equity", "Drawdown", *[f"{s} close" for s in symbols]]
    heights = [0.35, 0.15] + [0.5 / max(len(symbols), 1)] * len(symbols)
    fig = make_subplots(
        rows=rows,
        cols=1,
        shared_xaxes=True,
        subplot_titles=titles,
        row_heights=heights,
        vertical_spacing=0.04,
    )
    equity = _thin(history["equity"], max_points)
    fig.add_trace(
        go.Scatter(x=_local(equity.index), y=equity.to_numpy(), name="Equity", line={"color": "#1f77b4"}),
        row=1,
        col=1,
    )
    drawdown = _thin(history["drawdown"], max_points)
    fig.add_trace(
        go.Scatter(
            x=_local(drawdown.index),
            y=drawdown.to_numpy(),
            name="Drawdown",
            fill="tozeroy",
            line={"color": "#d62728"},
        ),
        row=2,
        col=1,
    )
    scale = drawdown_ticks(float(history["drawdown"].min()) if len(history) else math.nan)
    if scale is None:
        fig.update_yaxes(tickformat=".0%", row=2, col=1)
    else:  # ticks at multiples of a round step, with the decimals that step needs: no two labels alike
        dtick, tickformat = scale
        fig.update_yaxes(tickmode="linear", tick0=0, dtick=dtick, tickformat=tickformat, row=2, col=1)
    for row, symbol in enumerate(symbols, start=3):
        closes = _thin(result.prices[symbol].dropna(), max_points)
        fig.add_trace(
            go.Scatter(
                x=_local(closes.index),
                y=closes.to_numpy(),
                name=symbol,
                line={"color": "#7f7f7f", "width": 1},
            ),
            row=row,
            col=1,
        )
        mine = trades.loc[trades["symbol"] == symbol]
        _add_markers(fig, mine, row)
    fig.update_layout(
        height=320 + 220 * rows,
        title=f"{result.strategy_name}: equity {result.initial_capital:,.0f} → {result.final_value:,.0f}",
        hovermode="x unified",
        showlegend=False,
        margin={"l": 60, "r": 20, "t": 70, "b": 40},
        template="plotly_white",
    )
    return fig


def _add_markers(fig: go.Figure, trades: pd.DataFrame, row: int) -> None:
    if trades.empty:
        return
    for side, symbol_up, color in (("long", "triangle-up", "#2ca02c"), ("short", "triangle-down", "#d62728")):
        part = trades.loc[trades["side"] == side]
        if part.empty:
            continue
        fig.add_trace(
            go.Scatter(
                x=_local(pd.DatetimeIndex(part["entry_time"])),
                y=part["entry_price"].to_numpy(),
                mode="markers",
                name=f"{side} entry",
                marker={"symbol": symbol_up, "size": 10, "color": color},
                text=[
                    f"{side} entry {q:g} @ {p:.2f}"
                    for q, p in zip(part["quantity"], part["entry_price"], strict=True)
                ],
                hoverinfo="text+x",
            ),
            row=row,
            col=1,
        )
    closed = trades.loc[~trades["is_open"]]
    if not closed.empty:
        fig.add_trace(
            go.Scatter(
                x=_local(pd.DatetimeIndex(closed["exit_time"])),
                y=closed["exit_price"].to_numpy(),
                mode="markers",
                name="exit",
                marker={"symbol": "x", "size": 9, "color": "#000000"},
                text=[
                    f"exit {s} {q:g} @ {p:.2f}, P&L {pnl:,.2f}"
                    for s, q, p, pnl in zip(
                        closed["side"], closed["quantity"], closed["exit_price"], closed["pnl"], strict=True
                    )
                ],
                hoverinfo="text+x",
            ),
            row=row,
            col=1,
        )


# ------------------------------------------------------------------------------------------- tables
def monthly_returns(result: BacktestResult) -> pd.DataFrame:
    """Returns per calendar month (New York time): rows are years, columns Jan..Dec and ``Year``.

    Each month is measured from the previous month's last equity value (the first from the initial
    capital); months without bars are NaN. ``Year`` compounds the year's months.
    """
    equity = result.equity_curve.astype("float64")
    if equity.empty or not isinstance(equity.index, pd.DatetimeIndex):
        return pd.DataFrame(columns=[*_MONTHS, "Year"], dtype="float64")
    local = equity.tz_convert(_TZ) if equity.index.tz is not None else equity
    when = pd.DatetimeIndex(local.index)
    month_end = local.groupby([when.year, when.month]).last()
    previous = month_end.shift(1)
    previous.iloc[0] = float(result.initial_capital)
    monthly = month_end / previous - 1.0
    table = monthly.unstack(level=1).reindex(columns=range(1, 13))
    table.columns = list(_MONTHS)
    table["Year"] = (1.0 + table[list(_MONTHS)].fillna(0.0)).prod(axis=1) - 1.0
    table.index.name = "year"
    return table


def _metrics_html(result: BacktestResult) -> str:
    stats = result.metrics
    rows = [
        ("Initial capital", f"{stats['initial_capital']:,.2f}"),
        ("Final value", f"{stats['final_value']:,.2f}"),
    ]
    rows += [(metric_label(k), format_metric(k, stats[k])) for k in DISPLAY_KEYS]
    rows += [
        ("Open trades", format_metric("open_trades", stats["open_trades"])),
        ("Fills", format_metric("total_fills", stats["total_fills"])),
        ("Rejected orders", format_metric("rejected_orders", stats["rejected_orders"])),
        ("Bars per year (inferred)", f"{stats['periods_per_year']:,.0f}"),
    ]
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f'<table class="metrics" id="metrics">{body}</table>'


def _monthly_html(result: BacktestResult) -> str:
    table = monthly_returns(result)
    if table.empty:
        return "<p>No bars.</p>"
    head = "".join(f"<th>{c}</th>" for c in ["Year", *_MONTHS, "Total"])
    rows = []
    for year, values in table.iterrows():
        cells = []
        for value in values:
            if pd.isna(value):
                cells.append("<td></td>")
            else:
                cls = "pos" if value > 0 else "neg" if value < 0 else ""
                cells.append(f'<td class="{cls}">{value:.2%}</td>')
        rows.append(f"<tr><th>{year}</th>{''.join(cells)}</tr>")
    return f'<table class="monthly" id="monthly-returns"><tr>{head}</tr>{"".join(rows)}</table>'


def _when(value: object, date_only: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    ts = pd.Timestamp(value)  # type: ignore[arg-type]
    if ts.tzinfo is not None:
        ts = ts.tz_convert(_TZ)
    return ts.strftime("%Y-%m-%d" if date_only else "%Y-%m-%d %H:%M")


def _trades_html(result: BacktestResult) -> str:
    trades = result.trades
    if trades.empty:
        return "<p>No trades.</p>"
    head = (
        "<tr><th>#</th><th>Symbol</th><th>Side</th><th>Entry</th><th>Exit</th><th>Qty</th>"
        "<th>Entry price</th><th>Exit price</th><th>P&amp;L</th><th>Return</th><th>Bars</th></tr>"
    )
    # Fills are stamped with their bar's close; for daily or coarser bars the day is what matters.
    daily = result.periods_per_year <= 252  # 252 trading days a year: daily bars or coarser
    rows = []
    records: list[dict[Any, Any]] = trades.head(MAX_TRADE_ROWS).to_dict(orient="records")
    for i, t in enumerate(records, start=1):
        pnl = float(t["pnl"])
        cls = "pos" if pnl > 0 else "neg" if pnl < 0 else ""
        exit_text = "open (marked)" if t["is_open"] else _when(t["exit_time"], daily)
        bars = "" if pd.isna(t["bars_held"]) else f"{int(t['bars_held'])}"
        rows.append(
            f"<tr><td>{i}</td><td>{html.escape(str(t['symbol']))}</td><td>{t['side']}</td>"
            f"<td>{_when(t['entry_time'], daily)}</td><td>{exit_text}</td><td>{t['quantity']:g}</td>"
            f"<td>{t['entry_price']:,.2f}</td><td>{t['exit_price']:,.2f}</td>"
            f'<td class="{cls}">{pnl:,.2f}</td><td class="{cls}">{t["return"]:.2%}</td>'
            f"<td>{bars}</td></tr>"
        )
    note = ""
    if len(trades) > MAX_TRADE_ROWS:
        note = (
            f"<p>Showing the first {MAX_TRADE_ROWS:,} of {len(trades):,} trades; "
            "use <code>result.trades</code> for all of them.</p>"
        )
    return f'{note}<table class="trades" id="trades">{head}{"".join(rows)}</table>'


_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#222}
h1{font-size:22px;margin-bottom:4px} h2{font-size:17px;margin-top:28px}
.sub{color:#666;margin-top:0}
table{border-collapse:collapse;font-size:13px}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:right}
table.metrics th{text-align:left;background:#f6f6f6}
.pos{color:#1a7f37} .neg{color:#c62828}
.errors{color:#c62828}
"""


def render_html(result: BacktestResult, max_points: int = MAX_CHART_POINTS) -> str:
    """The whole report page as a string (plotly.js inline)."""
    figure = build_figure(result, max_points).to_html(full_html=False, include_plotlyjs=True)
    title = f"Backtest report: {html.escape(result.strategy_name)}"
    period = f"{_when(result.start_date)} → {_when(result.end_date)} (New York time)"
    symbols = ", ".join(str(s) for s in result.prices.columns) if not result.prices.empty else ""
    errors = ""
    if result.errors:
        items = "".join(
            f"<li>{html.escape(_when(e.get('timestamp')))} {html.escape(str(e.get('type', '')))}: "
            f"{html.escape(str(e.get('error', '')))}</li>"
            for e in result.errors[:100]
        )
        errors = (
            f'<h2 class="errors">Strategy errors ({len(result.errors)})</h2><ul class="errors">{items}</ul>'
        )
    generated = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title><style>{_CSS}</style></head>
<body>
<h1>{title}</h1>
<p class="sub">{html.escape(period)} · {html.escape(symbols)} · generated {html.escape(generated)} by copilot-quant</p>
<h2>Metrics</h2>
{_metrics_html(result)}
{errors}
<h2>Charts</h2>
{figure}
<h2>Monthly returns</h2>
{_monthly_html(result)}
<h2>Trades</h2>
{_trades_html(result)}
</body></html>
"""


def write_html(result: BacktestResult, path: str | Path, max_points: int = MAX_CHART_POINTS) -> Path:
    """Write :func:`render_html` to ``path`` (parent folders are created); returns the resolved path."""
    target = Path(path).expanduser()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_html(result, max_points), encoding="utf-8")
    log.info("wrote backtest report %s", target)
    return target.resolve()
