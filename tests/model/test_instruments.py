"""The instrument registry: what each string a strategy writes stands for, and futures expiry rules."""

from __future__ import annotations

from datetime import date, timedelta
from itertools import pairwise

import pytest
from copilot_quant.model.instruments import (
    FUTURE_SPECS,
    MONTH_CODES,
    AssetClass,
    InstrumentRegistry,
    UnknownInstrumentError,
)
from hypothesis import given
from hypothesis import strategies as st

REG = InstrumentRegistry(reference=date(2026, 12, 7))


def test_a_plain_ticker_is_a_us_stock_exactly_as_before() -> None:
    aapl = REG.resolve(" aapl ")
    assert (aapl.symbol, aapl.kind, aapl.exchange, aapl.currency) == (
        "AAPL",
        AssetClass.STOCK,
        "SMART",
        "USD",
    )
    assert aapl.multiplier == 1.0
    assert aapl.notional(10, 150.0) == 1500.0


def test_a_contract_code_names_one_futures_contract_with_its_terms() -> None:
    es = REG.resolve("ESZ6")
    assert es.kind is AssetClass.FUTURE
    assert not es.continuous
    assert (es.root, es.exchange, es.multiplier, es.tick_size) == ("ES", "CME", 50.0, 0.25)
    assert es.expiry == date(2026, 12, 18)  # third Friday of December 2026
    assert es.notional(2, 6000.0) == 600_000.0
    assert REG.resolve("ESZ26") == es == REG.resolve("ESZ2026")


def test_a_one_digit_year_is_read_against_the_reference_date() -> None:
    assert REG.resolve("ESZ5").expiry == date(2025, 12, 19)
    assert InstrumentRegistry(reference=date(2018, 3, 1)).resolve("ESZ8").expiry == date(2018, 12, 21)


def test_a_bare_root_is_the_continuous_future_and_trades_the_front_contract() -> None:
    mes = REG.resolve("MES")
    assert mes.continuous
    assert mes.symbol == "MES"
    assert mes.multiplier == 5.0
    assert REG.resolve("MES=F") == mes
    assert REG.contract_on("MES", date(2026, 12, 7)).symbol == "MESZ6"
    # rolled five weekdays before the 18 December expiry
    assert REG.contract_on("MES", date(2026, 12, 11)).symbol == "MESH7"
    assert REG.contract_on("MES", date(2026, 12, 10)).symbol == "MESZ6"
    assert REG.contract_on("MES", date(2026, 12, 18), roll_days=0).symbol == "MESZ6"


def test_a_root_that_is_also_a_stock_ticker_stays_the_stock_unless_asked() -> None:
    assert REG.resolve("CL").kind is AssetClass.STOCK  # Colgate-Palmolive
    crude = REG.resolve("CL=F")
    assert crude.kind is AssetClass.FUTURE
    assert crude.symbol == "CL=F"
    assert crude.multiplier == 1000.0
    assert REG.resolve("FUT:CL") == crude
    assert REG.resolve("STK:ES").kind is AssetClass.STOCK


def test_a_forex_pair_is_quoted_in_its_second_currency() -> None:
    eur = REG.resolve("EUR.USD")
    assert (eur.kind, eur.exchange, eur.root, eur.currency, eur.base_currency) == (
        AssetClass.FOREX,
        "IDEALPRO",
        "EUR",
        "USD",
        "EUR",
    )
    assert REG.resolve("USD.JPY").tick_size == 0.005


def test_expiry_rules_match_the_exchanges_published_last_trade_days() -> None:
    assert REG.resolve("CLF7").expiry == date(2026, 12, 22)  # 3 business days before 25 Dec
    assert REG.resolve("GCZ6").expiry == date(2026, 12, 29)  # third-last business day
    assert REG.resolve("ZNH7").expiry == date(2027, 3, 22)  # 7 business days before 31 March


def test_unlisted_months_and_unknown_roots_get_named_errors() -> None:
    with pytest.raises(UnknownInstrumentError, match="lists only the months H, M, U, Z"):
        REG.resolve("ESF7")
    with pytest.raises(UnknownInstrumentError, match="not a futures root"):
        REG.resolve("FUT:XYZ")
    with pytest.raises(UnknownInstrumentError, match=r"BASE\.QUOTE"):
        REG.resolve("CASH:EURUSD")


@given(
    root=st.sampled_from(sorted(FUTURE_SPECS)),
    day=st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 12, 31)),
    roll=st.integers(0, 10),
)
def test_the_contract_of_the_day_is_listed_unexpired_and_never_goes_backwards(
    root: str, day: date, roll: int
) -> None:
    reg = InstrumentRegistry(reference=day)
    today = reg.contract_on(root, day, roll_days=roll)
    tomorrow = reg.contract_on(root, date.fromordinal(day.toordinal() + 1), roll_days=roll)
    assert today.expiry is not None
    assert tomorrow.expiry is not None
    assert today.expiry >= day
    assert tomorrow.expiry >= today.expiry
    assert MONTH_CODES[today.expiry.month - 1] in FUTURE_SPECS[root].months or root == "CL"


def test_a_contract_carries_ibs_contract_month_and_last_trade_date() -> None:
    es = REG.resolve("ESZ6")
    assert (es.contract_month, es.last_trade_date) == ("202612", "20261218")
    crude = REG.resolve("CLF7")  # January 2027 crude stops trading in December 2026
    assert (crude.contract_month, crude.last_trade_date) == ("202701", "20261222")
    assert REG.resolve("MES").contract_month == ""
    assert REG.resolve("EUR.USD").last_trade_date == ""


def test_roll_dates_are_where_contract_on_changes_contract() -> None:
    rolls = REG.roll_dates("MES", date(2026, 1, 1), date(2026, 12, 31))
    assert [(day, old.symbol, new.symbol) for day, old, new in rolls] == [
        (date(2026, 3, 13), "MESH6", "MESM6"),
        (date(2026, 6, 12), "MESM6", "MESU6"),
        (date(2026, 9, 11), "MESU6", "MESZ6"),
        (date(2026, 12, 11), "MESZ6", "MESH7"),
    ]
    weekdays = [d for d in (date(2026, 1, 2) + timedelta(days=k) for k in range(363)) if d.weekday() < 5]
    changes = [
        now for before, now in pairwise(weekdays)
        if REG.contract_on("MES", now) != REG.contract_on("MES", before)
    ]  # fmt: skip
    assert changes == [day for day, _, _ in rolls]
    through_expiry = REG.roll_dates("ES", date(2026, 12, 1), date(2026, 12, 31), roll_days=0)
    assert [(d, n.symbol) for d, _, n in through_expiry] == [(date(2026, 12, 21), "ESH7")]
