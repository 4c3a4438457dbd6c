"""When the simulated gateway refreshes account data, on its market clock, as TWS / IB Gateway does.

What IB documents (TWS API reference, December 2026):

* ``reqAccountUpdates`` (updateAccountValue, updatePortfolio, updateAccountTime): "Just as with the TWS'
  Account Window, unless there is a position change this information is updated at a fixed interval of
  three minutes" (interactivebrokers.github.io/tws-api/account_updates.html). The portfolio's unrealized
  P&L "will update either (1) when a trade for that particular instrument occurs or (2) every 3 minutes"
  (…/tws-api/pnl.html).
* ``reqAccountSummary``: "The initial invocation … will result in a list of all requested values being
  returned, and then every three minutes those values which have changed will be returned. The update
  frequency of 3 minutes is the same as the TWS Account Window and cannot be changed"
  (…/tws-api/account_summary.html).
* ``reqPnL`` / ``reqPnLSingle``: "real time updates" from the Portfolio window, "a different update
  frequency" than the Account window (…/tws-api/pnl.html).

So the gateway sends, immediately: a subscription's first snapshot, and on a fill the position (61), the
traded contract's updatePortfolio (7) and the P&L streams; and at the account refresh (every
:data:`DEFAULT_ACCOUNT_UPDATE_INTERVAL` seconds of market time, checked at each market step): the account
values that changed (reqAccountUpdates, reqAccountUpdatesMulti, reqAccountSummary), every portfolio item at
its new mark and the account time. The refresh is one clock for the whole gateway, like TWS's Account
window, and runs on the simulated clock: a replay at any speed refreshes at the same market instants.
Where IB's sentence about a position change is read as "the position and its portfolio line", not "every
account value": the value lag after a fill is what users report (NetLiquidation, cash, buying power
settle at the next refresh).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from copilot_quant.errors import ConfigError

__all__ = ["DEFAULT_ACCOUNT_UPDATE_INTERVAL", "AccountCadenceError", "AccountRefresh", "check_interval"]

#: IB's Account-window refresh, in seconds (it "cannot be changed" at IB).
DEFAULT_ACCOUNT_UPDATE_INTERVAL = 180.0


class AccountCadenceError(ConfigError):
    """An account-update interval that is not a finite number of seconds >= 0."""


def check_interval(seconds: object) -> float:
    """``seconds`` as a float, or :class:`AccountCadenceError` saying what a valid value is."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not math.isfinite(seconds):
        raise AccountCadenceError(
            f"account_update_interval must be a number of seconds of market time, got {seconds!r}; "
            f"IB refreshes account values every {DEFAULT_ACCOUNT_UPDATE_INTERVAL:g} s (the default), "
            "0 sends them at every market step and fill."
        )
    if seconds < 0:
        raise AccountCadenceError(
            f"account_update_interval must be >= 0 seconds, got {seconds!r} "
            f"(IB: {DEFAULT_ACCOUNT_UPDATE_INTERVAL:g}; 0 = at every market step and fill)."
        )
    return float(seconds)


@dataclass(slots=True)
class AccountRefresh:
    """The gateway's account-refresh clock: due once ``interval`` seconds of market time have passed
    since the last refresh (0: at every market step and after every fill). ``configured`` is the
    gateway's setting, ``interval`` the one in force (a drill may change it)."""

    configured: float
    last: pd.Timestamp | None = None
    interval: float = field(init=False)

    def __post_init__(self) -> None:
        self.configured = check_interval(self.configured)
        self.interval = self.configured

    @property
    def on_every_change(self) -> bool:
        """Whether values go out with every fill and step (interval 0), not on the refresh cycle."""
        return self.interval == 0

    def due(self, now: pd.Timestamp) -> bool:
        """Whether a market step at ``now`` refreshes the account; if so the cycle restarts at ``now``."""
        if self.last is not None and (now - self.last).total_seconds() < self.interval:
            return False
        self.last = now
        return True

    def restart(self, now: pd.Timestamp, interval: float | None) -> None:
        """Run on ``interval`` (None: the configured one) from now on, its first cycle starting at ``now``."""
        self.interval = self.configured if interval is None else check_interval(interval)
        self.last = now
