"""Parameter-sweep speed: ``run_sweep`` against backtrader's ``optstrategy``, same grid, same run.

The grid is the guide's SMA crossover over ``fast`` × ``slow`` periods (100 shares, market orders at the
next bar's open, 0.1 % commission, no slippage) on the bundled AAPL sample (2000–2013, ~3,300 daily bars).
Timed:

* ``run_sweep`` with the fast-path strategy (``SmaCrossFast``), in one process and with ``--jobs`` workers;
* backtrader's ``cerebro.optstrategy`` with ``maxcpus=1`` and with ``maxcpus=--jobs``.

Each combination's final equity must agree between the two engines (they place the same trades: see
tests/backtest/test_backtrader_parity.py); the script prints bars per second, combinations per second and
the speed-up over backtrader at the same number of processes. Nothing is asserted about time.

    python benchmarks/bench_sweep.py              # 8 x 6 = 48 combinations
    python benchmarks/bench_sweep.py --quick      # 3 x 2 = 6, a smoke test
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import time
import warnings

import pandas as pd
from copilot_quant.backtest.sweep import parameter_grid, run_sweep
from copilot_quant.data.providers import SampleDataProvider
from copilot_quant.examples.sma_cross import SmaCrossFast

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import backtrader as bt

SIZE = 100
CAPITAL = 100_000.0


class BacktraderSma(bt.Strategy):
    params = (("fast", 10), ("slow", 30))

    def __init__(self) -> None:
        self.fast = bt.indicators.SMA(self.data.close, period=self.p.fast)
        self.slow = bt.indicators.SMA(self.data.close, period=self.p.slow)
        self.long = False

    def next(self) -> None:
        if self.fast[0] > self.slow[0] and not self.long:
            self.buy(size=SIZE)
            self.long = True
        elif self.fast[0] < self.slow[0] and self.long:
            self.sell(size=SIZE)
            self.long = False

    def stop(self) -> None:
        self.final_value = self.broker.getvalue()


def run_ours(data: pd.DataFrame, grid: list[dict], jobs: int) -> tuple[float, dict[tuple[int, int], float]]:
    gc.collect()
    started = time.perf_counter()
    sweep = run_sweep(
        lambda **p: SmaCrossFast("AAPL", SIZE, fast_period=p["fast"], slow_period=p["slow"]),
        grid,
        symbols=["AAPL"],
        data=data,
        engine_options={"initial_capital": CAPITAL, "commission": 0.001, "slippage": 0.0},
        jobs=jobs,
    )
    elapsed = time.perf_counter() - started
    table = sweep.table
    values = {
        (int(f), int(s)): float(v)
        for f, s, v in zip(table["fast"], table["slow"], table["final_value"], strict=True)
    }
    return elapsed, values


def run_backtrader(data: pd.DataFrame, fasts: list[int], slows: list[int], cpus: int):
    cerebro = bt.Cerebro(stdstats=False, optreturn=False, maxcpus=cpus)
    cerebro.adddata(bt.feeds.PandasData(dataname=data.tz_convert("UTC").tz_localize(None)), name="AAPL")
    cerebro.optstrategy(BacktraderSma, fast=fasts, slow=slows)
    cerebro.broker.setcash(CAPITAL)
    cerebro.broker.setcommission(commission=0.001)
    gc.collect()
    started = time.perf_counter()
    runs = cerebro.run()
    elapsed = time.perf_counter() - started
    values = {(int(s.p.fast), int(s.p.slow)): float(s.final_value) for (s,) in runs}
    return elapsed, values


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a 3 x 2 grid, as a smoke test")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="worker processes")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # a sweep logs nothing useful here; keep the output to the figures

    fasts = [5, 10, 20] if args.quick else [4, 6, 8, 10, 12, 15, 20, 25]
    slows = [30, 60] if args.quick else [30, 40, 50, 60, 80, 100]
    grid = [{"fast": f, "slow": s} for f in fasts for s in slows]
    assert grid == parameter_grid({"fast": fasts, "slow": slows})  # the order optstrategy uses too
    data = SampleDataProvider().get_historical_data("AAPL")
    bars = len(data) * len(grid)
    print(f"sweep of {len(grid)} combinations x {len(data):,} daily bars ({bars:,} bars in all)")

    results = {}
    for jobs in sorted({1, args.jobs}):
        results[f"run_sweep, {jobs} process(es)"] = (jobs, *run_ours(data, grid, jobs))
        results[f"backtrader optstrategy, {jobs} cpu(s)"] = (jobs, *run_backtrader(data, fasts, slows, jobs))
    reference = {
        jobs: elapsed for name, (jobs, elapsed, _) in results.items() if name.startswith("backtrader")
    }
    for name, (jobs, elapsed, _values) in results.items():
        ratio = "" if name.startswith("backtrader") else f"{reference[jobs] / elapsed:7.1f}x backtrader"
        print(
            f"  {name:<34} {elapsed:8.3f} s {bars / elapsed:12,.0f} bars/s "
            f"{len(grid) / elapsed:8.1f} combos/s  {ratio}"
        )
    ours = results["run_sweep, 1 process(es)"][2]
    theirs = results["backtrader optstrategy, 1 cpu(s)"][2]
    differ = [k for k in ours if abs(ours[k] - theirs[k]) > 1e-6 * abs(theirs[k])]
    print(f"  final equity of every combination: {'EQUAL' if not differ else f'DIFFERS for {differ[:5]}'}")


if __name__ == "__main__":
    main()
