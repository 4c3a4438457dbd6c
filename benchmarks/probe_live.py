"""Where the engine's tick-to-order goes: a per-stage timeline of one bar on ib_async's loop thread.

Runs the engine of ``bench_live.py`` (inline dispatch, ``Flip`` strategies) against the simulated gateway in
its own process and wraps the stages of the path from a bar to its order with ``perf_counter_ns`` and
``thread_time_ns`` stamps: for each stage, its wall and CPU time per bar (median), and a timeline of when each
starts and ends after the bar's handler began, up to the moment ``placeOrder``'s message is written to the
socket (``SEND``). CPU time is the loop thread's own, so it is far less distorted by a loaded machine than
wall time; a stage whose wall time is much longer than its CPU time waited (the disk, the GIL, the CPU).
The wrappers cost a few microseconds each: compare stages, not the total with ``bench_live.py``'s.

Run: ``python benchmarks/probe_live.py [bars] [strategies]`` (default 150 bars, 1 strategy). A diagnostic,
not a benchmark: it patches the engine's classes in this process only.
"""

from __future__ import annotations

import functools
import importlib
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from ib_async import client as ib_client

import bench_live as bench

#: The stages timed, in path order: (module, "Class.method").
STAGES = [
    ("copilot_quant.brokers.live_broker_adapter", "LiveBrokerAdapter._settle"),
    ("copilot_quant.live.inline", "InlineDispatch.on_bars"),
    ("copilot_quant.live.inline", "InlineDispatch._unable"),
    ("copilot_quant.brokers.live_broker_adapter", "LiveBrokerAdapter.positions_include_fills"),
    ("copilot_quant.live.bar_clock", "BarClock.known_now_ns"),
    ("copilot_quant.live.bar_clock", "BarClock.completed"),
    ("copilot_quant.live.worker", "Worker.deliver_bars"),
    ("copilot_quant.live.bar_clock", "BarClock.window"),
    ("copilot_quant.live.worker", "Worker.read_account_eager"),
    ("copilot_quant.live.worker", "Worker._decide"),
    ("copilot_quant.live.order_router", "OrderRouter._check"),
    ("copilot_quant.live.order_router", "OrderRouter._record_intents"),
    ("copilot_quant.journal.storage", "JournalStorage._sync_log"),
    ("copilot_quant.live.order_router", "OrderRouter._send_eager"),
    ("copilot_quant.brokers.order_placing", "OrderPlacing._placing"),
    ("copilot_quant.brokers.order_placing", "to_ib_order"),
    ("ib_async.ib", "IB.placeOrder"),
    ("copilot_quant.live.inline", "InlineDispatch._after_bars"),
    ("copilot_quant.live.bar_clock", "BarClock.prepare"),  # the next bar's window, built after the orders
]


class Probe:
    """Wall and CPU time per call of each wrapped stage, and its start/end after the bar handler began."""

    def __init__(self) -> None:
        self.on = False
        self.bar_start = 0
        self.wall: dict[str, list[int]] = defaultdict(list)
        self.cpu: dict[str, list[int]] = defaultdict(list)
        self.timeline: dict[str, list[int]] = defaultdict(list)

    def wrap(self, module: str, qualname: str) -> None:
        owner: Any = importlib.import_module(module)
        *path, name = qualname.split(".")
        for part in path:
            owner = getattr(owner, part)
        original: Callable[..., Any] = getattr(owner, name)
        probe = self

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if not probe.on:
                return original(*args, **kwargs)
            wall, cpu = time.perf_counter_ns(), time.thread_time_ns()
            try:
                return original(*args, **kwargs)
            finally:
                end = time.perf_counter_ns()
                probe.wall[qualname].append(end - wall)
                probe.cpu[qualname].append(time.thread_time_ns() - cpu)
                if probe.bar_start:
                    probe.timeline[f"{qualname} start"].append(wall - probe.bar_start)
                    probe.timeline[f"{qualname} end"].append(end - probe.bar_start)

        setattr(owner, name, timed)

    def install(self) -> None:
        for module, qualname in STAGES:
            self.wrap(module, qualname)
        from copilot_quant.brokers.ib_bar_streams import BarStreams

        on_bar_update = BarStreams.on_bar_update
        send = ib_client.Client.sendMsg
        probe = self

        def bar(self: Any, *args: Any, **kwargs: Any) -> Any:
            probe.bar_start = time.perf_counter_ns() if probe.on else 0
            try:
                return on_bar_update(self, *args, **kwargs)
            finally:
                probe.bar_start = 0

        def send_msg(self: Any, msg: str) -> Any:
            if probe.bar_start and msg and msg.startswith("3\0"):  # placeOrder
                probe.timeline["SEND placeOrder"].append(time.perf_counter_ns() - probe.bar_start)
            return send(self, msg)

        BarStreams.on_bar_update = bar  # type: ignore[method-assign]
        ib_client.Client.sendMsg = send_msg  # type: ignore[method-assign]

    def report(self, bars: int) -> None:
        print(
            f"{'stage':48s} {'calls/bar':>9s} {'wall p50 us':>12s} {'cpu p50 us':>11s} {'wall p99 us':>12s}"
        )
        for _, qualname in STAGES:
            wall, cpu = self.wall.get(qualname), self.cpu.get(qualname)
            if wall and cpu:
                print(
                    f"{qualname:48s} {len(wall) / bars:9.2f} {statistics.median(wall) / 1e3:12.1f} "
                    f"{statistics.median(cpu) / 1e3:11.1f} {sorted(wall)[int(len(wall) * 0.99)] / 1e3:12.1f}"
                )
        print("\ntimeline after the bar's handler began (p50 and p99 of each, us):")
        for what, values in sorted(self.timeline.items(), key=lambda kv: statistics.median(kv[1])):
            if len(values) <= bars * 1.05:  # stages called once per bar: a median of several calls misleads
                p99 = sorted(values)[int(len(values) * 0.99)]
                print(f"  {statistics.median(values) / 1e3:9.1f}  (p99 {p99 / 1e3:9.1f})  {what}")


def main() -> None:
    bars = int(sys.argv[1]) if len(sys.argv) > 1 else 150
    strategies = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    probe = Probe()
    probe.install()
    gateway = bench.SeparateProcessGateway(strategies)
    with bench.engine_session(gateway, strategies):
        probe.on = True
        samples = bench._measure(gateway, bars)
        probe.on = False
    tick = [s[0] for s in samples]
    print(
        f"tick-to-order p50 {bench._pct(tick, 0.5):.2f} ms, p99 {bench._pct(tick, 0.99):.2f} ms ({len(tick)} bars)"
    )
    probe.report(len(tick))


if __name__ == "__main__":
    main()
