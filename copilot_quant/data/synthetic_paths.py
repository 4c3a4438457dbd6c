"""The random model behind :class:`~copilot_quant.data.synthetic.SyntheticDataProvider`: days first, then
minute paths that summarise to exactly those days.

Two layers, so a daily series never needs minute bars and minute bars never contradict daily ones:

1. **Days** (:func:`daily_bars`). Each session draws an overnight gap, an open-to-close move (a geometric
   random walk whose variance grows with the session's length, so half days move less) and its high and
   low from the law of a Brownian bridge's maximum and minimum given that move. The draws come from one
   stream per symbol, one row per session counted from the series' first session, so a longer series
   begins with the shorter one and 20 years of days cost a few thousand draws.
2. **Minutes** (:func:`minute_bars`). A session's minute path is a Brownian bridge from the day's open to its
   close, drawn from a generator seeded by (seed, symbol, session date) alone, so any window of days can be
   generated without the days before it. Where it overshoots the day's range it is shrunk, then a gentle
   piecewise-linear ramp bends its highest and lowest points onto the day's high and low; the day's volume
   is split into whole shares over the minutes (more at the open and close). Summarising a session's
   minutes therefore gives its daily bar *exactly*: first open, highest high, lowest low, last close,
   summed volume.

Everything is vectorised with numpy except one small loop that seeds and draws each session's minutes;
each value depends only on its own session's draws, never on where the session sits in a request.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

__all__ = ["SESSION_MINUTES", "BarArrays", "WalkModel", "daily_bars", "minute_bars"]

#: Length of a regular NYSE session; a session of this length has a full day's variance and volume.
SESSION_MINUTES = 390
_TRADING_DAYS = 252.0
_NS_PER_DAY = 86_400 * 10**9
# Tags that keep the generators of one symbol apart (any fixed, distinct integers).
_DAY_MOVES, _DAY_EXTREMES, _SESSION_MINUTES = 1, 2, 3
_EDGE = 0.1  # share of a session at each end where the minute path is not bent towards the day's extremes


@dataclass(frozen=True, slots=True)
class WalkModel:
    """Parameters of the random walk: yearly drift and volatility, the average volume per full session, and
    how many minutes a full session lasts (390 on the NYSE; 1380 on CME Globex, 1440 for forex)."""

    annual_drift: float
    annual_volatility: float
    daily_volume: float
    session_minutes: int = SESSION_MINUTES

    def minute_sigma(self) -> float:
        """Standard deviation of one minute's log return."""
        return self.annual_volatility / math.sqrt(_TRADING_DAYS * self.session_minutes)


@dataclass(frozen=True, slots=True)
class BarArrays:
    """Bars as parallel float arrays (prices, and volume in whole shares): one row per session or minute."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __len__(self) -> int:
        return len(self.open)

    def take(self, rows: slice | np.ndarray) -> BarArrays:
        """The sessions at ``rows``."""
        return BarArrays(
            self.open[rows], self.high[rows], self.low[rows], self.close[rows], self.volume[rows]
        )


def daily_bars(model: WalkModel, key: tuple[int, int], minutes: np.ndarray, first_price: float) -> BarArrays:
    """Daily bars of consecutive sessions lasting ``minutes`` each; ``key`` is ``(seed, symbol code)``.

    The first session opens at ``first_price``. Row ``i`` depends only on ``key`` and sessions ``0..i``.
    """
    n = len(minutes)
    moves_draws = np.random.default_rng([*key, _DAY_MOVES]).standard_normal((n, 3))
    extremes_draws = np.random.default_rng([*key, _DAY_EXTREMES]).standard_exponential((n, 2))
    dt = np.asarray(minutes, dtype=float) / (model.session_minutes * _TRADING_DAYS)
    vol = model.annual_volatility
    sigma = vol * np.sqrt(dt)
    move = (model.annual_drift - 0.5 * vol**2) * dt + sigma * moves_draws[:, 1]
    gap = 0.2 * vol / math.sqrt(_TRADING_DAYS) * moves_draws[:, 0]
    gap[:1] = 0.0  # the first session opens at first_price
    log_close = math.log(first_price) + np.cumsum(gap + move)
    log_open = log_close - move
    # A Brownian bridge over variance s² ending at b exceeds y >= max(0, b) with probability
    # exp(-2y(y - b) / s²); solving for an exponential draw E gives y = (b + sqrt(b² + 2 s² E)) / 2.
    reach = np.sqrt(move[:, None] ** 2 + 2.0 * sigma[:, None] ** 2 * extremes_draws)
    open_, close = np.exp(log_open), np.exp(log_close)
    open_[:1] = first_price  # exactly, not exp(log(first_price))
    # max/min guard against the last-bit rounding of exp when a day has no excursion (volatility 0).
    high = np.maximum(np.exp(log_open + 0.5 * (move + reach[:, 0])), np.maximum(open_, close))
    low = np.minimum(np.exp(log_open + 0.5 * (move - reach[:, 1])), np.minimum(open_, close))
    share = dt * _TRADING_DAYS  # a half day trades about half a day's volume
    volume = np.round(model.daily_volume * share * np.exp(0.4 * moves_draws[:, 2] - 0.08))
    return BarArrays(open_, high, low, close, volume)


@dataclass(frozen=True, slots=True)
class _Layout:
    """Where each session's minutes sit in the concatenated per-minute arrays."""

    session: np.ndarray  # session number of each minute
    starts: np.ndarray  # index of each session's first minute
    ends: np.ndarray  # index of each session's last minute
    step: np.ndarray  # k / n for the k-th of n minutes: time elapsed in the session, exactly 1.0 at the close

    @classmethod
    def of(cls, counts: np.ndarray) -> _Layout:
        starts = np.cumsum(counts) - counts
        session = np.repeat(np.arange(len(counts)), counts)
        step = (np.arange(int(counts.sum())) - starts[session] + 1) / counts[session]
        return cls(session, starts, starts + counts - 1, step)


def minute_bars(
    model: WalkModel, key: tuple[int, int], days: BarArrays, minutes: np.ndarray, closes_ns: np.ndarray
) -> BarArrays:
    """One-minute bars of the sessions in ``days`` (``minutes`` long, closing at ``closes_ns``), concatenated.

    Session ``i`` gets ``minutes[i]`` rows whose first open, highest high, lowest low, last close and volume
    sum are exactly ``days``' row ``i``. A session's rows depend only on ``key``, its date and its daily bar.
    """
    counts = np.asarray(minutes, dtype=np.int64)
    if len(counts) == 0:
        return days
    at = _Layout.of(counts)
    session, starts = at.session, at.starts
    walk, wick_up, wick_down, volume_share = _session_draws(key, counts, closes_ns // _NS_PER_DAY)

    close = _bridge(model.minute_sigma() * walk, days, at)
    open_ = np.empty_like(close)
    open_[1:] = close[:-1]
    open_[starts] = days.open
    # Small wicks beyond each minute's body, never beyond the day's range; then the highest (lowest) minute
    # reaches the day's high (low) exactly: the bent path touches it already, up to rounding.
    wick = 0.5 * model.minute_sigma()
    high = np.minimum(np.maximum(open_, close) * np.exp(wick * wick_up), days.high[session])
    low = np.maximum(np.minimum(open_, close) * np.exp(-wick * wick_down), days.low[session])
    high[_first_of_each(high == np.maximum.reduceat(high, starts)[session], session)] = days.high
    low[_first_of_each(low == np.minimum.reduceat(low, starts)[session], session)] = days.low

    traded = np.round(days.volume[session] * volume_share)  # cumulative shares, the day's total at the close
    volume = np.diff(traded, prepend=0.0)
    volume[starts] = traded[starts]
    return BarArrays(open_, high, low, close, volume)


def _session_draws(
    key: tuple[int, int], counts: np.ndarray, day_numbers: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per minute: the session's cumulative random walk, two wick sizes and the cumulative volume share.

    Cumulative sums are taken per session here, so a session's values never depend on the sessions
    generated with it.
    """
    walk, up, down, share = [], [], [], []
    for n, day in zip(counts.tolist(), day_numbers.tolist(), strict=True):
        draws = np.random.default_rng([*key, _SESSION_MINUTES, day]).standard_normal((4, n))
        walk.append(np.cumsum(draws[0]))
        up.append(np.abs(draws[1]))
        down.append(np.abs(draws[2]))
        weights = np.cumsum(_volume_profile(n) * np.exp(0.5 * draws[3]))
        share.append(weights / weights[-1])  # exactly 1.0 at the close
    if not walk:
        empty = np.empty(0)
        return empty, empty, empty, empty
    return np.concatenate(walk), np.concatenate(up), np.concatenate(down), np.concatenate(share)


def _bridge(walk: np.ndarray, days: BarArrays, at: _Layout) -> np.ndarray:
    """Minute closes: a bridge from each day's open to its close whose extremes are the day's high and low.

    The random bridge is first shrunk where it overshoots the day's range, then bent by a piecewise-linear
    ramp (zero at the open and close) that lifts its highest point to the high and lowers its lowest to the
    low. The path ends up inside the range (clipped where rounding or the ramp's edges would leave it), and
    no step makes a spike.
    """
    session, step = at.session, at.step
    log_high, log_low = np.log(days.high)[session], np.log(days.low)[session]
    log_open, log_close = np.log(days.open)[session], np.log(days.close)[session]
    line = log_open + step * (log_close - log_open)
    deviation = walk - step * walk[at.ends][session]  # zero at the open and (exactly) at the close
    path = line + _shrink(deviation, log_high - line, line - log_low, at)
    path += _ramp_to_extremes(path, log_high, log_low, at)
    close = np.clip(np.exp(path), days.low[session], days.high[session])
    close[at.ends] = days.close
    return close


def _shrink(deviation: np.ndarray, headroom: np.ndarray, footroom: np.ndarray, at: _Layout) -> np.ndarray:
    """``deviation`` scaled down per session and side just enough to fit above ``-footroom`` and below ``headroom``."""
    above, below = deviation > 0, deviation < 0
    with np.errstate(over="ignore"):  # a vanishing deviation's ratio overflows to inf, clipped to 1 below
        up = np.divide(headroom, deviation, out=np.full_like(deviation, np.inf), where=above)
        down = np.divide(footroom, -deviation, out=np.full_like(deviation, np.inf), where=below)
    shrink_up = np.clip(np.minimum.reduceat(up, at.starts), 0.0, 1.0)
    shrink_down = np.clip(np.minimum.reduceat(down, at.starts), 0.0, 1.0)
    return deviation * np.where(above, shrink_up[at.session], shrink_down[at.session])


def _ramp_to_extremes(path: np.ndarray, log_high: np.ndarray, log_low: np.ndarray, at: _Layout) -> np.ndarray:
    """Per minute, the piecewise-linear ramp through 0 at the open, ``high - max`` at the path's highest
    point in the middle of the session, ``low - min`` at its lowest and 0 at the close.

    The ramp lies between ``low - min`` and ``high - max``, so the bent path stays inside the day's range
    except near the open and close (clipped by the caller). Knots away from the open and close keep the
    ramp gentle: no more than a tenth of the session to climb to the high.
    """
    session, starts, step = at.session, at.starts, at.step
    interior = _middle_of_sessions(at)
    top = np.where(interior, path, -np.inf)
    bottom = np.where(interior, path, np.inf)
    at_high = _first_of_each(top == np.maximum.reduceat(top, starts)[session], session)
    at_low = _first_of_each(bottom == np.minimum.reduceat(bottom, starts)[session], session)
    # A one-minute session has no middle, and a flat one has a single extreme: no ramp there.
    usable = interior[at_high] & (at_high != at_low)
    rise = np.where(usable, np.maximum(log_high[at_high] - path[at_high], 0.0), 0.0)
    fall = np.where(usable, np.minimum(log_low[at_low] - path[at_low], 0.0), 0.0)
    high_first = at_high < at_low
    t1 = np.where(high_first, step[at_high], step[at_low])[session]
    t2 = np.where(high_first, step[at_low], step[at_high])[session]
    v1 = np.where(high_first, rise, fall)[session]
    v2 = np.where(high_first, fall, rise)[session]
    # Denominators of branches np.where does not pick may be zero; replace them to keep numpy quiet.
    middle = np.where(t2 > t1, t2 - t1, 1.0)
    tail = np.where(t2 < 1.0, 1.0 - t2, 1.0)
    return np.where(
        step <= t1,
        v1 * step / t1,
        np.where(step <= t2, v1 + (v2 - v1) * (step - t1) / middle, v2 * (1.0 - step) / tail),
    )


def _middle_of_sessions(at: _Layout) -> np.ndarray:
    """Minutes in the middle 80% of their session, or every minute but the close in very short sessions."""
    middle = (at.step >= _EDGE) & (at.step <= 1.0 - _EDGE)
    middle[at.ends] = False
    short = (np.bincount(at.session[middle], minlength=len(at.ends)) == 0)[at.session]
    middle[short] = True
    middle[at.ends] = False
    return middle


def _first_of_each(mask: np.ndarray, session: np.ndarray) -> np.ndarray:
    """Index of the first true element of ``mask`` in each session (each session must have one)."""
    hits = np.flatnonzero(mask)
    first = np.ones(len(hits), dtype=bool)
    first[1:] = session[hits[1:]] != session[hits[:-1]]
    return hits[first]


@functools.lru_cache(maxsize=32)
def _volume_profile(n: int) -> np.ndarray:
    """Relative volume of each minute of an ``n``-minute session: U-shaped, busiest at open and close."""
    middle = (np.arange(n) + 0.5) / n
    profile = 1.0 + 2.0 * (2.0 * middle - 1.0) ** 2
    profile.flags.writeable = False  # shared by every session of this length
    return profile
