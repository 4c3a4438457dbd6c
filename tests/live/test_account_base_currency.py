"""The adapter reads an account value in the account's base currency, whatever currency that is.

IB sends per-currency tags (RealizedPnL, UnrealizedPnL, CashBalance, ExchangeRate...) once per currency and
once as ``BASE`` (the total in the base currency), in no promised order, and account-wide tags
(NetLiquidation, AvailableFunds...) once, in the base currency. The reader used to take the first row in
USD, BASE or no currency: an EUR account's USD row (a foreign balance, P&L realized in dollars) was taken
for the account's figure, and its EUR NetLiquidation was never found in the cache. The rows below are
ib_async ``AccountValue`` tuples as IB sends them (the EUR one after a real TWS dump: RealizedPnL BASE -1.60,
EUR 0.00, USD -1.93).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from copilot_quant.brokers.ib_account import IbAccount, base_currency
from copilot_quant.errors import BrokerError
from ib_async import AccountValue

ACCOUNT = "DU1234567"


def _rows(*rows: tuple[str, str, str]) -> list[AccountValue]:
    return [AccountValue(ACCOUNT, tag, value, currency, "") for tag, value, currency in rows]


EUR_ACCOUNT = _rows(
    ("AccountCode", ACCOUNT, ""),
    ("AccountType", "INDIVIDUAL", ""),
    ("CashBalance", "-1930.00", "USD"),
    ("CashBalance", "10000.00", "EUR"),
    ("CashBalance", "8398.40", "BASE"),
    ("Currency", "USD", "USD"),
    ("Currency", "EUR", "EUR"),
    ("Currency", "BASE", "BASE"),
    ("ExchangeRate", "0.83", "USD"),
    ("ExchangeRate", "1.00", "EUR"),
    ("ExchangeRate", "1.00", "BASE"),
    ("NetLiquidation", "9998.40", "EUR"),
    ("AvailableFunds", "8798.40", "EUR"),
    ("RealizedPnL", "-1.93", "USD"),
    ("RealizedPnL", "0.00", "EUR"),
    ("RealizedPnL", "-1.60", "BASE"),
    ("AccruedCash", "4.00", "USD"),
    ("Leverage-S", "0.16", ""),
)

# a USD account that traded yen: its per-currency rows come before BASE here
USD_ACCOUNT = _rows(
    ("CashBalance", "300000.00", "JPY"),
    ("CashBalance", "97000.00", "USD"),
    ("CashBalance", "99010.00", "BASE"),
    ("ExchangeRate", "0.0067", "JPY"),
    ("NetLiquidation", "99010.00", "USD"),
    ("RealizedPnL", "3000.00", "JPY"),
    ("RealizedPnL", "-10.00", "USD"),
    ("RealizedPnL", "10.10", "BASE"),
    ("UnrealizedPnL", "0.00", "JPY"),
    ("UnrealizedPnL", "-25.00", "USD"),
    ("UnrealizedPnL", "-25.00", "BASE"),
)


class _IB:
    """ib_async's two account reads, answering with recorded rows."""

    def __init__(self, values: Sequence[AccountValue], summary: Sequence[AccountValue] = ()) -> None:
        self.values, self.summary = list(values), list(summary)
        self.summary_reads = 0

    def accountValues(self, account: str = "") -> list[AccountValue]:
        return [v for v in self.values if v.account == account]

    async def accountSummaryAsync(self, account: str = "") -> list[AccountValue]:
        self.summary_reads += 1
        return [v for v in self.summary if v.account == account]


class _Connection:
    def __init__(self, ib: _IB) -> None:
        self.ib, self.account = ib, ACCOUNT


def _value(ib: _IB, tag: str) -> float:
    account = IbAccount(_Connection(ib), lambda price, qty: 0.0)  # type: ignore[arg-type]
    return asyncio.run(account.value_async(tag))


@pytest.mark.parametrize(
    ("tag", "expected"),
    [("RealizedPnL", -1.60), ("CashBalance", 8398.40), ("ExchangeRate", 1.0), ("NetLiquidation", 9998.40)],
)
def test_an_eur_account_reads_base_then_eur_never_a_usd_row(tag: str, expected: float) -> None:
    ib = _IB(EUR_ACCOUNT)
    assert _value(ib, tag) == pytest.approx(expected)
    assert ib.summary_reads == 0  # found in the cache: NetLiquidation in EUR is the account's own figure


def test_an_eur_accounts_account_wide_value_is_its_eur_row() -> None:
    assert _value(_IB(EUR_ACCOUNT), "AvailableFunds") == pytest.approx(8798.40)


def test_a_tag_sent_only_in_a_foreign_currency_is_not_the_accounts_figure() -> None:
    ib = _IB(EUR_ACCOUNT)
    with pytest.raises(BrokerError, match="AccruedCash"):
        _value(ib, "AccruedCash")  # 4 USD is not 4 EUR
    assert ib.summary_reads == 1


@pytest.mark.parametrize(
    ("tag", "expected"),
    [("RealizedPnL", 10.10), ("UnrealizedPnL", -25.0), ("CashBalance", 99010.0), ("NetLiquidation", 99010.0)],
)
def test_a_usd_account_prefers_base_over_its_usd_row(tag: str, expected: float) -> None:
    assert _value(_IB(USD_ACCOUNT), tag) == pytest.approx(expected)


def test_the_summary_is_read_in_the_base_currency_when_the_cache_cannot_tell() -> None:
    # no NetLiquidation or Currency row cached yet: the summary's NetLiquidation names the base currency
    ib = _IB(
        _rows(("AvailableFunds", "5.00", "USD")),
        summary=_rows(
            ("NetLiquidation", "9998.40", "EUR"),
            ("AvailableFunds", "5.00", "USD"),
            ("AvailableFunds", "8798.40", "EUR"),
        ),
    )
    assert _value(ib, "AvailableFunds") == pytest.approx(8798.40)


def test_the_base_currency_comes_from_netliquidation_or_the_one_currency_row() -> None:
    assert base_currency(EUR_ACCOUNT) == "EUR"
    assert base_currency(USD_ACCOUNT) == "USD"
    assert base_currency(_rows(("Currency", "CHF", "CHF"), ("Currency", "BASE", "BASE"))) == "CHF"
    assert base_currency(_rows(("Currency", "CHF", "CHF"), ("Currency", "USD", "USD"))) is None
    assert base_currency(_rows(("CashBalance", "1.00", "USD"))) is None
