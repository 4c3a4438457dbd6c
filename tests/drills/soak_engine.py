"""The chaos soak's engine, in its own process so the soak can SIGKILL it (run as a script).

Usage: ``python soak_engine.py PORT CLIENT_ID SYMBOLS STRATEGIES SEED SUMMARY`` with SYMBOLS
comma-separated. Runs ``STRATEGIES`` :class:`RandomTrader` strategies on one engine (one account) until
SIGTERM, which stops it cleanly and writes each strategy's own book (its positions, from the engine's
``get_performance_summary()["strategies"]``) to the JSON file SUMMARY. Prints ``READY`` once trading, then
nothing; everything else is in the journal, which ``COPILOT_QUANT_JOURNAL_DIR`` points at.
"""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import sys
import threading
import zlib

from copilot_quant.backtest.live_engine import LiveStrategyEngine
from copilot_quant.backtest.orders import Fill, Order
from copilot_quant.backtest.strategy import Strategy

#: A strategy keeps its own position within this many shares per symbol, so the account never runs dry.
MAX_POSITION = 30


class RandomTrader(Strategy):
    """Trades small random market and limit orders; decisions are seeded by (name, bar time), so a
    restarted process makes the same decision for the same bar. Its position comes from its own fills."""

    def __init__(self, name: str, symbols: list[str], seed: int) -> None:
        super().__init__()
        self.name = name
        self.symbols = symbols
        self.seed = seed
        self.held: dict[str, float] = {}

    def on_data(self, timestamp, data):
        rng = random.Random(zlib.crc32(f"{self.name}|{self.seed}|{timestamp.value}".encode()))
        if rng.random() > 0.35:
            return None
        symbol = rng.choice(self.symbols)
        held = self.held.get(symbol, 0.0)
        side = (
            "sell" if held > MAX_POSITION else "buy" if held < -MAX_POSITION else rng.choice(["buy", "sell"])
        )
        quantity = rng.randint(1, 5)
        if rng.random() < 0.7:
            return [Order(symbol, quantity, "market", side)]
        close = _last_close(data, symbol)
        offset = 1 - 0.002 if side == "buy" else 1 + 0.002  # near the market: some fill, some expire
        return [Order(symbol, quantity, "limit", side, limit_price=round(close * offset, 2))]

    def on_fill(self, fill: Fill) -> None:
        symbol = fill.order.symbol
        self.held[symbol] = self.held.get(symbol, 0.0) + fill.fill_quantity * fill.order.side.sign


def _last_close(data, symbol: str) -> float:
    if ("Close", symbol) in data.columns:
        return float(data[("Close", symbol)].iloc[-1])
    return float(data["Close"].iloc[-1])


def main() -> None:
    port, client_id = int(sys.argv[1]), int(sys.argv[2])
    symbols = sys.argv[3].split(",")
    count, seed = int(sys.argv[4]), int(sys.argv[5])
    summary_file = sys.argv[6]
    logging.basicConfig(
        level=os.environ.get("SOAK_LOG_LEVEL", "WARNING"),
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    engine = LiveStrategyEngine(port=port, client_id=client_id, update_interval=3600, fill_timeout=2.0)
    for n in range(1, count + 1):
        engine.add_strategy(RandomTrader(f"Soak{n}", symbols, seed))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if not engine.connect(timeout=20) or not engine.start(symbols, data_interval="1m", lookback_days=2):
        print("FAILED", flush=True)
        sys.exit(1)
    print("READY", flush=True)
    stop.wait()
    engine.stop()
    books = engine.get_performance_summary()["strategies"]
    with open(summary_file, "w", encoding="utf-8") as out:
        json.dump({name: book["positions"] for name, book in books.items()}, out)
    engine.disconnect()


if __name__ == "__main__":
    main()
