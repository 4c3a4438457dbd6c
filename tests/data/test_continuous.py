"""Continuous futures: roll schedules, and back-adjusted prices whose returns are the traded contract's."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from copilot_quant.data.continuous import (
    Adjustment,
    RollRule,
    choose_contracts,
    continuous_series,
    splice,
)
from copilot_quant.data.synthetic import SyntheticDataProvider
from copilot_quant.errors import ConfigError, DataError
from copilot_quant.model.instruments import InstrumentRegistry
from hypothesis import given, settings
from hypothesis import strategies as st

REGISTRY = InstrumentRegistry(reference=date(2026, 12, 1))
CHAIN = REGISTRY.contracts_after("ES", date(2025, 1, 1), count=6)


@st.composite
def chains(draw):
    """Random contract prices on shared stamps and a contract per stamp that only moves forward."""
    n = draw(st.integers(3, 40))
    count = draw(st.integers(1, 4))
    prices = draw(
        st.lists(
            st.lists(st.floats(1.0, 5000.0, allow_nan=False), min_size=n, max_size=n),
            min_size=count,
            max_size=count,
        )
    )
    cuts = sorted(draw(st.lists(st.integers(1, n - 1), min_size=count - 1, max_size=count - 1)))
    stamps = pd.date_range("2025-01-06 22:00", periods=n, freq="D", tz="UTC", name="timestamp")
    frames = {
        CHAIN[k]: pd.DataFrame(
            {"Open": p, "High": p, "Low": p, "Close": p, "Volume": np.ones(n)}, index=stamps
        )
        for k, p in enumerate(prices)
    }
    codes = np.searchsorted(np.array(cuts, dtype=int), np.arange(n), side="right")
    return frames, [CHAIN[k] for k in codes], stamps


def own_closes(frames, contracts):
    """For each bar after the first: its contract's close there and at the bar before (same contract)."""
    now = np.array([frames[c]["Close"].to_numpy()[i] for i, c in enumerate(contracts)][1:])
    before = np.array([frames[c]["Close"].to_numpy()[i - 1] for i, c in enumerate(contracts) if i > 0])
    return now, before


def spliced(frames, contracts, stamps, how):
    labels = stamps.tz_localize(None).normalize()
    return splice(frames, contracts, stamps, labels, adjustment=how, root="ES")


@given(chains())
@settings(max_examples=60, deadline=None)
def test_difference_adjusted_changes_equal_the_traded_contracts_changes_across_rolls(chain):
    frames, contracts, stamps = chain
    series = spliced(frames, contracts, stamps, "difference")
    close = series.bars["Close"].to_numpy()
    own_now, own_before = own_closes(frames, contracts)
    np.testing.assert_allclose(np.diff(close), own_now - own_before, rtol=0, atol=1e-6)
    # the latest contract is never moved
    last = frames[contracts[-1]]["Close"].iloc[-1]
    assert close[-1] == last
    assert len(series.rolls) == len(set(contracts)) - 1


@given(chains())
@settings(max_examples=60, deadline=None)
def test_ratio_adjusted_returns_equal_the_traded_contracts_returns_across_rolls(chain):
    frames, contracts, stamps = chain
    series = spliced(frames, contracts, stamps, "ratio")
    close = series.bars["Close"].to_numpy()
    assert (close > 0).all()
    own_now, own_before = own_closes(frames, contracts)
    np.testing.assert_allclose(close[1:] / close[:-1], own_now / own_before, rtol=1e-9)
    assert close[-1] == frames[contracts[-1]]["Close"].iloc[-1]


@given(chains())
@settings(max_examples=25, deadline=None)
def test_unadjusted_series_is_the_contract_of_each_bar_and_names_it(chain):
    frames, contracts, stamps = chain
    series = spliced(frames, contracts, stamps, "none")
    expected = [frames[c]["Close"].to_numpy()[i] for i, c in enumerate(contracts)]
    assert list(series.bars["Close"]) == expected
    assert list(series.contracts) == [c.symbol for c in contracts]
    for roll in series.rolls:
        assert series.contracts.loc[roll.at] == roll.new


def test_a_roll_records_both_prices_at_the_last_bar_before_it():
    stamps = pd.date_range("2025-01-06 22:00", periods=4, freq="D", tz="UTC")
    old = pd.DataFrame(
        {"Open": 10.0, "High": 10.0, "Low": 10.0, "Close": [10.0, 11, 12, 13], "Volume": 1.0}, stamps
    )
    new = pd.DataFrame(
        {"Open": 20.0, "High": 20.0, "Low": 20.0, "Close": [20.0, 22, 24, 26], "Volume": 1.0}, stamps
    )
    series = spliced({CHAIN[0]: old, CHAIN[1]: new}, [CHAIN[0]] * 2 + [CHAIN[1]] * 2, stamps, "difference")
    (roll,) = series.rolls
    assert (roll.at, roll.old, roll.new, roll.old_price, roll.new_price) == (
        stamps[2],
        "ESH5",
        "ESM5",
        11.0,
        22.0,
    )
    assert roll.gap == 11.0
    assert list(series.bars["Close"]) == [21.0, 22.0, 24.0, 26.0]
    assert series.roll_dates == [date(2025, 1, 8)]


def test_a_missing_bar_of_the_contract_in_use_is_a_named_error():
    stamps = pd.date_range("2025-01-06 22:00", periods=3, freq="D", tz="UTC")
    bars = pd.DataFrame({"Open": 1.0, "High": 1.0, "Low": 1.0, "Close": 1.0, "Volume": 1.0}, stamps)
    with pytest.raises(DataError, match=r"ESM5 has no bar"):
        spliced({CHAIN[0]: bars, CHAIN[1]: bars.iloc[:1]}, [CHAIN[0], CHAIN[1], CHAIN[1]], stamps, "none")
    with pytest.raises(ConfigError, match="adjustment must be one of"):
        Adjustment.of("log")


def test_the_days_rule_rolls_with_the_registry_five_weekdays_before_expiry():
    feed = SyntheticDataProvider(start="2025-01-02", registry=REGISTRY)
    series = continuous_series(feed, "MES", "2026-01-01", "2026-12-31", registry=REGISTRY)
    assert [r.new for r in series.rolls] == ["MESM6", "MESU6", "MESZ6", "MESH7"]
    # MESU6 expires Friday 2026-09-18; five weekdays earlier is Friday the 11th, the first on MESZ6
    assert series.roll_dates[2] == date(2026, 9, 11)
    for roll in series.rolls:
        assert REGISTRY.contract_on("MES", roll.session).symbol == roll.new


def test_the_volume_rule_rolls_the_session_after_the_next_contract_trades_more():
    feed = SyntheticDataProvider(start="2025-01-02", registry=REGISTRY)
    rule = RollRule(by_volume=True)
    series = continuous_series(feed, "ES", "2026-08-01", "2026-10-31", rule=rule, registry=REGISTRY)
    (roll,) = series.rolls
    u6 = feed.get_historical_data("ESU6", "2026-09-01", "2026-09-18")["Volume"]
    z6 = feed.get_historical_data("ESZ6", "2026-09-01", "2026-09-18")["Volume"]
    crossing = (z6 > u6).idxmax()  # the first session the new contract traded more
    assert roll.at > crossing
    assert series.contracts.loc[crossing] == "ESU6"  # not known before that session's close
    assert roll.at == z6.index[z6.index.get_loc(crossing) + 1]


def test_ratio_adjusted_synthetic_series_ends_on_the_real_contract():
    feed = SyntheticDataProvider(start="2025-01-02", registry=REGISTRY)
    series = continuous_series(feed, "ES", "2026-01-01", "2026-12-04", adjustment="ratio", registry=REGISTRY)
    z6 = feed.get_historical_data("ESZ6", "2026-12-04", "2026-12-04")["Close"].iloc[0]
    assert series.bars["Close"].iloc[-1] == z6
    unadjusted = feed.get_historical_data("ES", "2026-01-01", "2026-12-04")
    assert series.bars.index.equals(unadjusted.index)
    assert series.bars["Volume"].equals(unadjusted["Volume"])


def test_a_volume_rule_needs_the_volumes():
    sessions = pd.DatetimeIndex(["2026-01-05"])
    with pytest.raises(ConfigError, match="daily volumes"):
        choose_contracts(REGISTRY, "ES", sessions, RollRule(by_volume=True))
    with pytest.raises(ConfigError, match="days_before_expiry"):
        RollRule(days_before_expiry=-1)
