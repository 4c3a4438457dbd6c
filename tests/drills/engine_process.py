"""A trading engine in its own process, for the kill-and-restart drill (run as a script, SIGKILLed by the test).

Usage: ``python engine_process.py PORT LIMIT_PRICE``. Buys 10 AAPL at market and rests a GTC limit buy on
its first bar; prints ``READY`` once trading and ``FILL <exec_id>`` for every ``on_fill`` (flushed at once).
``python engine_process.py PORT trail:AMOUNT``: buys 10 AAPL at market on its first bar, then protects them
with a GTC trailing stop sell trailing by AMOUNT (held at IB) once they are held.
``python engine_process.py PORT bracket TAKE_PROFIT STOP_LOSS`` enters instead with a bracket: 10 AAPL at
market, a GTC take-profit and stop-loss held at IB with it.
"""

from __future__ import annotations

import sys
import time

from copilot_quant.backtest.live_engine import LiveStrategyEngine
from copilot_quant.backtest.orders import Order
from copilot_quant.backtest.strategy import Strategy


class FirstBarBuyer(Strategy):
    def __init__(self, limit: float) -> None:
        super().__init__()
        self.limit = limit
        self.bars = 0

    def on_data(self, timestamp, data):
        self.bars += 1
        if self.bars == 1:
            return [
                Order("AAPL", 10, "market", "buy"),
                Order("AAPL", 7, "limit", "buy", limit_price=self.limit, time_in_force="gtc"),
            ]
        return None

    def on_fill(self, fill):
        print(f"FILL {fill.fill_id}", flush=True)


class BracketBuyer(Strategy):
    def __init__(self, take_profit: float, stop_loss: float) -> None:
        super().__init__()
        self.take_profit, self.stop_loss = take_profit, stop_loss
        self.bars = 0

    def on_data(self, timestamp, data):
        self.bars += 1
        if self.bars == 1:
            return Order.bracket(
                "AAPL", 10, "buy", take_profit=self.take_profit, stop_loss=self.stop_loss, time_in_force="gtc"
            )
        return None

    def on_fill(self, fill):
        print(f"FILL {fill.fill_id}", flush=True)


class TrailingProtector(Strategy):
    """Buys 10 at market on its first bar; on the first bar it holds them, a trailing stop protects them."""

    def __init__(self, trail: float) -> None:
        super().__init__()
        self.trail = trail
        self.bars = 0
        self.held = 0.0
        self.protected = False

    def on_data(self, timestamp, data):
        self.bars += 1
        if self.bars == 1:
            return [Order("AAPL", 10, "market", "buy")]
        if self.held and not self.protected:
            self.protected = True
            stop = Order(
                "AAPL", self.held, "trailing_stop", "sell", trail_amount=self.trail, time_in_force="gtc"
            )
            return [stop]
        return None

    def on_fill(self, fill):
        self.held += fill.signed_quantity
        print(f"FILL {fill.fill_id}", flush=True)


def main() -> None:
    port, spec = int(sys.argv[1]), sys.argv[2]
    engine = LiveStrategyEngine(port=port, client_id=81, update_interval=3600, fill_timeout=0.5)
    if spec.startswith("trail:"):
        engine.add_strategy(TrailingProtector(float(spec.split(":", 1)[1])))
    elif spec == "bracket":
        engine.add_strategy(BracketBuyer(float(sys.argv[3]), float(sys.argv[4])))
    else:
        engine.add_strategy(FirstBarBuyer(float(spec)))
    if not engine.connect(timeout=10) or not engine.start(["AAPL"], lookback_days=5):
        print("FAILED", flush=True)
        sys.exit(1)
    print("READY", flush=True)
    while True:  # until the drill kills this process
        time.sleep(1)


if __name__ == "__main__":
    main()
