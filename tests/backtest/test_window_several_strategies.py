"""Several guide-style strategies ask for the same bar's window in turn: each gets its own window of exactly
the bars so far, and the windows built ahead are not thrown away between them (they were: with 20 strategies
on one run every on_data call rebuilt the next few dozen windows, ~30 builds a call)."""

from __future__ import annotations

import pandas as pd
from copilot_quant.backtest import window
from copilot_quant.backtest.window import prefix_viewer
from copilot_quant.data.providers import SyntheticDataProvider

FRAME = SyntheticDataProvider(seed=11).get_multiple_symbols(["A", "B"], "2021-01-01", "2021-06-30")
STRATEGIES = 3


def test_each_strategy_gets_its_own_window_of_the_bars_so_far():
    prefix = prefix_viewer(FRAME)
    for n in range(1, len(FRAME) + 1):
        windows = [prefix(n) for _ in range(STRATEGIES)]
        assert len({id(w) for w in windows}) == STRATEGIES  # one strategy's changes never reach another's
        for got in windows:
            pd.testing.assert_frame_equal(got, FRAME.iloc[:n])


def test_asking_for_the_same_bar_again_keeps_the_windows_built_ahead():
    built: list[int] = []

    def build(n: int) -> int:
        built.append(n)
        return n

    bars = 200
    ahead = window._BuiltAhead(build, bars)
    for n in range(1, bars + 1):
        assert [ahead(n) for _ in range(STRATEGIES)] == [n] * STRATEGIES

    # every bar once ahead, again for each later strategy, and at most one batch beyond the end
    assert len(built) <= bars * STRATEGIES + window._AHEAD
    assert sorted(set(built)) == list(range(1, bars + 1))
