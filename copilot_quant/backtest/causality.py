"""The fast path's look-ahead check: a causal indicator has the same values on a prefix of the data.

A :class:`~copilot_quant.backtest.strategy.FastStrategy` computes its indicators once over the whole
history, so an indicator that peeks ahead (``shift(-n)``, a centred window, ``close / close.max()``) would
leak the future into every bar. Recomputing on prefixes catches it by name before the run.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from copilot_quant.backtest.strategy import FastStrategy
from copilot_quant.errors import StrategyError

__all__ = ["causal_indicator_frame", "check_causal"]

_RTOL = 1e-9
_LONGEST_PREFIX = 100_000


def causal_indicator_frame(
    strategy: FastStrategy, frame: pd.DataFrame, *, check: bool = True
) -> pd.DataFrame:
    """``strategy``'s indicators over all of ``frame``, after :func:`check_causal` (unless ``check`` is off)."""
    try:
        full = strategy.indicator_frame(frame)
    except TypeError as exc:
        raise StrategyError(str(exc)) from exc
    if check and len(frame) >= 2:
        check_causal(strategy, frame, full)
    return full


def check_causal(strategy: FastStrategy, frame: pd.DataFrame, full: pd.DataFrame) -> None:
    """Recompute on three prefixes (the first half of the data, capped at 100,000 bars, then a quarter
    and an eighth of that): a causal indicator gives the same values there. Look-ahead (``shift(-n)``,
    centred windows, whole-series statistics such as ``close / close.max()``) changes values near the end
    of at least one prefix; a :class:`StrategyError` names the indicator and the first bar that differs."""
    longest = min(len(frame) // 2, _LONGEST_PREFIX)
    values = full.to_numpy(dtype=float)
    for cut in sorted({longest, longest // 4, longest // 8} - {0}):
        part = strategy.indicator_frame(frame.iloc[:cut])
        # all columns at once (a portfolio has hundreds); a column the prefix lacks is all NaN there
        prefix = part.reindex(columns=full.columns).to_numpy(dtype=float)
        whole = values[:cut]
        same = np.isclose(whole, prefix, rtol=_RTOL, atol=1e-12, equal_nan=True)
        if same.all():
            continue
        bad = ~same
        column = int(np.argmax(bad.any(axis=0)))  # the first indicator column that differs
        j = int(np.argmax(bad[:, column]))  # and its first bar that differs
        name = full.columns[column]
        raise StrategyError(
            f"{strategy.name}.indicators() looks ahead: indicator {name!r} at {frame.index[j]} is "
            f"{whole[j, column]!r} when computed on all bars but {prefix[j, column]!r} when computed on the "
            f"bars up to {frame.index[cut - 1]}; use only causal operations (rolling, ewm, shift(n) "
            "with n >= 0, cumsum ...), never shift(-n), centred windows or whole-series statistics"
        )
