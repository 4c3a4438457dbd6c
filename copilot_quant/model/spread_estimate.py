"""The bid/ask spread estimated from the bars themselves: Corwin and Schultz's high-low estimator.

Corwin, S. A. and Schultz, P. (2012), "A Simple Way to Estimate Bid-Ask Spreads from Daily High and Low
Prices", *The Journal of Finance* 67(2), 719–760. A bar's high is usually a trade at the ask and its low
a trade at the bid, so the high-low range holds the spread plus the price's variance. The variance grows
with the time spanned and the spread does not, so comparing the ranges of two single bars (``beta``)
with the range of the two bars together (``gamma``) separates them:

    alpha = (sqrt(2 beta) - sqrt(beta)) / (3 - 2 sqrt 2) - sqrt(gamma / (3 - 2 sqrt 2))
    S     = 2 (e^alpha - 1) / (1 + e^alpha)          (the spread as a fraction of the price)

with ``beta = ln(H1/L1)^2 + ln(H2/L2)^2`` and ``gamma = ln(max(H1, H2) / min(L1, L2))^2``. As in the
paper, the second bar's high and low are first shifted by an overnight gap (when its low is above the
first bar's close, or its high below it) so that a gap is not read as variance.

**What this module does with it** (deterministic and causal):

* one estimate per pair of consecutive bars; the estimate *known after* bar ``t`` is the mean of the
  last ``window`` two-bar estimates (bars ``t - window .. t``), summed in one fixed order so that every
  caller gets the same float;
* the mean is taken first and then floored at zero. The paper also sets single negative two-bar
  estimates to zero before averaging; on liquid stocks that turns noise into a spread (40-80 bps on the
  bundled daily sample, where IB quotes a cent), while a mean of the raw estimates is unbiased noise
  around the true spread, so its floor (one tick, see :mod:`copilot_quant.model.spread`) is what such
  data gets most of the time;
* the spread of bar ``t`` uses the estimate known after bar ``t - 1`` (never bar ``t`` itself): price it
  at bar ``t - 1``'s close.

Bars with a missing or non-positive price give no two-bar estimate (NaN), and a window with a NaN gives
no estimate; callers use their floor then (as during the first ``window`` bars).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["DEFAULT_WINDOW", "rolling_estimate", "two_bar_spreads"]

#: Two-bar estimates averaged: 20 daily bars is the paper's month.
DEFAULT_WINDOW = 20
_K = 3.0 - 2.0 * math.sqrt(2.0)


def two_bar_spreads(highs: np.ndarray, lows: np.ndarray, closes: np.ndarray) -> np.ndarray:
    """Corwin–Schultz estimates, ``out[t]`` from bars ``t - 1`` and ``t`` (NaN at 0 and for bad bars)."""
    h = np.asarray(highs, dtype=float)
    lo = np.asarray(lows, dtype=float)
    c = np.asarray(closes, dtype=float)
    out = np.full(len(h), np.nan)
    if len(h) < 2:
        return out
    h2, l2, c1 = h[1:].copy(), lo[1:].copy(), c[:-1]
    # overnight adjustment: a gap between the first close and the second bar is not spread or variance
    up = np.where(l2 > c1, l2 - c1, 0.0)
    down = np.where(h2 < c1, c1 - h2, 0.0)
    h2 = h2 - up + down
    l2 = l2 - up + down
    with np.errstate(divide="ignore", invalid="ignore"):
        first = np.log(h[:-1] / lo[:-1])
        second = np.log(h2 / l2)
        beta = first * first + second * second
        gamma = np.log(np.maximum(h[:-1], h2) / np.minimum(lo[:-1], l2)) ** 2
        alpha = (np.sqrt(2.0 * beta) - np.sqrt(beta)) / _K - np.sqrt(gamma / _K)
        spread = 2.0 * (np.exp(alpha) - 1.0) / (1.0 + np.exp(alpha))
    with np.errstate(invalid="ignore"):
        valid = (lo > 0) & (h >= lo) & (c > 0)  # NaN compares False: a missing bar is not valid
    good = valid[:-1] & valid[1:]
    out[1:] = np.where(good & np.isfinite(spread), spread, np.nan)
    return out


def rolling_estimate(highs: np.ndarray, lows: np.ndarray, closes: np.ndarray, window: int) -> np.ndarray:
    """The spread (a fraction of the price, >= 0) known after each bar: ``out[t]`` averages the two-bar
    estimates of bars ``t - window .. t``; NaN until ``window`` of them exist or when one is missing.

    ``out[t]`` depends only on bars ``t - window .. t``, and the sum runs in one fixed order, so the last
    value of this function on the tail of a series equals its value on the whole series.
    """
    pairs = two_bar_spreads(highs, lows, closes)
    n = len(pairs)
    out = np.full(n, np.nan)
    if n < window + 1:
        return out
    total = np.zeros(n - window + 1)
    for k in range(window):  # oldest first, the same order for every caller
        total += pairs[k : n - window + 1 + k]
    out[window - 1 :] = np.maximum(total / window, 0.0)  # NaN stays NaN (out[window - 1]: bar 0's)
    return out
