"""Live trading with Interactive Brokers through ib_async: the IB edge of copilot_quant.

Nothing outside this package sees an ib_async object. One module per concept:

* :mod:`.config` — ``IB_*`` settings (explicit > environment/.env > defaults), the port table, the
  paper-vs-live safety checks.
* :mod:`.runtime` — the one asyncio loop on one daemon thread that performs every ib_async call (the
  threading contract is stated there).
* :mod:`.reconnect` — connection health as a state machine (connected → degraded → reconnecting →
  connected, or stopped) and the capped, jittered backoff.
* :mod:`.connection` — an ib_async ``IB`` on a runtime, supervised by that machine; shared by adapters.
* :mod:`.ib_mapping` — translation tables: intervals, bar stamps, orders, statuses.
* :mod:`.pacing`, :mod:`.bar_cache`, :mod:`.order_tracking`, :mod:`.market_hours` — small helpers.
* :mod:`.live_data_adapter` — ``LiveDataFeedAdapter`` (the backtest's ``IDataFeed`` port, live).
* :mod:`.live_broker_adapter` — ``LiveBrokerAdapter`` (the backtest's ``IBroker`` port, live).

The engine that runs a strategy on them is :class:`copilot_quant.backtest.live_engine.LiveStrategyEngine`.
"""
