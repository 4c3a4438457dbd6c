"""The simulated account with futures (multiplier, margin per contract) and forex (two currency balances)."""

from __future__ import annotations

from datetime import date

import pytest
from copilot_quant.gateway.account import Account
from copilot_quant.gateway.contracts import ContractInfo
from copilot_quant.gateway.instrument_contracts import contract_for
from copilot_quant.model.instruments import InstrumentRegistry
from hypothesis import given, settings
from hypothesis import strategies as st

REGISTRY = InstrumentRegistry(reference=date(2026, 11, 2))
MES = contract_for(REGISTRY.resolve("MESZ6"))
EURUSD = contract_for(REGISTRY.resolve("EUR.USD"))
AAPL = ContractInfo.for_symbol("AAPL")


def _values(account: Account) -> dict[tuple[str, str], str]:
    return {(key, currency): value for key, value, currency in account.values()}


def test_a_future_books_its_pnl_with_the_multiplier_and_no_notional() -> None:
    account = Account(cash=100_000.0)
    account.apply_fill(MES, 2, 5000.0, 2.0)
    assert account.cash == 100_000.0 - 2.0  # only the commission: no notional changes hands
    account.mark(MES.symbol, 5010.0)
    assert account.futures_pnl == pytest.approx(2 * 10.0 * 5)  # 2 contracts x 10 points x $5
    assert account.net_liquidation == pytest.approx(100_000.0 - 2.0 + 100.0)
    assert account.gross_position_value == 0.0  # futures are not securities' position value
    assert account.init_margin == pytest.approx(2 * MES.initial_margin)
    assert account.maint_margin == pytest.approx(2 * MES.maintenance_margin)
    [item] = account.portfolio()
    assert item.market_price == 5010.0
    assert item.market_value == pytest.approx(2 * 5010.0 * 5)
    assert item.avg_cost == pytest.approx(5000.0 * 5)  # IB folds the multiplier into a future's avgCost
    assert item.unrealized_pnl == pytest.approx(100.0)
    realized = account.apply_fill(MES, -2, 4990.0, 2.0)
    assert realized == pytest.approx(-2 * 10.0 * 5)
    assert account.cash == pytest.approx(100_000.0 - 4.0 - 100.0)
    assert account.init_margin == 0.0
    assert account.realized_pnl == pytest.approx(-104.0)
    assert _values(account)[("FuturesPNL", "USD")] == "0.00"


def test_a_forex_trade_moves_two_balances() -> None:
    account = Account(cash=100_000.0)
    account.apply_fill(EURUSD, 20_000, 1.0843, 2.0)
    assert account.cash == pytest.approx(100_000.0 - 20_000 * 1.0843 - 2.0)
    assert account.currencies.foreign == {"EUR": 20_000}
    account.mark(EURUSD.symbol, 1.0900)
    assert account.rate("EUR") == 1.09
    assert account.total_cash_value == pytest.approx(100_000.0 - 21_686.0 - 2.0 + 21_800.0)
    assert account.net_liquidation == pytest.approx(account.total_cash_value)  # the pair is its balances
    assert account.unrealized_pnl == pytest.approx(20_000 * (1.09 - 1.0843))
    values = _values(account)
    assert values[("CashBalance", "EUR")] == "20000.00"
    assert values[("TotalCashBalance", "EUR")] == "20000.00"
    assert values[("ExchangeRate", "EUR")] == "1.090000"
    assert values[("ExchangeRate", "USD")] == "1.00"
    assert values[("CashBalance", "USD")] == f"{account.cash:.2f}"
    assert values[("CashBalance", "BASE")] == f"{account.total_cash_value:.2f}"
    assert values[("TotalCashBalance", "BASE")] == f"{account.total_cash_value:.2f}"
    account.apply_fill(EURUSD, -20_000, 1.0900, 2.0)
    assert account.currencies.foreign == {"EUR": 0.0}
    assert account.realized_pnl == pytest.approx(20_000 * (1.09 - 1.0843) - 4.0)


def test_what_if_a_future_needs_its_initial_margin_per_contract() -> None:
    account = Account(cash=100_000.0)
    impact = account.margin_impact(MES, 3, 5000.0, 1.5)
    assert impact.init_change == pytest.approx(3 * MES.initial_margin)
    assert impact.maint_change == pytest.approx(3 * MES.maintenance_margin)
    assert impact.equity_change == -1.5
    account.apply_fill(MES, 3, 5000.0, 0.0)
    closing = account.margin_impact(MES, -1, 5000.0, 0.0)
    assert closing.init_change == pytest.approx(-MES.initial_margin)


def test_stocks_keep_their_rules() -> None:
    account = Account(cash=10_000.0, leverage=2)
    account.apply_fill(AAPL, 100, 100.0, 0.0)
    assert account.init_margin == 5_000
    assert account.margin_impact("AAPL", 50, 100.0, 1.0).init_change == 2_500


_TRADES = st.lists(
    st.tuples(
        st.sampled_from(["AAPL", "MES", "EURUSD"]),
        st.integers(-5, 5).filter(bool),
        st.floats(0.9, 1.1),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(_TRADES)
def test_pnl_adds_up_to_the_change_of_net_liquidation(trades: list[tuple[str, int, float]]) -> None:
    """realized + unrealized == NetLiquidation - starting cash, across stocks, futures and a pair."""
    account = Account(cash=1_000_000.0)
    base = {"AAPL": (AAPL, 150.0, 10), "MES": (MES, 5000.0, 1), "EURUSD": (EURUSD, 1.08, 10_000)}
    for name, qty, move in trades:
        contract, price, lot = base[name]
        traded = (
            REGISTRY.resolve(contract.symbol).round_price(price * move) if name != "AAPL" else price * move
        )
        account.apply_fill(contract, qty * lot, traded, 1.25)
        for other, (c, p, _) in base.items():
            account.mark(c.symbol, p * (move if other == name else 1.0))
    expected = account.net_liquidation - 1_000_000.0
    assert account.realized_pnl + account.unrealized_pnl == pytest.approx(expected, abs=1e-6)


EURGBP = contract_for(REGISTRY.resolve("EUR.GBP"))
USDJPY = contract_for(REGISTRY.resolve("USD.JPY"))


def test_a_cross_pairs_realized_pnl_is_booked_at_the_rate_when_realized() -> None:
    """EUR.GBP realizes GBP; RealizedPnL (BASE) keeps its value at that moment's GBP.USD, as the backtest's
    books do, while the GBP balance left in the account moves with GBP.USD in NetLiquidation."""
    quotes = {"GBP.USD": 1.25}
    account = Account(cash=100_000.0)
    account.price_source = quotes.get
    account.apply_fill(EURGBP, 10_000, 0.8500, 0.0)
    account.apply_fill(EURGBP, -10_000, 0.8600, 0.0)  # realizes 100 GBP = 125 USD at 1.25
    assert account.currencies.foreign["GBP"] == pytest.approx(100.0)
    assert account.realized_pnl == pytest.approx(125.0)
    quotes["GBP.USD"] = 1.40
    assert account.realized_pnl == pytest.approx(125.0)  # not re-valued at today's 1.40
    values = _values(account)
    assert values[("RealizedPnL", "BASE")] == "125.00"  # the account's total, in USD
    assert values[("RealizedPnL", "GBP")] == "100.00"  # as realized, in pounds
    assert values[("RealizedPnL", "USD")] == "0.00"  # nothing was realized in dollars
    assert account.pnl().realized == pytest.approx(125.0)
    assert account.net_liquidation == pytest.approx(100_000.0 + 140.0)  # the balance itself is worth 140


def test_a_usd_quoted_pairs_realized_pnl_uses_its_own_fill_price() -> None:
    account = Account(cash=100_000.0)
    account.apply_fill(USDJPY, 10_000, 150.00, 0.0)
    account.apply_fill(USDJPY, -10_000, 151.00, 0.0)  # realizes 10,000 JPY at 1/151 USD each
    assert account.realized_pnl == pytest.approx(10_000 / 151.0)
    account.mark(USDJPY.symbol, 140.0)  # later the yen is dearer
    assert account.realized_pnl == pytest.approx(10_000 / 151.0)
    assert account.net_liquidation == pytest.approx(100_000.0 + 10_000 / 140.0)
