"""Backtest speed: this engine (guide-style strategy and fast path) against backtrader, same run.

The strategy everywhere is the SMA(10/30) crossover of the guide: 100 shares, market orders filled at
the next bar's open, 0.1 % commission, no slippage and no bid/ask spread (``spread=None``: backtrader has
none, and the trades are compared with its). Cases:

(a) one symbol of real daily data (the bundled sample, AAPL 2000–2013),
(b) 20 synthetic symbols × 2,520 daily bars (one strategy instance per symbol, one shared account),
(c) one synthetic symbol × 1,000,000 minute bars — the fast path on all of it; the guide-style
    strategy and backtrader (~14k bars/s) on the first ``--subset`` bars, where all three are compared.

Every case checks that the trades agree (bar, price, quantity) and prints bars per second and the
speed-up over backtrader. Then the engine's own per-bar overhead is measured with a strategy that
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
from copilot_quant.backtest.strategy import Strategy
from copilot_quant.data.providers import SampleDataProvider, SyntheticDataProvider
from copilot_quant.examples.sma_cross import SimpleMovingAverage, SmaCrossFast

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import backtrader as bt

SIZE = 100
Trade = tuple[pd.Timestamp, str, float, float]  # (bar, symbol, price, signed quantity)


# ---------------------------------------------------------------------------------------------- runners
def run_engine(strategies: list[Strategy], data: pd.DataFrame, symbols: list[str], capital: float):
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


class BacktraderSma(bt.Strategy):
    params = (("fast", 10), ("slow", 30), ("size", SIZE))

    def __init__(self) -> None:
        self.smas = [
            (bt.indicators.SMA(d.close, period=self.p.fast), bt.indicators.SMA(d.close, period=self.p.slow))
            for d in self.datas
        ]
        self.long = [False] * len(self.datas)
        self.trades: list[Trade] = []

    def next(self) -> None:
        for k, (data, (fast, slow)) in enumerate(zip(self.datas, self.smas, strict=True)):
            if fast[0] > slow[0] and not self.long[k]:
                self.buy(data=data, size=self.p.size)
                self.long[k] = True
            elif fast[0] < slow[0] and self.long[k]:
                self.sell(data=data, size=self.p.size)
                self.long[k] = False

    def notify_order(self, order) -> None:
        if order.status == order.Completed:
            stamp = pd.Timestamp(bt.num2date(order.executed.dt)).tz_localize("UTC").round("s")
            self.trades.append((stamp, order.data._name, round(order.executed.price, 9), order.executed.size))


def run_backtrader(frames: dict[str, pd.DataFrame], capital: float, minutes: bool = False):
    cerebro = bt.Cerebro(stdstats=False)
    for symbol, frame in frames.items():
        kwargs = {"timeframe": bt.TimeFrame.Minutes, "compression": 1} if minutes else {}
        feed = bt.feeds.PandasData(dataname=frame.tz_convert("UTC").tz_localize(None), **kwargs)
        cerebro.adddata(feed, name=symbol)
    cerebro.addstrategy(BacktraderSma)
    cerebro.broker.setcash(capital)
    cerebro.broker.setcommission(commission=0.001)
    gc.collect()
    started = time.perf_counter()
    (strategy,) = cerebro.run()
    elapsed = time.perf_counter() - started
    return elapsed, sorted(strategy.trades), cerebro.broker.getvalue()


# ---------------------------------------------------------------------------------------------- report
def report(case: str, bars: int, runs: dict[str, tuple[float, list[Trade], float]]) -> None:
    print(f"\n{case}  ({bars:,} symbol-bars)")
    reference = runs.get("backtrader")
    for name, (elapsed, trades, _value) in runs.items():
        speed = bars / elapsed
        ratio = f"{reference[0] / elapsed:8.1f}x backtrader" if reference and name != "backtrader" else ""
        print(f"  {name:<22} {elapsed:8.3f} s {speed:14,.0f} bars/s  {len(trades):6d} trades  {ratio}")
    print_agreement(runs)


def print_agreement(runs: dict[str, tuple[float, list, float]]) -> None:
    """Whether every engine made the first one's trades and final equity (shared with bench_portfolio)."""
    names = list(runs)
    base_trades, base_value = runs[names[0]][1], runs[names[0]][2]
    for name in names[1:]:
        trades, value = runs[name][1], runs[name][2]
        same = trades == base_trades
        close_value = abs(value - base_value) <= 1e-6 * abs(base_value)
        print(
            f"  trades {names[0]} vs {name}: {'IDENTICAL' if same else 'DIFFER'}; "
            f"final equity {'equal' if close_value else 'DIFFERS'} ({base_value:,.2f} vs {value:,.2f})"
        )
        if not same:
            diff = [(a, b) for a, b in zip(base_trades, trades, strict=False) if a != b][:3]
            print(f"    first differences: {diff}")


def case_a() -> None:
    data = SampleDataProvider().get_historical_data("AAPL")
    capital = 100_000.0
    runs = {
        "guide-style": run_engine([SimpleMovingAverage("AAPL", SIZE)], data, ["AAPL"], capital),
        "fast path": run_engine([SmaCrossFast("AAPL", SIZE)], data, ["AAPL"], capital),
        "backtrader": run_backtrader({"AAPL": data}, capital),
    }
    report("(a) real daily data: sample AAPL", len(data), runs)


def case_b(n_symbols: int, n_bars: int) -> None:
    feed = SyntheticDataProvider(seed=2024, periods=n_bars)
    symbols = [f"S{k:02d}" for k in range(n_symbols)]
    frames = {s: feed.get_historical_data(s) for s in symbols}
    data = feed.get_multiple_symbols(symbols)
    capital = 10_000_000.0  # every symbol can be held at once: no order is refused in any engine
    runs = {
        "guide-style": run_engine([SimpleMovingAverage(s, SIZE) for s in symbols], data, symbols, capital),
        "fast path": run_engine([SmaCrossFast(s, SIZE) for s in symbols], data, symbols, capital),
        "backtrader": run_backtrader(frames, capital),
    }
    report(f"(b) {n_symbols} synthetic symbols x {n_bars:,} daily bars", n_symbols * n_bars, runs)


def case_c(n_bars: int, subset: int) -> None:
    data = SyntheticDataProvider(["X"], seed=99, periods=n_bars, interval="1m").get_historical_data(
        "X", interval="1m"
    )
    capital = 1_000_000.0
    part = data.iloc[:subset]
    runs = {
        "fast path": run_engine([SmaCrossFast("X", SIZE)], part, ["X"], capital),
        "guide-style": run_engine([SimpleMovingAverage("X", SIZE)], part, ["X"], capital),
        "backtrader": run_backtrader({"X": part}, capital, minutes=True),
    }
    report(f"(c) first {subset:,} of the synthetic minute bars: all three engines", subset, runs)

    elapsed, trades, _ = run_engine([SmaCrossFast("X", SIZE)], data, ["X"], capital)
    print(f"\n(c) fast path on all {len(data):,} minute bars")
    print(
        f"  fast path              {elapsed:8.3f} s {len(data) / elapsed:14,.0f} bars/s  {len(trades):6d} trades"
    )
    bt_speed = subset / runs["backtrader"][0]
    print(f"  vs backtrader's {bt_speed:,.0f} bars/s on the subset: {len(data) / elapsed / bt_speed:,.1f}x")
    prefix = [t for t in trades if t[0] <= part.index[-1]]
    agree = prefix[: len(runs["fast path"][1])] == runs["fast path"][1]
    print(f"  trades inside the subset agree with the subset run: {'yes' if agree else 'NO'}")

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
        case_a()
        case_b(4, 600)
        case_c(100_000, 5_000)
        engine_overhead(12_000)
        return
    case_a()
    case_b(20, 2_520)
    case_c(1_000_000, args.subset)
    engine_overhead(101_000)


if __name__ == "__main__":
    main()
