"""Benchmark the simulated gateway with the real ib_async client on loopback.

* order round trip: placeOrder → 'Filled' seen by ib_async (the clock is stepped right after placing, so
  the time includes the market step that fills the order), p50 / p99 in milliseconds;
* streaming rate: market-data ticks delivered to one subscribed client per second.

Targets from issue 3: p50 < 2 ms round trip, >= 20,000 ticks/s. Run: ``python benchmarks/bench_gateway.py``.

Two things about the client side decide what this measures (found while profiling):

* ib_async throttles requests to 45 per second (``Client.MaxRequests``, like TWS's 50 msg/s limit). At
  ~2 ms per round trip the 46th order of a second waits for the window to roll over, which made
  p99 ≈ 700–800 ms. That is the client's own pacing, not gateway latency, so it is switched off here
  (``MaxRequests = 0``); the line "with ib_async's throttle" shows its effect separately.
* The wait must block in the selector: busy-polling with ``ib.sleep(0)`` keeps the GIL hot in the client
  thread while the in-process gateway thread waits for it. ``ib.waitOnUpdate()`` is no use either: in
  sync mode it connects to ``updateEvent`` one loop callback late, so data already in the socket (the
  fill, sent while ``clock.step()`` blocked this thread) is processed before it listens, and it then
  waits for an update that never comes (1 s per order with ``timeout=1``; forever without a timeout).
  :func:`wait_until` connects synchronously before running the loop.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable

from copilot_quant.data.providers import SyntheticDataProvider
from copilot_quant.gateway.testing import connected_ib, running_gateway
from ib_async import IB, MarketOrder, Stock, util

ROUND_TRIPS = 200
STEPS = 2000


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def wait_until(ib: IB, done: Callable[[], bool], timeout: float = 5.0) -> None:
    """Run ib_async's loop until ``done()``; blocks in the selector between updates (no lost wake-up)."""
    loop = util.getLoop()
    deadline = time.perf_counter() + timeout
    while not done():
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            raise TimeoutError("condition not met in time")
        woken = loop.create_future()

        def on_update(*_: object, woken: asyncio.Future[None] = woken) -> None:
            if not woken.done():
                woken.set_result(None)

        ib.updateEvent += on_update  # connected before the loop runs: pending socket data cannot slip by
        try:
            loop.run_until_complete(asyncio.wait_for(woken, remaining))
        except TimeoutError:
            pass
        finally:
            ib.updateEvent -= on_update


def order_round_trips(ib: IB, gw, contract: Stock, count: int = ROUND_TRIPS) -> list[float]:
    times: list[float] = []
    for i in range(count):
        start = time.perf_counter()
        trade = ib.placeOrder(contract, MarketOrder("BUY" if i % 2 == 0 else "SELL", 1))
        wait_until(ib, lambda t=trade: t.orderStatus.permId != 0)  # the gateway acknowledged it
        gw.clock.step()
        try:
            wait_until(ib, lambda t=trade: t.orderStatus.status == "Filled")
        except TimeoutError:
            raise RuntimeError(f"order {i} not filled: {trade.orderStatus} {trade.log[-3:]}") from None
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
        throttle = ib.client.MaxRequests
        ib.client.MaxRequests = 0  # see the module docstring
        order_round_trips(ib, gw, contract)  # warm-up
        times = order_round_trips(ib, gw, contract)
        p50, p99 = statistics.median(times), _percentile(times, 0.99)
        print(
            f"order round trip (placeOrder -> Filled, incl. one market step): p50 {p50:.2f} ms, p99 {p99:.2f} ms"
        )
        print(f"  target p50 < 2 ms: ratio {p50 / 2.0:.2f}x of target")
        ib.client.MaxRequests = throttle
        throttled = order_round_trips(ib, gw, contract)
        print(
            f"  with ib_async's throttle ({throttle} requests/s): p50 {statistics.median(throttled):.2f} ms, "
            f"p99 {_percentile(throttled, 0.99):.2f} ms"
        )
        ib.client.MaxRequests = 0
        rate = tick_rate(ib, gw, contract)
        print(
            f"ticks delivered to one client: {rate:,.0f} ticks/s (target 20,000: ratio {rate / 20000:.2f}x)"
        )


if __name__ == "__main__":
    main()
