"""Which of TWS's broken links stop the engine's trading, and which it can trade through.

TWS reports its link to IB, its server link and each data farm by name
(:class:`~copilot_quant.brokers.farms.LinkHealth`); any broken one makes the connection ``DEGRADED``. The
engine trades US stocks on bars and quotes, so it needs:

* the link to IB (1100) and TWS's server link (2110): without them no order or data moves;
* the US market-data farms (``usfarm``, ``usfarm.nj`` …): quotes price the risk checks and feed liveness;
* the US historical-data farms (``ushmds`` …): the live bars are keepUpToDate historical requests.

A farm named only by its kind (TWS sent no name) counts as needed when it is a market or HMDS farm. Every
other farm — forex (``cashfarm``), other regions (``eufarm``, ``jfarm``, ``euhmds`` …), options
(``usopt``), the sec-def farm once the contracts are qualified — does not stop trading: the engine keeps
stepping and says what is broken in its status. (A broken sec-def farm at start fails the symbol lookup,
which says so.)
"""

from __future__ import annotations

from copilot_quant.brokers.farms import FarmState, LinkHealth

__all__ = ["blocking_problems", "farm_is_needed"]

#: Farm names (or name prefixes) whose loss leaves the engine without its quotes or bars.
_NEEDED = ("usfarm", "ushmds")
#: The kind a farm is named by when TWS's message names none.
_NEEDED_KINDS = frozenset({"market", "hmds"})


def farm_is_needed(name: str) -> bool:
    """Whether the engine needs the data farm ``name`` to trade (see the module docstring)."""
    lowered = name.lower()
    if lowered in _NEEDED_KINDS:
        return True
    return any(lowered == p or lowered.startswith(p + ".") for p in _NEEDED)


def blocking_problems(health: LinkHealth) -> list[str]:
    """What is broken that the engine needs, in words (empty: it may trade, whatever else is broken)."""
    out = [] if health.ib_link else ["TWS has no connection to IB (1100)"]
    if not health.server_link:
        out.append("TWS has no connection to its server (2110)")
    out += [
        f"data farm {name} broken"
        for name, state in sorted(health.farms.items())
        if state is FarmState.BROKEN and farm_is_needed(name)
    ]
    return out
