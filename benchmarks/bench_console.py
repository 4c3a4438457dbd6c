"""The operations console's cost: its overview page over a big journal, and its effect on tick-to-order.

1. **Overview render** — a journal of 100,000 fills (1,000 orders of 100 fills each, written in bulk into a
   real journal file), the read-only console serving it on 127.0.0.1; the time of ``GET /`` (the whole
   HTTP round trip: SQL, template, response) over 30 requests. Target (issue #11): < 300 ms.
2. **Tick-to-order with the console attached** — ``bench_live.py``'s in-process measurement (the gateway
   times each bar's publication and the order's arrival) on one engine, in alternating blocks (so that the
   load of a shared machine drifts over both alike): the bare engine, then the engine with its console
   serving a browser-like client (an open ``/events`` stream, a page fetch after events, at most one per
   400 ms, as the page's script does).
   Target: the console adds < 5 % at p50.

Run: ``python benchmarks/bench_console.py [samples]``
"""

from __future__ import annotations

import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from copilot_quant.backtest.live_engine import LiveStrategyEngine
from copilot_quant.console import ConsoleServer, ServeOptions
from copilot_quant.journal import TradeJournal
from copilot_quant.journal.records import to_db_time

from bench_live import Flip, InProcessGateway, _measure, _pct

TARGET_OVERVIEW_MS = 300.0
TARGET_OVERHEAD = 0.05
FILLS = 100_000
_PER_ORDER = 100


def build_journal(path: Path, fills: int = FILLS) -> Path:
    """A real journal (schema by TradeJournal) with ``fills`` fills of three strategies, bulk-inserted."""
    TradeJournal(path, account="DU0000001").close()
    start = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
    orders, rows = [], []
    for k in range(fills // _PER_ORDER):
        ref = f"bench-{k}"
        created = to_db_time(start + timedelta(minutes=k))
        strategy = ("Alpha", "Beta", "Gamma")[k % 3]
        symbol = ("AAPL", "MSFT", "SPY", "QQQ")[k % 4]
        side = "buy" if k % 2 == 0 else "sell"
        orders.append(
            (
                ref,
                "DU0000001",
                strategy,
                str(k),
                symbol,
                side,
                100.0,
                "market",
                "day",
                "filled",
                100.0,
                0.0,
                100.0,
                created,
                created,
                created,
            )
        )
        for j in range(_PER_ORDER):
            when = to_db_time(start + timedelta(minutes=k, seconds=j / 10))
            rows.append((f"x{k}-{j}", ref, symbol, side, 1.0, 100.0 + (k % 50) / 10, when, 0.01, when))
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO orders (order_ref, account, strategy, order_id, symbol, side, quantity, order_type, "
            "time_in_force, state, filled, remaining, avg_price, created_at, submitted_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            orders,
        )
        conn.executemany(
            "INSERT INTO fills (exec_id, order_ref, symbol, side, quantity, price, time, commission, recorded_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        conn.executemany(
            "INSERT INTO events (time, kind, detail) VALUES (?, ?, ?)",
            [(to_db_time(start + timedelta(hours=h)), "reconcile", "start: clean") for h in range(500)],
        )
    return path


def _get(url: str, token: str) -> float:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()
    return (time.perf_counter() - started) * 1000


def bench_overview(requests: int = 30) -> list[float]:
    with tempfile.TemporaryDirectory(prefix="cq-bench-console-") as scratch:
        journal = build_journal(Path(scratch) / "DU0000001.sqlite")
        server = ConsoleServer.for_journal(journal, ServeOptions(port=0, token_file=Path(scratch) / "token"))
        server.start()
        try:
            _get(server.url, server.token.value)  # warm-up: templates compiled, pages cached by SQLite
            return [_get(server.url, server.token.value) for _ in range(requests)]
        finally:
            server.stop()


class Browser:
    """A browser-like client doing what the page's script does: an open event stream, and a fetch of the
    strategy page after events, at most one per 400 ms."""

    def __init__(self, server: ConsoleServer) -> None:
        self.server = server
        self.stop = threading.Event()
        self.fetches = 0
        self.thread = threading.Thread(target=self._stream, daemon=True)
        self.thread.start()

    def _stream(self) -> None:
        request = urllib.request.Request(
            self.server.url + "events", headers={"Authorization": f"Bearer {self.server.token.value}"}
        )
        last = 0.0
        with urllib.request.urlopen(request, timeout=60) as response:
            while not self.stop.is_set() and (line := response.readline()):
                if line.startswith(b"event:") and time.monotonic() - last >= 0.4:
                    last = time.monotonic()
                    _get(self.server.url + "strategy/Flip", self.server.token.value)
                    self.fetches += 1

    def close(self) -> None:
        self.stop.set()


def bench_tick_to_order(samples: int, rounds: int = 4) -> tuple[list[float], list[float]]:
    """One engine, measured in alternating blocks without and with the console (and its browser), so that
    the load of a shared machine drifts over both alike. Returns (without, with) tick-to-order ms."""
    gateway = InProcessGateway()
    bare: list[float] = []
    watched: list[float] = []
    per_block = max(1, samples // rounds)
    with tempfile.TemporaryDirectory(prefix="cq-bench-console-live-") as scratch:
        engine = LiveStrategyEngine(
            port=gateway.port,
            client_id=1,
            update_interval=60,
            fill_timeout=0.001,
            journal=Path(scratch) / "journal.sqlite",
        )
        engine.broker.ack_timeout = 0.0
        engine.add_strategy(Flip())
        try:
            assert engine.connect(timeout=5)
            assert engine.start(["AAPL"], lookback_days=30)
            _measure(gateway, 5)  # warm-up
            for _ in range(rounds):
                bare += [s[0] for s in _measure(gateway, per_block)]
                options = ServeOptions(port=0, token_file=Path(scratch) / "token")
                server = ConsoleServer.for_engine(engine, options).start()
                browser = Browser(server)
                try:
                    time.sleep(0.5)  # the page is open and streaming
                    watched += [s[0] for s in _measure(gateway, per_block)]
                finally:
                    browser.close()
                    server.stop()
            return bare, watched
        finally:
            engine.disconnect()
            gateway.stop()


def main() -> None:
    samples = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    times = bench_overview()
    p50, worst = statistics.median(times), max(times)
    verdict = "met" if p50 < TARGET_OVERVIEW_MS else "MISSED"
    print(f"overview GET / over {FILLS:,} fills: p50 {p50:.1f} ms, max {worst:.1f} ms")
    print(f"  target < {TARGET_OVERVIEW_MS:g} ms: {verdict}")
    bare, watched = bench_tick_to_order(samples)
    for name, values in (("engine alone", bare), ("engine + console + browser", watched)):
        print(f"tick-to-order {name:28s} p50 {_pct(values, 0.5):6.3f} ms  p99 {_pct(values, 0.99):6.3f} ms")
    overhead = _pct(watched, 0.5) / _pct(bare, 0.5) - 1
    verdict = "met" if overhead < TARGET_OVERHEAD else "MISSED"
    print(
        f"  console overhead at p50: {overhead * 100:+.1f} % (target < {TARGET_OVERHEAD * 100:g} %): {verdict}"
    )


if __name__ == "__main__":
    main()
