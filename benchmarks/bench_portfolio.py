"""Portfolio speed: one strategy trading many symbols on one account, against backtrader, same run.

The strategy everywhere is an SMA(10/30) crossover applied to every symbol: buy 100 shares when the fast
average is above the slow one and the symbol is flat, sell them when it falls below; market orders fill
at the next bar's open, 0.1 % commission, no slippage and no bid/ask spread (backtrader has none),
capital large enough that no order is refused.
One strategy instance handles all the symbols (not one instance per symbol). Cases:

(1) 100 synthetic symbols × 2,520 daily bars:
    * guide-style — ``on_data`` reads ``data[('Close', symbol)]`` for each symbol and compares the means of
      the last 10 and 30 closes, twice: with numpy on the column's values (``guide (numpy)``: the strategy's
      own arithmetic is small, what remains is the engine and the column access) and with the guide's
      ``closes.tail(n).mean()`` (``guide (pandas)``);
    * fast path — one :class:`FastStrategy` whose indicators are per-symbol frames, read by name in
      ``on_bar`` (``fast[symbol]``);
    * backtrader, with its SMA indicators.
    It prints each engine's time, the speed-up over backtrader, whether the trades agree (bar, symbol,
    price, quantity), and for the guide-style runs the share of the bar loop spent outside ``on_data`` (the
    engine's own work each step: building the data window, matching and booking orders, marking).
(2) the fast path on 10 / 100 / 500 symbols × 2,520 bars: µs per symbol-bar, to show it is linear.
(3) one symbol × 1,000,000 minute bars: the fast path (``on_bar(timestamp, fast, slow)``, the default) and
    the same strategy with ``FastStrategy.bar_timestamps = False`` (``values only``: ``on_bar(fast, slow)``,
    no datetime built per bar) against a plain Python loop over the same indicator values doing the same
    bookkeeping (signal, fill at the next open, commission, cash and position); all three must agree.
    Goal (#12): the default at least 1/3 of the plain loop's speed. Last figures (case 3 alone, best of 5,
    load average 1.2-2.3): fast path 0.506 s, 0.37x the plain loop's 0.188 s; values only 0.457 s, 0.41x
    (0.28x and 0.35x on a quiet machine before #12's fifth round).

Times are CPU times of this process (``time.process_time``): the machine is shared, and CPU time is what
other jobs disturb least. ``--repeat`` runs each engine that many times, interleaved, and keeps the best.

    python benchmarks/bench_portfolio.py            # full run (a few minutes, backtrader dominates)
    python benchmarks/bench_portfolio.py --quick    # smaller sizes, a smoke test
"""

from __future__ import annotations

import argparse
import gc
import logging
import sys
import time
import warnings
from collections.abc import Callable, Mapping
from datetime import datetime

import numpy as np
import pandas as pd
from copilot_quant.backtest.engine import BacktestEngine
from copilot_quant.backtest.indicators import SymbolValues
from copilot_quant.backtest.orders import Order, OrderSide
from copilot_quant.backtest.strategy import FastStrategy, Strategy
from copilot_quant.data.providers import SyntheticDataProvider
from copilot_quant.examples.sma_cross import trailing_mean

from agreement import DOWN, UP, Trade, print_agreement  # benchmarks/ is on sys.path

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import backtrader as bt

SIZE = 100
FAST, SLOW = 10, 30
COMMISSION = 0.001
#: A crossover counts when the averages differ by more than ``agreement.MARGIN`` (``UP``/``DOWN``): see there.
Run = tuple[float, list[Trade], float]  # (CPU seconds, trades, final equity)


# ---------------------------------------------------------------------------------------------- strategies
class GuidePortfolio(Strategy):
    """The guide's shape: ``on_data`` reads each symbol's closes from the window with ``data[('Close', s)]``.

    ``arithmetic='numpy'`` averages the column's values with numpy; ``'pandas'`` is the guide's own
    ``closes.tail(n).mean()``. It times itself: CPU time inside ``on_data``, and the span from the start of
    the first call to the end of the last, so the engine's share of the steps excludes one-off set-up.
    """

    def __init__(self, arithmetic: str = "numpy") -> None:
        super().__init__()
        self.long: dict[str, bool] = {}
        self.pandas = arithmetic == "pandas"
        self.inside = 0.0  # CPU seconds inside on_data
        self.first = self.last = 0.0  # process_time() at the first call's start, the last call's end

    def initialize(self) -> None:
        self.long = dict.fromkeys(self.symbols, False)

    def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order]:
        started = time.process_time()
        self.first = self.first or started
        orders: list[Order] = []
        if len(data) >= SLOW:
            for symbol in self.symbols:
                closes = data[("Close", symbol)]
                if self.pandas:
                    fast, slow = closes.tail(FAST).mean(), closes.tail(SLOW).mean()
                else:
                    values = closes.to_numpy()
                    fast, slow = values[-FAST:].mean(), values[-SLOW:].mean()
                if fast > slow * UP and not self.long[symbol]:
                    orders.append(Order(symbol, SIZE, side=OrderSide.BUY))
                    self.long[symbol] = True
                elif fast < slow * DOWN and self.long[symbol]:
                    orders.append(Order(symbol, SIZE, side=OrderSide.SELL))
                    self.long[symbol] = False
        self.last = time.process_time()
        self.inside += self.last - started
        return orders

    def engine_share(self) -> float:
        """The share of the bar loop's CPU time spent outside ``on_data`` (window, orders, fills, marks)."""
        span = self.last - self.first
        return max(span - self.inside, 0.0) / span if span > 0 else 0.0


class FastPortfolio(FastStrategy):
    """The same rules on the fast path: per-symbol indicator frames, read by symbol in ``on_bar``."""

    def __init__(self) -> None:
        super().__init__()
        self.long: dict[str, bool] = {}

    def initialize(self) -> None:
        self.long = dict.fromkeys(self.symbols, False)

    def indicators(self, data: pd.DataFrame) -> Mapping[str, pd.DataFrame]:
        closes = data["Close"]  # one column per symbol
        return {"fast": closes.rolling(FAST).mean(), "slow": closes.rolling(SLOW).mean()}

    def on_bar(self, timestamp: datetime, fast: SymbolValues, slow: SymbolValues) -> list[Order] | None:
        orders: list[Order] = []
        long = self.long
        for symbol in self.symbols:
            f, s = fast[symbol], slow[symbol]
            if f > s * UP:
                if not long[symbol]:
                    long[symbol] = True
                    orders.append(Order(symbol, SIZE, side=OrderSide.BUY))
            elif f < s * DOWN and long[symbol]:
                long[symbol] = False
                orders.append(Order(symbol, SIZE, side=OrderSide.SELL))
        return orders


class BacktraderPortfolio(bt.Strategy):
    params = (("fast", FAST), ("slow", SLOW), ("size", SIZE))

    def __init__(self) -> None:
        self.smas = [
            (bt.indicators.SMA(d.close, period=self.p.fast), bt.indicators.SMA(d.close, period=self.p.slow))
            for d in self.datas
        ]
        self.long = [False] * len(self.datas)
        self.trades: list[Trade] = []

    def next(self) -> None:
        for k, (data, (fast, slow)) in enumerate(zip(self.datas, self.smas, strict=True)):
            if fast[0] > slow[0] * UP and not self.long[k]:
                self.buy(data=data, size=self.p.size)
                self.long[k] = True
            elif fast[0] < slow[0] * DOWN and self.long[k]:
                self.sell(data=data, size=self.p.size)
                self.long[k] = False

    def notify_order(self, order) -> None:
        if order.status == order.Completed:
            stamp = pd.Timestamp(bt.num2date(order.executed.dt)).tz_localize("UTC").round("s")
            self.trades.append((stamp, order.data._name, round(order.executed.price, 9), order.executed.size))


# ---------------------------------------------------------------------------------------------- runners
def run_engine(strategy: Strategy, data: pd.DataFrame, symbols: list[str], capital: float) -> Run:
    engine = BacktestEngine(capital, commission=COMMISSION, slippage=0.0, fill_at="next_open", spread=None)
    engine.add_strategy(strategy)
    gc.collect()
    started = time.process_time()
    result = engine.run(symbols=symbols, data=data, benchmark=None)
    elapsed = time.process_time() - started
    if result.errors:
        raise RuntimeError(f"strategy errors: {result.errors[:3]}")
    trades = sorted(
        (pd.Timestamp(f.timestamp).round("s"), f.symbol, round(f.fill_price, 9), f.signed_quantity)
        for f in result.fills
    )
    return elapsed, trades, result.final_value


def run_backtrader(frames: dict[str, pd.DataFrame], capital: float) -> Run:
    cerebro = bt.Cerebro(stdstats=False)
    for symbol, frame in frames.items():
        cerebro.adddata(bt.feeds.PandasData(dataname=frame.tz_convert("UTC").tz_localize(None)), name=symbol)
    cerebro.addstrategy(BacktraderPortfolio)
    cerebro.broker.setcash(capital)
    cerebro.broker.setcommission(commission=COMMISSION)
    gc.collect()
    started = time.process_time()
    (strategy,) = cerebro.run()
    elapsed = time.process_time() - started
    return elapsed, sorted(strategy.trades), cerebro.broker.getvalue()


def best_of(repeat: int, runners: dict[str, Callable[[], Run]]) -> dict[str, Run]:
    """Run each runner ``repeat`` times, interleaved (a load spike hits all of them alike); keep the fastest."""
    best: dict[str, Run] = {}
    for _ in range(repeat):
        for name, runner in runners.items():
            run = runner()
            if name not in best or run[0] < best[name][0]:
                best[name] = run
    return best


def universe(n_symbols: int, n_bars: int) -> tuple[list[str], pd.DataFrame]:
    feed = SyntheticDataProvider(seed=2024, periods=n_bars)
    symbols = [f"S{k:03d}" for k in range(n_symbols)]
    return symbols, feed.get_multiple_symbols(symbols)


def per_symbol(data: pd.DataFrame, symbols: list[str]) -> dict[str, pd.DataFrame]:
    return {s: data.xs(s, axis=1, level="Symbol") for s in symbols}


# ---------------------------------------------------------------------------------------------- report
def report(case: str, bars: int, runs: dict[str, Run]) -> bool:
    """Print the case's times and whether every engine made the same trades; returns whether they did."""
    print(f"\n{case}  ({bars:,} symbol-bars; CPU time, best of the runs)")
    reference = runs.get("backtrader")
    for name, (elapsed, trades, _value) in runs.items():
        ratio = f"{reference[0] / elapsed:8.1f}x backtrader" if reference and name != "backtrader" else ""
        print(
            f"  {name:<14} {elapsed:8.3f} s {elapsed / bars * 1e6:8.2f} us/symbol-bar "
            f"{len(trades):6d} trades  {ratio}"
        )
    return print_agreement(runs)


def case_portfolio(n_symbols: int, n_bars: int, repeat: int) -> bool:
    symbols, data = universe(n_symbols, n_bars)
    frames = per_symbol(data, symbols)
    capital = 1_000_000_000.0  # every symbol can be held at once: no order is refused in any engine
    shares: dict[str, dict[float, float]] = {"guide (numpy)": {}, "guide (pandas)": {}}

    def guide(arithmetic: str, name: str) -> Callable[[], Run]:
        def runner() -> Run:
            strategy = GuidePortfolio(arithmetic)
            run = run_engine(strategy, data, symbols, capital)
            shares[name][run[0]] = strategy.engine_share()
            return run

        return runner

    runs = best_of(
        repeat,
        {
            "guide (numpy)": guide("numpy", "guide (numpy)"),
            "guide (pandas)": guide("pandas", "guide (pandas)"),
            "fast path": lambda: run_engine(FastPortfolio(), data, symbols, capital),
            "backtrader": lambda: run_backtrader(frames, capital),
        },
    )
    agree = report(f"(1) one strategy, {n_symbols} symbols x {n_bars:,} daily bars", n_symbols * n_bars, runs)
    for name, by_time in shares.items():
        total = runs[name][0]
        print(
            f"  {name}: {total / n_bars * 1e3:6.2f} ms a bar; engine's own share of the bar loop "
            f"(outside on_data): {by_time[total]:5.1%}"
        )
    return agree


def case_linear(sizes: list[int], n_bars: int, repeat: int) -> None:
    print(f"\n(2) fast path, one strategy, N symbols x {n_bars:,} daily bars (CPU time, best of {repeat})")
    for n_symbols in sizes:
        symbols, data = universe(n_symbols, n_bars)
        runs = best_of(repeat, {"fast path": lambda: run_engine(FastPortfolio(), data, symbols, 1e10)})  # noqa: B023 - called at once
        elapsed, trades, _ = runs["fast path"]
        print(
            f"  {n_symbols:4d} symbols: {elapsed:7.3f} s  {elapsed / (n_symbols * n_bars) * 1e6:6.2f} us/symbol-bar "
            f"{len(trades):7d} trades"
        )


# ---------------------------------------------------------------------------------------------- one symbol
class FastCross(FastStrategy):
    """The single-symbol crossover on the fast path (the plain loop below does the same)."""

    def __init__(self, symbol: str) -> None:
        super().__init__()
        self.symbol = symbol
        self.long = False

    def indicators(self, data: pd.DataFrame) -> Mapping[str, pd.Series]:
        closes = data["Close"]
        return {"fast": trailing_mean(closes, FAST), "slow": trailing_mean(closes, SLOW)}

    def on_bar(self, timestamp: datetime, fast: float, slow: float) -> list[Order] | None:
        if fast > slow * UP:
            if not self.long:
                self.long = True
                return [Order(self.symbol, SIZE, side=OrderSide.BUY)]
        elif fast < slow * DOWN and self.long:
            self.long = False
            return [Order(self.symbol, SIZE, side=OrderSide.SELL)]
        return None


class FastCrossValues(FastCross):
    """FastCross whose ``on_bar`` takes the values only (``bar_timestamps = False``): no datetime per bar."""

    bar_timestamps = False

    def on_bar(self, fast: float, slow: float) -> list[Order] | None:  # type: ignore[override]
        if fast > slow * UP:  # FastCross.on_bar's body (calling it would add a Python call per bar)
            if not self.long:
                self.long = True
                return [Order(self.symbol, SIZE, side=OrderSide.BUY)]
        elif fast < slow * DOWN and self.long:
            self.long = False
            return [Order(self.symbol, SIZE, side=OrderSide.SELL)]
        return None


def plain_loop(data: pd.DataFrame) -> tuple[float, int, float]:
    """The least any backtest must do: the same indicators, one Python step per bar, fills at the next open.

    Returns (CPU seconds including the indicators, trades, final equity).
    """
    started = time.process_time()
    closes = data["Close"]
    fast = trailing_mean(closes, FAST).tolist()
    slow = trailing_mean(closes, SLOW).tolist()
    opens = data["Open"].tolist()
    cash, held, pending, trades = 1_000_000.0, 0.0, 0.0, 0
    long = False
    for i, (f, s) in enumerate(zip(fast, slow, strict=True)):
        if pending:  # the order sent at the previous bar fills at this bar's open
            price = opens[i]
            cash -= pending * price + abs(pending) * price * COMMISSION
            held += pending
            pending = 0.0
            trades += 1
        if f > s * UP:
            if not long:
                long, pending = True, SIZE
        elif f < s * DOWN and long:
            long, pending = False, -SIZE
    equity = cash + held * closes.iloc[-1]
    return time.process_time() - started, trades, equity


def case_minutes(n_bars: int, repeat: int) -> bool:
    data = SyntheticDataProvider(["X"], seed=99, periods=n_bars, interval="1m").get_historical_data(
        "X", interval="1m"
    )
    lines = {
        "fast path": lambda: run_engine(FastCross("X"), data, ["X"], 1_000_000.0),
        "values only": lambda: run_engine(FastCrossValues("X"), data, ["X"], 1_000_000.0),
    }
    best: dict[str, Run] = {}
    loop_best = float("inf")
    for _ in range(repeat):  # interleaved: a load spike hits every line alike
        for name, runner in lines.items():
            run = runner()
            if name not in best or run[0] < best[name][0]:
                best[name] = run
        gc.collect()
        loop_elapsed, loop_trades, loop_value = plain_loop(data)
        loop_best = min(loop_best, loop_elapsed)
    print(f"\n(3) one symbol, {n_bars:,} minute bars (CPU time, best of {repeat})")
    labels = {
        "fast path": "fast path    ",  # on_bar(timestamp, fast, slow), the default
        "values only": "values only  ",  # FastStrategy.bar_timestamps = False: on_bar(fast, slow)
    }
    for name, (elapsed, trades, _value) in best.items():
        print(f"  {labels[name]} {elapsed:7.3f} s {n_bars / elapsed:12,.0f} bars/s  {len(trades)} trades")
    print(f"  plain loop    {loop_best:7.3f} s {n_bars / loop_best:12,.0f} bars/s  {loop_trades} trades")
    for name, (elapsed, _trades, _value) in best.items():
        print(f"  {name} / plain loop speed: {loop_best / elapsed:.2f}")
    print("  (values only: the same strategy with FastStrategy.bar_timestamps = False, on_bar(fast, slow))")
    agreed = True
    for name, (_elapsed, trades, value) in best.items():
        agree = len(trades) == loop_trades and abs(value - loop_value) <= 1e-6 * abs(loop_value)
        agreed = agreed and agree
        print(
            f"  {name}: same trades and final equity as the plain loop: {'yes' if agree else 'NO'} "
            f"({value:,.2f} vs {loop_value:,.2f})"
        )
    same = best["fast path"][1] == best["values only"][1]
    print(f"  fast path and values only: identical trades (bar, price, quantity): {'yes' if same else 'NO'}")
    return agreed and same


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke test)")
    parser.add_argument("--repeat", type=int, default=2, help="interleaved runs per engine; the best is kept")
    parser.add_argument("--only", choices=("1", "2", "3"), help="run one case only")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    print(f"pandas {pd.__version__}, numpy {np.__version__}, backtrader {bt.__version__}")
    bars, symbols, sizes, minutes = 2_520, 100, [10, 100, 500], 1_000_000
    if args.quick:
        bars, symbols, sizes, minutes = 300, 10, [5, 10, 20], 50_000
    agreed = True
    if args.only in (None, "1"):
        agreed = case_portfolio(symbols, bars, args.repeat) and agreed
    if args.only in (None, "2"):
        case_linear(sizes, bars, args.repeat)
    if args.only in (None, "3"):
        agreed = case_minutes(minutes, args.repeat) and agreed
    if not agreed:  # a benchmark whose engines traded differently measured nothing comparable
        print("\n!! the engines' trades disagree in at least one case (see above)")
        sys.exit(1)


if __name__ == "__main__":
    main()
