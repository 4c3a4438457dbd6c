"""The simulated account's books: NetLiquidation identity, margin figures, P&L, summary tags."""

from __future__ import annotations

import pytest
from copilot_quant.errors import ConfigError
from copilot_quant.gateway.account import Account
from copilot_quant.gateway.contracts import ContractInfo
from hypothesis import given
from hypothesis import strategies as st

AAPL = ContractInfo.for_symbol("AAPL")
IBM = ContractInfo.for_symbol("IBM")

trades = st.lists(
    st.tuples(
        st.sampled_from([AAPL, IBM]),
        st.integers(-300, 300).filter(bool),
        st.floats(1.0, 500.0, allow_nan=False),
        st.floats(0.0, 5.0, allow_nan=False),
        st.floats(1.0, 500.0, allow_nan=False),  # a later price mark
    ),
    max_size=25,
)


@given(trades)
def test_net_liquidation_identity_after_every_fill_and_mark(steps):
    account = Account(cash=100_000.0)
    for contract, qty, price, commission, mark in steps:
        for _ in range(2):
            marks = {c.symbol: p.last_price or p.avg_entry_price for c, p in account.holdings()}
            held = sum(p.quantity * marks[c.symbol] for c, p in account.holdings())
            assert account.net_liquidation == pytest.approx(account.cash + held, abs=1e-6)
            assert account.realized_pnl + account.unrealized_pnl == pytest.approx(
                account.net_liquidation - account.starting_cash, abs=1e-6
            )
            assert account.gross_position_value >= abs(account.stock_market_value) - 1e-9
            assert account.buying_power == pytest.approx(max(account.available_funds, 0.0) * account.leverage)
            account.apply_fill(contract, float(qty), price, commission) if _ == 0 else account.mark(
                contract.symbol, mark
            )


def test_fill_books_cash_position_and_realized_pnl():
    account = Account(cash=10_000.0)
    account.apply_fill(AAPL, 10, 100.0, 1.0)
    assert account.cash == 10_000 - 1_000 - 1
    account.mark("AAPL", 110.0)
    assert account.unrealized_pnl == 100.0
    assert account.net_liquidation == 10_099.0
    realized = account.apply_fill(AAPL, -10, 110.0, 1.0)
    assert realized == 100.0
    assert account.realized_pnl == 98.0
    assert account.positions() == []
    assert account.portfolio(include_flat=True)[0].realized_pnl == 98.0


def test_margin_figures_with_leverage():
    account = Account(cash=10_000.0, leverage=2)
    account.apply_fill(AAPL, 100, 100.0, 0.0)
    assert account.gross_position_value == 10_000
    assert account.init_margin == 5_000
    assert account.available_funds == 5_000
    assert account.buying_power == 10_000
    assert account.excess_liquidity == 5_000
    impact = account.margin_impact("AAPL", 50, 100.0, 1.0)
    assert (impact.init_before, impact.init_change, impact.init_after) == (5_000, 2_500, 7_500)
    assert impact.equity_after == 9_999.0


def test_values_and_summary():
    account = Account("DU7654321", cash=1_000.0)
    values = {(k, c): v for k, v, c in account.values()}
    assert values[("AccountCode", "")] == "DU7654321"
    assert values[("NetLiquidation", "USD")] == "1000.00"
    assert values[("CashBalance", "BASE")] == "1000.00"
    summary = account.summary("NetLiquidation,BuyingPower,AccountType,$LEDGER:ALL,Bogus")
    assert [t for t, _, _ in summary] == ["NetLiquidation", "BuyingPower", "AccountType"]
    assert {t: v for t, v, _ in account.summary(["FullAvailableFunds"])} == {"FullAvailableFunds": "1000.00"}


def test_daily_pnl_restarts_each_session():
    account = Account(cash=1_000.0)
    account.apply_fill(AAPL, 1, 100.0, 0.0)
    account.mark("AAPL", 105.0)
    assert account.pnl().daily == 5.0
    account.start_day()
    account.mark("AAPL", 103.0)
    assert account.pnl().daily == -2.0
    assert account.pnl_single("AAPL").daily == -2.0
    assert account.pnl_single("MSFT") is None


def test_bad_configuration_is_a_config_error():
    with pytest.raises(ConfigError, match="cash"):
        Account(cash=-1.0)
    with pytest.raises(ConfigError, match="leverage"):
        Account(leverage=0.5)
