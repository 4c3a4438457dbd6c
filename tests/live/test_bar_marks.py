"""The closes a strategy's account view marks positions at: the last close of each symbol in the bar's
window (one symbol: its cell read directly; several: each symbol's last close that is not NaN)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from copilot_quant.backtest.interfaces import combine_symbols
from copilot_quant.brokers.live_bars import _build_frame
from copilot_quant.live.account_view import BarMarks


def _frame(closes: list[float]) -> pd.DataFrame:
    stamps = (np.arange(len(closes), dtype="int64") + 19_000) * 86_400 * 10**9
    values = np.column_stack([closes, closes, closes, closes, np.ones(len(closes))])
    return _build_frame(stamps, values)


def test_one_symbol_is_marked_at_its_last_close() -> None:
    marks = BarMarks()
    marks.set(_frame([10.0, 11.5, 12.25]), ["AAPL"], beside={"MESU4": 5000.0})
    assert dict(marks) == {"MESU4": 5000.0, "AAPL": 12.25}


def test_several_symbols_are_each_marked_at_their_last_known_close() -> None:
    window = combine_symbols({"AAPL": _frame([10.0, 11.0, 12.0]), "MSFT": _frame([20.0, 21.0, np.nan])})
    marks = BarMarks()
    marks.set(window, ["AAPL", "MSFT"])
    assert marks["AAPL"] == 12.0
    assert marks["MSFT"] == 21.0  # no bar there this time: its last close
