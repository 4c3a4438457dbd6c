"""Safety rails: pre-trade risk limits, the kill switch, the order-rate limiter and the liveness guard.

All pure (no I/O, an injectable clock), thread-safe, and independent of IB::

    risk = RiskManager(RiskLimits(max_order_quantity=500, price_band_pct=5), liveness=LivenessGuard(30, 120))
    decision = risk.check(order, last_price, positions, equity, day_start_equity)
    if decision.ok:            # the order now holds one max_orders_per_minute slot (atomic across threads)
        ...send...; risk.record_submitted(order)   # not sent after all: risk.release_reservation(order)
    else:
        ...reject the order with decision.reason...

A running ``copilot-quant live`` also watches its account's kill-switch file
(:func:`~copilot_quant.risk.kill_file.default_kill_file`), which ``copilot-quant kill --account`` writes.
"""

from copilot_quant.risk.kill_switch import KillSwitch, KillSwitchEngagement
from copilot_quant.risk.limits import RiskDecision, RiskLimits, RiskManager, RiskRule
from copilot_quant.risk.liveness import LivenessGuard
from copilot_quant.risk.rate_limit import OrderRateLimiter

__all__ = [
    "KillSwitch",
    "KillSwitchEngagement",
    "LivenessGuard",
    "OrderRateLimiter",
    "RiskDecision",
    "RiskLimits",
    "RiskManager",
    "RiskRule",
]
