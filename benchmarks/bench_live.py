"""Tick-to-order latency through the whole live stack, against the simulated gateway on loopback.

One sample: the gateway's clock publishes a new bar (``clock.step``) → ib_async decodes the keepUpToDate
update on the library's loop thread → the data adapter stores it and wakes the engine worker → the engine
asks the broker's clock, builds the strategy's window, calls ``on_data`` → the strategy returns a market
order → the broker adapter places it → the gateway receives ``placeOrder``. Measured from just before the
step to the moment the gateway's broker receives the order (``perf_counter``, taken in the gateway).

Each benchmark runs twice: with the gateway in this process (its threads share our GIL) and with the
gateway in its own process, as a real TWS/IB Gateway is. The child process steps its clock on command
and reports the step-to-order time it measured itself, so no clocks are compared across processes.

The peer is the minimal hand-written ib_async program doing the same job: a ``barUpdateEvent`` handler
that calls ``placeOrder`` directly on ib_async's loop. The ratio shows what the engine's safety (thread
hand-off, server-clock check, backtest-shaped DataFrame, order tracking) costs per bar. Strategy code is
excluded (the strategy returns its order at once). Target from the issue: p99 < 5 ms.

Run: ``python benchmarks/bench_live.py [samples]``
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import statistics
import sys
import threading
import time
from typing import Any

from copilot_quant.backtest.live_engine import LiveStrategyEngine
from copilot_quant.backtest.orders import Order
from copilot_quant.backtest.strategy import Strategy
from copilot_quant.data.synthetic import SyntheticDataProvider
from copilot_quant.gateway.server import GatewayConfig, GatewayServer
from ib_async import IB, MarketOrder, Stock


class OrderArrivals:
    """Wraps the gateway broker's ``place_order`` to time-stamp each order's arrival."""

    def __init__(self, server: GatewayServer) -> None:
        self.times: list[float] = []
        self.event = threading.Event()
        original = server.broker.place_order

        def place_order(*args: Any, **kwargs: Any) -> Any:
            self.times.append(time.perf_counter())
            self.event.set()
            return original(*args, **kwargs)

        server.broker.place_order = place_order  # type: ignore[method-assign]

    def wait(self, timeout: float = 5.0) -> float | None:
        if not self.event.wait(timeout):
            return None
        self.event.clear()
        return self.times[-1]


class Flip(Strategy):
    """Buys then sells one share on alternate bars: an order on every bar, no strategy work."""

    def initialize(self) -> None:
        self.long = False

    def on_data(self, timestamp, data):
        self.long = not self.long
        return [Order("AAPL", 1, "market", "buy" if self.long else "sell")]


def _server() -> GatewayServer:
    config = GatewayConfig(port=0, data=SyntheticDataProvider(seed=1), symbols=["AAPL"], start="2020-01-02")
    return GatewayServer(config).start()


class InProcessGateway:
    """The simulated gateway on threads of this process."""

    def __init__(self) -> None:
        self.server = _server()
        self.port = self.server.port
        self.arrivals = OrderArrivals(self.server)

    def step(self) -> float | None:
        """Publish one bar; milliseconds until the resulting order reached the gateway (None: no order)."""
        start = time.perf_counter()
        self.server.clock.step(1)
        arrived = self.arrivals.wait()
        return None if arrived is None else (arrived - start) * 1000

    def stop(self) -> None:
        self.server.stop()


def _gateway_process(conn: Any) -> None:
    gateway = InProcessGateway()
    conn.send(gateway.port)
    try:
        while conn.recv() == "step":
            conn.send(gateway.step())
    finally:
        gateway.stop()


class SeparateProcessGateway:
    """The simulated gateway in a child process, driven over a pipe (like a real, separate TWS)."""

    def __init__(self) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_gateway_process, args=(child,), daemon=True)
        self.process.start()
        if not self.conn.poll(60):
            raise RuntimeError("the gateway process did not start")
        self.port = int(self.conn.recv())

    def step(self) -> float | None:
        self.conn.send("step")
        value: float | None = self.conn.recv()
        return value

    def stop(self) -> None:
        self.conn.send("stop")
        self.process.join(10)
        if self.process.is_alive():
            self.process.terminate()


Gateway = InProcessGateway | SeparateProcessGateway


def _measure(gateway: Gateway, samples: int) -> list[float]:
    out = []
    for _ in range(samples):
        value = gateway.step()
        if value is not None:
            out.append(value)
        time.sleep(0.05)  # stay under ib_async's own 45 requests/s throttle, which would dominate
    return out


def bench_engine(gateway: Gateway, samples: int) -> list[float]:
    engine = LiveStrategyEngine(port=gateway.port, client_id=1, update_interval=60, fill_timeout=0.001)
    engine.broker.ack_timeout = 0.0
    engine.add_strategy(Flip())
    try:
        assert engine.connect(timeout=5)
        assert engine.start(["AAPL"], lookback_days=30)
        _measure(gateway, 5)  # warm-up
        return _measure(gateway, samples)
    finally:
        engine.disconnect()
        gateway.stop()


def bench_raw_ib_async(gateway: Gateway, samples: int) -> list[float]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    ib: IB = asyncio.run_coroutine_threadsafe(_make_ib(), loop).result()
    state = {"long": False}

    def on_bar(bars: Any, has_new_bar: bool) -> None:
        state["long"] = not state["long"]
        ib.placeOrder(bars.contract, MarketOrder("BUY" if state["long"] else "SELL", 1))

    async def setup() -> None:
        await ib.connectAsync("127.0.0.1", gateway.port, clientId=2)
        [contract] = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
        await ib.reqHistoricalDataAsync(contract, "", "30 D", "1 day", "TRADES", True, 2, keepUpToDate=True)
        ib.barUpdateEvent += on_bar

    try:
        asyncio.run_coroutine_threadsafe(setup(), loop).result(10)
        _measure(gateway, 5)
        return _measure(gateway, samples)
    finally:
        loop.call_soon_threadsafe(ib.disconnect)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        gateway.stop()


async def _make_ib() -> IB:
    return IB()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _line(name: str, values: list[float]) -> str:
    return (
        f"  {name:22s} n={len(values):4d}  p50 {_pct(values, 0.5):7.3f} ms  p99 {_pct(values, 0.99):7.3f} ms  "
        f"mean {statistics.fmean(values):7.3f} ms"
    )


def main() -> None:
    samples = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    for label, make in (
        ("gateway in this process", InProcessGateway),
        ("gateway in its own process", SeparateProcessGateway),
    ):
        ours = bench_engine(make(), samples)
        peer = bench_raw_ib_async(make(), samples)
        print(f"{label}:")
        print(_line("copilot_quant engine", ours))
        print(_line("raw ib_async handler", peer))
        print(
            f"  ratio engine/raw: p50 {_pct(ours, 0.5) / _pct(peer, 0.5):.2f}x  "
            f"p99 {_pct(ours, 0.99) / _pct(peer, 0.99):.2f}x"
        )


if __name__ == "__main__":
    main()
