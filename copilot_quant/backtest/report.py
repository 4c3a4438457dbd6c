"""The HTML report of a backtest: one self-contained file that opens offline.

The page holds the run's metrics table, plotly charts, a per-symbol summary (for two or more symbols), a
table of monthly returns and the trade list. The charts are one figure: equity, drawdown, and the close of
one symbol with its trade entry/exit markers; with several symbols a dropdown at the top left of the price
panel picks the symbol (every symbol's traces are in the figure, the menu only toggles which are visible,
so the page needs no server and no script beyond plotly.js, which is embedded inline).

The page stays a few MB however long or wide the run is: lines are thinned for display only (keeping the
lowest and highest value of every span, the first and last point, and the breaks where a symbol has no
bars), price lines share a budget of :data:`PRICE_POINTS_BUDGET` points, at most :data:`MAX_CHART_SYMBOLS`
symbols are charted and at most :data:`MAX_TRADE_ROWS` trades listed; the page says when any of that
happened. Metrics and tables use the full data.
"""

from __future__ import annotations

import html
import logging
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from copilot_quant.backtest import metrics as m
from copilot_quant.backtest.metric_format import DISPLAY_KEYS, format_metric, metric_label

if TYPE_CHECKING:
    from copilot_quant.backtest.results import BacktestResult

__all__ = [
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

log = logging.getLogger(__name__)

#: Points per chart line above which the line is thinned (equity, drawdown, and one symbol's price).
MAX_CHART_POINTS = 5_000
#: Points shared by all the symbols' price lines (each gets at least :data:`MIN_PRICE_POINTS`); a price
#: line holds about 24 bytes a point in the page, so 100,000 points are about 2.4 MB.
PRICE_POINTS_BUDGET = 100_000
#: Points a symbol's price line keeps however many symbols share the budget (two per pixel of a wide chart).
MIN_PRICE_POINTS = 500
#: Symbols in the chart's dropdown at most: the most traded ones (by turnover); the table lists them all.
MAX_CHART_SYMBOLS = 200
#: Rows of the trade list shown in the HTML page (the page says when there are more).
MAX_TRADE_ROWS = 2_000

#: Columns of :func:`symbol_summary`, in order.
SYMBOL_SUMMARY_COLUMNS: tuple[str, ...] = (
    "bars",
    "fills",
    "closed_trades",
    "open_trades",
    "win_rate",
    "realized_pnl",
    "open_pnl",
    "total_pnl",
    "commission",
    "turnover",
    "exposure",
    "position",
)

_TZ = "America/New_York"  # the report shows times in the exchange's zone, where sessions are defined
#: Intervals at most on the drawdown axis (its panel is short).
_DRAWDOWN_TICKS = 4
#: Drawdowns shallower than this (0.01 %) are drawn on a fixed 0 to -1 % axis, not one zoomed on noise.
_NEGLIGIBLE_DRAWDOWN = 1e-4
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MARKERS = (  # trace name, marker, colour
    ("long entry", "triangle-up", "#2ca02c"),
    ("short entry", "triangle-down", "#d62728"),
)


# ------------------------------------------------------------------------------------------- charts
def display_positions(values: np.ndarray, max_points: int) -> np.ndarray:
    """Positions of ``values`` worth drawing, in order: from the first to the last value that is not NaN.

    All of them when there are at most ``max_points``. Otherwise the values are cut into spans of
    ``ceil(2n / max_points)`` and each span keeps its lowest and highest value (so every peak and trough
    of the drawn line is a real one, and the global extremes survive), plus the first and last value and
    the first NaN of every gap at least a span long (so missing bars still break the line): about
    ``max_points`` positions.
    """
    present = np.flatnonzero(~np.isnan(values))
    if not len(present):
        return present
    first, last = int(present[0]), int(present[-1])
    values = values[first : last + 1]
    n = len(values)
    if n <= max_points:
        return np.arange(first, last + 1)
    span = math.ceil(2 * n / max(max_points, 2))
    missing = np.isnan(values)
    padded = np.concatenate([values, np.full((-n) % span, np.nan)]).reshape(-1, span)
    valid = ~np.isnan(padded)
    has_value = valid.any(axis=1)
    base = np.arange(len(padded)) * span
    lows = base + np.argmin(np.where(valid, padded, np.inf), axis=1)
    highs = base + np.argmax(np.where(valid, padded, -np.inf), axis=1)
    keep = np.zeros(n, dtype=bool)
    keep[lows[has_value]] = True
    keep[highs[has_value]] = True
    keep[[0, n - 1]] = True
    edges = np.diff(np.concatenate([[0], missing.astype(np.int8), [0]]))
    gap_starts, gap_ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    keep[gap_starts[gap_ends - gap_starts >= span]] = True
    return first + np.flatnonzero(keep)


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


def chart_times(index: pd.Index, daily: bool) -> np.ndarray:
    """Bar times as the page's x values: New York wall-clock text, the date alone for daily bars.

    plotly.js ignores time zones, and short text is about a third of the size of ISO stamps with offsets.
    """
    if not isinstance(index, pd.DatetimeIndex):
        return np.asarray(index)
    local = index.tz_convert(_TZ) if index.tz is not None else index
    if daily:
        fmt = "%Y-%m-%d"
    elif (local.second != 0).any() or (local.microsecond != 0).any():
        fmt = "%Y-%m-%d %H:%M:%S"
    else:
        fmt = "%Y-%m-%d %H:%M"
    return np.asarray(local.strftime(fmt), dtype=object)


@dataclass(frozen=True, slots=True)
class _ChartPlan:
    """What the figure draws: which symbols, and how many points each price line keeps."""

    symbols: tuple[str, ...]  # charted, in the order of ``result.prices``' columns
    symbol_points: int  # price-line points (and trades with markers) per symbol at most
    total_symbols: int  # symbols with prices

    @property
    def dropdown(self) -> bool:
        return len(self.symbols) > 1


def _chart_plan(result: BacktestResult, max_points: int, summary: pd.DataFrame | None = None) -> _ChartPlan:
    """``summary`` (:func:`symbol_summary`; computed when missing) ranks the symbols if there are too many."""
    priced = [str(s) for s in result.prices.columns] if not result.prices.empty else []
    charted = priced
    if len(priced) > MAX_CHART_SYMBOLS:  # the most traded ones, then the first listed
        table = symbol_summary(result) if summary is None else summary
        turnover = table["turnover"].reindex(priced).fillna(0.0)
        ranked = sorted(range(len(priced)), key=lambda k: (-float(turnover.iloc[k]), k))
        chosen = set(ranked[:MAX_CHART_SYMBOLS])
        charted = [s for k, s in enumerate(priced) if k in chosen]
    share = PRICE_POINTS_BUDGET // max(len(charted), 1)
    points = min(max_points, max(MIN_PRICE_POINTS, share))
    return _ChartPlan(tuple(charted), points, len(priced))


def build_figure(result: BacktestResult, max_points: int = MAX_CHART_POINTS) -> go.Figure:
    """Equity, drawdown and a symbol's close with its trades; with several symbols a dropdown picks one.

    Every charted symbol has a price trace followed by its marker traces (``long entry``, ``short entry``,
    ``exit``; only those with trades), all with ``legendgroup`` set to the symbol; the first symbol's are
    visible. Each dropdown button shows one symbol's traces (``visible`` mask) and retitles the panel.
    Lines longer than ``max_points`` are thinned for display (see :func:`display_positions`).
    """
    return _figure(result, _chart_plan(result, max_points), max_points)


def _figure(result: BacktestResult, plan: _ChartPlan, max_points: int) -> go.Figure:
    history = result.portfolio_history
    daily = result.periods_per_year <= 252  # 252 trading days a year: daily bars or coarser
    has_prices = bool(plan.symbols)
    titles = ["Equity", "Drawdown"] + ([f"{plan.symbols[0]} close"] if has_prices else [])
    fig = make_subplots(
        rows=len(titles),
        cols=1,
        shared_xaxes=True,
        subplot_titles=titles,
        row_heights=[0.35, 0.15, 0.5][: len(titles)],
        vertical_spacing=0.04,
    )
    times = chart_times(history.index, daily)
    equity = history["equity"].to_numpy(dtype="float64")
    keep = display_positions(equity, max_points)
    fig.add_trace(
        go.Scatter(x=times[keep], y=equity[keep], name="Equity", line={"color": "#1f77b4"}), row=1, col=1
    )
    drawdown = history["drawdown"].to_numpy(dtype="float64")
    keep = display_positions(drawdown, max_points)
    fig.add_trace(
        go.Scatter(
            x=times[keep],
            y=drawdown[keep],
            name="Drawdown",
            fill="tozeroy",
            line={"color": "#d62728"},
            showlegend=False,
        ),
        row=2,
        col=1,
    )
    _add_benchmark_line(fig, result, times, max_points)
    _scale_drawdown_axis(fig, float(history["drawdown"].min()) if len(history) else math.nan)
    if has_prices:
        _add_price_panel(fig, result, plan, daily)
    if isinstance(history.index, pd.DatetimeIndex):
        fig.update_xaxes(type="date")  # x values are text; say they are times
    fig.update_layout(
        height=320 + 220 * len(titles),
        title=f"{result.strategy_name}: equity {result.initial_capital:,.0f} → {result.final_value:,.0f}",
        hovermode="x unified",
        # only the equity panel's lines are in the legend (equity and the benchmark), above it at the right
        showlegend=result.benchmark is not None,
        legend={"orientation": "h", "x": 1.0, "xanchor": "right", "y": 1.0, "yanchor": "bottom"},
        margin={"l": 60, "r": 20, "t": 70, "b": 40},
        template="plotly_white",
    )
    return fig


#: The benchmark's line in the equity panel: a trace named ``BENCHMARK_TRACE``, its hover naming the benchmark.
BENCHMARK_TRACE = "Benchmark"


def _add_benchmark_line(fig: go.Figure, result: BacktestResult, times: np.ndarray, max_points: int) -> None:
    """The benchmark's value (the same capital, bought and held) beside the equity, in row 1."""
    curve = result.benchmark_curve
    if curve is None or result.benchmark is None:
        return
    values = curve.to_numpy(dtype="float64")
    keep = display_positions(values, max_points)
    fig.add_trace(
        go.Scatter(
            x=times[keep],
            y=values[keep],
            name=f"{BENCHMARK_TRACE}: {result.benchmark.name}",
            meta=BENCHMARK_TRACE,
            hovertemplate=f"{html.escape(result.benchmark.name)}: %{{y:,.0f}}<extra></extra>",
            line={"color": "#ff7f0e", "width": 1.5, "dash": "dot"},
        ),
        row=1,
        col=1,
    )


def _scale_drawdown_axis(fig: go.Figure, depth: float) -> None:
    """Ticks at multiples of a round step with the decimals that step needs: no two labels alike.

    Without a drawdown (or one below 0.01 %, float noise) the axis spans 0 to -1 % in half percents:
    plotly would otherwise zoom on nothing (-100 % to 100 % for a flat zero line) or on the noise.
    """
    ticks = _DRAWDOWN_TICKS
    if not depth < -_NEGLIGIBLE_DRAWDOWN:
        depth, ticks = -0.01, 2
        fig.update_yaxes(range=[depth, 0.0], row=2, col=1)
    scale = drawdown_ticks(depth, ticks)
    if scale is not None:
        dtick, tickformat = scale
        fig.update_yaxes(tickmode="linear", tick0=0, dtick=dtick, tickformat=tickformat, row=2, col=1)


def _add_price_panel(fig: go.Figure, result: BacktestResult, plan: _ChartPlan, daily: bool) -> None:
    """The symbols' price and marker traces in row 3, and the dropdown that picks one of them."""
    prices = result.prices
    times = chart_times(prices.index, daily)
    trades = result.trades
    by_symbol = {str(s): t for s, t in trades.groupby("symbol", sort=False)} if len(trades) else {}
    traces: list[go.Scatter] = []
    owner: list[str] = []  # the symbol of each trace in ``traces``
    for symbol in plan.symbols:
        closes = prices[symbol].to_numpy(dtype="float64")
        keep = display_positions(closes, plan.symbol_points)
        mine = [
            go.Scatter(
                x=times[keep],
                y=closes[keep],
                name=symbol,
                line={"color": "#7f7f7f", "width": 1},
            ),
            *_marker_traces(_sample(by_symbol.get(symbol), plan.symbol_points), daily),
        ]
        for trace in mine:
            trace.legendgroup = symbol
            trace.showlegend = False
            trace.visible = symbol == plan.symbols[0]
        traces += mine
        owner += [symbol] * len(mine)
    fig.add_traces(traces, rows=[3] * len(traces), cols=[1] * len(traces))
    if not plan.dropdown:
        return
    fixed = [True] * (len(fig.data) - len(traces))  # equity, drawdown (and the benchmark) stay visible
    buttons = [
        {
            "label": symbol,
            "method": "update",
            "args": [
                {"visible": fixed + [s == symbol for s in owner]},
                # annotations 0-2 are the subplot titles; autorange drops a zoom made on another symbol
                {"annotations[2].text": f"{symbol} close", "yaxis3.autorange": True},
            ],
        }
        for symbol in plan.symbols
    ]
    top = fig.layout.yaxis3.domain[1]
    fig.update_layout(
        updatemenus=[
            {
                "type": "dropdown",
                "direction": "down",
                "active": 0,
                "buttons": buttons,
                "x": 0.0,
                "xanchor": "left",
                "y": top + 0.005,
                "yanchor": "bottom",
                "pad": {"t": 0, "b": 0},
                "showactive": True,
            }
        ]
    )


def _sample(trades: pd.DataFrame | None, limit: int) -> pd.DataFrame:
    """``trades``, or ``limit`` of them evenly spread in time when there are more (markers only)."""
    if trades is None:
        return pd.DataFrame()
    if len(trades) <= limit:
        return trades
    ordered = trades.sort_values("entry_time", kind="stable")
    return ordered.iloc[np.unique(np.linspace(0, len(ordered) - 1, limit).round().astype(int))]


def _marker_traces(trades: pd.DataFrame, daily: bool) -> list[go.Scatter]:
    """Entry markers per side and exit markers (closed trades only) of one symbol's trades."""
    if trades.empty:
        return []
    traces = []
    for name, marker, color in _MARKERS:
        side = name.split()[0]
        part = trades.loc[trades["side"] == side]
        if part.empty:
            continue
        traces.append(
            go.Scatter(
                x=chart_times(pd.DatetimeIndex(part["entry_time"]), daily),
                y=part["entry_price"].to_numpy(dtype="float64"),
                mode="markers",
                name=name,
                marker={"symbol": marker, "size": 10, "color": color},
                text=[
                    f"{side} entry {q:g} @ {p:.2f}"
                    for q, p in zip(part["quantity"], part["entry_price"], strict=True)
                ],
                hoverinfo="text+x",
            )
        )
    closed = trades.loc[~trades["is_open"]]
    if not closed.empty:
        traces.append(
            go.Scatter(
                x=chart_times(pd.DatetimeIndex(closed["exit_time"]), daily),
                y=closed["exit_price"].to_numpy(dtype="float64"),
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
            )
        )
    return traces


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


def symbol_summary(result: BacktestResult) -> pd.DataFrame:
    """One row per symbol (those with prices, in ``result.prices``' column order, then any other traded one).

    Columns (:data:`SYMBOL_SUMMARY_COLUMNS`): ``bars`` with a close, ``fills``, ``closed_trades`` and
    ``open_trades`` (round trips, as in :attr:`~BacktestResult.trades`), ``win_rate`` of the closed ones
    (``nan`` without any), ``realized_pnl`` (closed trades, net of their commissions), ``open_pnl`` (open
    trades marked to the last close), ``total_pnl``, ``commission`` paid on the fills, ``turnover`` (traded
    notional: the sum of quantity x price over the fills), ``exposure`` (share of the run's bars that ended
    with a position in the symbol) and the final signed ``position``. Over all symbols ``total_pnl`` adds up
    to the run's profit, as far as the equity curve marks positions at the same closes.
    """
    priced = [str(s) for s in result.prices.columns] if not result.prices.empty else []
    fills = result.get_trade_log()
    seen = set(priced)
    symbols = priced + [s for s in dict.fromkeys(fills["symbol"].astype(str)) if s not in seen]
    by_fill = fills.groupby(fills["symbol"].astype(str))
    signed = np.where(fills["side"] == "buy", 1.0, -1.0) * fills["quantity"]
    trades = result.trades
    trades["symbol"] = trades["symbol"].astype(str)
    closed = trades.loc[~trades["is_open"]].groupby("symbol")["pnl"]
    still_open = trades.loc[trades["is_open"]].groupby("symbol")["pnl"]
    holdings = result.holdings
    bars = len(holdings)
    table = pd.DataFrame(
        {
            "bars": pd.Series({s: int(result.prices[s].notna().sum()) for s in priced}, dtype="int64"),
            "fills": by_fill.size(),
            "closed_trades": closed.size(),
            "open_trades": still_open.size(),
            "win_rate": closed.agg(m.win_rate),
            "realized_pnl": closed.sum(),
            "open_pnl": still_open.sum(),
            "commission": by_fill["commission"].sum(),
            "turnover": (fills["quantity"] * fills["price"]).abs().groupby(fills["symbol"].astype(str)).sum(),
            "exposure": (holdings.abs() > 1e-9).sum(axis=0) / bars if bars else pd.Series(dtype="float64"),
            "position": signed.groupby(fills["symbol"].astype(str)).sum(),
        },
        index=pd.Index(symbols, name="symbol", dtype=object),
    )
    counts = ["bars", "fills", "closed_trades", "open_trades"]
    table[counts] = table[counts].fillna(0).astype("int64")
    money = ["realized_pnl", "open_pnl", "commission", "turnover", "position"]
    table[money] = table[money].fillna(0.0).astype("float64")
    table["exposure"] = table["exposure"].astype("float64").fillna(0.0 if bars else math.nan)
    table["win_rate"] = table["win_rate"].astype("float64")
    table["total_pnl"] = table["realized_pnl"] + table["open_pnl"]
    return table.loc[:, list(SYMBOL_SUMMARY_COLUMNS)]


def _symbols_html(result: BacktestResult, summary: pd.DataFrame) -> str:
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "Symbol",
            "Bars",
            "Fills",
            "Closed trades",
            "Open trades",
            "Win rate",
            "Realized P&amp;L",
            "Open P&amp;L",
            "Total P&amp;L",
            "Commission",
            "Turnover",
            "Exposure",
            "Position",
        )
    )

    def money(value: float) -> str:
        cls = "pos" if value > 0 else "neg" if value < 0 else ""
        return f'<td class="{cls}">{value:,.2f}</td>'

    def row(label: str, r: dict[str, Any], position: str) -> str:
        return (
            f"<th>{html.escape(label)}</th><td>{r['bars']:,}</td><td>{r['fills']:,}</td>"
            f"<td>{r['closed_trades']:,}</td><td>{r['open_trades']:,}</td>"
            f"<td>{format_metric('win_rate', r['win_rate'])}</td>{money(r['realized_pnl'])}"
            f"{money(r['open_pnl'])}{money(r['total_pnl'])}<td>{r['commission']:,.2f}</td>"
            f"<td>{r['turnover']:,.0f}</td><td>{format_metric('exposure', r['exposure'])}</td>"
            f"<td>{position}</td>"
        )

    records: list[dict[Any, Any]] = summary.to_dict(orient="records")
    rows = [
        f"<tr>{row(str(symbol), r, format(r['position'] + 0.0, 'g'))}</tr>"
        for symbol, r in zip(summary.index, records, strict=True)
    ]
    stats = result.metrics
    total = {
        **{c: summary[c].sum() for c in ("fills", "closed_trades", "open_trades")},
        **{
            c: float(summary[c].sum())
            for c in ("realized_pnl", "open_pnl", "total_pnl", "commission", "turnover")
        },
        "bars": len(result.equity_curve),
        "win_rate": stats["win_rate"],
        "exposure": stats["exposure"],
    }
    foot = f'<tr class="total">{row("All symbols", total, "")}</tr>'
    return f'<table class="symbols" id="symbols"><tr>{head}</tr>{"".join(rows)}{foot}</table>'


def _metrics_html(result: BacktestResult) -> str:
    stats = result.metrics
    rows = [
        ("Initial capital", f"{stats['initial_capital']:,.2f}"),
        ("Final value", f"{stats['final_value']:,.2f}"),
        ("Benchmark", result.benchmark.name if result.benchmark is not None else "none"),
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


REPORT_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#222}
h1{font-size:22px;margin-bottom:4px} h2{font-size:17px;margin-top:28px}
.sub{color:#666;margin-top:0}
table{border-collapse:collapse;font-size:13px}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:right}
table.metrics th{text-align:left;background:#f6f6f6}
.pos{color:#1a7f37} .neg{color:#c62828}
.errors{color:#c62828}
.note{color:#555;font-size:13px;margin:4px 0}
table.symbols th{text-align:left} table.symbols tr.total{font-weight:bold;background:#f6f6f6}
"""


def _chart_notes(result: BacktestResult, plan: _ChartPlan, max_points: int) -> str:
    """What the reader should know about the charts: the symbol menu and any thinning for display."""
    notes = []
    if plan.dropdown:
        notes.append(
            f"The menu at the top left of the price panel picks which of the {len(plan.symbols):,} "
            "symbols it shows, with its trades."
        )
    if plan.total_symbols > len(plan.symbols):
        notes.append(
            f"The menu lists the {len(plan.symbols):,} most traded symbols (by turnover) of "
            f"{plan.total_symbols:,}; the per-symbol table lists them all."
        )
    thinned = []
    if len(result.equity_curve) > max_points:
        thinned.append(f"equity and drawdown to about {max_points:,} of {len(result.equity_curve):,} points")
    if plan.symbols and len(result.prices) > plan.symbol_points:
        thinned.append(f"each price line to about {plan.symbol_points:,} of {len(result.prices):,} bars")
    if thinned:
        notes.append(
            f"For display only, long lines are thinned ({'; '.join(thinned)}), keeping the lowest and "
            "highest value of every span; metrics and tables use every bar."
        )
    if plan.symbols and len(result.trades):
        counts = result.trades["symbol"].astype(str).value_counts()
        crowded = counts[counts.index.isin(plan.symbols) & (counts > plan.symbol_points)]
        if len(crowded):
            notes.append(
                f"{len(crowded):,} symbol(s) with more than {plan.symbol_points:,} trades show markers for "
                f"{plan.symbol_points:,} of them, evenly spread in time; the trade list has them all."
            )
    return "".join(f'<p class="note">{html.escape(n)}</p>' for n in notes)


def render_html(result: BacktestResult, max_points: int = MAX_CHART_POINTS) -> str:
    """The whole report page as a string (plotly.js inline)."""
    summary = symbol_summary(result)
    plan = _chart_plan(result, max_points, summary)
    figure = _figure(result, plan, max_points).to_html(full_html=False, include_plotlyjs=True)
    title = f"Backtest report: {html.escape(result.strategy_name)}"
    period = f"{_when(result.start_date)} → {_when(result.end_date)} (New York time)"
    names = [str(s) for s in result.prices.columns] if not result.prices.empty else []
    symbols = ", ".join(names) if len(names) <= 10 else f"{len(names):,} symbols"
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
    per_symbol = ""
    if len(summary) > 1:
        per_symbol = f"<h2>Symbols</h2>\n{_symbols_html(result, summary)}\n"
    generated = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title><style>{REPORT_CSS}</style></head>
<body>
<h1>{title}</h1>
<p class="sub">{html.escape(period)} · {html.escape(symbols)} · generated {html.escape(generated)} by copilot-quant</p>
<h2>Metrics</h2>
{_metrics_html(result)}
{errors}
<h2>Charts</h2>
{_chart_notes(result, plan, max_points)}
{figure}
{per_symbol}<h2>Monthly returns</h2>
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
