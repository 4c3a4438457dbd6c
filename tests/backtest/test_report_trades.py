"""The report's trades section: statistics, a list bounded however many trades, durations in time, CSV."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pandas as pd
import pytest
from copilot_quant.backtest.metric_format import SUMMARY_KEYS, format_duration, format_metric
from copilot_quant.backtest.orders import Fill, Order
from copilot_quant.backtest.results import BacktestResult
from copilot_quant.reports.backtest import render_html
from copilot_quant.reports.trades import MAX_LISTED_TRADES, TRADE_ROWS_SHOWN, trade_stats

MINUTES = pd.DatetimeIndex(
    [
        t
        for day in pd.bdate_range("2024-03-04", periods=10)
        for t in pd.date_range(day + pd.Timedelta("14:31:00"), periods=390, freq="1min")
    ],
    tz="UTC",
)


def _minute_run(round_trips: int, hold: int = 3) -> BacktestResult:
    """``round_trips`` long trades of 10 shares on 1-minute bars, each held ``hold`` bars."""
    rng = np.random.default_rng(7)
    closes = pd.Series(100 * np.cumprod(1 + rng.normal(0, 5e-4, len(MINUTES))), index=MINUTES)
    step = (len(MINUTES) - hold - 1) // round_trips
    fills = []
    for k in range(round_trips):
        i = 1 + k * step
        fills.append(Fill(Order("AAPL", 10, "market", "buy"), float(closes.iloc[i]), 10, 0.1, MINUTES[i]))
        j = i + hold
        fills.append(Fill(Order("AAPL", 10, "market", "sell"), float(closes.iloc[j]), 10, 0.1, MINUTES[j]))
    cash = pd.Series(100_000.0, index=MINUTES)
    held = pd.Series(0.0, index=MINUTES)
    for f in fills:
        at = MINUTES.searchsorted(pd.Timestamp(f.timestamp))
        cash.iloc[at:] += f.net_proceeds
        held.iloc[at:] += f.signed_quantity
    equity = cash + held * closes
    return BacktestResult(
        "Scalper", MINUTES[0], MINUTES[-1], 100_000.0, equity, cash, fills, prices=closes.to_frame("AAPL")
    )


def _trade_rows(page: str) -> list[str]:
    table = re.search(r'<table class="trades" id="trades">(.*?)</table>', page, flags=re.S)
    assert table
    return re.findall(r"<tr[ >].*?</tr>", table.group(1), flags=re.S)


@pytest.fixture(scope="module")
def busy() -> BacktestResult:
    return _minute_run(1_200)


def test_a_many_trade_run_lists_the_two_ends_and_counts_the_rest(busy):
    trades = busy.trades
    assert len(trades) == 1_200
    page = render_html(busy)
    rows = _trade_rows(page)
    assert len(rows) == 1 + TRADE_ROWS_SHOWN + 1 + TRADE_ROWS_SHOWN  # header, head, gap, tail
    assert f"… {1_200 - 2 * TRADE_ROWS_SHOWN:,} more trades …" in rows[1 + TRADE_ROWS_SHOWN]
    assert rows[1].startswith("<tr><td>1</td>")
    assert rows[-1].startswith("<tr><td>1200</td>")
    assert f"1,200 trades: the first {TRADE_ROWS_SHOWN} and the last {TRADE_ROWS_SHOWN} are listed" in page
    # held three minutes, said in time as well as in bars
    assert "<td>3 min</td><td>3</td></tr>" in rows[1]


def test_the_csv_link_holds_every_trade(busy):
    page = render_html(busy)
    link = re.search(
        r'<a id="trades-csv" download="Scalper-trades.csv" href="data:text/csv;base64,([^"]+)"', page
    )
    assert link
    table = pd.read_csv(io.StringIO(base64.b64decode(link.group(1)).decode("utf-8")))
    trades = busy.trades
    assert len(table) == len(trades)
    assert table["pnl"].to_numpy() == pytest.approx(trades["pnl"].to_numpy(), rel=1e-5)
    assert table["entry_time"].iloc[0] == "2024-03-04T09:32:00-05:00"  # New York time
    # three bars are three minutes within a session; across a night or a weekend they are longer
    assert list(table["duration"]) == [format_duration(d) for d in trades["duration"]]
    assert {"3 min", "17 h 33 min", "2 d 17 h"} == set(table["duration"])


def test_a_short_trade_list_is_listed_in_full_without_a_download():
    res = _minute_run(MAX_LISTED_TRADES)
    page = render_html(res)
    assert len(_trade_rows(page)) == 1 + MAX_LISTED_TRADES
    assert 'id="trades-csv"' not in page
    assert "more trades" not in page


def test_trade_statistics_count_and_time_the_closed_trades(busy):
    stats = dict(trade_stats(busy.trades))
    pnl = busy.closed_trades["pnl"]
    assert stats["Closed trades"] == f"1,200 ({(pnl > 0).sum():,} won, {(pnl < 0).sum():,} lost)"
    assert stats["Average P&L"] == f"{pnl.mean():,.2f}"
    assert stats["Held: median / longest"] == "3 min / 2 d 17 h"  # one trade was held over the weekend
    assert stats["Long / short"] == "1,200 / 0"
    assert 'id="trade-stats"' in render_html(busy)


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (pd.Timedelta(seconds=42), "42 s"),
        (pd.Timedelta(minutes=12), "12 min"),
        (pd.Timedelta(hours=3), "3 h"),
        (pd.Timedelta(hours=3, minutes=5), "3 h 5 min"),
        (pd.Timedelta(days=3, hours=4, minutes=30), "3 d 4 h"),
        (pd.Timedelta(days=28), "28 d"),
        (pd.NaT, ""),
        (None, ""),
    ],
)
def test_durations_read_in_time(delta, text):
    assert format_duration(delta) == text


def test_the_longest_drawdown_reads_in_time_too(busy):
    stats = busy.metrics
    assert "max_drawdown_days" in SUMMARY_KEYS
    text = format_metric("max_drawdown_days", stats["max_drawdown_days"])
    assert text == format_duration(pd.Timedelta(days=stats["max_drawdown_days"]))
    assert "Max DD duration (time)" in busy.summary()
    assert format_metric("max_drawdown_days", 2.5) == "2 d 12 h"
