"""A strategy's book holds what its own fills add up to, and its numbers reconcile with each other."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from copilot_quant.errors import ConfigError
from copilot_quant.model import Fill, Order, StrategyBook, net_quantities
from hypothesis import given
from hypothesis import strategies as st

T0 = datetime(2024, 1, 2, 21, tzinfo=UTC)


def fill(symbol: str, qty: float, price: float, side: str = "buy", commission: float = 0.0) -> Fill:
    return Fill(Order(symbol, qty, side=side), price, qty, commission, T0)


def test_a_round_trip_realizes_its_pnl_and_pays_both_commissions() -> None:
    book = StrategyBook(capital=10_000, name="A")
    book.apply_fill(fill("AAPL", 10, 100.0, commission=1.0))
    assert book.quantity("AAPL") == 10
    assert book.cash == pytest.approx(10_000 - 1_000 - 1)
    realized = book.apply_fill(fill("AAPL", 10, 110.0, "sell", commission=1.0))
    assert realized == pytest.approx(100.0)
    assert book.positions() == {}
    assert book.realized_pnl == pytest.approx(100.0)
    assert book.commissions == pytest.approx(2.0)
    assert book.pnl == pytest.approx(98.0)
    assert book.equity == pytest.approx(10_098.0)
    assert book.fill_count == 2


def test_marking_moves_equity_and_unrealized_pnl_but_not_cash() -> None:
    book = StrategyBook(capital=5_000)
    book.apply("MSFT", -5, 200.0)  # a short
    cash = book.cash
    book.mark("MSFT", 190.0)
    assert book.cash == cash
    assert book.unrealized_pnl == pytest.approx(50.0)
    assert book.market_value == pytest.approx(-950.0)
    assert book.equity == pytest.approx(5_000 + 1_000 - 950)
    book.mark("MSFT", float("nan"))  # no price this bar: the last mark stands
    assert book.unrealized_pnl == pytest.approx(50.0)
    book.mark("TSLA", 10.0)  # never traded: nothing to mark
    assert book.symbols() == ["MSFT"]


def test_crossing_through_zero_realizes_the_old_position_and_opens_the_rest_at_the_fill_price() -> None:
    book = StrategyBook()
    book.apply("AAPL", 10, 100.0)
    realized = book.apply("AAPL", -15, 90.0)
    assert realized == pytest.approx(-100.0)
    position = book.positions()["AAPL"]
    assert position.quantity == -5
    assert position.avg_entry_price == 90.0


def test_positions_are_snapshots() -> None:
    book = StrategyBook()
    book.apply("AAPL", 10, 100.0)
    book.positions()["AAPL"].quantity = 99
    assert book.quantity("AAPL") == 10


@pytest.mark.parametrize(
    ("qty", "price", "commission"),
    [(0, 100.0, 0.0), (float("nan"), 100.0, 0.0), (1, 0.0, 0.0), (1, float("inf"), 0.0), (1, 100.0, -1.0)],
)
def test_a_nonsense_trade_is_refused_and_leaves_the_book_as_it_was(
    qty: float, price: float, commission: float
) -> None:
    book = StrategyBook(capital=1_000)
    with pytest.raises(ConfigError):
        book.apply("AAPL", qty, price, commission)
    assert book.cash == 1_000
    assert book.symbols() == []


def test_a_non_finite_capital_is_refused() -> None:
    with pytest.raises(ConfigError, match="capital"):
        StrategyBook(capital=float("nan"))


# ---------------------------------------------------------------------------------------------- invariants
trades = st.lists(
    st.tuples(
        st.sampled_from(["AAPL", "MSFT"]),
        st.integers(min_value=-50, max_value=50).filter(bool),
        st.floats(min_value=1.0, max_value=500.0),
        st.floats(min_value=0.0, max_value=5.0),
        st.booleans(),  # which of two strategies placed it
    ),
    max_size=40,
)
Trade = tuple[str, int, float, float, bool]
marks = st.fixed_dictionaries({"AAPL": st.floats(1.0, 500.0), "MSFT": st.floats(1.0, 500.0)})


@given(trades, marks)
def test_equity_is_capital_plus_realized_plus_unrealized_minus_commissions(
    trades: list[Trade], prices: dict[str, float]
) -> None:
    book = StrategyBook(capital=100_000)
    for symbol, qty, price, commission, _ in trades:
        book.apply(symbol, qty, price, commission)
    book.mark_all(prices)
    expected = book.capital + book.realized_pnl + book.unrealized_pnl - book.commissions
    assert book.equity == pytest.approx(expected, rel=1e-9, abs=1e-6)
    for symbol in ("AAPL", "MSFT"):
        assert book.quantity(symbol) == sum(q for s, q, *_ in trades if s == symbol)


@given(trades, marks)
def test_two_books_add_up_to_the_account_that_holds_all_their_fills(
    trades: list[Trade], prices: dict[str, float]
) -> None:
    account = StrategyBook(capital=100_000)
    first, second = StrategyBook(capital=60_000), StrategyBook(capital=40_000)
    for symbol, qty, price, commission, mine in trades:
        account.apply(symbol, qty, price, commission)
        (first if mine else second).apply(symbol, qty, price, commission)
    for book in (account, first, second):
        book.mark_all(prices)
    netted = net_quantities([first, second])
    for symbol in ("AAPL", "MSFT"):
        assert netted.get(symbol, 0.0) == account.quantity(symbol)
    assert first.cash + second.cash == pytest.approx(account.cash, rel=1e-9, abs=1e-6)
    assert first.equity + second.equity == pytest.approx(account.equity, rel=1e-9, abs=1e-6)
    assert first.commissions + second.commissions == pytest.approx(account.commissions, abs=1e-9)


def test_a_futures_contract_is_booked_by_its_pnl_times_the_multiplier() -> None:
    book = StrategyBook(10_000.0, "mes")
    book.apply("MESZ6", 2, 6000.0, 1.24)  # no notional moves: only the commission
    assert book.cash == pytest.approx(10_000 - 1.24)
    book.mark("MESZ6", 6010.0)
    assert book.unrealized_pnl == pytest.approx(2 * 10 * 5)  # money, not points
    assert book.equity == pytest.approx(10_000 - 1.24 + 100)
    book.apply("MESZ6", -2, 6020.0, 1.24)
    assert book.realized_pnl == pytest.approx(2 * 20 * 5)
    assert book.cash == pytest.approx(10_000 - 2.48 + 200)
    assert book.pnl == pytest.approx(200 - 2.48)
