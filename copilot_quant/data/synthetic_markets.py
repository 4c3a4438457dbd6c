"""How :class:`~copilot_quant.data.synthetic.SyntheticDataProvider` draws futures contracts and forex pairs.

Every symbol follows a random path (:mod:`~copilot_quant.data.synthetic_paths`) on its instrument's
calendar; what differs per kind is which path, and what is done to it:

* **Stock** — its own path on the NYSE, on the cent grid (unchanged from the stock-only provider).
* **Futures contract** (``ESZ6``) — the path of its *underlying* (one per index: ES and MES share the S&P
  500's, NQ and MNQ the Nasdaq-100's) on CME Globex, times a carry factor ``exp(carry × days to expiry /
  365)`` fixed per session, so the basis shrinks to nothing at expiry and every contract of a root moves
  with the others. A contract trades from about 13 months before its last trade date through it. Its volume
  is whole contracts: most of the root's volume while it is the front month, from 8 days before the previous
  contract's expiry to 8 days before its own (when traders roll), a trickle otherwise. Prices are on the
  root's tick grid (0.25 index points for ES, 1/64 for ZN).
* **Forex pair** (``EUR.USD``) — its own path on the 24/5 forex calendar. Bars are *midpoints*: the bid is
  the path on the pair's tick grid (rounded down), the ask one tick above, the midpoint half a tick above
  the bid; volume is 0 (IDEALPRO prints no trade volume). :func:`quote_frames` gives the bid and ask bars.

A session's scale factor is constant, so intraday bars still aggregate exactly to daily ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from copilot_quant.data.synthetic_paths import SESSION_MINUTES, BarArrays
from copilot_quant.model.instruments import MONTH_CODES, AssetClass, Instrument, InstrumentRegistry

__all__ = ["MarketTerms", "quote_frames", "terms_for"]

#: Annual carry (rate minus yield) that sets every synthetic contract's premium over its underlying.
CARRY = 0.03
#: Calendar days before expiry when the volume moves to the next contract.
ROLL_LEAD_DAYS = 8
#: Share of the root's volume a contract trades while it is not the front month.
_BACK_SHARE = 0.03
#: A contract is listed this long before its last trade date.
_LISTED_DAYS = 400
_GLOBEX_MINUTES = 23 * 60
_FOREX_MINUTES = 24 * 60

#: Micro contracts follow their full-size contract's underlying.
_SAME_UNDERLYING = {"MES": "ES", "MNQ": "NQ"}
#: Typical prices around 2015 (the default start) and volatility relative to a stock's.
_TYPICAL = {
    "ES": (2000.0, 0.7),
    "NQ": (4200.0, 0.85),
    "CL": (50.0, 1.4),
    "GC": (1200.0, 0.6),
    "ZN": (127.0, 0.25),
    "EUR.USD": (1.10, 0.3),
    "GBP.USD": (1.50, 0.35),
    "AUD.USD": (0.75, 0.4),
    "USD.JPY": (120.0, 0.35),
    "USD.CHF": (0.95, 0.3),
    "USD.CAD": (1.25, 0.3),
    "EUR.GBP": (0.75, 0.3),
    "EUR.JPY": (130.0, 0.35),
}


@dataclass(frozen=True, slots=True)
class MarketTerms:
    """How to draw one symbol: whose path, on which calendar and grid, and how to turn it into bars."""

    instrument: Instrument
    path: str  # name of the random path (the stock, the future's underlying, the pair)
    calendar: str
    session_minutes: int
    start_price: float | None  # None: the provider's seeded pick
    vol_scale: float

    @property
    def kind(self) -> AssetClass:
        return self.instrument.kind

    @property
    def tick(self) -> float:
        return self.instrument.tick_size

    def kept_sessions(self, labels: pd.DatetimeIndex) -> np.ndarray:
        """Indexes of the sessions (by label date) on which this symbol trades: all, or a contract's life."""
        expiry = self.instrument.expiry
        if expiry is None:
            return np.arange(len(labels))
        first = pd.Timestamp(expiry - timedelta(days=_LISTED_DAYS))
        return np.flatnonzero((labels >= first) & (labels <= pd.Timestamp(expiry)))

    def transform(self, days: BarArrays, labels: pd.DatetimeIndex, registry: InstrumentRegistry) -> BarArrays:
        """The underlying's days as this symbol's: a contract's carry and volume share; otherwise unchanged."""
        expiry = self.instrument.expiry
        if expiry is None:
            return days
        to_expiry = (pd.Timestamp(expiry) - labels).days.to_numpy(dtype=float)
        factor = np.exp(CARRY * to_expiry / 365.0)
        share = front_share(to_expiry, _cycle_days(self.instrument, registry))
        return BarArrays(
            days.open * factor, days.high * factor, days.low * factor, days.close * factor,
            np.round(days.volume * share),
        )  # fmt: skip


def terms_for(instrument: Instrument) -> MarketTerms:
    """The drawing terms of ``instrument`` (stocks keep the provider's own path, calendar and prices)."""
    if instrument.kind is AssetClass.STOCK:
        return MarketTerms(instrument, instrument.symbol, "", SESSION_MINUTES, None, 1.0)
    if instrument.kind is AssetClass.FOREX:
        price, scale = _TYPICAL.get(instrument.symbol, (1.0, 0.35))
        return MarketTerms(instrument, instrument.symbol, instrument.calendar, _FOREX_MINUTES, price, scale)
    underlying = _SAME_UNDERLYING.get(instrument.root, instrument.root)
    price, scale = _TYPICAL.get(underlying, (100.0, 1.0))
    # "~" keeps the underlying's path apart from any stock of the same ticker
    return MarketTerms(instrument, f"~{underlying}", instrument.calendar, _GLOBEX_MINUTES, price, scale)


def front_share(to_expiry: np.ndarray, cycle_days: float) -> np.ndarray:
    """Share of the root's volume a contract trades ``to_expiry`` calendar days before its expiry: nearly
    all of it from ``cycle_days + 8`` to 8 days out (it is the front month), a trickle otherwise."""
    lead = ROLL_LEAD_DAYS
    with np.errstate(over="ignore"):
        rising = 1.0 / (1.0 + np.exp(-(to_expiry - lead - 0.5) * 2.0))
        falling = 1.0 / (1.0 + np.exp((to_expiry - lead - cycle_days + 0.5) * 2.0))
    return np.asarray(_BACK_SHARE + (1.0 - _BACK_SHARE) * rising * falling)


def _cycle_days(instrument: Instrument, registry: InstrumentRegistry) -> float:
    """Days from the previous listed contract's last trade date to this one's."""
    assert instrument.expiry is not None
    spec = registry.spec(instrument.root)
    year, month = int(instrument.contract_month[:4]), int(instrument.contract_month[4:])
    while True:
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
        if MONTH_CODES[month - 1] in spec.months:
            previous: date = spec.last_trade(year, month)
            return float((instrument.expiry - previous).days)


def on_tick_grid(values: np.ndarray, tick: float) -> np.ndarray:
    """``values`` rounded to the nearest tick (at least one tick): monotone, so OHLC stays valid."""
    return np.maximum(np.round(np.round(values / tick) * tick, 10), tick)


def bid_grid(values: np.ndarray, tick: float) -> np.ndarray:
    """A pair's bid: the path rounded down to the tick (at least one tick)."""
    return np.maximum(np.round(np.floor(values / tick + 1e-9) * tick, 10), tick)


def quote_frames(midpoints: pd.DataFrame, tick: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(bid, ask)`` bars of a synthetic pair from its midpoint bars: half a tick below and above."""
    prices = ["Open", "High", "Low", "Close"]
    half = tick / 2.0
    bid = midpoints.copy()
    ask = midpoints.copy()
    bid[prices] = (midpoints[prices] - half).round(10)
    ask[prices] = (midpoints[prices] + half).round(10)
    return bid, ask
