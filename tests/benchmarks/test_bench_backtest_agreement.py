"""``benchmarks/bench_backtest.py`` claims identical trades in every engine: its agreement check, on small
cases of its shapes (b) and (c) cut around a bar where the two moving averages tie.

At those bars the fast and the slow average are equal in exact arithmetic, and the engines' sums round them
to different sides (backtrader ``math.fsum``, ours numpy), which made the full benchmark disagree with
backtrader. The margin (``agreement.MARGIN``) in every engine's strategy makes them agree; with the margin
off the same small cases must disagree, so the cases keep exercising a tie.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from copilot_quant.data.providers import SyntheticDataProvider
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

Case = tuple[list[str], pd.DataFrame, dict[str, pd.DataFrame], bool]  # symbols, data, frames, minutes


def daily_symbols() -> Case:
    """Case (b)'s shape: several symbols' daily bars, one account. S09 ties at 2019-05-13 (both 192.466)."""
    feed = SyntheticDataProvider(seed=2024, periods=2_520)
    symbols = ["S08", "S09"]
    start, end = "2019-03-01", "2019-07-01"
    data = feed.get_multiple_symbols(symbols).loc[start:end]
    frames = {s: feed.get_historical_data(s).loc[start:end] for s in symbols}
    return symbols, data, frames, False


def minute_bars() -> Case:
    """Case (c)'s shape: one symbol's minute bars. It ties at 2015-01-26 20:44 (both 375.897)."""
    data = SyntheticDataProvider(["X"], seed=99, periods=50_000, interval="1m").get_historical_data(
        "X", interval="1m"
    )
    at = data.index.get_loc(pd.Timestamp("2015-01-26 20:44", tz="UTC"))
    part = data.iloc[at - 200 : at + 100]
    return ["X"], part, {"X": part}, True


TIES = {"daily_symbols": ("S09", "2019-05-13 20:00"), "minute_bars": ("X", "2015-01-26 20:44")}


def exact_means(closes: pd.Series, stamp: str) -> tuple[Fraction, Fraction]:
    upto = closes.loc[: pd.Timestamp(stamp, tz="UTC")]
    return sum(map(Fraction, upto.iloc[-10:])) / 10, sum(map(Fraction, upto.iloc[-30:])) / 30


@pytest.mark.parametrize("load", [daily_symbols, minute_bars], ids=lambda f: f.__name__)
def test_every_engine_makes_the_same_trades_through_a_tie(bench, load: Callable[[], Case], capsys):
    symbols, data, frames, minutes = load()
    symbol, stamp = TIES[load.__name__]
    fast, slow = exact_means(frames[symbol]["Close"], stamp)
    assert fast == slow, "the case should contain a tie of the two averages"

    runs = bench.race(symbols, data, frames, 10_000_000.0, minutes)

    agree = bench.print_agreement(runs)
    assert agree, capsys.readouterr().out
    assert len(runs["backtrader"][1]) > 5, "the case should trade"


@pytest.mark.parametrize("load", [daily_symbols, minute_bars], ids=lambda f: f.__name__)
def test_without_the_margin_the_tie_splits_the_engines(bench, load: Callable[[], Case], monkeypatch, capsys):
    import agreement
    import bench_portfolio

    for module in (agreement, bench, bench_portfolio):  # UP and DOWN as each strategy reads them
        monkeypatch.setattr(module, "UP", 1.0)
        monkeypatch.setattr(module, "DOWN", 1.0)
    symbols, data, frames, minutes = load()

    runs = bench.race(symbols, data, frames, 10_000_000.0, minutes)

    assert not bench.print_agreement(runs)
    out = capsys.readouterr().out
    assert "!! DISAGREEMENT" in out
    assert "backtrader" in out


def test_a_disagreement_is_printed_loudly_and_reported(bench, capsys):
    t = pd.Timestamp("2019-05-14 20:00", tz="UTC")
    day = pd.Timedelta(days=1)
    ours = [(t, "S08", 713.59, -100.0), (t + day, "S09", 196.38, 100.0)]
    theirs = [(t, "S08", 713.59, -100.0), (t, "S09", 192.75, 100.0)]

    assert bench.print_agreement({"ours": (1.0, ours, 1_000.0), "same": (2.0, list(ours), 1_000.0)})
    assert "!!" not in capsys.readouterr().out

    assert not bench.print_agreement({"ours": (1.0, ours, 1_000.0), "backtrader": (2.0, theirs, 1_010.0)})
    out = capsys.readouterr().out
    assert "!! DISAGREEMENT ours vs backtrader: trades differ from trade #1" in out
    assert "final equity 1,000.00 vs 1,010.00" in out
    assert "only in ours (1): 2019-05-15 20:00 S09 +100 @ 196.38" in out
    assert "only in backtrader (1): 2019-05-14 20:00 S09 +100 @ 192.75" in out


def test_equal_trades_with_a_different_final_equity_disagree(bench, capsys):
    trades = [(pd.Timestamp("2024-01-02", tz="UTC"), "X", 10.0, 1.0)]
    assert not bench.print_agreement({"a": (1.0, trades, 100.0), "b": (1.0, trades, 101.0)})
    assert "!! DISAGREEMENT a vs b: same trades" in capsys.readouterr().out


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), start=st.integers(500, 50_000), bars=st.integers(60, 200))
def test_cent_prices_that_often_tie_trade_alike_in_every_engine(
    bench, seed: int, start: int, bars: int, capsys
):
    """A walk of a cent or two a bar: the averages often tie, and each engine rounds a tie its own way."""
    cents = start + np.cumsum(np.random.default_rng(seed).choice([-2, -1, 0, 0, 1, 2], bars))
    index = pd.date_range("2024-01-02 21:00", periods=bars, freq="B", tz="UTC")
    close = pd.Series(cents / 100, index=index)
    opens = close.shift(1).fillna(close.iloc[0])
    data = pd.DataFrame(
        {"Open": opens, "High": np.maximum(opens, close), "Low": np.minimum(opens, close), "Close": close}
    ).assign(Volume=1e6)

    runs = bench.race(["X"], data, {"X": data}, 10_000_000.0)

    assert bench.print_agreement(runs), capsys.readouterr().out
