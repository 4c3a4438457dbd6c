"""copilot_quant: write a strategy once, backtest it honestly and fast, run it in paper or live trading with IBKR.

Packages:

* :mod:`copilot_quant.model` — the domain at the bottom: orders, fills, positions, the IDataFeed/IBroker
  ports, the per-strategy book. It imports nothing else of the project but ``errors``.
* :mod:`copilot_quant.backtest` — the strategy API, the backtest engine,
  results and metrics, and the live engine twin.
* :mod:`copilot_quant.data` — data providers (sample, CSV, Parquet store, synthetic, yfinance) and calendars.
* :mod:`copilot_quant.brokers` — the IBKR edge on ib_async: one event-loop thread, live data and broker adapters.
* :mod:`copilot_quant.gateway` — a simulated IB Gateway speaking the real TWS API protocol on loopback.
"""

import logging

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())
