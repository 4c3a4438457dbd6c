"""A round trip in a pair not quoted in USD reports its P&L in USD: computed in the quote currency, converted
at the rate in force when it was realized (before: GBP or JPY points minus USD commissions, summed as USD)."""

from __future__ import annotations

import pandas as pd
import pytest
from copilot_quant.backtest.accounts import InstrumentAccounts
from copilot_quant.backtest.engine import BacktestEngine
from copilot_quant.backtest.round_trips import QuoteRate, round_trips
from copilot_quant.model.orders import Fill, Order

from tests.backtest.test_futures_engine import REG, Script, bars

DATA = bars(
    {
        "EUR.GBP": [(0.85, 0.86), (0.86, 0.87), (0.87, 0.88), (0.88, 0.90), (0.90, 0.90)],
        "GBP.USD": [(1.25, 1.26), (1.26, 1.27), (1.27, 1.30), (1.30, 1.20), (1.20, 1.20)],
        "EUR.USD": [(1.10, 1.10)] * 5,
        "USD.JPY": [(150.0, 150.0), (150.0, 151.0), (151.0, 152.0), (152.0, 155.0), (155.0, 156.0)],
    }
)


def _run() -> object:
    engine = BacktestEngine(100_000, slippage=0.0, instruments=InstrumentAccounts(REG), spread=None)
    buy = [Order("EUR.GBP", 10_000), Order("USD.JPY", 10_000)]
    sell = [Order("EUR.GBP", 10_000, side="sell"), Order("USD.JPY", 10_000, side="sell")]
    engine.add_strategy(Script({0: buy, 2: sell}))
    return engine.run(symbols=["EUR.GBP", "GBP.USD", "EUR.USD", "USD.JPY"], data=DATA)


def test_cross_and_yen_round_trips_are_in_usd_at_the_rate_when_realized() -> None:
    result = _run()
    trades = result.closed_trades.set_index("symbol")  # type: ignore[attr-defined]
    # bought at bar 1's open (0.86), sold at bar 3's open (0.88): 200 GBP, realized when GBP.USD was at
    # bar 2's close (1.30), the rate the account had; USD 2 commission each way
    assert trades.loc["EUR.GBP", "pnl"] == pytest.approx(200 * 1.30 - 4.0)
    # 10,000 USD bought at 150 and sold at 152 yen: 20,000 JPY, worth 20,000 / 152 USD at the exit
    assert trades.loc["USD.JPY", "pnl"] == pytest.approx(20_000 / 152 - 4.0)
    assert trades.loc["USD.JPY", "return"] == pytest.approx((20_000 / 152 - 4.0) / (10_000 * 150 / 150))
    # the balances hold the quote currencies' P&L; equity values them at the last closes
    assert result.cash_balances["GBP"] == pytest.approx(200.0)  # type: ignore[attr-defined]
    assert result.cash_balances["JPY"] == pytest.approx(20_000.0)  # type: ignore[attr-defined]
    assert result.final_capital == pytest.approx(  # type: ignore[attr-defined]
        100_000 - 8.0 + 200 * 1.20 + 20_000 / 156
    )


def test_an_open_trade_is_marked_in_usd_and_a_usd_quoted_symbol_is_unchanged() -> None:
    when = pd.Timestamp("2026-12-01 21:00", tz="UTC")
    rates = {"EUR.GBP": QuoteRate(pd.Series([1.25, 1.30], index=[when, when + pd.Timedelta(days=1)]))}
    fills = [
        Fill(Order("EUR.GBP", 1_000), 0.80, 1_000.0, 0.0, when.to_pydatetime()),
        Fill(Order("AAPL", 1), 100.0, 1.0, 0.0, when.to_pydatetime()),
    ]
    marks = {"EUR.GBP": (when + pd.Timedelta(days=1), 0.90), "AAPL": (when, 110.0)}
    frame = round_trips(fills, marks, quote_rates=rates).set_index("symbol")
    assert frame.loc["EUR.GBP", "pnl"] == pytest.approx(100 * 1.30)
    assert frame.loc["AAPL", "pnl"] == pytest.approx(10.0)
