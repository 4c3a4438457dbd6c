"""Tick-to-order latency through the whole live stack, against the simulated gateway on loopback.

One sample: the gateway's clock publishes a new bar (``clock.step``) → ib_async decodes the keepUpToDate
update on the library's loop thread → the data adapter stores it and wakes the engine worker → the engine
asks the broker's clock, builds the strategy's window, calls ``on_data`` → the strategy returns a market
order → the broker adapter places it → the gateway receives ``placeOrder``. Measured from just before the
step to the moment the gateway's broker receives the order (same process, ``perf_counter``).

The peer is the minimal hand-written ib_async program doing the same job: a ``barUpdateEvent`` handler
that calls ``placeOrder`` directly on ib_async's loop. The ratio shows what the engine's safety (thread
hand-off, server-clock check, backtest-shaped DataFrame, order tracking) costs per bar. Strategy code is
excluded (the strategy returns its order at once). Target from the issue: p99 < 5 ms.

Run: ``python benchmarks/bench_live.py [samples]``
"""

from __future__ import annotations

import asyncio
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


def _measure(server: GatewayServer, arrivals: OrderArrivals, samples: int) -> list[float]:
    out = []
    for _ in range(samples):
        start = time.perf_counter()
        server.clock.step(1)
        arrived = arrivals.wait()
        if arrived is not None:
            out.append((arrived - start) * 1000)
        time.sleep(0.05)  # stay under ib_async's own 45 requests/s throttle, which would dominate
    return out


def bench_engine(samples: int) -> list[float]:
    server = _server()
    arrivals = OrderArrivals(server)
    engine = LiveStrategyEngine(port=server.port, client_id=1, update_interval=60, fill_timeout=0.001)
    engine.broker.ack_timeout = 0.0
    engine.add_strategy(Flip())
    try:
        assert engine.connect(timeout=5)
        assert engine.start(["AAPL"], lookback_days=30)
        _measure(server, arrivals, 5)  # warm-up
        return _measure(server, arrivals, samples)
    finally:
        engine.disconnect()
        server.stop()


def bench_raw_ib_async(samples: int) -> list[float]:
    server = _server()
    arrivals = OrderArrivals(server)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    ib: IB = asyncio.run_coroutine_threadsafe(_make_ib(), loop).result()
    state = {"long": False}

    def on_bar(bars: Any, has_new_bar: bool) -> None:
        state["long"] = not state["long"]
        ib.placeOrder(bars.contract, MarketOrder("BUY" if state["long"] else "SELL", 1))

    async def setup() -> None:
        await ib.connectAsync("127.0.0.1", server.port, clientId=2)
        [contract] = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
        await ib.reqHistoricalDataAsync(contract, "", "30 D", "1 day", "TRADES", True, 2, keepUpToDate=True)
        ib.barUpdateEvent += on_bar

    try:
        asyncio.run_coroutine_threadsafe(setup(), loop).result(10)
        _measure(server, arrivals, 5)
        return _measure(server, arrivals, samples)
    finally:
        loop.call_soon_threadsafe(ib.disconnect)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        server.stop()


async def _make_ib() -> IB:
    return IB()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    samples = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    ours = bench_engine(samples)
    peer = bench_raw_ib_async(samples)
    for name, values in (("copilot_quant engine", ours), ("raw ib_async handler", peer)):
        print(
            f"{name:22s} n={len(values):4d}  p50 {_pct(values, 0.5):7.3f} ms  p99 {_pct(values, 0.99):7.3f} ms  "
            f"mean {statistics.fmean(values):7.3f} ms"
        )
    print(
        f"ratio engine/raw: p50 {_pct(ours, 0.5) / _pct(peer, 0.5):.2f}x  p99 {_pct(ours, 0.99) / _pct(peer, 0.99):.2f}x"
    )


if __name__ == "__main__":
    main()
