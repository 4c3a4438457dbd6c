"""Synthetic futures chains and forex pairs: what `--data synthetic` serves for ESZ6, MES and EUR.USD."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from copilot_quant.data.calendars import is_market_open
from copilot_quant.data.resample import aggregate_bars
from copilot_quant.data.synthetic import SyntheticDataProvider
from copilot_quant.data.synthetic_markets import CARRY, quote_frames
from copilot_quant.errors import DataError
from copilot_quant.model.instruments import InstrumentRegistry
from hypothesis import given, settings
from hypothesis import strategies as st

REGISTRY = InstrumentRegistry(reference=date(2026, 12, 1))


def provider(**kwargs) -> SyntheticDataProvider:
    return SyntheticDataProvider(start="2025-01-02", registry=REGISTRY, **kwargs)


def on_grid(values: pd.Series | np.ndarray, tick: float, offset: float = 0.0) -> bool:
    steps = (np.asarray(values) - offset) / tick
    return bool(np.allclose(steps, np.round(steps), atol=1e-6))


def test_a_contract_prints_on_its_tick_grid_in_whole_contracts_with_valid_bars():
    bars = provider().get_historical_data("ESZ6", "2026-06-01", "2026-12-31")
    assert len(bars) > 100
    for column in ("Open", "High", "Low", "Close"):
        assert on_grid(bars[column], 0.25)
    assert on_grid(bars["Volume"], 1.0)
    assert (bars["Volume"] > 0).all()
    assert (bars["High"] >= bars[["Open", "Close"]].max(axis=1)).all()
    assert (bars["Low"] <= bars[["Open", "Close"]].min(axis=1)).all()
    zn = provider().get_historical_data("ZNZ6", "2026-11-01", "2026-12-31")
    assert on_grid(zn["Close"], 1 / 64)


def test_chains_are_deterministic_by_seed():
    one = provider(seed=3).get_historical_data("MESH7", "2026-10-01", "2026-12-05")
    two = provider(seed=3).get_historical_data("MESH7", "2026-10-01", "2026-12-05")
    other = provider(seed=4).get_historical_data("MESH7", "2026-10-01", "2026-12-05")
    pd.testing.assert_frame_equal(one, two)
    assert not one["Close"].equals(other["Close"])


def test_a_contract_trades_from_its_listing_through_its_last_trade_date_in_globex_sessions():
    bars = provider().get_historical_data("ESZ6", "2025-01-01", "2026-12-31")
    expiry = REGISTRY.resolve("ESZ6").expiry
    assert expiry == date(2026, 12, 18)
    last = bars.index[-1].tz_convert("America/Chicago")
    assert last == pd.Timestamp("2026-12-18 16:00", tz="America/Chicago")
    assert bars.index[0].date() >= date(2025, 11, 1)  # listed about 13 months ahead, not for ever
    assert all(t.tz_convert("America/Chicago").hour == 16 or t.hour in (17, 18) for t in bars.index)


def test_the_basis_converges_to_the_underlying_at_expiry():
    flat = provider(annual_volatility=0.0, annual_drift=0.0, start_price=2000.0)
    bars = flat.get_historical_data("ESZ6", "2026-01-01", "2026-12-31")
    premium = bars["Close"] - 2000.0
    assert premium.iloc[0] > 40  # about a year of 3 % carry on 2000
    assert (premium.diff().dropna() <= 0).all()  # shrinks every session
    assert premium.iloc[-1] == 0.0  # the last trade date: the contract is the index
    days = (pd.Timestamp("2026-12-18") - pd.Timestamp("2026-06-01")).days
    june = bars.loc["2026-06-01"]["Close"].iloc[0]
    assert june == pytest.approx(2000 * np.exp(CARRY * days / 365), abs=0.25)


def test_micro_and_full_size_contracts_share_one_underlying():
    feed = provider()
    es = feed.get_historical_data("ESZ6", "2026-11-01", "2026-12-05")
    mes = feed.get_historical_data("MESZ6", "2026-11-01", "2026-12-05")
    pd.testing.assert_frame_equal(es[["Open", "High", "Low", "Close"]], mes[["Open", "High", "Low", "Close"]])


def test_the_front_month_holds_the_volume_until_traders_roll_about_eight_days_before_expiry():
    feed = provider()
    z6 = feed.get_historical_data("ESZ6", "2026-11-20", "2026-12-18")["Volume"]
    h7 = feed.get_historical_data("ESH7", "2026-11-20", "2026-12-18")["Volume"]
    share = z6 / (z6 + h7)
    assert share.loc["2026-11-30"].iloc[0] > 0.9
    assert share.loc["2026-12-16"].iloc[0] < 0.1
    crossing = share.index[share < 0.5][0].tz_convert("America/Chicago").date()
    assert date(2026, 12, 9) <= crossing <= date(2026, 12, 11)


def test_minute_bars_aggregate_exactly_to_the_daily_bars_and_skip_the_maintenance_break():
    feed = provider()
    minutes = feed.get_historical_data("MESZ6", "2026-11-30 12:00", "2026-12-04", "1m")  # whole sessions
    daily = feed.get_historical_data("MESZ6", "2026-12-01", "2026-12-04", "1d")
    rebuilt = aggregate_bars(minutes, "1m", "1d", "CME_GLOBEX")
    common = daily.index.intersection(rebuilt.index)
    assert len(common) >= 3
    pd.testing.assert_frame_equal(rebuilt.loc[common], daily.loc[common], check_freq=False)
    starts = minutes.index - pd.Timedelta(minutes=1)
    assert all(is_market_open(t, "CME_GLOBEX") for t in starts)
    chicago = minutes.index.tz_convert("America/Chicago")
    assert not ((chicago.hour == 16) & (chicago.minute > 0)).any()


def test_the_continuous_symbol_serves_the_contract_of_each_day():
    feed = provider()
    continuous = feed.get_historical_data("MES", "2026-08-01", "2026-10-31")
    for stamp in continuous.index[::7]:
        day = stamp.tz_convert("America/Chicago").date()
        contract = REGISTRY.contract_on("MES", day)
        row = feed.get_historical_data(contract.symbol, stamp, stamp)
        assert continuous.loc[stamp, "Close"] == row["Close"].iloc[0]
    # September 2026: MESU6 expires on the 18th, the series moves to MESZ6 five weekdays before
    before = continuous.loc["2026-09-10"]["Close"].iloc[0]
    assert before == feed.get_historical_data("MESU6", "2026-09-10", "2026-09-10")["Close"].iloc[0]
    after = continuous.loc["2026-09-14"]["Close"].iloc[0]
    assert after == feed.get_historical_data("MESZ6", "2026-09-14", "2026-09-14")["Close"].iloc[0]


def test_a_forex_pair_is_midpoints_half_a_tick_above_its_bid_with_no_trade_volume():
    bars = provider().get_historical_data("EUR.USD", "2026-11-01", "2026-12-05")
    tick = REGISTRY.resolve("EUR.USD").tick_size
    assert 0.5 < bars["Close"].iloc[-1] < 2.5
    assert on_grid(bars["Close"], tick, offset=tick / 2)
    assert (bars["Volume"] == 0).all()
    bid, ask = quote_frames(bars, tick)
    assert on_grid(bid["Close"], tick)
    assert on_grid(ask["Close"], tick)
    assert np.allclose(ask["Close"] - bid["Close"], tick)
    new_york = bars.index.tz_convert("America/New_York")
    assert (new_york.hour == 17).all()
    assert (new_york.day_of_week < 5).all()


def test_forex_hours_run_round_the_clock_but_not_on_the_weekend():
    hours = provider().get_historical_data("EUR.USD", "2026-12-04", "2026-12-08", "1h")
    new_york = hours.index.tz_convert("America/New_York")
    # IB's clock hours (data/bar_grid.py): a session's first bar is 17:15-18:00, then 18:00-19:00 ... the
    # last 16:00-17:00: the sessions labelled Friday, Monday and Tuesday, 24 bars each
    assert len(hours) == 24 * 3
    assert (new_york.minute == 0).all()
    assert not ((new_york.day_of_week == 5) | ((new_york.day_of_week == 6) & (new_york.hour < 18))).any()
    assert not ((new_york.hour == 17) & (new_york.minute == 15)).any()  # the roll's quarter hour is closed
    jpy = provider().get_historical_data("USD.JPY", "2026-12-01", "2026-12-04")
    assert jpy["Close"].iloc[-1] > 20


def test_stock_tickers_that_are_futures_roots_stay_stocks():
    colgate = provider().get_historical_data("CL", "2026-12-01", "2026-12-04")
    assert on_grid(colgate["Close"], 0.01)
    assert (colgate.index.tz_convert("America/New_York").hour == 16).all()
    crude = provider().get_historical_data("CL=F", "2026-12-01", "2026-12-04")
    assert (crude.index.tz_convert("America/Chicago").hour == 16).all()


def test_the_provider_serves_a_pairs_bid_and_ask_and_describes_each_instrument():
    feed = provider()
    bid, ask = feed.quote_bars("EUR.USD", "2026-12-01", "2026-12-04", "1h")
    mid = feed.get_historical_data("EUR.USD", "2026-12-01", "2026-12-04", "1h")
    assert np.allclose((bid["Close"] + ask["Close"]) / 2, mid["Close"])
    with pytest.raises(DataError, match="not a forex pair"):
        feed.quote_bars("ESZ6")
    info = feed.get_ticker_info("MESZ6")
    assert (info["currency"], info["calendar"], info["multiplier"], info["tick_size"]) == (
        "USD",
        "CME_GLOBEX",
        5.0,
        0.25,
    )
    assert feed.get_ticker_info("EUR.USD")["calendar"] == "FX"
    assert feed.get_ticker_info("AAPL")["calendar"] == "XNYS"


def test_a_one_digit_contract_year_is_read_in_the_decade_of_the_window():
    feed = SyntheticDataProvider(start="2015-01-02", registry=REGISTRY)
    old = feed.get_historical_data("MESZ6", "2016-10-01", "2016-12-31")
    assert old.index[-1].tz_convert("America/Chicago").date() == date(2016, 12, 16)
    new = feed.get_historical_data("MESZ6", "2026-10-01", "2026-12-31")
    assert new.index[-1].tz_convert("America/Chicago").date() == date(2026, 12, 18)
    assert feed.get_historical_data("MESZ16", "2016-12-01", "2016-12-31").equals(old.loc["2016-12-01":])


@given(
    symbol=st.sampled_from(["ESH7", "MNQZ6", "CLF7", "GCG7", "ZNH7", "EUR.USD", "USD.JPY", "GBP.USD"]),
    seed=st.integers(0, 10_000),
    day=st.dates(min_value=date(2026, 9, 1), max_value=date(2026, 11, 30)),
)
@settings(max_examples=20, deadline=None)
def test_every_contract_and_pair_prints_valid_bars_on_its_grid_at_every_interval(symbol, seed, day):
    feed = SyntheticDataProvider(start="2026-01-02", seed=seed, registry=REGISTRY)
    instrument = REGISTRY.resolve(symbol)
    start = pd.Timestamp(day) - pd.Timedelta(days=3)
    minutes = feed.get_historical_data(symbol, start, day, "1m")
    daily = feed.get_historical_data(symbol, start, day, "1d")
    assert len(minutes) > 0
    offset = instrument.tick_size / 2 if instrument.sec_type == "CASH" else 0.0
    for bars in (minutes, daily):
        for column in ("Open", "High", "Low", "Close"):
            assert on_grid(bars[column], instrument.tick_size, offset)
        assert (bars["High"] >= bars[["Open", "Close"]].max(axis=1)).all()
        assert (bars["Low"] <= bars[["Open", "Close"]].min(axis=1)).all()
        assert on_grid(bars["Volume"], 1.0)
    rebuilt = aggregate_bars(minutes, "1m", "1d", instrument.calendar)
    whole = daily.index[daily.index > minutes.index[0] + pd.Timedelta(days=1)]  # sessions fully inside
    pd.testing.assert_frame_equal(rebuilt.loc[whole], daily.loc[whole], check_freq=False)
