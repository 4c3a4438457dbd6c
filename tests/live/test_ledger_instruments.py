"""The live ledger books futures and forex as the backtest does (#14): what self.cash/self.equity mean."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from copilot_quant.live.ledger import AccountLedger
from copilot_quant.model.orders import Fill, Order, Position

NOW = datetime(2026, 11, 2, 21, tzinfo=UTC)


def _fill(symbol: str, quantity: float, side: str, price: float, commission: float = 0.0) -> Fill:
    return Fill(Order(symbol, quantity, "market", side), price, quantity, commission, NOW)


def test_a_future_moves_no_notional_only_its_pnl_times_the_multiplier() -> None:
    ledger = AccountLedger(10_000.0)
    ledger.apply(_fill("MESZ6", 2, "buy", 6000.0, 1.24))
    assert ledger.cash_value({}) == pytest.approx(10_000 - 1.24)
    # open P&L x 5 per point per contract
    assert ledger.equity({"MESZ6": 6010.0}) == pytest.approx(10_000 - 1.24 + 2 * 10 * 5)
    ledger.apply(_fill("MESZ6", 1, "sell", 6020.0, 0.62))
    assert ledger.cash_value({}) == pytest.approx(10_000 - 1.86 + 20 * 5)
    assert ledger.equity({"MESZ6": 6000.0}) == pytest.approx(10_000 - 1.86 + 100)


def test_a_pair_moves_two_balances_and_cash_counts_both_in_usd() -> None:
    ledger = AccountLedger(100_000.0)
    ledger.apply(_fill("EUR.USD", 10_000, "buy", 1.10, 2.0))
    assert ledger.cash == pytest.approx(100_000 - 11_000 - 2)
    assert ledger.balances == {"EUR": 10_000}
    # EUR valued at the bar's close of its pair: cash is the equity, the position adds nothing beside it
    assert ledger.cash_value({"EUR.USD": 1.12}) == pytest.approx(100_000 - 2 + 10_000 * 0.02)
    assert ledger.equity({"EUR.USD": 1.12}) == pytest.approx(ledger.cash_value({"EUR.USD": 1.12}))
    # USD.JPY: buying USD pays yen, valued at 1 / the pair's close
    ledger.apply(_fill("USD.JPY", 1_000, "buy", 150.0, 2.0))
    assert ledger.balances["JPY"] == pytest.approx(-150_000)
    value = ledger.cash_value({"EUR.USD": 1.12, "USD.JPY": 100.0})
    assert value == pytest.approx(100_000 - 4 + 200 + 1_000 - 1_500)


def test_a_pair_held_at_start_is_not_counted_twice() -> None:
    # IB's TotalCashValue (the start cash) already counts the EUR balance
    held = Position("EUR.USD", quantity=10_000, avg_entry_price=1.10)
    held.update_unrealized_pnl(1.10)
    ledger = AccountLedger(100_000.0, [held])
    assert ledger.cash_value({"EUR.USD": 1.10}) == pytest.approx(100_000)
    assert ledger.equity({"EUR.USD": 1.20}) == pytest.approx(101_000)


def test_stocks_keep_their_accounting() -> None:
    ledger = AccountLedger(10_000.0)
    ledger.apply(_fill("AAPL", 10, "buy", 100.0, 1.0))
    assert ledger.cash_value({}) == pytest.approx(8_999)
    assert ledger.equity({"AAPL": 110.0}) == pytest.approx(10_099)
