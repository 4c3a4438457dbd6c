"""The live engine, as its parts: run an unchanged backtest strategy against IB (paper or live).

* :mod:`~copilot_quant.live.engine` — :class:`LiveStrategyEngine`, the public face; :mod:`~copilot_quant.live.wiring`
  builds and connects the parts below, and :mod:`~copilot_quant.live.worker` is the engine's thread.
* :mod:`~copilot_quant.live.bar_clock` — when a streamed bar is complete and final (IB's clock).
* :mod:`~copilot_quant.live.strategy_slot` — one strategy's orders, cancels, held orders and book.
* :mod:`~copilot_quant.live.order_router` — market hours → the run's symbols → risk → journal intent →
  broker, in one place.
* :mod:`~copilot_quant.live.reconciler` — journal vs IB as a state machine; no order until reconciled;
  :mod:`~copilot_quant.live.reconcile_notes` words its findings for traders.
* :mod:`~copilot_quant.live.safety` — kill switch, kill files, liveness, competing session: one ``halted``.
* :mod:`~copilot_quant.live.fills` — each fill to the account's ledger and to the strategy that placed it.
* :mod:`~copilot_quant.live.account_view` — IB's snapshot, and what a strategy sees (marked at its bar);
  :mod:`~copilot_quant.live.ledger` is the account from fills, :mod:`~copilot_quant.live.holdings` says
  whose the positions at start are.
* :mod:`~copilot_quant.live.on_stop` — what a stop leaves at IB, and ``flatten_on_stop``.
* :mod:`~copilot_quant.live.summary` — the performance summary, per strategy and combined.
* :mod:`~copilot_quant.live.events` — named events (eventkit) and the bounded error/event records.

The guide's import path, :mod:`copilot_quant.backtest.live_engine`, re-exports the engine.
"""

from copilot_quant.live.engine import LiveStrategyEngine
from copilot_quant.live.events import RecentList

__all__ = ["LiveStrategyEngine", "RecentList"]
