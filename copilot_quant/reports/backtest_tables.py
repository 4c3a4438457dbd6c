"""The tables of a backtest's report: metrics, per-symbol numbers and monthly returns."""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from copilot_quant.backtest import metrics as m
from copilot_quant.backtest.metric_format import SUMMARY_KEYS, format_metric, metric_label
from copilot_quant.data.dates import EXCHANGE_TZ

if TYPE_CHECKING:
    from copilot_quant.reports.result_view import ReportedResult

__all__ = [
    "SYMBOL_SUMMARY_COLUMNS",
    "metrics_html",
    "monthly_html",
    "monthly_returns",
    "symbol_summary",
    "symbols_html",
]

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
    "fees",
    "turnover",
    "exposure",
    "position",
)

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def monthly_returns(result: ReportedResult) -> pd.DataFrame:
    """Returns per calendar month (New York time): rows are years, columns Jan..Dec and ``Year``.

    Each month is measured from the previous month's last equity value (the first from the initial
    capital); months without bars are NaN. ``Year`` compounds the year's months.
    """
    equity = result.equity_curve.astype("float64")
    if equity.empty or not isinstance(equity.index, pd.DatetimeIndex):
        return pd.DataFrame(columns=[*_MONTHS, "Year"], dtype="float64")
    local = equity.tz_convert(EXCHANGE_TZ) if equity.index.tz is not None else equity
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


def symbol_summary(result: ReportedResult) -> pd.DataFrame:
    """One row per symbol (those with prices, in ``result.prices``' column order, then any other traded one).

    Columns (:data:`SYMBOL_SUMMARY_COLUMNS`): ``bars`` with a close, ``fills``, ``closed_trades`` and
    ``open_trades`` (round trips, as in :attr:`~ReportedResult.trades`), ``win_rate`` of the closed ones
    (``nan`` without any), ``realized_pnl`` (closed trades, net of their commissions), ``open_pnl`` (open
    trades marked to the last close), ``total_pnl``, ``commission`` paid on the fills and the third-party ``fees`` in it, ``turnover`` (traded
    notional: the sum of quantity x price (x multiplier for futures) over the fills), ``exposure`` (share of the run's bars that ended
    with a position in the symbol) and the final signed ``position``. Over all symbols ``total_pnl`` adds up
    to the run's profit, as far as the equity curve marks positions at the same closes.
    """
    priced = [str(s) for s in result.prices.columns] if not result.prices.empty else []
    fills = result.get_trade_log()
    seen = set(priced)
    symbols = priced + [s for s in dict.fromkeys(fills["symbol"].astype(str)) if s not in seen]
    by_fill = fills.groupby(fills["symbol"].astype(str))
    signed = np.where(fills["side"] == "buy", 1.0, -1.0) * fills["quantity"]
    # a futures contract's notional is price × multiplier per contract
    multiplier = (
        fills["symbol"].astype(str).map(result.multipliers).fillna(1.0) if result.multipliers else 1.0
    )
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
            "fees": by_fill["fees"].sum(),
            "turnover": (fills["quantity"] * fills["price"] * multiplier)
            .abs()
            .groupby(fills["symbol"].astype(str))
            .sum(),
            "exposure": (holdings.abs() > 1e-9).sum(axis=0) / bars if bars else pd.Series(dtype="float64"),
            "position": signed.groupby(fills["symbol"].astype(str)).sum(),
        },
        index=pd.Index(symbols, name="symbol", dtype=object),
    )
    counts = ["bars", "fills", "closed_trades", "open_trades"]
    table[counts] = table[counts].fillna(0).astype("int64")
    money = ["realized_pnl", "open_pnl", "commission", "fees", "turnover", "position"]
    table[money] = table[money].fillna(0.0).astype("float64")
    table["exposure"] = table["exposure"].astype("float64").fillna(0.0 if bars else math.nan)
    table["win_rate"] = table["win_rate"].astype("float64")
    table["total_pnl"] = table["realized_pnl"] + table["open_pnl"]
    return table.loc[:, list(SYMBOL_SUMMARY_COLUMNS)]


def symbols_html(result: ReportedResult, summary: pd.DataFrame) -> str:
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
            "of which fees",
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
            f"<td>{r['fees']:,.2f}</td>"
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
            for c in ("realized_pnl", "open_pnl", "total_pnl", "commission", "fees", "turnover")
        },
        "bars": len(result.equity_curve),
        "win_rate": stats["win_rate"],
        "exposure": stats["exposure"],
    }
    foot = f'<tr class="total">{row("All symbols", total, "")}</tr>'
    return f'<table class="symbols" id="symbols"><tr>{head}</tr>{"".join(rows)}{foot}</table>'


def metrics_html(result: ReportedResult) -> str:
    stats = result.metrics
    rows = [
        ("Initial capital", f"{stats['initial_capital']:,.2f}"),
        ("Final value", f"{stats['final_value']:,.2f}"),
        ("Benchmark", result.benchmark.name if result.benchmark is not None else "none"),
    ]
    rows += [(metric_label(k), format_metric(k, stats[k])) for k in SUMMARY_KEYS]
    rows += [
        ("Open trades", format_metric("open_trades", stats["open_trades"])),
        ("Fills", format_metric("total_fills", stats["total_fills"])),
        ("Rejected orders", format_metric("rejected_orders", stats["rejected_orders"])),
        ("Bars per year (inferred)", f"{stats['periods_per_year']:,.0f}"),
    ]
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f'<table class="metrics" id="metrics">{body}</table>'


def monthly_html(result: ReportedResult) -> str:
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
