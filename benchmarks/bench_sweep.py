"""Parameter sweeps on Dask: scheduler overhead, 1 → 2 worker speed-up, data shipping, a 100-worker plan.

The grid is the guide's SMA crossover over ``fast`` × ``slow`` periods (100 shares, market orders at the
next bar's open, 0.1 % commission, no slippage, no bid/ask spread as in backtrader) on the bundled AAPL sample (2000–2013, ~3,300 daily bars).
Measured, each on a LocalCluster started beforehand (its start-up is timed on its own):

* ``run_sweep`` in this process (``--serial``), on 1 worker and on 2 workers: the speed-up 1 → 2, with the
  combinations batched per task automatically (the default) and with one combination a task; each sweep on
  workers broken down into stages (to the first run: shipping the bars and submitting; the runs; the gaps
  between a worker's tasks; a worker idle at the end while the other finishes; collecting the results and
  building the table) from Dask's task stream, and the CPU each process spent (the task threads, the
  workers' other threads, the client process with the scheduler and the nannies) — the figures that
  explain the ratio on a machine whose cores the workers share with everything else;
* the same on the guide-style strategy (``SimpleMovingAverage``, ~100× longer runs; skipped by ``--quick``);
* the per-task overhead: no-op tasks through the same pool (bounded window, ``as_completed``) and through
  plain ``client.map``; the cost of shipping the bars (pickled size, broadcast time) and of one task's
  parameters and result;
* backtrader's ``cerebro.optstrategy`` on the same grid with ``maxcpus=1`` and ``maxcpus=2``.

Every combination's final equity must agree between our runs (serial and on workers) and backtrader's
(they place the same trades: tests/backtest/test_backtrader_parity.py). From the measured overhead and
shipping costs the script prints a capacity plan for 100 workers. Nothing is asserted about time; the
load average is printed because the machine may be shared.

    python benchmarks/bench_sweep.py              # 8 x 6 = 48 combinations
    python benchmarks/bench_sweep.py --quick      # 3 x 2 = 6, a smoke test
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import itertools
import logging
import math
import multiprocessing
import os
import pickle
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
from copilot_quant.backtest.cluster import Compute, local_cluster, task_pool
from copilot_quant.backtest.sweep import _Job, _Run, _run_chunk, auto_task_sizes, parameter_grid, run_sweep
from copilot_quant.data.providers import SampleDataProvider
from copilot_quant.examples.sma_cross import SimpleMovingAverage, SmaCrossFast
from distributed import Client, LocalCluster

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import backtrader as bt

SIZE = 100
CAPITAL = 100_000.0
OPTIONS = {"initial_capital": CAPITAL, "commission": 0.001, "slippage": 0.0, "spread": None}
NOOP_TASKS = 2_000
PLAN_WORKERS = 100
NETWORK_BYTES_PER_S = 1e9 / 8  # an assumed 1 Gbit/s link between the client and the workers


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


class Fast:
    """Picklable factories (a lambda would be shipped by value; these travel by reference)."""

    def __call__(self, fast: int, slow: int) -> SmaCrossFast:
        return SmaCrossFast("AAPL", SIZE, fast_period=fast, slow_period=slow)


class Guide:
    def __call__(self, fast: int, slow: int) -> SimpleMovingAverage:
        return SimpleMovingAverage("AAPL", SIZE, fast_period=fast, slow_period=slow)


def _noop(x: int) -> int:
    return x


def _timed(run: Callable[[], Any], before: Callable[[], Any] | None = None) -> tuple[float, Any]:
    gc.collect()
    if before is not None:
        before()
    started = time.perf_counter()
    out = run()
    return time.perf_counter() - started, out


def run_ours(
    data: pd.DataFrame, grid: list[dict], factory: Any, before: Callable[[], Any] | None = None, **where: Any
) -> tuple[float, dict]:
    elapsed, sweep = _timed(lambda: run_sweep(factory, grid, symbols=["AAPL"], data=data,
                                              engine_options=OPTIONS, **where), before)  # fmt: skip
    table = sweep.table
    values = {
        (int(f), int(s)): float(v)
        for f, s, v in zip(table["fast"], table["slow"], table["final_value"], strict=True)
    }
    return elapsed, values


def run_backtrader(data: pd.DataFrame, fasts: list[int], slows: list[int], cpus: int) -> tuple[float, dict]:
    cerebro = bt.Cerebro(stdstats=False, optreturn=False, maxcpus=cpus)
    cerebro.adddata(bt.feeds.PandasData(dataname=data.tz_convert("UTC").tz_localize(None)), name="AAPL")
    cerebro.optstrategy(BacktraderSma, fast=fasts, slow=slows)
    cerebro.broker.setcash(CAPITAL)
    cerebro.broker.setcommission(commission=0.001)
    elapsed, runs = _timed(cerebro.run)
    return elapsed, {(int(s.p.fast), int(s.p.slow)): float(s.final_value) for (s,) in runs}


def _cluster(workers: int) -> tuple[float, LocalCluster]:
    return _timed(lambda: local_cluster(workers))  # the cluster run_sweep(jobs=N) starts, its settings too


@dataclass(slots=True)
class Stages:
    """Where one sweep's wall time went (seconds; per worker figures are means over the workers) and the
    CPU each kind of thread spent meanwhile. ``first + start + busy + gaps + idle_end + collect == wall``."""

    wall: float
    first: float  # the call -> the first run starts on a worker (scatter the bars, submit, schedule)
    start: float  # ... -> this worker's first run starts
    busy: float  # in runs (Dask's "compute" time of the tasks)
    gaps: float  # between two of its tasks (result out, next task in)
    idle_end: float  # its last run ends -> the last run of all ends (the tail)
    collect: float  # the last run ends -> run_sweep returns (gather, build and rank the table)
    tasks: int
    task_cpu: float  # CPU of the workers' task threads, summed
    other_cpu: float  # CPU of the workers' other threads (event loop, heartbeats, monitors), summed
    client_cpu: float  # CPU of this process: the sweep's own work, the client, the scheduler, the nannies


def _install_recorder() -> None:
    """In a worker: wrap run_sweep's task function to note when each task ran and its thread's CPU time.

    Tasks name the function by reference, so a worker looks it up in its module and finds the wrapper. The
    task stream of Dask's scheduler is not used: it shifts each worker's times by an estimated clock offset,
    tens of milliseconds off on a loaded machine.
    """
    import time as clock

    from copilot_quant.backtest import sweep

    if hasattr(sweep, "_bench_records"):
        return
    run_chunk = sweep._run_chunk
    records: list[tuple[float, float, float]] = []

    def recorded(*args: Any) -> Any:
        started, cpu = clock.perf_counter(), clock.thread_time()
        try:
            return run_chunk(*args)
        finally:
            records.append((started, clock.perf_counter(), clock.thread_time() - cpu))

    sweep._bench_records = records  # type: ignore[attr-defined]
    sweep._run_chunk = recorded


def _take_records() -> tuple[list[tuple[float, float, float]], float]:
    """In a worker: the tasks run since the last call, and the process's CPU time now."""
    from copilot_quant.backtest import sweep

    records = list(sweep._bench_records)  # type: ignore[attr-defined]
    sweep._bench_records.clear()  # type: ignore[attr-defined]
    return records, time.process_time()


class Probe:
    """Measures :class:`Stages` of sweeps on one client's cluster (its workers note when each task ran)."""

    def __init__(self, client: Client) -> None:
        self.client = client
        client.run(_install_recorder)

    def _take(self) -> dict[str, tuple[list[tuple[float, float, float]], float]]:
        return self.client.run(_take_records)

    def measure(self, run: Callable[[Callable[[], Any]], tuple[float, dict]]) -> tuple[float, dict, Stages]:
        """``run(before)`` runs a sweep and calls ``before()`` just before its timer starts."""
        before: list[tuple[dict, float]] = []
        elapsed, values = run(lambda: before.append((self._take(), time.process_time())))
        t1, client_cpu = time.perf_counter(), time.process_time() - before[0][1]
        t0 = t1 - elapsed
        after = self._take()
        spans = {addr: [(a, b) for a, b, _ in records] for addr, (records, _) in after.items()}
        task_cpu = sum(cpu for records, _ in after.values() for _, _, cpu in records)
        process_cpu = sum(cpu - before[0][0][addr][1] for addr, (_, cpu) in after.items())
        used = {addr: sorted(ss) for addr, ss in spans.items() if ss}
        first = min(ss[0][0] for ss in used.values())
        last = max(ss[-1][1] for ss in used.values())
        n = len(spans)  # a worker that got no task counts as idle from the first run to the last

        def mean(per_worker: Callable[[list[tuple[float, float]]], float], unused: float) -> float:
            return (sum(per_worker(ss) for ss in used.values()) + unused * (n - len(used))) / n

        busy = mean(lambda ss: sum(b - a for a, b in ss), 0.0)
        stages = Stages(
            wall=t1 - t0,
            first=first - t0,
            start=mean(lambda ss: ss[0][0] - first, 0.0),
            busy=busy,
            gaps=mean(lambda ss: sum(a - b for (_, b), (a, _) in itertools.pairwise(ss)), 0.0),
            idle_end=mean(lambda ss: last - ss[-1][1], last - first),
            collect=t1 - last,
            tasks=sum(len(ss) for ss in used.values()),
            task_cpu=task_cpu,
            other_cpu=process_cpu - task_cpu,
            client_cpu=client_cpu,
        )
        return elapsed, values, stages


def print_stages(title: str, by_workers: dict[int, Stages]) -> None:
    one, two = by_workers[1], by_workers[2]
    rows = [
        ("to the first run (ship bars, submit, schedule)", "first"),
        ("  then to a worker's first run", "start"),
        ("  a worker in runs", "busy"),
        ("  a worker between its tasks", "gaps"),
        ("  a worker idle at the end (the tail)", "idle_end"),
        ("collect: last run ends -> table returned", "collect"),
        ("wall", "wall"),
        ("CPU: the task threads, summed", "task_cpu"),
        ("CPU: the workers' other threads, summed", "other_cpu"),
        ("CPU: this process (client, scheduler, nannies)", "client_cpu"),
    ]
    print(f"  {title}: stages in ms ({one.tasks} and {two.tasks} tasks)     1 worker   2 workers")
    for label, name in rows:
        print(f"    {label:<52} {getattr(one, name) * 1e3:8.1f}   {getattr(two, name) * 1e3:8.1f}")
    fixed = {w: st.first + st.collect for w, st in by_workers.items()}
    print(
        f"    -> speed-up {one.wall / two.wall:.2f}x: runs {one.busy / two.busy:.2f}x (a run on 2 busy cores takes "
        f"{2 * two.busy / one.busy:.2f}x as long), fixed costs {fixed[1] * 1e3:.0f} / {fixed[2] * 1e3:.0f} ms, "
        f"tail {two.idle_end * 1e3:.0f} ms"
    )


def overhead(client: Client) -> dict[str, float]:
    """Seconds per no-op task through our pool and through plain client.map (after a warm-up)."""
    with task_pool(Compute(client=client)) as pool:
        pool.run(_noop, ((i,) for i in range(50)), total=50, on_failure=lambda a, e: None)
        pooled, _ = _timed(
            lambda: pool.run(
                _noop, ((i,) for i in range(NOOP_TASKS)), total=NOOP_TASKS, on_failure=lambda a, e: None
            )
        )
    mapped, _ = _timed(lambda: client.gather(client.map(_noop, range(NOOP_TASKS), pure=False)))
    return {"pool": pooled / NOOP_TASKS, "map": mapped / NOOP_TASKS}


def shipping(client: Client, data: pd.DataFrame) -> dict[str, float]:
    """The bars' pickled size and broadcast time; one task's parameters and one result row, pickled."""
    frame_bytes = len(pickle.dumps(data, protocol=5))
    times = []
    for _ in range(5):
        elapsed, futures = _timed(lambda: client.scatter([data], broadcast=True, hash=False))
        times.append(elapsed)
        client.cancel(futures)
    workers = len(client.nthreads())
    task_bytes = len(pickle.dumps((_Run({"fast": 10, "slow": 30}),), protocol=5))
    row = {"fast": 10, "slow": 30, **dict.fromkeys(("sharpe_ratio", "total_return", "max_drawdown"), 0.1)}
    row.update(dict.fromkeys(("sortino_ratio", "annualized_return", "calmar_ratio", "final_value"), 0.1))
    row.update(fills=10.0, errors=0, error="")
    return {
        "frame_bytes": frame_bytes,
        "broadcast_s": min(times),
        "per_worker_s": min(times) / workers,
        "task_bytes": task_bytes,
        "row_bytes": len(pickle.dumps(row, protocol=5)),
    }


def _line(name: str, elapsed: float, bars: int, combos: int, extra: str = "") -> None:
    print(
        f"  {name:<40} {elapsed:8.3f} s {bars / elapsed:12,.0f} bars/s {combos / elapsed:8.1f} combos/s  {extra}"
    )


def capacity_plan(run_s: float, task_s: float, ship: dict[str, float], grid_size: int) -> None:
    """What 100 workers need, from one run's time, the per-task overhead and the shipping costs."""
    n = PLAN_WORKERS
    scheduler_rate = 1.0 / task_s  # tasks/s the pipeline sustained here, whatever the worker count
    demand = n / run_s  # tasks/s 100 busy workers finish at one run per task
    per_task = max(1, math.ceil(2 * n * task_s / run_s))  # keep the scheduler under half busy
    ship_s = n * ship["frame_bytes"] / NETWORK_BYTES_PER_S
    worth = math.ceil(10 * ship_s * n / run_s)  # grid whose runs outweigh the shipping 10:1
    print(f"\nCapacity plan for {n} workers (one thread each)")
    print(f"  one run (fast path, this grid) takes        t = {run_s * 1e3:8.2f} ms on one worker")
    print(
        f"  per-task overhead measured here             o = {task_s * 1e3:8.2f} ms  (~{scheduler_rate:,.0f} tasks/s)"
    )
    print(f"  {n} workers finish at one run per task         {demand:10,.0f} tasks/s")
    if demand > scheduler_rate / 2:
        print(
            f"  -> the scheduler saturates (t < 2 x {n} x o = {2 * n * task_s * 1e3:,.0f} ms), whatever the grid"
        )
        print(
            f"     size: put k >= 2 x {n} x o / t = {per_task} combinations in each task (--per-task {per_task});"
        )
        print(
            f"     a grid then needs >= {n * per_task:,} combinations ({per_task} per task x {n} workers) to keep"
        )
        print("     every worker busy.")
    else:
        print(f"  -> the scheduler keeps up (t >= 2 x {n} x o): one combination per task is right")
    print(
        f"  the bars ({ship['frame_bytes'] / 1e6:.2f} MB pickled) go to each worker once: {n} x that = "
        f"{n * ship['frame_bytes'] / 1e6:,.0f} MB,"
    )
    print(
        f"     ~{ship_s:.1f} s on a 1 Gbit/s link (measured here on loopback: "
        f"{ship['per_worker_s'] * 1e3:.1f} ms per worker)"
    )
    print(
        f"  -> {n} workers pay off from ~{worth:,} combinations (runs worth 10x the shipping); this grid "
        f"has {grid_size}"
    )
    print(f"  per task on the wire: {ship['task_bytes']} B of parameters out, {ship['row_bytes']} B of metrics back "
          f"(the equity curve only with equity_curves=True)")  # fmt: skip


def _plain_runs(data: pd.DataFrame, grid: list[dict], ready: Any, go: Any, out: Any) -> None:
    """In a plain process: the runs of ``grid`` once to warm up, then again when told; their times."""
    logging.disable(logging.WARNING)
    job = _Job(Fast(), ["AAPL"], None, None, "1d", dict(OPTIONS))
    runs = tuple(_Run(dict(p)) for p in grid)
    _run_chunk(data, job, runs)
    gc.collect()
    ready.release()
    go.wait()
    started, cpu = time.perf_counter(), time.thread_time()
    _run_chunk(data, job, runs)
    out.put((time.perf_counter() - started, time.thread_time() - cpu))


def ceiling(data: pd.DataFrame, grid: list[dict], repeat: int) -> dict[str, float]:
    """The machine's own limit, no Dask: the grid in one plain process, then each half in its own process
    at the same time. Two busy cores may run each slower than one (shared caches, memory, the host)."""
    ctx = multiprocessing.get_context("spawn")
    best: dict[str, float] = {}
    for _ in range(repeat):
        for name, parts in (("one", [grid]), ("two", [grid[0::2], grid[1::2]])):
            ready, go, out = ctx.Semaphore(0), ctx.Event(), ctx.Queue()
            procs = [ctx.Process(target=_plain_runs, args=(data, part, ready, go, out)) for part in parts]
            for proc in procs:
                proc.start()
            for _ in procs:
                ready.acquire()
            go.set()
            done = [out.get() for _ in procs]
            for proc in procs:
                proc.join()
            wall, cpu = max(w for w, _ in done), sum(c for _, c in done)
            if wall < best.get(name, math.inf):
                best[name], best[f"{name}-cpu"] = wall, cpu
    return best


def best_of(repeat: int, run: Callable[[], tuple[float, dict]]) -> tuple[float, dict]:
    """The fastest of ``repeat`` runs (the machine may be shared: the minimum is the least disturbed)."""
    runs = [run() for _ in range(repeat)]
    return min(r[0] for r in runs), runs[0][1]


def speedups(
    clients: dict[int, Client], data: pd.DataFrame, grid: list[dict], guide: list[dict], repeat: int
) -> dict[str, Any]:
    """Each measurement on 1 and on 2 workers in turn, so a change in the machine's load hits both; the
    stages of the fastest of each."""
    out: dict[str, Any] = {}
    probes = {workers: Probe(client) for workers, client in clients.items()}
    plan: dict[str, Callable[[Client, Callable[[], Any]], tuple[float, dict]]] = {
        "fast": lambda c, b: run_ours(data, grid, Fast(), b, client=c),  # automatic: shrinking tasks
        "single": lambda c, b: run_ours(data, grid, Fast(), b, client=c, per_task=1),
    }
    if guide:
        plan["guide"] = lambda c, b: run_ours(data, guide, Guide(), b, client=c)
    for name, run in plan.items():
        times: dict[int, list[float]] = {1: [], 2: []}
        stages: dict[int, Stages] = {}
        for _ in range(repeat):
            for workers, client in clients.items():
                elapsed, out[f"{name}-{workers}-values"], st = probes[workers].measure(
                    lambda before: run(client, before)  # noqa: B023
                )
                if not times[workers] or elapsed < min(times[workers]):
                    stages[workers] = st
                times[workers].append(elapsed)
        out[name] = {workers: min(ts) for workers, ts in times.items()}
        out[f"{name}-stages"] = stages
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a 3 x 2 grid, as a smoke test")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # a sweep logs nothing useful here; keep the output to the figures

    fasts = [5, 10, 20] if args.quick else [4, 6, 8, 10, 12, 15, 20, 25]
    slows = [30, 60] if args.quick else [30, 40, 50, 60, 80, 100]
    grid = [{"fast": f, "slow": s} for f in fasts for s in slows]
    assert grid == parameter_grid({"fast": fasts, "slow": slows})  # the order optstrategy uses too
    guide = [] if args.quick else parameter_grid({"fast": [5, 10], "slow": [30, 40, 50, 60]})
    data = SampleDataProvider().get_historical_data("AAPL")
    bars = len(data) * len(grid)
    print(f"{os.cpu_count()} cores; load average before: {os.getloadavg()[0]:.1f} (1 min)")
    print(f"sweep of {len(grid)} combinations x {len(data):,} daily bars ({bars:,} bars in all)\n")

    repeat = 1 if args.quick else 3
    serial, serial_values = best_of(repeat, lambda: run_ours(data, grid, Fast()))
    with contextlib.ExitStack() as stack:
        clients, starts = {}, {}
        for workers in (1, 2):
            starts[workers], cluster = _cluster(workers)
            clients[workers] = stack.enter_context(Client(stack.enter_context(cluster)))
            clients[workers].run(lambda: __import__("copilot_quant.backtest.sweep"))  # imports before timing
            run_ours(data, grid[:2], Fast(), client=clients[workers])  # warm-up
        measured = speedups(clients, data, grid, guide, repeat)
        cost, ship = overhead(clients[2]), shipping(clients[2], data)
    limit = ceiling(data, grid, repeat)
    fast, single = measured["fast"], measured["single"]
    auto = {workers: len(auto_task_sizes(len(grid), workers)) for workers in (1, 2)}
    t2 = fast[2]
    print(f"best of {repeat} runs each; 1 and 2 workers measured in turn")
    _line("run_sweep --serial (in this process)", serial, bars, len(grid),
          f"one run {serial / len(grid) * 1e3:.1f} ms")  # fmt: skip
    _line(f"run_sweep on 1 Dask worker ({auto[1]} tasks)", fast[1], bars, len(grid),
          f"(cluster start {starts[1]:.1f} s, apart)")  # fmt: skip
    _line(f"run_sweep on 2 Dask workers ({auto[2]} tasks)", t2, bars, len(grid),
          f"{fast[1] / t2:.2f}x 1 worker (start {starts[2]:.1f} s)")  # fmt: skip
    _line("  ... with --per-task 1, 1 worker", single[1], bars, len(grid))
    _line("  ... with --per-task 1, 2 workers", single[2], bars, len(grid),
          f"{single[1] / single[2]:.2f}x 1 worker")  # fmt: skip
    if guide:
        g = measured["guide"]
        print(f"  guide-style SimpleMovingAverage, {len(guide)} runs: 1 worker {g[1]:.2f} s, "
              f"2 workers {g[2]:.2f} s -> {g[1] / g[2]:.2f}x")  # fmt: skip

    print(
        f"  the machine's own limit, no Dask: the {len(grid)} runs in one plain process {limit['one']:.3f} s, "
        f"each half in its own process at once {limit['two']:.3f} s -> {limit['one'] / limit['two']:.2f}x "
        f"(CPU of the runs {limit['one-cpu'] * 1e3:.0f} -> {limit['two-cpu'] * 1e3:.0f} ms on two busy cores)"
    )

    print("\nwhere the time went (the fastest sweep of each; per-worker figures are means over the workers)")
    print_stages(f"automatic batching, {len(grid)} runs", measured["fast-stages"])
    print_stages(f"--per-task 1, {len(grid)} runs", measured["single-stages"])
    if guide:
        print_stages(f"guide-style, {len(guide)} runs", measured["guide-stages"])

    print(
        f"\nper-task overhead ({NOOP_TASKS:,} no-op tasks on 2 workers; client, scheduler and workers share the cores):"
    )
    print(f"  through run_sweep's pool (window, as_completed)  {cost['pool'] * 1e3:6.2f} ms per task")
    print(f"  plain client.map + gather                         {cost['map'] * 1e3:6.2f} ms per task")
    print(f"shipping: bars {ship['frame_bytes'] / 1e6:.2f} MB pickled, broadcast to 2 workers in "
          f"{ship['broadcast_s'] * 1e3:.1f} ms; a task's parameters {ship['task_bytes']} B, its row {ship['row_bytes']} B")  # fmt: skip

    print("\nbacktrader optstrategy on the same grid:")
    bt_times, bt_values = {}, {}
    for cpus in (1, 2):
        bt_times[cpus], bt_values[cpus] = run_backtrader(data, fasts, slows, cpus)
        _line(f"backtrader optstrategy, {cpus} cpu(s)", bt_times[cpus], bars, len(grid))
    print(f"  run_sweep vs backtrader: {bt_times[1] / serial:.1f}x in one process, "
          f"{bt_times[2] / t2:.1f}x on 2 workers vs 2 cpus")  # fmt: skip

    ours = {"serial": serial_values, "1 worker": measured["fast-1-values"], "2 workers": measured["fast-2-values"],
            "--per-task 1": measured["single-2-values"]}  # fmt: skip
    same = all(values == serial_values for values in ours.values())
    theirs = bt_values[1]
    differ = [k for k in theirs if abs(serial_values[k] - theirs[k]) > 1e-6 * abs(theirs[k])]
    print(
        f"  final equity of every combination: {'EQUAL' if same else 'DIFFERS'} across {', '.join(ours)}; "
        f"{'EQUAL to' if not differ else f'DIFFERS from ({differ[:3]})'} backtrader's"
    )

    capacity_plan(serial / len(grid), cost["pool"], ship, len(grid))
    print(f"\nload average after: {os.getloadavg()[0]:.1f} (1 min)")


if __name__ == "__main__":
    main()
