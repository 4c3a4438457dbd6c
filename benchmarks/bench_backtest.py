"""Backtest speed: this engine (guide-style strategy and fast path) against backtrader, same run.

The strategy everywhere is the SMA(10/30) crossover of the guide: 100 shares, market orders filled at
the next bar's open, 0.1 % commission, no slippage and no bid/ask spread (``spread=None``: backtrader has
none, and the trades are compared with its). In every engine a crossover counts only when the averages
differ by more than ``agreement.MARGIN`` (1e-9) of the slow one, as in ``bench_portfolio``: on cent prices
the two averages are sometimes equal in exact arithmetic, and the engines sum differently (backtrader with
``math.fsum``, numpy pairwise), so without the margin such a tie is ``fast < slow`` in one engine and
``fast > slow`` in another and the engines trade a bar apart. Seen in the full run: (b) S09 on 2019-05-13,
both means 192.466, ours fast < slow by 2 ulp, backtrader's fast > slow by 1 ulp; (c) at 2015-01-26 20:44,
both 375.897, ours fast > slow by 1 ulp, backtrader's equal. The margin changes ties only (see
``agreement``). Our two strategies are the example classes with the margin added (``GuideSma``,
``FastSma``); backtrader runs ``bench_portfolio``'s strategy. Cases:

(a) one symbol of real daily data (the bundled sample, AAPL 2000–2013),
(b) 20 synthetic symbols × 2,520 daily bars (one strategy instance per symbol, one shared account),
(c) one synthetic symbol × 1,000,000 minute bars — the fast path on all of it; the guide-style
    strategy and backtrader (~14k bars/s) on the first ``--subset`` bars, where all three are compared.

Every case checks that the trades agree (bar, symbol, price, quantity) and the final equity, prints a
``!! DISAGREEMENT`` block when they do not (and exits with status 1 at the end), and prints bars per
second and the speed-up over backtrader. Then the engine's own per-bar overhead is measured with a strategy that
returns no orders, early in the history and after 100k bars (it must stay flat: no O(n²) copying).

    python benchmarks/bench_backtest.py            # full run (about a minute)
    python benchmarks/bench_backtest.py --quick    # smaller sizes, a smoke test
"""

from __future__ import annotations

import argparse
import gc
import logging
import resource
import subprocess
import sys
import time
import tracemalloc
import warnings
from datetime import datetime

import numpy as np
import pandas as pd
from copilot_quant.backtest.engine import BacktestEngine
from copilot_quant.backtest.orders import Order
from copilot_quant.backtest.strategy import Strategy
from copilot_quant.data.providers import SampleDataProvider, SyntheticDataProvider
from copilot_quant.examples.sma_cross import (
    SimpleMovingAverage,
    SmaCrossFast,
    _crossover_orders,
    close_prices,
)

from agreement import DOWN, UP, Trade, print_agreement, without_ties  # benchmarks/ is on sys.path
from bench_portfolio import BacktraderPortfolio

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import backtrader as bt

SIZE = 100
Run = tuple[float, list[Trade], float]  # (seconds, trades, final equity)


# ---------------------------------------------------------------------------------------------- strategies
class GuideSma(SimpleMovingAverage):
    """The guide's strategy (the example's ``on_data``, line for line) with the tie margin."""

    def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order]:
        closes = close_prices(data, self.symbol)
        if isinstance(data.columns, pd.MultiIndex):
            if pd.isna(closes.iloc[-1]):
                return []
            closes = closes.dropna()
        if len(closes) < self.slow_period:
            return []
        fast_ma = closes.tail(self.fast_period).mean()
        slow_ma = closes.tail(self.slow_period).mean()
        if slow_ma * DOWN <= fast_ma <= slow_ma * UP:  # a tie (the example's ``fast_ma == slow_ma``)
            return []
        return _crossover_orders(self, bool(fast_ma > slow_ma))


class FastSma(SmaCrossFast):
    """The example's fast path with the tie margin, applied to the indicators once (no per-bar cost)."""

    def indicators(self, data: pd.DataFrame) -> dict[str, pd.Series]:
        lines = super().indicators(data)
        return {"fast": without_ties(lines["fast"], lines["slow"]), "slow": lines["slow"]}


# ---------------------------------------------------------------------------------------------- runners
def run_engine(strategies: list[Strategy], data: pd.DataFrame, symbols: list[str], capital: float) -> Run:
    engine = BacktestEngine(capital, commission=0.001, slippage=0.0, fill_at="next_open", spread=None)
    for strategy in strategies:
        engine.add_strategy(strategy)
    gc.collect()
    started = time.perf_counter()
    result = engine.run(symbols=symbols, data=data)
    elapsed = time.perf_counter() - started
    trades = sorted(
        (pd.Timestamp(f.timestamp).round("s"), f.symbol, round(f.fill_price, 9), f.signed_quantity)
        for f in result.fills
    )
    if result.errors:
        raise RuntimeError(f"strategy errors: {result.errors[:3]}")
    return elapsed, trades, result.final_value


def run_backtrader(frames: dict[str, pd.DataFrame], capital: float, minutes: bool = False) -> Run:
    cerebro = bt.Cerebro(stdstats=False)
    for symbol, frame in frames.items():
        kwargs = {"timeframe": bt.TimeFrame.Minutes, "compression": 1} if minutes else {}
        feed = bt.feeds.PandasData(dataname=frame.tz_convert("UTC").tz_localize(None), **kwargs)
        cerebro.adddata(feed, name=symbol)
    cerebro.addstrategy(BacktraderPortfolio)
    cerebro.broker.setcash(capital)
    cerebro.broker.setcommission(commission=0.001)
    gc.collect()
    started = time.perf_counter()
    (strategy,) = cerebro.run()
    elapsed = time.perf_counter() - started
    return elapsed, sorted(strategy.trades), cerebro.broker.getvalue()


def race(
    symbols: list[str],
    data: pd.DataFrame,
    frames: dict[str, pd.DataFrame],
    capital: float,
    minutes: bool = False,
) -> dict[str, Run]:
    """The three engines on the same bars (``data`` for ours, ``frames`` per symbol for backtrader), one
    strategy instance per symbol: the guide-style strategy, the fast path, backtrader."""
    return {
        "guide-style": run_engine([GuideSma(s, SIZE) for s in symbols], data, symbols, capital),
        "fast path": run_engine([FastSma(s, SIZE) for s in symbols], data, symbols, capital),
        "backtrader": run_backtrader(frames, capital, minutes),
    }


# ---------------------------------------------------------------------------------------------- report
def report(case: str, bars: int, runs: dict[str, Run]) -> bool:
    """Print each engine's speed and whether they agree; True when they do."""
    print(f"\n{case}  ({bars:,} symbol-bars)")
    reference = runs.get("backtrader")
    for name, (elapsed, trades, _value) in runs.items():
        speed = bars / elapsed
        ratio = f"{reference[0] / elapsed:8.1f}x backtrader" if reference and name != "backtrader" else ""
        print(f"  {name:<22} {elapsed:8.3f} s {speed:14,.0f} bars/s  {len(trades):6d} trades  {ratio}")
    return print_agreement(runs)


def case_a() -> bool:
    data = SampleDataProvider().get_historical_data("AAPL")
    capital = 100_000.0
    runs = race(["AAPL"], data, {"AAPL": data}, capital)
    return report("(a) real daily data: sample AAPL", len(data), runs)


def case_b(n_symbols: int, n_bars: int) -> bool:
    feed = SyntheticDataProvider(seed=2024, periods=n_bars)
    symbols = [f"S{k:02d}" for k in range(n_symbols)]
    frames = {s: feed.get_historical_data(s) for s in symbols}
    data = feed.get_multiple_symbols(symbols)
    capital = 10_000_000.0  # every symbol can be held at once: no order is refused in any engine
    runs = race(symbols, data, frames, capital)
    return report(f"(b) {n_symbols} synthetic symbols x {n_bars:,} daily bars", n_symbols * n_bars, runs)


def case_c(n_bars: int, subset: int) -> bool:
    data = SyntheticDataProvider(["X"], seed=99, periods=n_bars, interval="1m").get_historical_data(
        "X", interval="1m"
    )
    capital = 1_000_000.0
    part = data.iloc[:subset]
    runs = race(["X"], part, {"X": part}, capital, minutes=True)
    agree = report(f"(c) first {subset:,} of the synthetic minute bars: all three engines", subset, runs)

    elapsed, trades, _ = run_engine([FastSma("X", SIZE)], data, ["X"], capital)
    print(f"\n(c) fast path on all {len(data):,} minute bars")
    print(
        f"  fast path              {elapsed:8.3f} s {len(data) / elapsed:14,.0f} bars/s  {len(trades):6d} trades"
    )
    bt_speed = subset / runs["backtrader"][0]
    print(f"  vs backtrader's {bt_speed:,.0f} bars/s on the subset: {len(data) / elapsed / bt_speed:,.1f}x")
    prefix = [t for t in trades if t[0] <= part.index[-1]]
    same = prefix[: len(runs["fast path"][1])] == runs["fast path"][1]
    print(f"  trades inside the subset agree with the subset run: {'yes' if same else '!! NO: DISAGREEMENT'}")

    engine = BacktestEngine(capital, commission=0.001, slippage=0.0, spread=None)
    engine.add_strategy(SmaCrossFast("X", SIZE))
    gc.collect()
    tracemalloc.start()
    engine.run(symbols=["X"], data=data)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"  peak memory allocated by the run itself (tracemalloc): {peak / 2**20:,.0f} MB")
    child = subprocess.run(
        [sys.executable, __file__, "--memory-child", str(n_bars)], capture_output=True, text=True, check=True
    )
    print(f"  peak RSS of a fresh process that builds the bars and runs them: {child.stdout.strip()} MB")
    return agree and same


def memory_child(n_bars: int) -> None:
    """Build ``n_bars`` minute bars and run the fast path; print the process's peak RSS in MB."""
    data = SyntheticDataProvider(["X"], seed=99, periods=n_bars, interval="1m").get_historical_data(
        "X", interval="1m"
    )
    engine = BacktestEngine(1_000_000.0, commission=0.001, slippage=0.0, spread=None)
    engine.add_strategy(SmaCrossFast("X", SIZE))
    engine.run(symbols=["X"], data=data)
    print(f"{_peak_rss_mb():,.0f}")


def _peak_rss_mb() -> float:
    """This process's peak resident memory. VmHWM, because ru_maxrss survives exec on Linux and would
    report the parent benchmark's peak instead."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------------------------------------- overhead
class Idle(Strategy):
    """Returns no orders; records when it was called, so the gaps are the engine's own work."""

    def __init__(self, windows: list[tuple[int, int]]) -> None:
        super().__init__()
        self.windows = windows
        self.calls = 0
        self.stamps: dict[int, float] = {}

    def on_data(self, timestamp: datetime, data: pd.DataFrame) -> None:
        self.calls += 1
        for lo, hi in self.windows:
            if lo <= self.calls <= hi:
                self.stamps[self.calls] = time.perf_counter()


def engine_overhead(n_bars: int) -> None:
    data = SyntheticDataProvider(["X"], seed=5, periods=n_bars, interval="1m").get_historical_data(
        "X", interval="1m"
    )
    windows = [(1_000, 6_000), (n_bars - 5_000, n_bars)]
    idle = Idle(windows)
    engine = BacktestEngine(100_000.0, spread=None)
    engine.add_strategy(idle)
    gc.collect()
    started = time.perf_counter()
    engine.run(symbols=["X"], data=data)
    total = time.perf_counter() - started

    def per_bar(lo: int, hi: int) -> float:
        return (idle.stamps[hi] - idle.stamps[lo]) / (hi - lo) * 1e6

    print(f"\nengine overhead, guide-style path, no-order strategy ({n_bars:,} one-minute bars)")
    for lo, hi in windows:
        print(f"  history of {lo:>8,} bars: {per_bar(lo, hi):6.2f} us/bar")
    print(f"  whole run incl. setup: {total / n_bars * 1e6:6.2f} us/bar")
    ratio = per_bar(*windows[1]) / per_bar(*windows[0])
    print(f"  late/early ratio: {ratio:.2f} (1.0 = flat: no per-bar copying of the growing history)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke test)")
    parser.add_argument(
        "--subset", type=int, default=50_000, help="minute bars for the 3-way comparison in (c)"
    )
    parser.add_argument("--memory-child", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child)
        return
    logging.basicConfig(level=logging.WARNING)
    print(f"pandas {pd.__version__}, numpy {np.__version__}, backtrader {bt.__version__}")
    if args.quick:
        agree = {"(a)": case_a(), "(b)": case_b(4, 600), "(c)": case_c(100_000, 5_000)}
        engine_overhead(12_000)
    else:
        agree = {"(a)": case_a(), "(b)": case_b(20, 2_520), "(c)": case_c(1_000_000, args.subset)}
        engine_overhead(101_000)
    differ = [case for case, same in agree.items() if not same]
    if differ:
        print(
            f"\n!! DISAGREEMENT with backtrader or between our engines in {', '.join(differ)}: see the !! lines"
        )
        sys.exit(1)
    print("\nall engines made identical trades and final equity in every case")


if __name__ == "__main__":
    main()
