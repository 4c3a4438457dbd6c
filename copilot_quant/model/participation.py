"""Volume participation limit: a bar fills at most a fraction of the volume it traded, per symbol.

One rule, shared by the backtest (``BacktestEngine(volume_limit=...)``) and the simulated gateway
(``GatewayConfig(volume_limit=...)``), so a paper run against the gateway fills what the backtest filled:

* **Allowance.** A bar of symbol *S* that traded ``V`` shares lets the orders in *S* fill
  ``volume_limit × V`` shares in total (0 < ``volume_limit`` <= 1). A bar with zero, negative or missing
  (NaN) volume fills nothing.
* **Sharing.** Orders draw on the allowance in the order they execute on the bar's price path (see
  :mod:`copilot_quant.model.fill_rules`): a limit touched at the bar's low comes after the market
  orders that filled at its open. Orders that execute at the same point — e.g. several market orders at
  the open — draw in submission order. What one order takes, the next cannot.
* **Whole shares.** An order for a whole number of shares fills whole shares (at most the floor of what
  is left), so when only such orders trade a bar fills at most ``floor(volume_limit × V)`` shares. An
  order for a fractional quantity may take fractions. (The floor forgives float noise: ``0.29 × 100``
  allows 29 shares.)
* **The rest keeps working** (``PARTIALLY_FILLED``): each later bar it tries again by its own fill rule
  — a market order at the next bar's open, a limit only where its limit is marketable, a stop that has
  triggered as a market order, a stop-limit that has triggered as a limit — until it is filled,
  cancelled, or (DAY orders) expires at the end of its session.
* **No look-ahead.** An execution during bar *t* uses only bar *t*'s volume, and bar *t* closed after
  the order was placed: the order never learns anything a trader watching the tape could not have known
  by the time the fill is reported (the same convention as zipline's ``VolumeShareSlippage``).
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass, field

from copilot_quant.errors import ConfigError

__all__ = ["VolumeAllowance", "bar_allowance", "check_volume_limit", "fill_size", "is_whole"]

#: Float noise forgiven by the whole-share floor (``0.29 * 100`` is 28.999999999999996).
_FLOOR_TOLERANCE = 1e-9


def check_volume_limit(value: object, name: str = "volume_limit") -> float | None:
    """``value`` as a participation fraction, or ``None`` (no limit); anything else is a ConfigError."""
    if value is None:
        return None
    if isinstance(value, bool):  # True would silently become 100 %
        raise ConfigError(_bad_limit(name, value))
    try:
        limit = float(value)  # type: ignore[arg-type]  # anything float() accepts; the rest is refused below
    except (TypeError, ValueError):
        raise ConfigError(_bad_limit(name, value)) from None
    if not 0.0 < limit <= 1.0:  # NaN fails this comparison too
        raise ConfigError(_bad_limit(name, value))
    return limit


def _bad_limit(name: str, value: object) -> str:
    return (
        f"{name} must be a fraction of each bar's volume with 0 < {name} <= 1 (e.g. 0.1 = at most 10 % of "
        f"the shares a bar traded); leave it unset (None) for no limit; got {value!r}"
    )


def bar_allowance(limit: float, volume: float) -> float:
    """Shares a bar that traded ``volume`` lets orders fill: ``limit × volume``; 0 without volume."""
    if not (volume > 0 and math.isfinite(volume)):  # NaN, zero, negative, infinite: nothing to take part in
        return 0.0
    return limit * volume


def is_whole(quantity: float) -> bool:
    """Whether an order for ``quantity`` fills in whole shares (its quantity is a whole number)."""
    return float(quantity).is_integer()


def fill_size(remaining: float, left: float, whole_shares: bool) -> float:
    """How much of an order's ``remaining`` quantity fills when ``left`` shares of the allowance are left."""
    cap = math.floor(left + _FLOOR_TOLERANCE) if whole_shares else left
    return max(min(remaining, cap), 0.0)


@dataclass(slots=True)
class VolumeAllowance:
    """What is left of each symbol's allowance in its current bar.

    ``open_bar`` starts a symbol's bar (its allowance is ``limit × volume``); ``size`` says how much an
    order may fill now and ``use`` takes what actually filled. A symbol whose bar was never opened has
    nothing left: without a bar there is no volume to take part in.
    """

    limit: float
    _left: dict[Hashable, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        limit = check_volume_limit(self.limit)
        if limit is None:
            raise ConfigError("VolumeAllowance needs a volume_limit; use no allowance at all for no limit")
        self.limit = limit

    def open_bar(self, symbol: Hashable, volume: float) -> None:
        self._left[symbol] = bar_allowance(self.limit, volume)

    def is_open(self, symbol: Hashable) -> bool:
        return symbol in self._left

    def clear(self) -> None:
        """Close every symbol's bar (the next bar opens them again)."""
        self._left.clear()

    def left(self, symbol: Hashable) -> float:
        return self._left.get(symbol, 0.0)

    def size(self, symbol: Hashable, remaining: float, whole_shares: bool) -> float:
        """How much of an order's ``remaining`` quantity may fill in ``symbol``'s bar now."""
        return fill_size(remaining, self._left.get(symbol, 0.0), whole_shares)

    def use(self, symbol: Hashable, quantity: float) -> None:
        """Take ``quantity`` filled shares off ``symbol``'s allowance."""
        if quantity > 0:
            self._left[symbol] = max(self._left.get(symbol, 0.0) - quantity, 0.0)
