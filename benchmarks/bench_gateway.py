"""Benchmark the simulated gateway with the real ib_async client on loopback.

* order round trip: placeOrder → 'Filled' seen by ib_async (the clock is stepped right after placing, so
  the time includes the market step that fills the order), p50 / p99 in milliseconds;
* streaming rate: market-data ticks delivered to one subscribed client per second.

Targets from issue 3: p50 < 2 ms round trip, >= 20,000 ticks/s. Run: ``python benchmarks/bench_gateway.py``.
"""

from __future__ import annotations

import statistics
import time

from copilot_quant.data.providers import SyntheticDataProvider
from copilot_quant.gateway.testing import connected_ib, running_gateway
from ib_async import IB, MarketOrder, Stock

ROUND_TRIPS = 200
STEPS = 2000


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def order_round_trips(ib: IB, gw, contract: Stock) -> list[float]:
    times: list[float] = []
    for i in range(ROUND_TRIPS):
        start = time.perf_counter()
        trade = ib.placeOrder(contract, MarketOrder("BUY" if i % 2 == 0 else "SELL", 1))
        ib.sleep(0)  # flush the request to the socket
        while trade.orderStatus.permId == 0:
            ib.sleep(0)  # busy-poll the socket: the lowest-latency way to wait with ib_async's sync API
        gw.clock.step()
        deadline = time.perf_counter() + 5
        while trade.orderStatus.status != "Filled":
            if time.perf_counter() > deadline:
                raise RuntimeError(f"order {i} not filled: {trade.orderStatus} {trade.log[-3:]}")
            ib.sleep(0)
        times.append((time.perf_counter() - start) * 1000)
    return times


def tick_rate(ib: IB, gw, contract: Stock) -> float:
    """Step the market STEPS bars at once and count the ticks ib_async decodes until the stream is drained."""
    ticker = ib.reqMktData(contract)
    ib.sleep(0.2)
    received = 0

    def count(tickers) -> None:
        nonlocal received
        received += sum(len(t.ticks) for t in tickers)

    ib.pendingTickersEvent += count
    start = time.perf_counter()
    gw.clock.step(STEPS)
    last_seen, last_change = -1, time.perf_counter()
    while time.perf_counter() - last_change < 0.2:
        ib.sleep(0.01)
        if received != last_seen:
            last_seen, last_change = received, time.perf_counter()
    elapsed = last_change - start
    ib.pendingTickersEvent -= count
    ib.cancelMktData(contract)
    del ticker
    return received / elapsed


def main() -> None:
    feed = SyntheticDataProvider(["AAPL"], seed=1, start="2024-01-02", periods=500, interval="1m")
    with running_gateway(data=feed, bar_interval="1m") as gw, connected_ib(gw) as ib:
        contract = Stock("AAPL", "SMART", "USD")
        ib.qualifyContracts(contract)
        order_round_trips(ib, gw, contract)  # warm-up
        times = order_round_trips(ib, gw, contract)
        p50, p99 = statistics.median(times), _percentile(times, 0.99)
        print(
            f"order round trip (placeOrder -> Filled, incl. one market step): p50 {p50:.2f} ms, p99 {p99:.2f} ms"
        )
        print(f"  target p50 < 2 ms: ratio {p50 / 2.0:.2f}x of target")
        rate = tick_rate(ib, gw, contract)
        print(
            f"ticks delivered to one client: {rate:,.0f} ticks/s (target 20,000: ratio {rate / 20000:.2f}x)"
        )


if __name__ == "__main__":
    main()
