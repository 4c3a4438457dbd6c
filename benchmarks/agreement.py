"""What the benchmarks that race backtrader share: the crossover's tie margin and the agreement check.

Why a margin. Every engine compares a fast and a slow moving average of cent prices, and the two can be
*equal* in exact arithmetic (the mean of the last 10 closes and of the last 30 are both 192.466, say). The
engines sum differently — backtrader with ``math.fsum``, numpy pairwise, pandas' rolling incrementally — so
such a tie comes out as ``fast < slow`` in one engine, ``fast > slow`` or ``==`` in another, one bit apart,
and one engine trades a bar earlier than the other (seen in ``bench_backtest`` (b) and (c)). So a crossover
counts only when the averages differ by more than :data:`MARGIN` of the slow one, in every engine.

The margin changes ties only: on cent prices two different 10- and 30-bar means differ by at least 1/30 of
a cent, i.e. by more than 1e-9 of any price below $300,000, while the engines' rounding differences are
around 1e-16 of the price.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

#: A crossover counts when the averages differ by more than this fraction of the slow one (see above).
MARGIN = 1e-9
UP, DOWN = 1 + MARGIN, 1 - MARGIN
Trade = tuple[pd.Timestamp, str, float, float]  # (bar, symbol, price, signed quantity)
Side = tuple[str, list[Any], float]  # (engine, trades, final equity)
SHOWN = 3  # trades listed per side when two engines disagree


def without_ties(fast: pd.Series, slow: pd.Series) -> pd.Series:
    """``fast`` with every value within :data:`MARGIN` of ``slow`` replaced by ``slow``'s.

    For indicators compared with ``fast > slow`` / ``fast < slow``: after this, those comparisons are
    ``fast > slow * UP`` / ``fast < slow * DOWN`` (positive prices), with no per-bar work. NaN stays NaN.
    """
    tie = (fast >= slow * DOWN) & (fast <= slow * UP)
    return fast.mask(tie, slow)


def print_agreement(runs: Mapping[str, tuple[float, Sequence[Any], float]]) -> bool:
    """Whether every engine made the first one's trades and final equity; a disagreement is printed loudly.

    ``runs`` maps an engine's name to (seconds, sorted trades, final equity). On a disagreement it prints a
    ``!!`` block: the first trade that differs, the trades found in only one of the two engines, and the
    final equities. Returns True when all agree, so a benchmark can exit non-zero when they do not.
    """
    names = list(runs)
    base = names[0]
    base_trades, base_value = runs[base][1], runs[base][2]
    agree = True
    for name in names[1:]:
        trades, value = runs[name][1], runs[name][2]
        same_value = abs(value - base_value) <= 1e-6 * abs(base_value)
        if list(trades) == list(base_trades) and same_value:
            print(f"  trades {base} vs {name}: identical ({len(trades)}); final equity equal ({value:,.2f})")
            continue
        agree = False
        for line in _disagreement((base, list(base_trades), base_value), (name, list(trades), value)):
            print(f"  !! {line}")
    return agree


def _disagreement(one: Side, other: Side) -> list[str]:
    (base, ours, base_value), (name, theirs, value) = one, other
    first = next(
        (k for k, (a, b) in enumerate(zip(ours, theirs, strict=False)) if a != b), min(len(ours), len(theirs))
    )
    lines = [
        f"DISAGREEMENT {base} vs {name}: "
        + (f"trades differ from trade #{first}" if ours != theirs else "same trades")
        + f" ({len(ours)} vs {len(theirs)} trades); final equity {base_value:,.2f} vs {value:,.2f}"
    ]
    if ours != theirs:
        lines.append(f"first differing trade: {base} {_at(ours, first)}  |  {name} {_at(theirs, first)}")
        mine, peer = Counter(ours), Counter(theirs)
        for who, extra in ((base, mine - peer), (name, peer - mine)):
            listed = sorted(extra.elements())
            shown = ", ".join(_show(t) for t in listed[:SHOWN]) + (", ..." if len(listed) > SHOWN else "")
            shown = shown or "none"
            lines.append(f"only in {who} ({len(listed)}): {shown}")
    return lines


def _at(trades: list[Any], k: int) -> str:
    return _show(trades[k]) if k < len(trades) else "(none)"


def _show(trade: Any) -> str:
    """A :data:`Trade` as ``2019-05-14 20:00 S09 +100 @ 192.75``; anything else as it prints."""
    if isinstance(trade, tuple) and len(trade) == 4 and isinstance(trade[0], pd.Timestamp):
        stamp, symbol, price, quantity = trade
        return f"{stamp:%Y-%m-%d %H:%M} {symbol} {quantity:+g} @ {price:g}"
    return str(trade)
