"""The report with several symbols: a price panel picked from a dropdown, a per-symbol table, a bounded page.

Results are built directly (prices from the bundled sample data or a seeded random walk, hand-made fills),
recorded the way the engine records them: cash after each bar's fills, positions marked at the last close.
"""

from __future__ import annotations

import re
from functools import cache

import numpy as np
import pandas as pd
import pytest
from copilot_quant.backtest.orders import Fill, Order
from copilot_quant.backtest.report import build_figure, render_html, symbol_summary
from copilot_quant.backtest.results import BacktestResult
from copilot_quant.data.providers import SampleDataProvider
from copilot_quant.reports import backtest as report
from copilot_quant.reports import markers
from plotly.offline import get_plotlyjs

NY = "America/New_York"


def _run(prices: pd.DataFrame, fills: list[Fill], capital: float = 100_000.0) -> BacktestResult:
    """A result as the engine records one: cash after each bar's fills, positions at the last known close."""
    index = prices.index
    flows = np.zeros(len(index))
    change = np.zeros(prices.shape)
    for f in fills:
        at = index.searchsorted(pd.Timestamp(f.timestamp))
        flows[at] += f.net_proceeds
        change[at, prices.columns.get_loc(f.symbol)] += f.signed_quantity
    cash = pd.Series(capital + np.cumsum(flows), index=index)
    marks = prices.ffill().fillna(0.0).to_numpy()
    equity = cash + (np.cumsum(change, axis=0) * marks).sum(axis=1)
    return BacktestResult("Symbols", index[0], index[-1], capital, equity, cash, fills, prices=prices)


def _fill(symbol: str, side: str, qty: float, prices: pd.DataFrame, bar: int) -> Fill:
    return Fill(
        Order(symbol, qty, "market", side), float(prices[symbol].iloc[bar]), qty, 1.0, prices.index[bar]
    )


@cache
def _sample_prices() -> pd.DataFrame:
    """2012 daily closes of AAPL, MSFT, IBM and FB (listed 2012-05-18: NaN before); IBM misses August."""
    bars = SampleDataProvider().get_multiple_symbols(
        ["AAPL", "MSFT", "IBM", "FB"], "2012-01-01", "2012-12-31"
    )
    closes = bars["Close"].loc[:, ["AAPL", "MSFT", "IBM", "FB"]].copy()
    closes.loc["2012-08-01":"2012-08-31", "IBM"] = np.nan  # type: ignore[misc]
    return closes


#: (symbol, side of the opening fill, opening bar, closing bar or None for still open, quantity)
TRIPS = (
    ("AAPL", "buy", 10, 30, 5),
    ("AAPL", "buy", 60, 65, 8),
    ("AAPL", "buy", 200, 240, 3),
    ("MSFT", "sell", 20, 50, 100),  # a short
    ("MSFT", "buy", 230, None, 50),  # open at the end
    ("FB", "buy", 120, 140, 40),  # FB has bars from 2012-05-18 (bar 95) on
    # IBM: never traded
)


def _trip_fills(prices: pd.DataFrame) -> list[Fill]:
    fills = []
    for symbol, side, opened, closed, qty in TRIPS:
        fills.append(_fill(symbol, side, qty, prices, opened))
        if closed is not None:
            fills.append(_fill(symbol, "sell" if side == "buy" else "buy", qty, prices, closed))
    return fills


@pytest.fixture(scope="module")
def result() -> BacktestResult:
    prices = _sample_prices()
    return _run(prices, _trip_fills(prices))


def _day(ts: object) -> str:
    return pd.Timestamp(ts).tz_convert(NY).strftime("%Y-%m-%d")  # type: ignore[arg-type]


def _traces_of(fig, symbol: str) -> list[int]:
    return [i for i, t in enumerate(fig.data) if t.legendgroup == symbol]


# ------------------------------------------------------------------------------------------- figure
def test_one_dropdown_has_a_button_per_symbol_that_shows_exactly_its_traces(result):
    fig = build_figure(result)
    assert [a.text for a in fig.layout.annotations] == ["Equity", "Drawdown", "AAPL close"]
    assert len(fig.layout.updatemenus) == 1
    menu = fig.layout.updatemenus[0]
    assert menu.type == "dropdown"
    assert menu.active == 0
    assert [b.label for b in menu.buttons] == ["AAPL", "MSFT", "IBM", "FB"]
    for button in menu.buttons:
        symbol = button.label
        assert button.method == "update"
        style, layout = button.args
        mask = style["visible"]
        assert len(mask) == len(fig.data)
        shown = [i for i, v in enumerate(mask) if v]
        assert shown == [0, 1, *_traces_of(fig, symbol)]  # equity, drawdown, and this symbol's traces only
        assert fig.data[_traces_of(fig, symbol)[0]].name == symbol  # its price line comes first
        assert layout["annotations[2].text"] == f"{symbol} close"
        assert layout["yaxis3.autorange"] is True
    # what is visible before any click is the first button's mask
    initial = [t.visible is not False for t in fig.data]
    assert initial == list(menu.buttons[0].args[0]["visible"])
    # every trace belongs to equity/drawdown or exactly one symbol
    assert sum(len(_traces_of(fig, s)) for s in ["AAPL", "MSFT", "IBM", "FB"]) == len(fig.data) - 2


def test_trade_markers_sit_at_the_fill_days_and_prices(result):
    fig = build_figure(result)
    prices = result.prices
    for symbol, side, opened, closed, _qty in TRIPS:
        mine = {fig.data[i].name: fig.data[i] for i in _traces_of(fig, symbol)}
        entry = mine["long entry" if side == "buy" else "short entry"]
        assert _day(prices.index[opened]) in list(entry.x)
        at = list(entry.x).index(_day(prices.index[opened]))
        assert entry.y[at] == pytest.approx(prices[symbol].iloc[opened])
        if closed is not None:
            exits = mine["exit"]
            at = list(exits.x).index(_day(prices.index[closed]))
            assert exits.y[at] == pytest.approx(prices[symbol].iloc[closed])
    counts = {
        name: sum(len(fig.data[i].x) for i in range(len(fig.data)) if fig.data[i].name == name)
        for name in ("long entry", "short entry", "exit")
    }
    assert counts == {"long entry": 5, "short entry": 1, "exit": 5}  # the open MSFT trade has no exit
    assert [fig.data[i].name for i in _traces_of(fig, "IBM")] == ["IBM"]  # never traded: no markers


def test_a_symbol_without_bars_in_part_of_the_range_is_drawn_only_where_it_has_bars(result):
    fig = build_figure(result)
    prices = result.prices
    fb = fig.data[_traces_of(fig, "FB")[0]]
    assert fb.x[0] == "2012-05-18"  # its first bar; no NaN padding before the listing
    assert len(fb.x) == prices["FB"].notna().sum()
    ibm = fig.data[_traces_of(fig, "IBM")[0]]
    y = np.asarray(ibm.y, dtype="float64")
    missing = [x for x, v in zip(ibm.x, y, strict=True) if np.isnan(v)]
    assert missing
    assert all(x.startswith("2012-08") for x in missing)  # the line breaks over August, and only there
    assert np.nanmax(y) == pytest.approx(prices["IBM"].max())


def test_one_symbol_has_its_price_panel_and_no_dropdown():
    prices = _sample_prices()[["AAPL"]]
    res = _run(prices, [_fill("AAPL", "buy", 5, prices, 10), _fill("AAPL", "sell", 5, prices, 30)])
    fig = build_figure(res)
    assert not fig.layout.updatemenus
    assert [a.text for a in fig.layout.annotations] == ["Equity", "Drawdown", "AAPL close"]
    assert [t.name for t in fig.data] == ["Equity", "Drawdown", "AAPL", "long entry", "exit"]
    assert all(t.visible is not False for t in fig.data)
    assert len(fig.data[2].x) == len(prices)
    assert fig.layout.height == 320 + 220 * 3
    text = render_html(res)
    assert 'id="symbols"' not in text  # the metrics already say it all for one symbol
    assert "menu" not in re.sub(r"<script.*?</script>", "", text, flags=re.DOTALL)


# ------------------------------------------------------------------------------------------- table
def test_the_symbol_summary_is_computed_from_the_fills(result):
    table = symbol_summary(result)
    prices = result.prices
    assert list(table.index) == ["AAPL", "MSFT", "IBM", "FB"]
    for symbol in table.index:
        trips = [t for t in TRIPS if t[0] == symbol]
        fills = [f for f in result.fills if f.symbol == symbol]
        row = table.loc[symbol]
        assert row["bars"] == prices[symbol].notna().sum()
        assert row["fills"] == len(fills)
        assert row["turnover"] == pytest.approx(sum(f.fill_quantity * f.fill_price for f in fills))
        assert row["commission"] == pytest.approx(sum(f.commission for f in fills))
        assert row["position"] == pytest.approx(sum(f.signed_quantity for f in fills))
        realized, unrealized, wins, held_bars = 0.0, 0.0, 0, 0
        for _, side, opened, closed, qty in trips:
            sign = 1.0 if side == "buy" else -1.0
            entry = prices[symbol].iloc[opened]
            if closed is None:
                unrealized += sign * (prices[symbol].dropna().iloc[-1] - entry) * qty - 1.0
                held_bars += len(prices) - opened
            else:
                pnl = sign * (prices[symbol].iloc[closed] - entry) * qty - 2.0  # 1.0 commission per fill
                realized += pnl
                wins += pnl > 0
                held_bars += closed - opened
        closed_trips = sum(t[3] is not None for t in trips)
        assert row["closed_trades"] == closed_trips
        assert row["open_trades"] == len(trips) - closed_trips
        assert row["realized_pnl"] == pytest.approx(realized)
        assert row["open_pnl"] == pytest.approx(unrealized)
        assert row["total_pnl"] == pytest.approx(realized + unrealized)
        assert row["exposure"] == pytest.approx(held_bars / len(prices))
        if closed_trips:
            assert row["win_rate"] == pytest.approx(wins / closed_trips)
        else:
            assert np.isnan(row["win_rate"])
    # the symbols' P&L adds up to the run's
    assert table["total_pnl"].sum() == pytest.approx(result.final_value - result.initial_capital)


def test_the_page_lists_every_symbol_with_its_numbers(result):
    text = render_html(result)
    table = symbol_summary(result)
    assert 'id="symbols"' in text
    for symbol, row in table.iterrows():
        match = re.search(rf"<tr><th>{symbol}</th>(.*?)</tr>", text)
        assert match, symbol
        cells = re.findall(r"<td[^>]*>(.*?)</td>", match.group(1))
        assert cells[0] == f"{int(row['bars']):,}"
        assert cells[1] == f"{int(row['fills']):,}"
        assert cells[7] == f"{row['total_pnl']:,.2f}"
        assert cells[8] == f"{row['commission']:,.2f}"
        assert cells[9] == f"{row['fees']:,.2f}"
        assert cells[10] == f"{row['turnover']:,.0f}"
        assert cells[11] == f"{row['exposure']:.2%}"
    total = re.search(r'<tr class="total"><th>All symbols</th>(.*?)</tr>', text)
    assert total
    cells = re.findall(r"<td[^>]*>(.*?)</td>", total.group(1))
    assert cells[1] == f"{len(result.fills):,}"
    assert cells[7] == f"{result.final_value - result.initial_capital:,.2f}"
    assert "picks which of the 4 symbols it shows" in text


def test_a_run_without_trades_renders_every_symbol_with_zeros():
    prices = _sample_prices()
    res = _run(prices, [])
    fig = build_figure(res)
    assert [b.label for b in fig.layout.updatemenus[0].buttons] == ["AAPL", "MSFT", "IBM", "FB"]
    assert [t.name for t in fig.data] == ["Equity", "Drawdown", "AAPL", "MSFT", "IBM", "FB"]
    table = symbol_summary(res)
    assert (table[["fills", "closed_trades", "open_trades"]] == 0).all().all()
    assert (table[["total_pnl", "turnover", "exposure", "position"]] == 0.0).all().all()
    assert table["win_rate"].isna().all()
    text = render_html(res)
    assert "No trades." in text
    row = re.search(r"<tr><th>FB</th>(.*?)</tr>", text)
    assert row
    assert "n/a" in row.group(1)


def test_holdings_follow_the_fills_bar_by_bar(result):
    held = result.holdings
    assert list(held.columns) == ["AAPL", "MSFT", "FB"]  # traded symbols, in order of their first fill
    assert held.index.equals(result.equity_curve.index)
    assert held["AAPL"].iloc[9] == 0
    assert held["AAPL"].iloc[10] == 5
    assert held["AAPL"].iloc[29] == 5
    assert held["AAPL"].iloc[30] == 0
    assert held["MSFT"].iloc[20] == -100
    assert held["MSFT"].iloc[-1] == 50


# ------------------------------------------------------------------------------------------- size
def _random_walk(n_symbols: int, n_bars: int, seed: int = 5) -> pd.DataFrame:
    index = (pd.bdate_range("2012-01-02", periods=n_bars) + pd.Timedelta(hours=21)).tz_localize("UTC")
    steps = np.random.default_rng(seed).normal(0.0, 0.01, (n_bars, n_symbols))
    return pd.DataFrame(
        100 * np.cumprod(1 + steps, axis=0), index=index, columns=[f"S{k:03d}" for k in range(n_symbols)]
    )


@pytest.fixture(scope="module")
def wide() -> BacktestResult:
    """100 symbols x 2,000 daily bars, 20 round trips each."""
    prices = _random_walk(100, 2_000)
    fills = []
    for k, symbol in enumerate(prices.columns):
        for start in range(10 + k % 50, 1_990, 100):
            fills += [_fill(symbol, "buy", 10, prices, start), _fill(symbol, "sell", 10, prices, start + 40)]
    return _run(prices, fills, capital=1_000_000.0)


def test_100_symbols_of_2000_bars_make_a_page_of_a_few_mb(wide):
    # The bound: plotly.js (inline, ~4.8 MB) + 4 MB for the data. Price lines share 100,000 points at about
    # 24 bytes each (2.4 MB); the dropdown's masks are 100 buttons x ~300 booleans (~0.2 MB); 2,000 trades'
    # markers and the tables (the trade list stops at 2,000 rows) about 0.7 MB more.
    text = render_html(wide)
    data_bytes = len(text) - len(get_plotlyjs())
    assert data_bytes < 4_000_000, data_bytes
    assert "each price line to about 1,000 of 2,000 bars" in text  # the page says it thinned them
    fig = build_figure(wide)
    assert len(fig.layout.updatemenus[0].buttons) == 100
    lines = [t for t in fig.data if t.name in wide.prices.columns]
    assert len(lines) == 100
    for line in lines[:10]:
        assert len(line.x) <= 1_000 + 2  # spans of 4 bars keep their low and high, plus the first and last
        assert max(line.y) == pytest.approx(wide.prices[line.name].max())
        assert min(line.y) == pytest.approx(wide.prices[line.name].min())
    assert sum(len(t.x) for t in lines) <= report.PRICE_POINTS_BUDGET * 1.01


def test_without_thinning_the_same_page_would_break_that_bound(wide, monkeypatch):
    monkeypatch.setattr(report, "PRICE_POINTS_BUDGET", 10**9)
    data_bytes = len(render_html(wide)) - len(get_plotlyjs())
    assert data_bytes > 4_000_000


def test_beyond_the_chart_limit_the_most_traded_symbols_are_charted_and_all_are_listed(result, monkeypatch):
    monkeypatch.setattr(report, "MAX_CHART_SYMBOLS", 2)
    fig = build_figure(result)
    turnover = symbol_summary(result)["turnover"]
    top = set(turnover.nlargest(2).index)
    assert "IBM" not in top  # never traded
    # the two with the most traded notional, in the order of the price columns
    assert [b.label for b in fig.layout.updatemenus[0].buttons] == [s for s in result.prices if s in top]
    text = render_html(result)
    assert "the 2 most traded symbols (by turnover) of 4" in text
    assert all(f"<tr><th>{s}</th>" in text for s in ["AAPL", "MSFT", "IBM", "FB"])


def test_a_symbol_with_many_trades_gets_grouped_markers_that_account_for_every_trade(monkeypatch):
    monkeypatch.setattr(markers, "MAX_TRADE_MARKERS", 10)
    monkeypatch.setattr(markers, "MARKER_SLICES", 8)
    prices = _random_walk(2, 200)
    fills = []
    for start in range(0, 190, 6):  # 32 round trips of S000
        fills += [_fill("S000", "buy", 1, prices, start), _fill("S000", "sell", 1, prices, start + 3)]
    fills += [_fill("S001", "buy", 1, prices, 5), _fill("S001", "sell", 1, prices, 9)]  # few: one marker each
    res = _run(prices, fills)
    fig = build_figure(res)
    mine = {t.name: t for t in fig.data if t.legendgroup == "S000" and t.name != "S000"}
    assert set(mine) == {"long entry", "exit"}
    entries, exits = mine["long entry"], mine["exit"]
    assert entries.meta == exits.meta == "grouped"
    assert 1 < len(entries.x) <= 8  # at most one marker per stretch of time
    counts = [int(re.match(r"(\d+) ", text).group(1)) for text in entries.text]  # type: ignore[union-attr]
    assert sum(counts) == 32  # every entry is counted in some marker
    exit_pnl = sum(float(re.search(r"P&L (-?[\d,.]+)", t).group(1).replace(",", "")) for t in exits.text)  # type: ignore[union-attr]
    assert exit_pnl == pytest.approx(res.closed_trades.query("symbol == 'S000'")["pnl"].sum(), abs=0.05)
    assert max(entries.marker.size) > min(entries.marker.size) or len(set(counts)) == 1  # sized by count
    # each marker sits inside its trades' price range
    trades = res.trades.query("symbol == 'S000'")
    assert min(entries.y) >= trades["entry_price"].min() - 1e-9
    assert max(entries.y) <= trades["entry_price"].max() + 1e-9
    few = [t for t in fig.data if t.legendgroup == "S001" and t.name == "long entry"]
    assert few[0].meta is None
    assert len(few[0].x) == 1
    assert "1 symbol(s) with more than 10 trades show grouped markers" in render_html(res)


@pytest.mark.parametrize("n", [10, 1_000, 100_000])
def test_thinning_keeps_about_max_points_and_every_gap(n):
    values = np.sin(np.arange(n) / 7.0) + np.arange(n) / n
    values[n // 3 : n // 2] = np.nan
    values[:5] = np.nan
    keep = report.display_positions(values, 200)
    assert keep[0] == 5  # leading NaN dropped
    assert np.all(np.diff(keep) > 0)
    if n > 200:
        assert len(keep) <= 200 + 3
        assert np.isnan(values[keep]).sum() == 1  # one NaN breaks the line over the gap
        assert np.nanmax(values[keep]) == np.nanmax(values)
        assert np.nanmin(values[keep]) == np.nanmin(values)
    else:
        assert list(keep) == list(range(5, n))
