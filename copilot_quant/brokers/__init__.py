"""Live trading with Interactive Brokers through ib_async: the IB edge of copilot_quant.

Nothing outside this package sees an ib_async object. One module per concept:

* :mod:`.config` — ``IB_*`` settings (explicit > environment/.env > defaults), the port table, the
  paper-vs-live safety checks.
* :mod:`.runtime` — the one asyncio loop on one daemon thread that performs every ib_async call (the
  threading contract is stated there).
* :mod:`.reconnect` — connection health as a state machine (connected → degraded → reconnecting →
  connected, or stopped) and the capped, jittered backoff.
* :mod:`.connection` — an ib_async ``IB`` on a runtime, supervised by that machine; shared by adapters.
* :mod:`.farms` — TWS's links one by one: to IB (1100/1101/1102), to its server (2110), each data farm.
* :mod:`.ib_mapping` — translation tables: intervals, bar stamps, orders, statuses.
* :mod:`.ib_codes` — what an IB error code means for an order (note, refused cancel, rejection).
* :mod:`.order_tracking` — ``TrackedOrder`` and the tracker (keyed by permId; lost, reopened, corrected).
* :mod:`.exec_corrections` — execution corrections (execId ``….02``) as ``ExecutionCorrection``.
* :mod:`.ib_order_events` — IB's order events applied to the tracker (order truth from IB's own reports).
* :mod:`.fill_gate` — journal-gated, exactly-once delivery of fills.
* :mod:`.ib_account` — account values, positions, buying power.
* :mod:`.buying_power` — what the buying-power pre-check reserves until IB's account values include it.
* :mod:`.contracts`, :mod:`.tick_rules` — qualified contracts and IB's price grid.
* :mod:`.ib_bar_streams` — keepUpToDate bar streams and their stores; :mod:`.stream_health` — their
  liveness apart from quotes; :mod:`.market_data_permissions` — market-data permission codes in words.
* :mod:`.ib_history` — one paced, retried historical request; :mod:`.ib_quotes` — streaming quotes and
  their market-data permissions.
* :mod:`.pacing`, :mod:`.bar_cache`, :mod:`.market_hours` — small helpers.
* :mod:`.live_data_adapter` — ``LiveDataFeedAdapter`` (the backtest's ``IDataFeed`` port, live).
* :mod:`.live_broker_adapter` — ``LiveBrokerAdapter`` (the backtest's ``IBroker`` port, live).

What real IB does beyond a well-behaved gateway, and how this package handles it: ``docs/ib-behaviours.md``.

The engine that runs a strategy on them is :class:`copilot_quant.backtest.live_engine.LiveStrategyEngine`.
"""
