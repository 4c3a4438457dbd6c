"""Trade markers on a symbol's price chart: one per trade while they stay readable, grouped when not.

Up to :data:`MAX_TRADE_MARKERS` trades a symbol gets one marker per entry (a triangle per side) and per
exit (a cross). A symbol with more trades — a minute-bar run easily has thousands, which would paint the
chart black — gets grouped markers instead: the run's bars are cut into :data:`MARKER_SLICES` equal
stretches (a few pixels each on a wide chart, whose intraday axis hides the closed market) and each stretch shows at most one marker per kind, placed at the
average price of its trades, sized by how many there are, its hover giving the count, the time span and
(for exits) the P&L. The trade list has every trade.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from copilot_quant.reports.charts import chart_times
from copilot_quant.reports.page import ny_time

__all__ = ["MARKER_SLICES", "MAX_TRADE_MARKERS", "marker_traces"]

#: Trades of one symbol up to which each has its own markers; above it they are grouped.
MAX_TRADE_MARKERS = 150
#: Stretches of time the run is cut into when a symbol's markers are grouped.
MARKER_SLICES = 120

_ENTRIES = (  # trace name, side, marker, colour
    ("long entry", "long", "triangle-up", "#2ca02c"),
    ("short entry", "short", "triangle-down", "#d62728"),
)
_EXIT = ("exit", "x", "#000000")
_GROUPED_EXIT_COLOR = "#555555"  # a lighter grey than single exits: many crosses would hide the price line


def marker_traces(trades: pd.DataFrame | None, daily: bool, bars: pd.DatetimeIndex) -> list[go.Scatter]:
    """The marker traces of one symbol's trades (``long entry``, ``short entry``, ``exit``: only those it
    has; exits of closed trades only). ``bars`` (the run's bar times) are cut into :data:`MARKER_SLICES`
    stretches when the trades are grouped (each trace's ``meta`` is then ``"grouped"``).
    """
    if trades is None or trades.empty:
        return []
    if len(trades) <= MAX_TRADE_MARKERS or not len(bars):
        return _each(trades, daily)
    return _grouped(trades, daily, bars)


def _each(trades: pd.DataFrame, daily: bool) -> list[go.Scatter]:
    traces = []
    for name, side, marker, color in _ENTRIES:
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
        name, marker, color = _EXIT
        traces.append(
            go.Scatter(
                x=chart_times(pd.DatetimeIndex(closed["exit_time"]), daily),
                y=closed["exit_price"].to_numpy(dtype="float64"),
                mode="markers",
                name=name,
                marker={"symbol": marker, "size": 9, "color": color},
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


def _grouped(trades: pd.DataFrame, daily: bool, bars: pd.DatetimeIndex) -> list[go.Scatter]:
    traces = []
    closed = trades.loc[~trades["is_open"]]
    if not closed.empty:  # drawn first, so the entries (the decisions) stay on top
        groups = _groups(
            closed["exit_time"], closed["exit_price"], closed["quantity"], closed["pnl"], bars=bars
        )
        name, marker, _color = _EXIT
        traces.append(_group_trace(groups, (name, "exits"), marker, _GROUPED_EXIT_COLOR, daily))
    for name, side, marker, color in _ENTRIES:
        part = trades.loc[trades["side"] == side]
        if not part.empty:
            groups = _groups(part["entry_time"], part["entry_price"], part["quantity"], None, bars=bars)
            traces.append(_group_trace(groups, (name, f"{side} entries"), marker, color, daily))
    return traces


def _groups(
    times: pd.Series,
    prices: pd.Series,
    quantities: pd.Series,
    pnl: pd.Series | None,
    *,
    bars: pd.DatetimeIndex,
) -> pd.DataFrame:
    """One row per stretch with trades: count, first/middle/last time, average price, P&L, winners."""
    stamps = pd.DatetimeIndex(times).as_unit("ns")
    index = bars.as_unit("ns")
    # a trade belongs to the bar during which it happened: the first stamped at or after it
    position = np.minimum(index.searchsorted(stamps, side="left"), len(index) - 1)
    stretch = position * MARKER_SLICES // len(index)
    frame = pd.DataFrame(
        {
            "stretch": stretch,
            "time": stamps,
            "notional": (prices * quantities).to_numpy(dtype="float64"),
            "quantity": quantities.to_numpy(dtype="float64"),
            "pnl": pnl.to_numpy(dtype="float64") if pnl is not None else np.nan,
        }
    ).sort_values("time", kind="stable")
    grouped = frame.groupby("stretch", sort=True)
    out = grouped.agg(
        count=("time", "size"),
        first=("time", "min"),
        last=("time", "max"),
        notional=("notional", "sum"),
        quantity=("quantity", "sum"),
    )
    out["pnl"] = grouped["pnl"].sum(min_count=1)  # NaN for entries, which have no P&L yet
    out["middle"] = grouped["time"].agg(lambda t: t.iloc[len(t) // 2])
    out["winners"] = grouped["pnl"].agg(lambda p: int((p > 0).sum()))
    out["price"] = out["notional"] / out["quantity"]  # quantity-weighted average price
    return out


def _group_trace(
    groups: pd.DataFrame, nouns: tuple[str, str], marker: str, color: str, daily: bool
) -> go.Scatter:
    """One marker per stretch, at its middle trade's time and the stretch's average price; ``nouns`` are
    the trace's name (one trade) and its plural."""
    name, plural = nouns
    counts = groups["count"].to_numpy()
    sizes = np.minimum(6 + 2 * np.sqrt(counts), 20)
    texts = []
    for count, first, last, price, pnl, winners in zip(
        counts,
        groups["first"],
        groups["last"],
        groups["price"],
        groups["pnl"],
        groups["winners"],
        strict=True,
    ):
        span = ny_time(first, daily)
        if last != first:
            span += f" – {ny_time(last, daily)}"
        text = f"{count} {plural if count > 1 else name}, {span}, avg price {price:,.2f}"
        if not math.isnan(pnl):
            text += f", P&L {pnl:,.2f} ({winners} winning)"
        texts.append(text)
    return go.Scatter(
        x=chart_times(pd.DatetimeIndex(groups["middle"]), daily),
        y=groups["price"].to_numpy(dtype="float64"),
        mode="markers",
        name=name,
        meta="grouped",
        marker={
            "symbol": marker,
            "size": sizes,
            "color": color,
            "opacity": 0.75,
            "line": {"width": 0.5, "color": "#ffffff"},
        },
        text=texts,
        hoverinfo="text",
    )
