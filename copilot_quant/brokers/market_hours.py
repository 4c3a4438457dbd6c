"""Market hours for live trading: a timezone-correct helper and the policy for orders outside the session.

Unlike the guide's sketch (local machine time, no holidays), :func:`is_market_open` uses the NYSE calendar
from ``exchange_calendars`` through :mod:`copilot_quant.data.calendars`: America/New_York sessions,
holidays and early closes (13:00), open on ``[09:30, close)``::

    from copilot_quant.brokers.market_hours import is_market_open
    if not is_market_open():
        return []  # no orders outside market hours
"""

from __future__ import annotations

from enum import StrEnum

from copilot_quant.data.calendars import MarketHours, is_market_open, next_session_open

__all__ = ["MarketHours", "OutsideHours", "is_market_open", "next_session_open"]


class OutsideHours(StrEnum):
    """What the live engine does with an order a strategy returns while the regular session is closed."""

    ALLOW = "allow"  # send it anyway: IB queues market/limit DAY orders for the next session
    HOLD = "hold"  # keep it in the engine and send it once the session opens
    REJECT = "reject"  # mark it REJECTED ("market closed") and record an error
