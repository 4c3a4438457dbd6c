"""The shared tick grid and spread model: quotes on the grid, buys at the ask, sells at the bid."""

from __future__ import annotations

import pytest
from copilot_quant.errors import ConfigError
from copilot_quant.model.costs import NoSlippage, PercentSlippage
from copilot_quant.model.orders import OrderSide
from copilot_quant.model.spread import (
    DEFAULT_SPREAD,
    SpreadModel,
    SpreadSlippage,
    grid_frame,
    limit_on_grid,
    midpoint_at,
    min_tick,
    resolve_spread,
    side_path,
    spread_model,
    spread_of,
    to_grid,
    touch_at,
    with_spread,
)
from hypothesis import given
from hypothesis import strategies as st

prices = st.floats(min_value=0.0001, max_value=50_000, allow_nan=False, allow_infinity=False)
models = st.builds(SpreadModel, ticks=st.integers(1, 20), bps=st.floats(0, 100))


def ticks_of(price: float) -> float:
    return price / min_tick(price)


def on_grid(price: float) -> bool:
    return abs(ticks_of(price) - round(ticks_of(price))) < 1e-6


def test_the_grid_is_cents_from_one_dollar_and_hundredths_of_a_cent_below():
    assert to_grid(56.137353095488) == 56.14
    assert to_grid(0.123456) == 0.1235
    assert min_tick(1.0) == 0.01
    assert min_tick(0.9999) == 0.0001
    assert to_grid(0.99996) == 1.0  # rounds up onto the cent grid


def test_one_tick_spread_quotes_the_last_as_bid_and_one_cent_above_as_ask():
    assert SpreadModel().quote(56.137353) == (56.14, 56.15)
    assert SpreadModel(ticks=2).quote(50.0) == (49.99, 50.01)
    assert SpreadModel(ticks=1, bps=10).quote(100.0) == (99.95, 100.05)  # 10 bps of $100 = 10 cents


def test_market_orders_fill_at_the_touch_then_slip_on_the_grid():
    model = SpreadSlippage(SpreadModel(ticks=2), PercentSlippage(0.001))
    assert model.adjust(50.0, OrderSide.BUY) == to_grid(50.01 * 1.001) == 50.06
    assert model.adjust(50.0, OrderSide.SELL) == to_grid(49.99 * 0.999) == 49.94
    assert SpreadSlippage(SpreadModel()).adjust(10.0, OrderSide.BUY) == 10.01


@given(prices, models)
def test_touch_prices_are_on_the_grid_and_at_least_one_tick_apart(price, model):
    bid, ask = model.quote(price)
    assert on_grid(bid)
    assert on_grid(ask)
    assert ask - bid >= min_tick(to_grid(price)) * (1 - 1e-6)
    assert bid <= to_grid(price) < ask
    assert model.touch(price, OrderSide.BUY) == ask >= bid == model.touch(price, OrderSide.SELL)


@given(prices, models, st.floats(0, 0.01))
def test_a_buy_never_fills_below_a_sell_and_grid_data_quotes_as_the_raw_data(price, model, rate):
    slip = SpreadSlippage(model, PercentSlippage(rate) if rate else NoSlippage())
    buy, sell = slip.adjust(price, OrderSide.BUY), slip.adjust(price, OrderSide.SELL)
    assert buy > sell
    assert on_grid(buy)
    assert on_grid(sell)
    # what makes backtest (raw data) and gateway (data on the grid) agree
    assert slip.adjust(to_grid(price), OrderSide.BUY) == buy


def test_grid_frame_rounds_prices_but_not_volumes():
    import pandas as pd

    frame = pd.DataFrame(
        {"Open": [56.137], "High": [57.0049], "Low": [0.123456], "Close": [56.2], "Volume": [1.5]}
    )
    out = grid_frame(frame)
    assert out.iloc[0].tolist() == [56.14, 57.0, 0.1235, 56.2, 1.5]
    assert frame["Open"].iloc[0] == 56.137  # a copy


def test_spread_options_parse_or_fail_with_a_named_error():
    assert spread_model(None) is None
    assert spread_model("off") is None
    assert spread_model(0) is None
    assert spread_model("2") == SpreadModel(ticks=2)
    assert spread_model(3) == SpreadModel(ticks=3)
    assert spread_model("5bps") == SpreadModel(ticks=1, bps=5.0)
    for bad in ("wide", "1.5", "-1", "-3bps"):
        with pytest.raises(ConfigError, match="spread"):
            spread_model(bad)
    with pytest.raises(ConfigError):
        SpreadModel(ticks=0)


def test_with_spread_wraps_once_and_spread_of_finds_it():
    plain = PercentSlippage(0.0005)
    assert with_spread(plain, None) is plain
    assert spread_of(plain) is None
    wrapped = with_spread(plain, SpreadModel())
    assert spread_of(wrapped) == SpreadModel()
    with pytest.raises(ConfigError, match="already"):
        with_spread(wrapped, SpreadModel())


def test_auto_is_the_data_derived_default_and_off_none_and_zero_turn_it_off():
    assert spread_model("auto") == DEFAULT_SPREAD == SpreadModel.from_bars()
    assert DEFAULT_SPREAD.estimate
    assert DEFAULT_SPREAD.ticks == 1
    for off in ("off", "none", "0", 0, None):
        assert spread_model(off) is None
    with pytest.raises(ConfigError, match="window"):
        SpreadModel.from_bars(window=1)


def test_a_spread_is_given_once_the_default_gives_way_to_one_in_the_slippage():
    plain = PercentSlippage(0.0005)
    assert spread_of(resolve_spread(plain)) == DEFAULT_SPREAD
    assert resolve_spread(plain, None) is plain
    assert spread_of(resolve_spread(plain, 2)) == SpreadModel(ticks=2)
    carried = with_spread(plain, SpreadModel(ticks=3))
    assert resolve_spread(carried, "auto") is carried
    for other in (None, 2, "off"):
        with pytest.raises(ConfigError, match="give the spread once"):
            resolve_spread(carried, other)


def test_buys_meet_the_asks_and_sells_the_bids_of_a_path():
    path = (10.0, 9.9, 10.2, 10.1)
    assert side_path(path, OrderSide.BUY, 1) == (10.01, 9.91, 10.21, 10.11)
    assert side_path(path, OrderSide.SELL, 1) == path
    assert side_path(path, OrderSide.SELL, 2) == (9.99, 9.89, 10.19, 10.09)
    assert side_path(path, OrderSide.BUY, 0) is path
    assert touch_at(10.0, OrderSide.BUY, 0) == 10.0


def test_the_midpoint_of_an_odd_spread_is_on_the_half_tick():
    assert midpoint_at(50.0, 1) == 50.005
    assert midpoint_at(50.0, 2) == 50.0
    assert midpoint_at(50.004, 0) == 50.0


@given(st.floats(0.0001, 5_000, allow_nan=False), st.sampled_from([OrderSide.BUY, OrderSide.SELL]))
def test_an_off_grid_limit_fills_on_the_grid_never_beyond_its_limit(price, side):
    fill = limit_on_grid(price, side)
    assert on_grid(fill)
    if side is OrderSide.BUY:
        assert fill <= price + 1e-9
    else:
        assert fill >= price - 1e-9
    assert abs(fill - price) <= min_tick(price) + 1e-9
    assert limit_on_grid(fill, side) == fill
