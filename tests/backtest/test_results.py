"""BacktestResult's derived views on hand-built fills and equity curves with known answers."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from copilot_quant.backtest.orders import Fill, Order, OrderStatus
from copilot_quant.backtest.results import (
    SUMMARY_KEYS,
    TRADE_COLUMNS,
    TRADE_LOG_COLUMNS,
    BacktestResult,
    round_trips,
)
from hypothesis import given
from hypothesis import strategies as st

# Daily bars stamped at the 16:00 New York close (21:00 UTC in winter).
BARS = pd.date_range("2021-01-04 21:00", periods=10, freq="B", tz="UTC")


def fill(symbol: str, side: str, qty: float, price: float, bar: int, commission: float = 0.0) -> Fill:  # noqa: PLR0917 - reads as a table row
    return Fill(Order(symbol, qty, "market", side), price, qty, commission, BARS[bar].to_pydatetime())


def result_from(
    fills: list[Fill],
    closes: dict[str, list[float]],
    capital: float = 10_000.0,
    orders: list[Order] | None = None,
) -> BacktestResult:
    """A result whose curves follow exactly from the fills and the closes, as an engine would record them."""
    index = BARS[: len(next(iter(closes.values())))]
    prices = pd.DataFrame(closes, index=index)
    cash = pd.Series(capital, index=index)
    holdings = pd.DataFrame(0.0, index=index, columns=prices.columns)
    for f in fills:
        at = index.searchsorted(pd.Timestamp(f.timestamp))
        cash.iloc[at:] += f.net_proceeds
        holdings.iloc[at:, holdings.columns.get_loc(f.symbol)] += f.signed_quantity
    equity = cash + (holdings * prices).sum(axis=1)
    return BacktestResult(
        strategy_name="Hand",
        start_date=index[0].to_pydatetime(),
        end_date=index[-1].to_pydatetime(),
        initial_capital=capital,
        equity_curve=equity,
        cash_curve=cash,
        fills=fills,
        orders=orders or [f.order for f in fills],
        prices=prices,
    )


# ------------------------------------------------------------------------------------------- round trips
def test_a_long_round_trip_nets_both_commissions():
    trades = round_trips([fill("AAPL", "buy", 10, 100.0, 1, 1.0), fill("AAPL", "sell", 10, 110.0, 3, 1.1)])
    assert list(trades.columns) == list(TRADE_COLUMNS)
    assert len(trades) == 1
    t = trades.iloc[0]
    assert t["side"] == "long"
    assert t["quantity"] == 10
    assert t["entry_price"] == 100.0
    assert t["exit_price"] == 110.0
    assert t["pnl"] == pytest.approx(100.0 - 2.1)
    assert t["return"] == pytest.approx(97.9 / 1000.0)
    assert t["commission"] == pytest.approx(2.1)
    assert t["entry_time"] == BARS[1]
    assert t["exit_time"] == BARS[3]
    assert t["duration"] == BARS[3] - BARS[1]
    assert not t["is_open"]


def test_a_short_round_trip_profits_when_price_falls():
    trades = round_trips([fill("MSFT", "sell", 10, 50.0, 0), fill("MSFT", "buy", 10, 40.0, 2)])
    t = trades.iloc[0]
    assert t["side"] == "short"
    assert t["pnl"] == pytest.approx(100.0)
    assert t["return"] == pytest.approx(0.2)


def test_a_partial_close_yields_one_trade_per_closed_part():
    trades = round_trips(
        [
            fill("AAPL", "buy", 10, 100.0, 0, 1.0),
            fill("AAPL", "sell", 4, 105.0, 1, 0.4),
            fill("AAPL", "sell", 6, 95.0, 2, 0.6),
        ]
    )
    assert list(trades["quantity"]) == [4, 6]
    # entry commission 1.0 is shared per share: 0.4 to the first part, 0.6 to the second
    assert trades["pnl"].tolist() == pytest.approx([4 * 5 - 0.4 - 0.4, 6 * -5 - 0.6 - 0.6])
    assert not trades["is_open"].any()


def test_fifo_closes_the_oldest_lot_first_and_keeps_the_rest_open():
    trades = round_trips(
        [
            fill("AAPL", "buy", 10, 100.0, 0),
            fill("AAPL", "buy", 10, 110.0, 1),
            fill("AAPL", "sell", 15, 120.0, 2),
        ],
        last_prices={"AAPL": (BARS[5], 130.0)},
        bar_index=BARS,
    )
    closed = trades.loc[~trades["is_open"]]
    assert closed["entry_price"].tolist() == [100.0, 110.0]
    assert closed["quantity"].tolist() == [10, 5]
    assert closed["pnl"].tolist() == pytest.approx([200.0, 50.0])
    still_open = trades.loc[trades["is_open"]].iloc[0]
    assert still_open["quantity"] == 5
    assert still_open["entry_price"] == 110.0
    assert still_open["exit_price"] == 130.0  # marked to the last close
    assert still_open["exit_time"] == BARS[5]
    assert still_open["pnl"] == pytest.approx(100.0)
    assert still_open["bars_held"] == 4


def test_a_reversal_closes_the_long_and_opens_a_short_with_the_remainder():
    trades = round_trips(
        [
            fill("AAPL", "buy", 10, 100.0, 0, 1.0),
            fill("AAPL", "sell", 15, 90.0, 1, 1.5),  # 10 close the long, 5 open a short
            fill("AAPL", "buy", 5, 80.0, 3, 0.5),
        ],
        bar_index=BARS,
    )
    assert trades["side"].tolist() == ["long", "short"]
    long_, short = trades.iloc[0], trades.iloc[1]
    assert long_["quantity"] == 10
    assert long_["pnl"] == pytest.approx(-100.0 - 1.0 - 1.0)
    assert short["quantity"] == 5
    assert short["entry_price"] == 90.0
    assert short["entry_time"] == BARS[1]
    assert short["pnl"] == pytest.approx(50.0 - 0.5 - 0.5)
    assert short["bars_held"] == 2


def test_symbols_are_matched_separately():
    trades = round_trips(
        [
            fill("AAPL", "buy", 1, 10.0, 0),
            fill("MSFT", "sell", 2, 20.0, 1),
            fill("AAPL", "sell", 1, 12.0, 2),
            fill("MSFT", "buy", 2, 19.0, 3),
        ]
    )
    assert trades[["symbol", "side", "pnl"]].values.tolist() == [
        ["AAPL", "long", 2.0],
        ["MSFT", "short", 2.0],
    ]


def test_no_fills_give_an_empty_trade_frame_with_the_columns():
    trades = round_trips([])
    assert trades.empty
    assert list(trades.columns) == list(TRADE_COLUMNS)


@given(
    st.lists(
        st.tuples(st.sampled_from(["buy", "sell"]), st.integers(1, 50), st.floats(1.0, 500.0)),
        min_size=1,
        max_size=30,
    )
)
def test_round_trips_account_for_every_share_and_every_dollar(steps):
    """Total trade P&L (open ones marked) equals cash flow + final position marked at the same price."""
    fills = [
        Fill(Order("X", q, "market", s), p, q, 0.01 * q, BARS[0] + pd.Timedelta(minutes=i))
        for i, (s, q, p) in enumerate(steps)
    ]
    mark = 123.0
    trades = round_trips(fills, last_prices={"X": (BARS[-1], mark)})
    cash = sum(f.net_proceeds for f in fills)
    position = sum(f.signed_quantity for f in fills)
    assert trades["pnl"].sum() == pytest.approx(cash + position * mark, abs=1e-6)
    open_qty = (
        trades.loc[trades["is_open"], "quantity"]
        * trades.loc[trades["is_open"], "side"].map({"long": 1.0, "short": -1.0}).astype(float)
    ).sum()
    assert open_qty == pytest.approx(position)
    # each fill's quantity is split across trades exactly once on entry and at most once on exit
    assert trades["quantity"].gt(0).all()


# ---------------------------------------------------------------------------------------- the result
@pytest.fixture
def result() -> BacktestResult:
    closes = {"AAPL": [100.0, 100.0, 110.0, 120.0, 90.0, 95.0, 130.0, 130.0, 125.0, 126.0]}
    fills = [
        fill("AAPL", "buy", 10, 100.0, 1, 1.0),
        fill("AAPL", "sell", 10, 120.0, 3, 1.0),  # +200 gross
        fill("AAPL", "buy", 10, 90.0, 4, 1.0),
        fill("AAPL", "sell", 10, 85.0, 5, 1.0),  # -50 gross (sold below the close)
        fill("AAPL", "sell", 5, 130.0, 7, 1.0),  # short, still open at the end
    ]
    return result_from(fills, closes)


def test_trade_log_has_one_row_per_fill_with_the_guide_columns(result: BacktestResult):
    log = result.get_trade_log()
    assert list(log.columns) == list(TRADE_LOG_COLUMNS)
    assert len(log) == 5
    first = log.iloc[0]
    assert (first["symbol"], first["side"], first["quantity"], first["price"]) == ("AAPL", "buy", 10, 100.0)
    assert first["commission"] == 1.0
    assert first["total_cost"] == pytest.approx(1001.0)
    assert first["timestamp"] == BARS[1]
    assert log["timestamp"].is_monotonic_increasing


def test_the_trade_log_of_a_run_without_fills_is_empty_but_typed():
    empty = result_from([], {"AAPL": [1.0, 2.0]})
    log = empty.get_trade_log()
    assert log.empty
    assert list(log.columns) == list(TRADE_LOG_COLUMNS)
    assert empty.trades.empty


def test_trades_of_the_result_include_the_open_short_marked_to_the_last_close(result: BacktestResult):
    trades = result.trades
    assert trades["is_open"].tolist() == [False, False, True]
    assert trades["pnl"].tolist() == pytest.approx([198.0, -52.0, 5 * (130.0 - 126.0) - 1.0])
    assert trades["bars_held"].tolist() == [2, 1, 2]
    assert result.closed_trades["pnl"].tolist() == pytest.approx([198.0, -52.0])


def test_trades_are_a_copy_the_caller_may_modify(result: BacktestResult):
    mine = result.trades
    mine.loc[0, "pnl"] = 1e9
    assert result.trades.loc[0, "pnl"] == pytest.approx(198.0)


def test_portfolio_history_has_equity_cash_positions_returns_and_drawdown(result: BacktestResult):
    history = result.portfolio_history
    assert list(history.columns) == ["equity", "cash", "positions_value", "returns", "drawdown"]
    assert isinstance(history.index, pd.DatetimeIndex)
    assert str(history.index.tz) == "UTC"
    assert (history["equity"] == history["cash"] + history["positions_value"]).all()
    # bar 1: bought 10 @ 100 with 1.00 commission, marked at 100: down 1.00 from the capital
    assert history["returns"].iloc[1] == pytest.approx(-1.0 / 10_000.0)
    assert history["returns"].iloc[0] == 0.0
    assert (history["drawdown"] <= 0).all()
    assert history["drawdown"].iloc[1] == pytest.approx(-1.0 / 10_000.0)


def test_summary_stats_have_every_documented_key_and_known_values(result: BacktestResult):
    stats = result.get_summary_stats()
    assert set(SUMMARY_KEYS) <= set(stats)
    assert stats["total_trades"] == 2
    assert stats["open_trades"] == 1
    assert stats["win_rate"] == pytest.approx(0.5)
    assert stats["profit_factor"] == pytest.approx(198.0 / 52.0)
    # positions held at the close of bars 1, 2, 4, 7, 8, 9 (flat at 0, 3, 5, 6)
    assert stats["exposure"] == pytest.approx(6 / 10)
    assert stats["total_commission"] == pytest.approx(5.0)
    assert stats["periods_per_year"] == 252


def test_total_return_of_the_stats_matches_the_final_value(result: BacktestResult):
    """D-B5: the curve includes the last bar's fills, so both totals agree."""
    stats = result.get_summary_stats()
    assert stats["total_return"] == pytest.approx(result.total_return)
    assert stats["total_return"] == pytest.approx(result.equity_curve.iloc[-1] / 10_000.0 - 1.0)
    assert stats["final_value"] == result.final_value


def test_max_drawdown_is_a_negative_fraction_with_its_duration():
    equity = pd.Series([100.0, 120.0, 90.0, 100.0, 130.0, 125.0], index=BARS[:6])
    res = BacktestResult("S", BARS[0], BARS[5], 100.0, equity, equity.copy())
    stats = res.metrics
    assert stats["max_drawdown"] == pytest.approx(90.0 / 120.0 - 1.0)
    assert stats["max_drawdown"] < 0
    # below the 120 peak from bar 1 to bar 4 (back above at 130): 3 bars
    assert stats["max_drawdown_duration"] == 3
    assert stats["max_drawdown_days"] == pytest.approx((BARS[4] - BARS[1]).days)
    assert stats["calmar_ratio"] == pytest.approx(stats["annualized_return"] / 0.25)


def test_a_first_bar_loss_counts_as_drawdown_from_the_initial_capital():
    equity = pd.Series([95.0, 96.0, 97.0], index=BARS[:3])
    res = BacktestResult("S", BARS[0], BARS[2], 100.0, equity, equity.copy())
    assert res.metrics["max_drawdown"] == pytest.approx(-0.05)
    assert res.portfolio_history["drawdown"].iloc[0] == pytest.approx(-0.05)


def test_annualization_follows_the_bar_frequency_not_a_fixed_252():
    """D-B6: minute bars are annualized with 252 × 390 periods."""
    minutes = pd.date_range("2021-01-04 14:31", periods=390, freq="min", tz="UTC")
    days = [minutes + pd.Timedelta(days=d) for d in range(5)]
    index = days[0].append(days[1:])
    rng = np.random.default_rng(3)
    equity = pd.Series(1_000.0 * np.cumprod(1 + rng.normal(0, 1e-4, len(index))), index=index)
    res = BacktestResult("S", index[0], index[-1], 1_000.0, equity, equity.copy())
    assert res.periods_per_year == 252 * 390
    rets = res.portfolio_history["returns"]
    assert res.metrics["volatility"] == pytest.approx(rets.std(ddof=1) * math.sqrt(252 * 390))


def test_rejected_orders_are_counted(result: BacktestResult):
    rejected = Order("AAPL", 1_000_000, "market", "buy")
    rejected.status = OrderStatus.REJECTED
    rejected.reject_reason = "insufficient buying power"
    res = result_from(result.fills, {"AAPL": result.prices["AAPL"].tolist()}, orders=[rejected])
    assert res.metrics["rejected_orders"] == 1


def test_views_are_recomputed_when_the_fills_change():
    res = result_from([fill("AAPL", "buy", 1, 10.0, 0)], {"AAPL": [10.0, 11.0]})
    assert res.metrics["total_fills"] == 1
    res.fills.append(fill("AAPL", "sell", 1, 11.0, 1))
    assert res.metrics["total_fills"] == 2
    assert res.metrics["total_trades"] == 1


def test_metrics_of_an_empty_run_are_nan_not_made_up():
    empty = pd.Series([], dtype="float64", index=pd.DatetimeIndex([], tz="UTC"))
    res = BacktestResult("S", BARS[0], BARS[1], 100.0, empty, empty.copy())
    stats = res.metrics
    assert stats["total_return"] == 0.0
    assert math.isnan(stats["sharpe_ratio"])
    assert math.isnan(stats["max_drawdown"])
    assert stats["total_trades"] == 0
    assert "n/a" in res.summary()


def test_summary_text_names_the_strategy_and_the_key_numbers(result: BacktestResult):
    text = result.summary()
    assert "Hand" in text
    assert "Sharpe ratio" in text
    assert "Max drawdown" in text
    assert f"{result.metrics['max_drawdown']:.2%}" in text
    assert str(result) == text


def test_to_dict_is_json_serializable(result: BacktestResult):
    data = result.to_dict()
    text = json.dumps(data, allow_nan=False)
    back = json.loads(text)
    assert back["metrics"]["total_trades"] == 2
    assert back["metrics"]["profit_factor"] == pytest.approx(198.0 / 52.0)
    assert len(back["trades"]) == 3
    assert back["trades"][0]["entry_time"].startswith("2021-01-05T21:00:00")
    assert len(back["equity_curve"]) == 10
    assert back["final_value"] == pytest.approx(result.final_value)
