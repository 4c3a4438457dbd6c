"""A strategy's book on futures and forex: booked in USD as the account books them, so several books add up
to the account (quantities, balances, equity) for stocks, futures and pairs quoted in any currency."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from copilot_quant.errors import ConfigError
from copilot_quant.live.ledger import AccountLedger
from copilot_quant.model import Fill, Order, StrategyBook, net_quantities
from copilot_quant.model.instruments import FUTURE_SPECS, InstrumentRegistry
from hypothesis import given, settings
from hypothesis import strategies as st

T0 = datetime(2026, 9, 1, 21, tzinfo=UTC)
REGISTRY = InstrumentRegistry(reference=T0.date())

#: symbol -> (a typical price, its tick): every kind the account books differently
MARKET = {
    "AAPL": (180.0, 0.01),
    "MESZ6": (5_000.0, 0.25),
    "ESZ6": (5_000.0, 0.25),
    "EUR.USD": (1.10, 0.00005),
    "USD.JPY": (150.0, 0.005),
    "EUR.GBP": (0.85, 0.00005),
    "GBP.USD": (1.27, 0.00005),
}


def fill(
    symbol: str, qty: float, price: float, side: str = "buy", commission: float = 0.0, *, mult: float = 1.0
) -> Fill:
    return Fill(Order(symbol, qty, side=side), price, qty, commission, T0, multiplier=mult)


def test_a_future_moves_only_its_realized_pnl_times_the_multiplier() -> None:
    book = StrategyBook(10_000, "A", REGISTRY)
    book.apply_fill(fill("MESZ6", 2, 5_000.0, commission=1.24))
    assert book.cash == pytest.approx(10_000 - 1.24)  # no notional
    book.mark("MESZ6", 5_010.0)
    assert book.equity == pytest.approx(10_000 - 1.24 + 2 * 10 * 5)
    book.apply_fill(fill("MESZ6", 2, 5_020.0, "sell", commission=1.24))
    assert book.realized_pnl == pytest.approx(2 * 20 * 5)
    assert book.cash == pytest.approx(10_000 + 200 - 2.48) == book.equity


def test_a_future_of_the_runs_own_registry_is_booked_with_its_multiplier() -> None:
    # a root the standard registry does not know: the run's registry (or the fill) gives the multiplier
    spec = replace(FUTURE_SPECS["ES"], root="XYZ", multiplier=20.0, description="custom")
    custom = InstrumentRegistry(futures={**FUTURE_SPECS, "XYZ": spec}, reference=T0.date())
    own = StrategyBook(0, "A", custom)
    own.apply("XYZZ6", 1, 100.0)
    own.mark("XYZZ6", 101.0)
    assert own.equity == pytest.approx(20.0)
    by_fill = StrategyBook(0, "B")  # the default registry reads XYZZ6 as a stock: the fill's multiplier wins
    by_fill.apply_fill(fill("XYZZ6", 1, 100.0, mult=20.0))
    by_fill.mark("XYZZ6", 101.0)
    assert by_fill.cash == 0.0
    assert by_fill.equity == pytest.approx(20.0)


def test_usd_jpy_is_booked_in_usd_and_yen_valued_at_the_rate_in_force() -> None:
    book = StrategyBook(10_000, "A", REGISTRY)
    book.apply_fill(fill("USD.JPY", 1_000, 150.0, commission=2.0))
    assert book.balances() == pytest.approx({"USD": 1_000 - 2.0, "JPY": -150_000.0})
    assert book.cash == pytest.approx(10_000 - 2.0)  # the yen at 1/150: the dollars bought are the cost
    book.mark("USD.JPY", 160.0)  # the dollar rose: the yen owed are worth fewer dollars
    assert book.equity == pytest.approx(10_000 - 2 + 1_000 - 150_000 / 160)
    book.apply_fill(fill("USD.JPY", 1_000, 160.0, "sell", commission=2.0))
    assert book.positions() == {}
    assert book.balances()["JPY"] == pytest.approx(10_000.0)  # the profit is in yen, as at the account
    assert book.realized_pnl == pytest.approx(10 * 1_000 / 160)  # yen converted at the exit's own price
    assert book.pnl == pytest.approx(10_000 / 160 - 4)


def test_a_cross_needs_the_rate_of_its_quote_currency() -> None:
    book = StrategyBook(0, "Cross", REGISTRY)
    book.apply_fill(fill("EUR.GBP", 10_000, 0.85))
    with pytest.raises(ConfigError, match=r"EUR\.USD"):
        _ = book.cash
    book.mark_all({"EUR.USD": 1.10, "GBP.USD": 1.30})
    assert book.cash == pytest.approx(10_000 * 1.10 - 8_500 * 1.30)
    assert book.equity == book.cash  # a pair's value is in its balances


@st.composite
def trades(draw: st.DrawFn) -> list[tuple[int, str, float, float, float]]:
    """(book, symbol, signed quantity, price, commission) per fill."""
    out = []
    for _ in range(draw(st.integers(1, 25))):
        symbol = draw(st.sampled_from(sorted(MARKET)))
        price, tick = MARKET[symbol]
        moved = price + tick * draw(st.integers(-400, 400))
        size = draw(st.integers(1, 5)) * (10_000 if "." in symbol else 1)
        side = draw(st.sampled_from([1, -1]))
        out.append(
            (draw(st.integers(0, 2)), symbol, side * size, moved, draw(st.sampled_from([0.0, 0.62, 2.0])))
        )
    return out


@settings(max_examples=150, deadline=None)
@given(trades(), st.dictionaries(st.sampled_from(sorted(MARKET)), st.integers(-300, 300)))
def test_books_add_up_to_the_account_for_stocks_futures_and_pairs(
    fills: list[tuple[int, str, float, float, float]], moves: dict[str, int]
) -> None:
    capitals = [50_000.0, 30_000.0, 20_000.0]
    books = [StrategyBook(c, f"S{k}", REGISTRY) for k, c in enumerate(capitals)]
    account = AccountLedger(sum(capitals), registry=REGISTRY)  # the live engine's account from fills
    for owner, symbol, signed, price, commission in fills:
        side = "buy" if signed > 0 else "sell"
        mult = REGISTRY.resolve(symbol).multiplier if symbol.endswith("Z6") else 1.0  # as the broker sets it
        f = fill(symbol, abs(signed), price, side, commission, mult=mult)
        account.apply(f)
        books[owner].apply_fill(f)
    # marks at a later close, every pair among them (the rates in force)
    marks = {s: p + MARKET[s][1] * moves.get(s, 0) for s, (p, _) in MARKET.items()}
    for book in books:
        book.mark_all(marks)
    # quantities add up to the account's, symbol by symbol
    held = {s: q for s, q in net_quantities(books).items() if abs(q) > 1e-9}
    assert held == pytest.approx({s: p.quantity for s, p in account.positions.items()})
    # equity adds up (the capitals add up to the starting cash)
    assert sum(b.equity for b in books) == pytest.approx(account.equity(marks), abs=1e-6)
    # every foreign balance adds up; so does USD cash when no future realized P&L across books
    for currency, balance in account.balances.items():
        assert sum(b.balances().get(currency, 0.0) for b in books) == pytest.approx(balance, abs=1e-6)
    if not any(s.endswith("Z6") for _, s, *_ in fills):
        assert sum(b.cash for b in books) == pytest.approx(account.cash_value(marks), abs=1e-6)
    # each book's P&L is its equity less its capital
    for book, capital in zip(books, capitals, strict=True):
        assert book.pnl == pytest.approx(book.equity - capital)
