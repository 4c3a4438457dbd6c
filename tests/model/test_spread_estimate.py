"""The data-derived spread: Corwin–Schultz from the bars, causal, deterministic, floored at one tick."""

from __future__ import annotations

import numpy as np
import pytest
from copilot_quant.data.providers import SampleDataProvider
from copilot_quant.model.spread import DEFAULT_SPREAD, SpreadModel, grid_array, width_table
from copilot_quant.model.spread_estimate import rolling_estimate, two_bar_spreads
from hypothesis import given, settings
from hypothesis import strategies as st


def quoted_bars(spread: float, n: int = 400, seed: int = 3) -> np.ndarray:
    """Daily bars of a stock whose trades print at the bid or the ask around a random-walk value:
    ``(n, 4)`` open, high, low, close. A bar's high is an ask, its low a bid — what the estimator reads."""
    rng = np.random.default_rng(seed)
    rows = []
    value = 50.0
    for _ in range(n):
        steps = value * np.exp(np.cumsum(rng.normal(0, 0.01 / np.sqrt(78), 78)))  # 78 trades in a day
        sides = rng.choice([-1.0, 1.0], size=78)
        trades = steps * (1 + sides * spread / 2)
        rows.append((trades[0], trades.max(), trades.min(), trades[-1]))
        value = steps[-1]
    return np.array(rows)


def test_the_estimator_finds_the_spread_the_bars_were_made_with():
    bars = quoted_bars(0.004)  # 40 bps
    known = rolling_estimate(bars[:, 1], bars[:, 2], bars[:, 3], 20)
    assert np.nanmedian(known) == pytest.approx(0.004, rel=0.35)
    assert np.isnan(known[:20]).all()  # 20 two-bar estimates need 21 bars
    # a wider spread reads wider
    wider = quoted_bars(0.01)
    assert np.nanmedian(rolling_estimate(wider[:, 1], wider[:, 2], wider[:, 3], 20)) > np.nanmedian(known)


def test_bars_without_a_spread_quote_the_one_tick_floor_most_of_the_time():
    bars = quoted_bars(0.0)
    widths = DEFAULT_SPREAD.widths(*(grid_array(bars[:, k]) for k in range(4)))
    assert widths.min() >= 1
    assert np.mean(widths == 1) > 0.5


def test_a_bar_is_priced_from_the_bars_before_it_only():
    bars = quoted_bars(0.004, n=120)
    o, h, lo, c = (bars[:, k] for k in range(4))
    widths = DEFAULT_SPREAD.widths(o, h, lo, c)
    assert (widths[:21] == 1).all()  # no estimate yet: the floor
    for t in (21, 60, 119):
        # the bar's own prices, and everything after, do not change its width
        changed = bars.copy()
        changed[t:] *= 1.5
        assert DEFAULT_SPREAD.widths(*(changed[:, k] for k in range(4)))[t] == widths[t]
        # and the width of the next bar from the tail alone is the same number (the gateway's way)
        assert DEFAULT_SPREAD.next_width(o[:t], h[:t], lo[:t], c[:t]) == widths[t]
    assert widths[60] == round(rolling_estimate(h, lo, c, 20)[59] * c[59] / 0.01)


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from([0.0, 0.002, 0.01]), st.integers(2, 40))
def test_the_tail_gives_the_same_width_as_the_whole_series(seed, spread, window):
    bars = quoted_bars(spread, n=60, seed=seed)
    model = SpreadModel.from_bars(window=window)
    o, h, lo, c = (bars[:, k] for k in range(4))
    full = model._widths(o, h, lo, c)
    for t in range(1, 61):
        assert model.next_width(o[:t], h[:t], lo[:t], c[:t]) == full[t]


def test_the_bundled_sample_quotes_a_few_cents_on_aapl():
    frame = SampleDataProvider().get_historical_data("AAPL", interval="1d")
    prices = [grid_array(frame[c].to_numpy()) for c in ("Open", "High", "Low", "Close")]
    widths = DEFAULT_SPREAD.widths(*prices)
    assert widths.min() == 1
    # a few ticks at most half the time: not the 40-80 bps a mean of truncated two-bar estimates gives
    assert 1 <= np.median(widths) <= 5
    assert np.median(widths * 0.01 / prices[3]) < 0.003


def test_a_symbol_missing_bars_is_priced_from_its_own_bars():
    bars = quoted_bars(0.004, n=80)
    rows = np.sort(np.random.default_rng(1).choice(100, 80, replace=False))
    arrays = [np.full((100, 2), np.nan) for _ in range(4)]  # (bars, symbols): the first misses 20 bars
    for k in range(4):
        arrays[k][rows, 0] = bars[:, k]
        arrays[k][:, 1] = 20.0
    table = width_table(DEFAULT_SPREAD, *arrays)
    assert (table[rows, 0] == DEFAULT_SPREAD.widths(*(bars[:, k] for k in range(4)))).all()
    assert (table[:, 1] == 1).all()  # a flat price: no spread in its bars, the floor


def test_bad_bars_give_no_estimate():
    h = np.array([10.0, 0.0, 10.5, 10.4])
    lo = np.array([9.0, 9.5, 9.8, 9.9])
    c = np.array([9.5, 10.0, 10.2, 10.0])
    out = two_bar_spreads(h, lo, c)
    assert np.isnan(out[:3]).all()  # bar 0 has no pair; bar 1 is bad, so are both pairs with it
    assert np.isfinite(out[3])
