"""The live engine, as its parts: run an unchanged backtest strategy against IB (paper or live).

* :mod:`~copilot_quant.live.engine` — :class:`LiveStrategyEngine`, which wires the parts below.
* :mod:`~copilot_quant.live.bar_clock` — when a streamed bar is complete and final (IB's clock).
* :mod:`~copilot_quant.live.strategy_slot` — one strategy's orders, cancels and held orders.
* :mod:`~copilot_quant.live.order_router` — market hours → risk → journal intent → broker, in one place.
* :mod:`~copilot_quant.live.reconciler` — journal vs IB as a state machine; no order until reconciled.
* :mod:`~copilot_quant.live.safety` — kill switch, kill files, liveness, competing session: one ``halted``.
* :mod:`~copilot_quant.live.account_view` — the account as last read, and a strategy's read-only view.
* :mod:`~copilot_quant.live.events` — named events (eventkit) and the bounded error/event records.

The guide's import path, :mod:`copilot_quant.backtest.live_engine`, re-exports the engine.
"""

from copilot_quant.live.engine import LiveStrategyEngine
from copilot_quant.live.events import RecentList

__all__ = ["LiveStrategyEngine", "RecentList"]
