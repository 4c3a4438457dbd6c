"""Continuous futures series for research: which contract each session uses, and back-adjusted prices.

A continuous series strings a root's contracts together, one at a time. **Which one** is the roll rule's
choice (:class:`RollRule`):

* ``RollRule(days_before_expiry=5)`` — the front contract until 5 weekdays before its last trade date, then
  the next (the same rule as :meth:`~copilot_quant.model.instruments.InstrumentRegistry.contract_on`, so the
  research series and the contract a backtest's orders trade agree);
* ``RollRule(by_volume=True)`` — the contract of the day until the next one trades more in a session, then
  the next one *from the following session on* (the volume is only known at the close: no look-ahead).

**Prices** (:class:`Adjustment`): ``none`` splices the real contracts' prices (a jump at each roll, the
calendar spread); ``difference`` adds each roll's gap (new minus old close at the last bar before the
roll) to every earlier bar, so price *changes* equal the traded contract's everywhere, across rolls too;
``ratio`` multiplies earlier bars by new/old instead, so *percentage* returns are the contract's. The most
recent segment is never changed. Volume is always the contract's own. The rolls are returned
(:class:`Roll`) for a strategy or chart to see.

Use :func:`continuous_series` with any feed that serves contract symbols (``ESZ6`` …)::

    series = continuous_series(SyntheticDataProvider(), "ES", "2024-01-01", "2025-01-01", adjustment="ratio")
    series.bars["Close"], series.rolls[0].at, series.contracts.iloc[-1]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

import numpy as np
import pandas as pd

from copilot_quant.data.calendars import closing_session_of, exchange_tz_name, whole_session_range
from copilot_quant.data.dates import DateLike, resolve_range
from copilot_quant.data.intervals import INTRADAY_INTERVALS
from copilot_quant.errors import ConfigError, DataError
from copilot_quant.model.instruments import Instrument, InstrumentRegistry
from copilot_quant.model.ports import IDataFeed

__all__ = [
    "Adjustment",
    "ContinuousSeries",
    "Roll",
    "RollRule",
    "choose_contracts",
    "continuous_series",
    "splice",
]

_PRICES = ["Open", "High", "Low", "Close"]


class Adjustment(StrEnum):
    """How earlier contracts' prices are moved onto the latest contract's level."""

    NONE = "none"
    DIFFERENCE = "difference"
    RATIO = "ratio"

    @classmethod
    def of(cls, value: str | Adjustment) -> Adjustment:
        try:
            return cls(value)
        except ValueError:
            raise ConfigError(
                f"adjustment must be one of {', '.join(a.value for a in cls)}; got {value!r}"
            ) from None


@dataclass(frozen=True, slots=True)
class RollRule:
    """When a continuous series moves to the next contract (see the module docstring)."""

    days_before_expiry: int = 5
    by_volume: bool = False

    def __post_init__(self) -> None:
        if self.days_before_expiry < 0:
            raise ConfigError(f"days_before_expiry must be >= 0, got {self.days_before_expiry}")


@dataclass(frozen=True, slots=True)
class Roll:
    """One roll: from the bar stamped ``at`` the series uses ``new`` instead of ``old``.

    ``old_price`` and ``new_price`` are both contracts' closes at the last bar before ``at``: the gap the
    difference adjustment adds, the ratio the ratio adjustment multiplies by.
    """

    at: pd.Timestamp
    session: date
    old: str
    new: str
    old_price: float
    new_price: float

    @property
    def gap(self) -> float:
        return self.new_price - self.old_price

    @property
    def ratio(self) -> float:
        return self.new_price / self.old_price


@dataclass(frozen=True, slots=True)
class ContinuousSeries:
    """A root's continuous bars, the contract each bar comes from, and the rolls between them."""

    root: str
    bars: pd.DataFrame
    contracts: pd.Series
    rolls: tuple[Roll, ...]
    adjustment: Adjustment

    @property
    def roll_dates(self) -> list[date]:
        """The sessions on which the series starts using a new contract."""
        return [roll.session for roll in self.rolls]


def session_labels(stamps: pd.DatetimeIndex, calendar: str) -> pd.DatetimeIndex:
    """The session (its date in the exchange's zone) each bar stamp belongs to."""
    closes = closing_session_of(stamps, calendar)
    return closes.tz_convert(exchange_tz_name(calendar)).tz_localize(None).normalize()


def choose_contracts(
    registry: InstrumentRegistry,
    root: str,
    sessions: pd.DatetimeIndex,
    rule: RollRule,
    daily_volume: Callable[[Instrument], pd.Series] | None = None,
) -> list[Instrument]:
    """The contract each session (sorted dates) uses under ``rule``.

    ``daily_volume(contract)`` gives a contract's volume per session date (needed by a volume rule).
    """
    if len(sessions) == 0:
        return []
    if not rule.by_volume:
        return [registry.contract_on(root, day.date(), roll_days=rule.days_before_expiry) for day in sessions]
    if daily_volume is None:
        raise ConfigError("a volume roll needs the contracts' daily volumes (daily_volume=...)")
    chain = _chain(registry, root, sessions[0].date(), sessions[-1].date())
    volumes = {inst: daily_volume(inst) for inst in chain}
    k, out = 0, []
    for day in sessions:
        while _expired(chain[k], day.date()):
            k += 1  # the contract expired: no choice left
        out.append(chain[k])
        if k + 1 < len(chain):
            # decided on this session's close, used from the next session on
            now, following = volumes[chain[k]], volumes[chain[k + 1]]
            if float(following.get(day, 0.0)) > float(now.get(day, 0.0)):
                k += 1
    return out


def splice(
    frames: Mapping[Instrument, pd.DataFrame],
    contracts: Sequence[Instrument],
    stamps: pd.DatetimeIndex,
    labels: pd.DatetimeIndex,
    *,
    adjustment: Adjustment | str = Adjustment.NONE,
    root: str = "",
) -> ContinuousSeries:
    """Bars at ``stamps`` taken from ``frames[contracts[i]]`` for each stamp ``i``, then back-adjusted.

    Every stamp must be a bar of its contract; at a roll, the new contract needs a bar at the last stamp
    before it (the price both contracts are compared at). Contracts are keys rather than symbols because a
    one-digit year (``ESZ5``) repeats every decade.
    """
    how = Adjustment.of(adjustment)
    order = list(dict.fromkeys(contracts))
    codes = np.array([order.index(c) for c in contracts], dtype=int) if order else np.empty(0, dtype=int)
    columns = list(next(iter(frames.values())).columns)
    values = np.empty((len(stamps), len(columns)))
    for k, contract in enumerate(order):
        mask = codes == k
        rows = frames[contract].index.get_indexer(stamps[mask])
        if (rows < 0).any():
            missing = stamps[mask][rows < 0][0]
            raise DataError(f"{contract.symbol} has no bar at {missing} where the continuous series uses it.")
        values[mask] = frames[contract][columns].to_numpy(dtype=float)[rows]
    rolls = _rolls(frames, [order[k] for k in codes], stamps, labels)
    bars = pd.DataFrame(values, index=stamps, columns=columns)
    _adjust(bars, rolls, how)
    picked = pd.Series([c.symbol for c in contracts], index=stamps, dtype=object)
    return ContinuousSeries(root, bars, picked, tuple(rolls), how)


def continuous_series(
    feed: IDataFeed,
    root: str,
    start_date: DateLike,
    end_date: DateLike,
    interval: str = "1d",
    *,
    rule: RollRule | None = None,
    adjustment: Adjustment | str = Adjustment.NONE,
    registry: InstrumentRegistry | None = None,
) -> ContinuousSeries:
    """The continuous series of ``root`` between two dates from ``feed``'s contract bars."""
    reg = registry if registry is not None else InstrumentRegistry()
    continuous = reg.continuous(root.removesuffix("=F"))
    tz = exchange_tz_name(continuous.calendar)
    lo, hi = resolve_range(start_date, end_date, tz)
    if interval in INTRADAY_INTERVALS:  # the dates' whole sessions, as every feed serves a date range
        lo, hi = whole_session_range(lo, hi, continuous.calendar, tz)
    if lo is None or hi is None:
        raise ConfigError("a continuous series needs both a start and an end date")
    chain = _chain(reg, continuous.root, lo.date(), hi.date())
    frames = {inst: feed.get_historical_data(_unambiguous(inst), lo, hi, interval) for inst in chain}

    def daily(contract: Instrument) -> pd.Series:
        bars = (
            frames[contract]
            if interval == "1d"
            else feed.get_historical_data(_unambiguous(contract), lo, hi, "1d")
        )
        return pd.Series(
            bars["Volume"].to_numpy(), index=session_labels(pd.DatetimeIndex(bars.index), continuous.calendar)
        )

    return assemble(
        continuous, reg, frames, rule=rule or RollRule(), adjustment=adjustment, daily_volume=daily
    )


def assemble(
    continuous: Instrument,
    registry: InstrumentRegistry,
    frames: Mapping[Instrument, pd.DataFrame],
    *,
    rule: RollRule,
    adjustment: Adjustment | str,
    daily_volume: Callable[[Instrument], pd.Series] | None = None,
) -> ContinuousSeries:
    """The continuous series made of ``frames`` (a root's contracts' bars over one window)."""
    non_empty = [f.index for f in frames.values() if len(f)]
    if not non_empty:
        return _empty_series(continuous.symbol, adjustment, frames)
    stamps = pd.DatetimeIndex(non_empty[0].append(non_empty[1:]).unique().sort_values())
    labels = session_labels(stamps, continuous.calendar)
    sessions = labels.unique()
    chosen = dict(
        zip(sessions, choose_contracts(registry, continuous.root, sessions, rule, daily_volume), strict=True)
    )
    contracts = [chosen[label] for label in labels]
    has_bar = np.array(
        [c in frames and stamp in frames[c].index for stamp, c in zip(stamps, contracts, strict=True)],
        dtype=bool,
    )
    used = [c for c, h in zip(contracts, has_bar, strict=True) if h]
    kept = pd.DatetimeIndex(stamps[has_bar])
    return splice(frames, used, kept, labels[has_bar], adjustment=adjustment, root=continuous.symbol)


def _empty_series(
    root: str, adjustment: Adjustment | str, frames: Mapping[Instrument, pd.DataFrame]
) -> ContinuousSeries:
    columns = (
        list(next(iter(frames.values())).columns) if frames else ["Open", "High", "Low", "Close", "Volume"]
    )
    index = pd.DatetimeIndex([], tz="UTC", name="timestamp").as_unit("ns")
    bars = pd.DataFrame({c: pd.Series([], dtype=float, index=index) for c in columns})
    return ContinuousSeries(
        root, bars, pd.Series([], index=index, dtype=object), (), Adjustment.of(adjustment)
    )


def _expired(contract: Instrument, day: date) -> bool:
    return contract.expiry is not None and contract.expiry < day


def _chain(registry: InstrumentRegistry, root: str, first: date, last: date) -> list[Instrument]:
    """The contracts of ``root`` trading between two dates: from the front on ``first`` to one past ``last``."""
    count = 2
    while True:
        chain = registry.contracts_after(root, first, count=count)
        expiry = chain[-2].expiry
        if expiry is not None and expiry >= last:
            return chain
        count *= 2


def _unambiguous(contract: Instrument) -> str:
    """``ESZ25`` rather than ``ESZ5``: the name a feed cannot read in the wrong decade."""
    return f"{contract.symbol[:-1]}{contract.contract_month[2:4]}"


def _rolls(
    frames: Mapping[Instrument, pd.DataFrame],
    picked: Sequence[Instrument],
    stamps: pd.DatetimeIndex,
    labels: pd.DatetimeIndex,
) -> list[Roll]:
    rolls = []
    for i in range(1, len(picked)):
        old, new = picked[i - 1], picked[i]
        if old == new:
            continue
        before = stamps[i - 1]
        latest = int(frames[new].index.searchsorted(before, side="right")) - 1
        if latest < 0:
            raise DataError(
                f"{new.symbol} has no bar at or before {before}, so the roll from {old.symbol} cannot be "
                f"priced; load its bars from before the roll."
            )
        rolls.append(
            Roll(
                at=stamps[i], session=labels[i].date(), old=old.symbol, new=new.symbol,
                old_price=float(frames[old]["Close"].to_numpy()[frames[old].index.get_loc(before)]),
                new_price=float(frames[new]["Close"].to_numpy()[latest]),
            )
        )  # fmt: skip
    return rolls


def _adjust(bars: pd.DataFrame, rolls: Sequence[Roll], how: Adjustment) -> None:
    """Move every bar before each roll onto the next contract's level, latest roll first (in place)."""
    if how is Adjustment.NONE or not rolls:
        return
    prices = bars[_PRICES].to_numpy()
    for roll in reversed(rolls):
        before = (bars.index < roll.at)[:, None]
        if how is Adjustment.DIFFERENCE:
            prices = np.where(before, prices + roll.gap, prices)
        else:
            prices = np.where(before, prices * roll.ratio, prices)
    bars[_PRICES] = prices
